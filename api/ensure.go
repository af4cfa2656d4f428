package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/threadbox/threadbox/entity"

	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"golang.org/x/sync/singleflight"

	"github.com/threadbox/threadbox/daytona"
)

// sandboxClientOptions configure a sandboxClient.
type sandboxClientOptions struct {
	Temporal  client.Client
	Gateway   *daytona.Gateway
	TaskQueue string
	// Thread and Files are the lifecycle settings new entities start with;
	// their AutoStop also bounds how long a cached answer is trusted.
	Thread entity.Config
	Files  entity.Config
	Logger *slog.Logger
	// EnsureTimeout bounds one ensure-running round trip that several
	// requests share (default 2 minutes: a cold create plus a start).
	EnsureTimeout time.Duration
	// Now is the clock (tests); time.Now when nil.
	Now func() time.Time
}

// maxUpdatesPerWorkflow stays below Temporal's limit of 10 in-flight updates
// per workflow, leaving room for a delete.
const maxUpdatesPerWorkflow = 8

// sandboxClient gets a running sandbox for an entity while keeping Temporal
// off the hot path. Per workflow it caches the last EnsureResult together
// with a horizon until which the workflow cannot stop the sandbox; while a
// request fits before that horizon it is served from the cache and the use is
// reported with a debounced, asynchronous touch signal. Otherwise it sends the
// ensure-running Update-With-Start, collapsed per workflow with singleflight,
// or, for a use that would outlive any idle deadline (a long command), takes a
// lease inside ensure-running and releases it afterwards.
//
// It is safe for concurrent use and holds no state that matters: losing it
// (a restart, another API replica) only costs one ensure round trip.
type sandboxClient struct {
	opts sandboxClientOptions
	log  *slog.Logger
	sf   singleflight.Group

	mu      sync.Mutex
	entries map[string]*sandboxEntry
	sems    map[string]*updateSem

	bg     context.Context
	stop   context.CancelFunc
	wg     sync.WaitGroup
	closed bool
}

