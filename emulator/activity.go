package emulator

import "time"

// ActivityTimings are how activity becomes a sandbox's lastActivityAt on
// Daytona (sandbox-activity.service.ts and the toolbox proxy). An update is
// accepted at most once per Throttle and buffered; the buffer reaches the
// store every Flush, and only the store is what GET, lists and the auto-stop
// check read. Toolbox traffic counts at most once per Proxy. State changes
// write the store at once. So a keep-alive can take up to Flush to show, and
// a client that relies on a second keep-alive within Throttle is wrong.
// Zero fields take Daytona's timings scaled by Options.TimeUnit (one minute
// of TimeUnit = one real minute), so tests that shrink the auto-* intervals
// shrink these too.
type ActivityTimings struct {
	// Throttle drops an update that follows an accepted one within it (Daytona: 5s).
	Throttle time.Duration
	// Flush is how often accepted updates reach the store (Daytona: 10s).
	Flush time.Duration
	// Proxy is how often toolbox traffic may count as activity (Daytona: 45s).
	Proxy time.Duration
}

// withDefaults fills zero timings from Daytona's, scaled by unit per minute.
func (a ActivityTimings) withDefaults(unit time.Duration) ActivityTimings {
	scaled := func(d time.Duration) time.Duration {
		return max(time.Duration(float64(d)*float64(unit)/float64(time.Minute)), time.Millisecond)
	}
	if a.Throttle <= 0 {
		a.Throttle = scaled(5 * time.Second)
	}
	if a.Flush <= 0 {
		a.Flush = scaled(10 * time.Second)
	}
	if a.Proxy <= 0 {
		a.Proxy = scaled(45 * time.Second)
	}
	return a
}

// activityState is a sandbox's place in the activity pipeline (Daytona keeps
// it in Redis: the throttle lock, the proxy's cache and the buffered score).
type activityState struct {
	throttledUntil time.Time // updates before this are dropped
	proxyUntil     time.Time // toolbox traffic before this does not count
	pending        time.Time // accepted, not yet flushed; zero when none
}

func (s *Server) activityOf(id string) *activityState {
	a, ok := s.activity[id]
	if !ok {
		a = &activityState{}
		s.activity[id] = a
	}
	return a
}

// recordActivityLocked is POST /sandbox/{id}/last-activity: the update is
// buffered unless one was accepted less than Throttle ago. Caller holds s.mu.
func (s *Server) recordActivityLocked(id string, now time.Time) {
	a := s.activityOf(id)
	if now.Before(a.throttledUntil) {
		return
	}
	a.throttledUntil = now.Add(s.opts.Activity.Throttle)
	a.pending = now
}

// proxyActivityLocked is toolbox traffic: the proxy reports it to the API at
// most once per Proxy, where it goes through the same throttle. Caller holds s.mu.
func (s *Server) proxyActivityLocked(id string, now time.Time) {
	a := s.activityOf(id)
	if now.Before(a.proxyUntil) {
		return
	}
	a.proxyUntil = now.Add(s.opts.Activity.Proxy)
	s.recordActivityLocked(id, now)
}

// dropPendingActivityLocked discards a buffered update that a state change
// (which writes the store directly) has overtaken, as Daytona's immediate
// update removes the buffered score. Caller holds s.mu.
func (s *Server) dropPendingActivityLocked(id string) {
	if a, ok := s.activity[id]; ok {
		a.pending = time.Time{}
	}
}

// flushActivityLocked moves buffered updates into the store. Caller holds s.mu.
func (s *Server) flushActivityLocked() {
	changed := false
	for id, a := range s.activity {
		sb, ok := s.sandboxes[id]
		if !ok {
			delete(s.activity, id)
			continue
		}
		if !a.pending.IsZero() && a.pending.After(sb.LastActivityAt) {
			sb.LastActivityAt = a.pending
			changed = true
		}
		a.pending = time.Time{}
	}
	if changed {
		s.saveLockedLog()
	}
}
