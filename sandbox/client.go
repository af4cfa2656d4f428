// Package sandbox owns access to a running sandbox: the one way the API
// reaches an agent sandbox (a thread's) or a files sandbox (a user's files
// session). Handlers call Client.Use with the entity and a function that
// gets the sandbox's toolbox; everything between — the cache of what the
// entity workflow promised, collapsing concurrent ensure-running updates,
// debounced touches, holds and leases for long uses, and the
// suspect-and-retry path when a sandbox was stopped behind the cache — lives
// here and nowhere else.
//
// Temporal stays off the hot path: per workflow the client caches the last
// ensure-running answer with a horizon until which the workflow cannot stop
// the sandbox; while a use fits before it the toolbox is called directly and
// the use is reported with a debounced, asynchronous touch signal. The cache
// holds nothing that matters: losing it (a restart, another API replica)
// costs one ensure round trip.
package sandbox

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"go.temporal.io/sdk/client"
	"golang.org/x/sync/singleflight"

	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/entity"
)

// Options configure a Client.
type Options struct {
	Temporal  client.Client
	Gateway   *daytona.Gateway
	TaskQueue string
	// Thread and Files are the lifecycle settings new entities start with;
	// their AutoStop also bounds how long a cached answer is trusted.
	Thread entity.Config
	Files  entity.Config
	Logger *slog.Logger
	// Admit, when set, runs before an ensure-running that goes to the
	// workflow (never on the cached path), after the use's Guard: it may
	// refuse the use (a limit on running sandboxes, package admission), and
	// its release runs once that ensure is over, successful or not.
	Admit func(ctx context.Context, ref entity.Ref) (release func(), err error)
	// EnsureTimeout bounds one ensure-running round trip that several
	// requests share (default entity.MaxEnsureWait + 30 s).
	EnsureTimeout time.Duration
	// Now is the clock (tests); time.Now when nil. Every decision about
	// windows and deadlines reads it.
	Now func() time.Time
}

// maxUpdatesPerWorkflow stays below Temporal's limit of 10 in-flight updates
// per workflow, leaving room for a delete.
const maxUpdatesPerWorkflow = 8

// Client gets running sandboxes for entities. It is safe for concurrent use;
// Close stops its background work.
type Client struct {
	opts Options
	log  *slog.Logger
	sf   singleflight.Group

	mu      sync.Mutex
	entries map[string]*entry
	sems    map[string]*updateSem

	bg     context.Context
	stop   context.CancelFunc
	wg     sync.WaitGroup
	closed bool
}

// entry is the per-workflow cache and touch state. It outlives cache
// invalidation (valid=false) so the touch debouncer keeps one sender per
// workflow.
type entry struct {
	ref   entity.Ref
	valid bool
	res   entity.EnsureResult
	tb    *daytona.Toolbox
	// horizon is the moment before which the workflow will not stop the
	// sandbox because of uses this client reported (leases are left out:
	// they can be released early).
	horizon time.Time
	// incarnation is what the use's guard answered when the window was
	// cached (a thread row's life); another answer drops the window.
	incarnation string

	pending  time.Time // latest use not yet reported
	lastSent time.Time
	sending  bool
	// suspect is a sandbox a call found not running; the next ensure-running
	// asks the workflow to verify it (Daytona's backstop or an operator may
	// have stopped or deleted it behind the workflow's back).
	suspect string
}

// updateSem bounds the concurrent updates this process sends one workflow.
type updateSem struct {
	ch   chan struct{}
	refs int
}

// New starts a client; Close stops its background touches.
func New(o Options) *Client {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.EnsureTimeout <= 0 {
		// Longer than the workflow's own bound on one ensure, so its answer
		// ("still being brought up; retry") reaches the caller.
		o.EnsureTimeout = entity.MaxEnsureWait + 30*time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	bg, stop := context.WithCancel(context.Background())
	return &Client{
		opts:    o,
		log:     o.Logger,
		entries: map[string]*entry{},
		sems:    map[string]*updateSem{},
		bg:      bg,
		stop:    stop,
	}
}

// Close stops background signalling and waits for it; pending touches are
// dropped (the idle deadline only gets shorter by at most the debounce).
func (c *Client) Close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.stop()
	c.wg.Wait()
}

// goBackground runs f on a goroutine Close waits for; false when closed.
func (c *Client) goBackground(f func()) bool {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return false
	}
	c.wg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.wg.Done()
		f()
	}()
	return true
}

func (c *Client) config(k entity.Kind) entity.Config {
	if k == entity.KindFiles {
		return c.opts.Files
	}
	return c.opts.Thread
}

// margin is the safety distance kept from a horizon: clock skew between API
// and worker, the stop activity's own latency, request start-up.
func (c *Client) margin(k entity.Kind) time.Duration {
	return min(max(c.config(k).AutoStop/10, 100*time.Millisecond), 5*time.Second)
}

// touchEvery is the debounce window of touch signals per workflow: a tenth
// of the idle interval (90 s at the default 15 min). That is as safe as any
// shorter window — a pending use is delivered long before the workflow's
// idle timer could fire, and the cached horizon it extends stays at least
// 9/10 of the interval ahead — while every signal is a billable Temporal
// action with its workflow task: a busy thread costs about 160 history
// events an hour instead of about 14,000 with a 1 s window
// (docs/BENCHMARKS.md, BenchmarkBusyThreadHistory).
func (c *Client) touchEvery(k entity.Kind) time.Duration {
	return c.config(k).AutoStop / 10
}

// Forget drops the cached sandbox, so the next use asks the workflow: after
// a delete, or when a revived thread must not reuse its last life's sandbox.
func (c *Client) Forget(ref entity.Ref) {
	c.mu.Lock()
	if e := c.entries[ref.WorkflowID()]; e != nil {
		e.valid = false
	}
	c.mu.Unlock()
}

// setIncarnation records the guard's answer for the cached window.
func (c *Client) setIncarnation(ref entity.Ref, incarnation string) {
	c.mu.Lock()
	if e := c.entries[ref.WorkflowID()]; e != nil {
		e.incarnation = incarnation
	}
	c.mu.Unlock()
}

// suspect drops the cache entry and records that sandboxID was found not
// running, so the next ensure-running makes the workflow check it.
func (c *Client) suspect(ref entity.Ref, sandboxID string) {
	c.mu.Lock()
	if e := c.entries[ref.WorkflowID()]; e != nil {
		e.valid = false
		e.suspect = sandboxID
	}
	c.mu.Unlock()
}

// takeSuspect returns and clears the suspect sandbox of a workflow.
func (c *Client) takeSuspect(id string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[id]
	if e == nil {
		return ""
	}
	s := e.suspect
	e.suspect = ""
	return s
}

// horizonOf is the cached moment before which the workflow will not stop
// ref's sandbox (zero when nothing is cached).
func (c *Client) horizonOf(ref entity.Ref) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[ref.WorkflowID()]; e != nil && e.valid {
		return e.horizon
	}
	return time.Time{}
}