// sandboxEntry is the per-workflow cache and touch state. It outlives cache
// invalidation (valid=false) so the touch debouncer keeps one sender per
// workflow.
type sandboxEntry struct {
	ref   entity.Ref
	valid bool
	res   entity.EnsureResult
	tb    *daytona.Toolbox
	// horizon is the moment before which the workflow will not stop the
	// sandbox because of uses this API reported (leases are left out: they
	// can be released early).
	horizon time.Time

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

// ensured is a sandbox that runs for at least the requested time.
type ensured struct {
	ref     entity.Ref
	Result  entity.EnsureResult
	Toolbox *daytona.Toolbox
	// LeaseID is set when this use holds a lease that must be released.
	LeaseID string
	// Cached reports that no Temporal round trip was made.
	Cached bool
}

// newSandboxClient starts a client; Close stops its background touches.
func newSandboxClient(o sandboxClientOptions) *sandboxClient {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.EnsureTimeout <= 0 {
		o.EnsureTimeout = 2 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	bg, stop := context.WithCancel(context.Background())
	return &sandboxClient{
		opts:    o,
		log:     o.Logger,
		entries: map[string]*sandboxEntry{},
		sems:    map[string]*updateSem{},
		bg:      bg,
		stop:    stop,
	}
}

// Close stops background signalling and waits for it; pending touches are
// dropped (the idle deadline only gets shorter by at most the debounce).
func (c *sandboxClient) Close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.stop()
	c.wg.Wait()
}

func (c *sandboxClient) config(k entity.Kind) entity.Config {
	if k == entity.KindFiles {
		return c.opts.Files
	}
	return c.opts.Thread
}

// margin is the safety distance kept from a horizon: clock skew between API
// and worker, the stop activity's own latency, request start-up.
func (c *sandboxClient) margin(k entity.Kind) time.Duration {
	return min(max(c.config(k).AutoStop/10, 100*time.Millisecond), 5*time.Second)
}

// touchEvery is the debounce window of touch signals per workflow.
func (c *sandboxClient) touchEvery(k entity.Kind) time.Duration {
	return min(c.config(k).AutoStop/10, time.Second)
}

// Ensure returns the entity's running sandbox, guaranteed to stay up for at
// least need from now. guard, when set, runs before any Temporal call (the
// thread routes check the thread row there), never on the cached path. When
// the result holds a lease the caller must call done.
func (c *sandboxClient) Ensure(ctx context.Context, ref entity.Ref, need time.Duration, guard func(context.Context) error) (*ensured, error) {
	id := ref.WorkflowID()
	margin := c.margin(ref.Kind)
	now := c.opts.Now()
	c.mu.Lock()
	if e := c.entries[id]; e != nil && e.valid && now.Add(need+margin).Before(e.horizon) {
		out := &ensured{ref: ref, Result: e.res, Toolbox: e.tb, Cached: true}
		c.mu.Unlock()
		c.touch(ref, now)
		return out, nil
	}
	c.mu.Unlock()

	// A thread deleted a moment ago may still have a closing run, which
	// refuses new work; once it has closed, Update-With-Start starts a new
	// one. The guard runs before every attempt, so a thread that is really
	// deleted answers 404 instead of coming back.
	backoff := 50 * time.Millisecond
	for attempt := 0; ; attempt++ {
		if guard != nil {
			if err := guard(ctx); err != nil {
				return nil, err
			}
		}
		out, err := c.ensureCold(ctx, ref, need, margin)
		if err == nil || !entityEnding(err) || attempt >= 20 {
			return out, err
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the previous run to end: %w", ctx.Err())
		}
		backoff = min(2*backoff, time.Second)
	}
}

func (c *sandboxClient) ensureCold(ctx context.Context, ref entity.Ref, need, margin time.Duration) (*ensured, error) {
	if need+margin < c.config(ref.Kind).AutoStop {
		res, horizon, tb, err := c.ensureShared(ctx, ref)
		if err != nil {
			return nil, err
		}
		if c.opts.Now().Add(need + margin).Before(horizon) {
			return &ensured{ref: ref, Result: res, Toolbox: tb}, nil
		}
	}
	lease := &entity.LeaseRequest{ID: "lease-" + uuid.NewString(), TTL: need + margin}
	res, _, tb, err := c.update(ctx, ref, lease)
	if err != nil {
		return nil, err
	}
	return &ensured{ref: ref, Result: res, Toolbox: tb, LeaseID: lease.ID}, nil
}

// entityEnding reports that ensure-running hit a run that is deleting its
// sandbox or has just done so (the update was refused or failed with
// EntityDeleted).
func entityEnding(err error) bool {
	var app *temporal.ApplicationError
	if !errors.As(err, &app) {
		return false
	}
	return app.Type() == entity.ErrTypeEntityDeleted || app.Type() == entity.ErrTypeEntityDeleting
}

// EnsureLease takes a client-requested lease of ttl inside ensure-running.
func (c *sandboxClient) EnsureLease(ctx context.Context, ref entity.Ref, leaseID string, ttl time.Duration) (entity.EnsureResult, error) {
	res, _, _, err := c.update(ctx, ref, &entity.LeaseRequest{ID: leaseID, TTL: ttl})
	return res, err
}

// Done reports the end of a use: a touch (the idle timer counts from the end
// of a command) and, if the use held a lease, its release. Both signals are
// sent in the background, in that order, so the response is not delayed.
func (c *sandboxClient) Done(sb *ensured) {
	now := c.opts.Now()
	if sb.LeaseID == "" {
		c.touch(sb.ref, now)
		return
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.wg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.wg.Done()
		ctx, cancel := context.WithTimeout(c.bg, 30*time.Second)
		defer cancel()
		id := sb.ref.WorkflowID()
		if err := c.opts.Temporal.SignalWorkflow(ctx, id, "", entity.SignalTouch, entity.TouchSignal{At: now}); err != nil && c.bg.Err() == nil {
			c.log.WarnContext(ctx, "touch after lease failed", "workflow_id", id, "err", err)
		}
		if err := c.opts.Temporal.SignalWorkflow(ctx, id, "", entity.SignalReleaseLease, entity.ReleaseLeaseSignal{LeaseID: sb.LeaseID}); err != nil && c.bg.Err() == nil {
			// The lease expires on its own; this only keeps the sandbox up longer.
			c.log.WarnContext(ctx, "release lease failed", "workflow_id", id, "lease_id", sb.LeaseID, "err", err)
		}
	}()
}

// Invalidate forgets the cached sandbox, so the next use asks the workflow:
// after a delete, or when the sandbox was found gone behind the cache.
func (c *sandboxClient) Invalidate(ref entity.Ref) {
	c.mu.Lock()
	if e := c.entries[ref.WorkflowID()]; e != nil {
		e.valid = false
	}
	c.mu.Unlock()
}

// Suspect drops the cache entry and records that sandboxID was found not
// running, so the next ensure-running makes the workflow check it.
func (c *sandboxClient) Suspect(ref entity.Ref, sandboxID string) {
	c.mu.Lock()
	if e := c.entries[ref.WorkflowID()]; e != nil {
		e.valid = false
		e.suspect = sandboxID
	}
	c.mu.Unlock()
}

// takeSuspect returns and clears the suspect sandbox of a workflow.
func (c *sandboxClient) takeSuspect(id string) string {
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

// ensureShared runs one lease-less ensure for all concurrent callers of a
// workflow. The shared call runs detached from the first caller's context so
// one impatient client cannot fail the others; each caller still stops
// waiting when its own context ends.
func (c *sandboxClient) ensureShared(ctx context.Context, ref entity.Ref) (entity.EnsureResult, time.Time, *daytona.Toolbox, error) {
	type shared struct {
		res     entity.EnsureResult
		horizon time.Time
		tb      *daytona.Toolbox
	}
	ch := c.sf.DoChan(ref.WorkflowID(), func() (any, error) {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.EnsureTimeout)
		defer cancel()
		res, horizon, tb, err := c.update(sctx, ref, nil)
		return shared{res, horizon, tb}, err
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return entity.EnsureResult{}, time.Time{}, nil, r.Err
		}
		s := r.Val.(shared)
		return s.res, s.horizon, s.tb, nil
	case <-ctx.Done():
		return entity.EnsureResult{}, time.Time{}, nil, fmt.Errorf("waiting for sandbox: %w", ctx.Err())
	}
}

// update sends ensure-running as Update-With-Start (the first use starts the
// workflow; a deleted thread's closed workflow is started again) and caches
// the answer.
func (c *sandboxClient) update(ctx context.Context, ref entity.Ref, lease *entity.LeaseRequest) (entity.EnsureResult, time.Time, *daytona.Toolbox, error) {
	id := ref.WorkflowID()
	release := c.acquire(ctx, id)
	if release == nil {
		return entity.EnsureResult{}, time.Time{}, nil, fmt.Errorf("waiting for an update slot: %w", ctx.Err())
	}
	defer release()

	usedAt := c.opts.Now()
	req := entity.EnsureRequest{RequestID: uuid.NewString(), Lease: lease, UsedAt: usedAt, SuspectSandboxID: c.takeSuspect(id)}
	start := c.startOperation(ref)
	h, err := c.opts.Temporal.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: start,
		UpdateOptions: client.UpdateWorkflowOptions{
			UpdateID:     req.RequestID,
			WorkflowID:   id,
			UpdateName:   entity.UpdateEnsureRunning,
			Args:         []any{req},
			WaitForStage: client.WorkflowUpdateStageCompleted,
		},
	})
	if err != nil {
		return entity.EnsureResult{}, time.Time{}, nil, fmt.Errorf("ensure-running %s: %w", id, err)
	}
	var res entity.EnsureResult
	if err := h.Get(ctx, &res); err != nil {
		return entity.EnsureResult{}, time.Time{}, nil, fmt.Errorf("ensure-running %s: %w", id, err)
	}
	if res.SandboxID == "" || res.ToolboxURL == "" {
		return entity.EnsureResult{}, time.Time{}, nil, fmt.Errorf("ensure-running %s: answer without a sandbox", id)
	}
	horizon := res.RunningUntil
	if own := usedAt.Add(c.config(ref.Kind).AutoStop); own.Before(horizon) {
		// A lease (ours or another client's) may be released early; only the
		// use itself is a promise the cache can rely on.
		horizon = own
	}
	tb := c.store(ref, res, horizon)
	return res, horizon, tb, nil
}

