// Package usage reads what sandboxes cost from the lifecycle ledger
// (lifecycle_events): the seconds each sandbox ran, per user and per thread,
// and how many of them ran past the policy — after the stop deadline (last
// use + auto-stop, or the last lease) that an idle stop carried out late.
//
// A sandbox runs from a "created" or "started" row until the next
// "stopped", "deleted", "lost" or "failed" row of its entity. A start while
// one is running (a sandbox Daytona stopped behind the workflow's back and
// the workflow started again) ends the earlier interval there: the ledger
// does not know when Daytona stopped it, so the report counts up to what
// it knows (an upper bound). A sandbox still running is counted up to the
// report's moment; its late seconds are known once its stop is recorded.
// The worker's sandbox-seconds counter counts the same intervals, as each
// one ends (activities.RecordLifecycleEvent).
package usage

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/entity"
)

// The ledger events that start and end a running interval.
var (
	startEvents = []string{"created", "started"}
	endEvents   = []string{"stopped", "deleted", "lost", "failed"}
)

// Boundaries are the events that start or end a running interval.
func Boundaries() []string { return append(slices.Clone(startEvents), endEvents...) }

// Starts reports whether a ledger event starts a running interval.
func Starts(event string) bool { return slices.Contains(startEvents, event) }

// Ends reports whether a ledger event ends a running interval.
func Ends(event string) bool { return slices.Contains(endEvents, event) }

// Sandbox kinds the report and the metrics name: a thread's sandbox is an
// agent sandbox, a files session's a files sandbox.
const (
	KindAgent = "agent"
	KindFiles = "files"
)

// SandboxKind maps a ledger entity kind to its sandbox kind.
func SandboxKind(k entity.Kind) string {
	if k == entity.KindFiles {
		return KindFiles
	}
	return KindAgent
}

// Seconds are running time and the part of it past the policy.
type Seconds struct {
	Running float64 `json:"running_seconds"`
	Late    float64 `json:"late_seconds"`
}

// Kinds are seconds by sandbox kind.
type Kinds struct {
	Agent Seconds `json:"agent"`
	Files Seconds `json:"files"`
}

// UserUsage is one user's sandboxes: their threads' agent sandboxes and
// their files sandbox.
type UserUsage struct {
	UserID string `json:"user_id"`
	Kinds
}

// ThreadUsage is one thread's agent sandboxes (all generations).
type ThreadUsage struct {
	UserID   string `json:"user_id"`
	ThreadID string `json:"thread_id"`
	Seconds
}

// Report is the usage of the period [From, To).
type Report struct {
	From    time.Time     `json:"from"`
	To      time.Time     `json:"to"`
	Total   Kinds         `json:"total"`
	Users   []UserUsage   `json:"users"`
	Threads []ThreadUsage `json:"threads"`
}

// Read builds the report of [from, to) from the ledger, for one user or
// (user "") everyone; now is the moment a sandbox still running is counted
// up to.
func Read(ctx context.Context, q *db.Queries, from, to, now time.Time, user string) (Report, error) {
	rows, err := q.UsageEvents(ctx, db.UsageEventsParams{Boundaries: Boundaries(), PeriodStart: from, PeriodEnd: to, UserID: user})
	if err != nil {
		return Report{}, fmt.Errorf("reading the ledger: %w", err)
	}
	return Build(rows, from, to, now), nil
}

// span accumulates one entity's durations before they become seconds (sums
// of durations are exact; sums of float seconds are not).
type span struct{ running, late time.Duration }

type entityKey struct {
	kind         entity.Kind
	user, entity string
}

// Build computes the report from ledger rows ordered by entity, then time
// (as UsageEvents returns them).
func Build(rows []db.LifecycleEvent, from, to, now time.Time) Report {
	clip := func(s, e time.Time) time.Duration {
		s, e = later(s, from), earlier(e, to)
		if !e.After(s) {
			return 0
		}
		return e.Sub(s)
	}
	spans := map[entityKey]*span{}
	var order []entityKey
	var key entityKey
	var open bool
	var start time.Time
	flush := func() {
		if open {
			spans[key].running += clip(start, now) // still running
		}
	}
	for _, r := range rows {
		k := entityKey{entity.Kind(r.EntityKind), r.UserID, r.EntityID}
		if k != key {
			flush()
			key, open = k, false
			if spans[k] == nil {
				spans[k] = &span{}
				order = append(order, k)
			}
		}
		sp := spans[k]
		switch {
		case Starts(r.Event):
			if open {
				sp.running += clip(start, r.OccurredAt)
			}
			open, start = true, r.OccurredAt
		case Ends(r.Event):
			if open {
				sp.running += clip(start, r.OccurredAt)
				if d := r.StopDeadline; d != nil && d.Before(r.OccurredAt) {
					sp.late += clip(later(start, *d), r.OccurredAt)
				}
			}
			open = false
		}
	}
	flush()

	// Sum durations first (exact), then turn them into seconds.
	type userSpans struct{ agent, files span }
	users := map[string]*userSpans{}
	var total userSpans
	rep := Report{From: from, To: to, Users: []UserUsage{}, Threads: []ThreadUsage{}}
	for _, k := range order {
		sp := *spans[k]
		if sp.running == 0 {
			continue
		}
		u := users[k.user]
		if u == nil {
			u = &userSpans{}
			users[k.user] = u
		}
		if k.kind == entity.KindFiles {
			u.files.add(sp)
			total.files.add(sp)
			continue
		}
		u.agent.add(sp)
		total.agent.add(sp)
		rep.Threads = append(rep.Threads, ThreadUsage{UserID: k.user, ThreadID: k.entity, Seconds: sp.seconds()})
	}
	rep.Total = Kinds{Agent: total.agent.seconds(), Files: total.files.seconds()}
	for _, id := range slices.Sorted(maps.Keys(users)) {
		u := users[id]
		rep.Users = append(rep.Users, UserUsage{UserID: id, Kinds: Kinds{Agent: u.agent.seconds(), Files: u.files.seconds()}})
	}
	slices.SortFunc(rep.Threads, func(a, b ThreadUsage) int {
		return cmp.Or(cmp.Compare(a.UserID, b.UserID), cmp.Compare(a.ThreadID, b.ThreadID))
	})
	return rep
}

func (s *span) add(o span)      { s.running, s.late = s.running+o.running, s.late+o.late }
func (s span) seconds() Seconds { return Seconds{Running: s.running.Seconds(), Late: s.late.Seconds()} }

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// ParsePeriod reads a report's bounds: RFC 3339 times, or dates
// (YYYY-MM-DD, midnight UTC). from must be before to.
func ParsePeriod(from, to string) (time.Time, time.Time, error) {
	f, err := parseMoment(from)
	if err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("from: %w", err)
	}
	t, err := parseMoment(to)
	if err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("to: %w", err)
	}
	if !f.Before(t) {
		return time.Time{}, time.Time{}, fmt.Errorf("from (%s) must be before to (%s)", from, to)
	}
	return f, t, nil
}

func parseMoment(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, fmt.Errorf("missing (an RFC 3339 time or a date YYYY-MM-DD)")
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a date YYYY-MM-DD", s)
	}
	return t, nil
}