// startOperation is the start half of Update-With-Start.
func (c *sandboxClient) startOperation(ref entity.Ref) client.WithStartWorkflowOperation {
	cfg := c.config(ref.Kind)
	name := entity.ThreadWorkflowName
	attrs := []temporal.SearchAttributeUpdate{entity.AttrUserID.ValueSet(ref.UserID)}
	summary := "files session of user " + ref.UserID
	if ref.Kind == entity.KindFiles {
		name = entity.FilesWorkflowName
	} else {
		attrs = append(attrs, entity.AttrThreadID.ValueSet(ref.ThreadID))
		summary = "thread " + ref.ThreadID + " of user " + ref.UserID
	}
	return c.opts.Temporal.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
		ID:                       ref.WorkflowID(),
		TaskQueue:                c.opts.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		TypedSearchAttributes:    temporal.NewSearchAttributes(attrs...),
		StaticSummary:            summary,
	}, name, entity.Input{Kind: ref.Kind, UserID: ref.UserID, ThreadID: ref.ThreadID, Config: cfg})
}

// store caches an answer, keeping the toolbox client when the sandbox is the
// same (building one allocates the generated client).
func (c *sandboxClient) store(ref entity.Ref, res entity.EnsureResult, horizon time.Time) *daytona.Toolbox {
	id := ref.WorkflowID()
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[id]
	if e == nil {
		c.sweepLocked()
		e = &sandboxEntry{ref: ref}
		c.entries[id] = e
	}
	if e.tb == nil || e.res.SandboxID != res.SandboxID || e.res.ToolboxURL != res.ToolboxURL {
		e.tb = c.opts.Gateway.Toolbox(res.SandboxID, res.ToolboxURL)
	}
	// Concurrent answers may arrive out of order: keep the later horizon
	// only for the same sandbox.
	if !e.valid || e.res.SandboxID != res.SandboxID || horizon.After(e.horizon) {
		e.horizon = horizon
	}
	e.res = res
	e.valid = true
	return e.tb
}

// maxEntries triggers a sweep of entries nobody can use any more.
const maxEntries = 10000

func (c *sandboxClient) sweepLocked() {
	if len(c.entries) < maxEntries {
		return
	}
	now := c.opts.Now()
	for id, e := range c.entries {
		if !e.sending && (!e.valid || e.horizon.Before(now)) {
			delete(c.entries, id)
		}
	}
}

// acquire takes one of the workflow's update slots; it returns nil when ctx
// ends first.
func (c *sandboxClient) acquire(ctx context.Context, id string) func() {
	c.mu.Lock()
	s := c.sems[id]
	if s == nil {
		s = &updateSem{ch: make(chan struct{}, maxUpdatesPerWorkflow)}
		c.sems[id] = s
	}
	s.refs++
	c.mu.Unlock()
	put := func() {
		c.mu.Lock()
		s.refs--
		if s.refs == 0 {
			delete(c.sems, id)
		}
		c.mu.Unlock()
	}
	select {
	case s.ch <- struct{}{}:
		return func() { <-s.ch; put() }
	case <-ctx.Done():
		put()
		return nil
	}
}

// touch reports a use at `at`, debounced: at most one signal in flight and
// one per touchEvery per workflow, with the latest use always delivered
// (trailing edge). Only cached entities are touched: a use that went through
// ensure-running was reported by it.
func (c *sandboxClient) touch(ref entity.Ref, at time.Time) {
	id := ref.WorkflowID()
	c.mu.Lock()
	e := c.entries[id]
	if e == nil || !e.valid || c.closed {
		c.mu.Unlock()
		return
	}
	if at.After(e.pending) {
		e.pending = at
	}
	if e.sending {
		c.mu.Unlock()
		return
	}
	e.sending = true
	c.wg.Add(1)
	c.mu.Unlock()
	go c.touchLoop(id, e)
}

func (c *sandboxClient) touchLoop(id string, e *sandboxEntry) {
	defer c.wg.Done()
	every := c.touchEvery(e.ref.Kind)
	autoStop := c.config(e.ref.Kind).AutoStop
	margin := c.margin(e.ref.Kind)
	for {
		c.mu.Lock()
		wait := e.lastSent.Add(every).Sub(c.opts.Now())
		c.mu.Unlock()
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-c.bg.Done():
				t.Stop()
				c.mu.Lock()
				e.sending = false
				c.mu.Unlock()
				return
			}
		}
		c.mu.Lock()
		at := e.pending
		if at.IsZero() {
			e.sending = false
			c.mu.Unlock()
			return
		}
		e.pending = time.Time{}
		c.mu.Unlock()

		ctx, cancel := context.WithTimeout(c.bg, 10*time.Second)
		err := c.opts.Temporal.SignalWorkflow(ctx, id, "", entity.SignalTouch, entity.TouchSignal{At: at})
		cancel()
		delivered := c.opts.Now()

		c.mu.Lock()
		e.lastSent = delivered
		switch {
		case err == nil:
			// The workflow got the touch while it could not yet have stopped
			// the sandbox, so its idle deadline is now at least at+AutoStop.
			if e.valid && delivered.Add(margin).Before(e.horizon) {
				if h := at.Add(autoStop); h.After(e.horizon) {
					e.horizon = h
				}
			}
		case isWorkflowNotFound(err):
			e.valid = false // the entity ended: the next use starts it again
		case c.bg.Err() != nil:
		default:
			c.log.Warn("touch signal failed", "workflow_id", id, "err", err)
		}
		c.mu.Unlock()
	}
}

// isWorkflowNotFound reports Temporal's "no such (running) workflow".
func isWorkflowNotFound(err error) bool {
	var nf *serviceerror.NotFound
	return errors.As(err, &nf)
}
