package sandbox

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/google/uuid"
	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/entity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
)

// Sandbox is an entity's running sandbox during one use.
type Sandbox struct {
	Ref     entity.Ref
	Result  entity.EnsureResult
	Toolbox *daytona.Toolbox
	// Cached reports that no Temporal round trip was made for this use.
	Cached bool
	// leaseID is set when this use holds a lease that must be released.
	leaseID string
	c       *Client
}

// UseOptions describe one use of an entity's sandbox.
type UseOptions struct {
	// Need is how long the sandbox must surely stay up once fn starts (a
	// command's timeout); a use that runs longer is held anyway (see Use),
	// Need only decides whether the cached window suffices up front.
	Need time.Duration
	// Guard runs before every use, the cached ones included: the thread
	// routes check the thread row there, so a deleted thread answers 404
	// instead of coming back, and a thread deleted through another replica
	// is not used through this one's cached window (a user delete ends the
	// workflow's promise early, and only the row says so at once). It
	// returns the entity's incarnation (a revived thread's is new): a
	// window cached for another incarnation is not used.
	Guard func(context.Context) (incarnation string, err error)
	// Replayable reports whether fn may run again after it failed (a
	// streamed request body that was partly consumed, or a response already
	// started, cannot). nil means yes.
	Replayable func() bool
}

// Use runs fn against the entity's running sandbox, started or created as
// needed. The sandbox is held for as long as fn runs: a use that outlives
// the window the cache guarantees takes a lease shortly before it closes, so
// the sandbox never stops under it. When fn returns, the use is reported (the
// idle timer counts from the end of a use) and any lease is released.
//
// If fn fails because the sandbox was stopped or deleted behind the cache (a
// stale answer, Daytona's backstop, an operator), the entry is dropped, the
// workflow is asked to verify the sandbox (it restarts or recreates it) and
// fn runs once more, if it is replayable.
func (c *Client) Use(ctx context.Context, ref entity.Ref, o UseOptions, fn func(context.Context, *Sandbox) error) error {
	for attempt := 0; ; attempt++ {
		sb, err := c.ensure(ctx, ref, o.Need, o.Guard)
		if err != nil {
			return err
		}
		stop := func() {}
		if sb.leaseID == "" {
			stop = c.hold(sb)
		}
		err = fn(ctx, sb)
		stop()
		c.done(sb)
		if err == nil || attempt > 0 || (o.Replayable != nil && !o.Replayable()) || !sb.Gone(ctx, err) {
			return err
		}
		c.log.InfoContext(ctx, "sandbox gone behind the cache; ensuring it again",
			"workflow_id", ref.WorkflowID(), "sandbox_id", sb.Result.SandboxID, "cached", sb.Cached, "err", err)
		c.suspect(ref, sb.Result.SandboxID)
	}
}

// Gone reports whether a toolbox failure means the sandbox is not running.
// The toolbox answers 404 for a missing sandbox and 400 for a stopped one,
// which are also its answers for a missing file or a bad request, so the
// control plane is asked (only on this error path).
func (sb *Sandbox) Gone(ctx context.Context, err error) bool {
	var de *daytona.Error
	if !errors.As(err, &de) {
		return false
	}
	if !errors.Is(err, daytona.ErrNotFound) && !errors.Is(err, daytona.ErrBadRequest) &&
		!errors.Is(err, daytona.ErrInvalidState) && !errors.Is(err, daytona.ErrUnavailable) {
		return false
	}
	if ctx.Err() != nil {
		return false
	}
	got, gerr := sb.c.opts.Gateway.GetSandbox(ctx, sb.Result.SandboxID)
	if gerr != nil {
		return errors.Is(gerr, daytona.ErrNotFound)
	}
	return got.State != daytona.StateStarted
}

// ensure returns the entity's running sandbox, guaranteed to stay up for at
// least need from now: from the cache when it fits, else through the
// workflow. When the result holds a lease, done releases it.
func (c *Client) ensure(ctx context.Context, ref entity.Ref, need time.Duration, guard func(context.Context) (string, error)) (*Sandbox, error) {
	id := ref.WorkflowID()
	margin := c.margin(ref.Kind)
	now := c.opts.Now()
	c.mu.Lock()
	if e := c.entries[id]; e != nil && e.valid && now.Add(need+margin).Before(e.horizon) {
		out := &Sandbox{Ref: ref, Result: e.res, Toolbox: e.tb, Cached: true, c: c}
		incarnation := e.incarnation
		c.mu.Unlock()
		fresh := true
		if guard != nil {
			got, err := guard(ctx)
			if err != nil {
				return nil, err
			}
			fresh = got == incarnation
		}
		if fresh {
			c.touch(ref, now)
			return out, nil
		}
		c.Forget(ref) // cached for an earlier life of the entity
	} else {
		c.mu.Unlock()
	}

	// A thread deleted a moment ago may still have a closing run, which
	// refuses new work; once it has closed, Update-With-Start starts a new
	// one. The guard runs before every attempt, so a thread that is really
	// deleted answers 404 instead of coming back.
	backoff := 50 * time.Millisecond
	for attempt := 0; ; attempt++ {
		incarnation := ""
		if guard != nil {
			var err error
			if incarnation, err = guard(ctx); err != nil {
				return nil, err
			}
		}
		if attempt == 0 && c.opts.Admit != nil {
			release, err := c.opts.Admit(ctx, ref)
			if err != nil {
				return nil, err
			}
			defer release()
		}
		out, err := c.ensureCold(ctx, ref, need, margin)
		if err == nil {
			c.setIncarnation(ref, incarnation)
		}
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

func (c *Client) ensureCold(ctx context.Context, ref entity.Ref, need, margin time.Duration) (*Sandbox, error) {
	if need+margin < c.config(ref.Kind).AutoStop {
		res, horizon, tb, err := c.ensureShared(ctx, ref)
		if err != nil {
			return nil, err
		}
		if c.opts.Now().Add(need + margin).Before(horizon) {
			return &Sandbox{Ref: ref, Result: res, Toolbox: tb, c: c}, nil
		}
	}
	lease := &entity.LeaseRequest{ID: "lease-" + uuid.NewString(), TTL: need + margin}
	res, _, tb, err := c.update(ctx, ref, lease)
	if err != nil {
		return nil, err
	}
	return &Sandbox{Ref: ref, Result: res, Toolbox: tb, leaseID: lease.ID, c: c}, nil
}

// entityEnding reports that ensure-running hit a run that is deleting its
// sandbox or has just done so.
func entityEnding(err error) bool {
	var app *temporal.ApplicationError
	if !errors.As(err, &app) {
		return false
	}
	return app.Type() == entity.ErrTypeEntityDeleted || app.Type() == entity.ErrTypeEntityDeleting
}

// ensureShared runs one lease-less ensure for all concurrent callers of a
// workflow. The shared call runs detached from the first caller's context so
// one impatient client cannot fail the others; each caller still stops
// waiting when its own context ends.
func (c *Client) ensureShared(ctx context.Context, ref entity.Ref) (entity.EnsureResult, time.Time, *daytona.Toolbox, error) {
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
func (c *Client) update(ctx context.Context, ref entity.Ref, lease *entity.LeaseRequest) (entity.EnsureResult, time.Time, *daytona.Toolbox, error) {
	id := ref.WorkflowID()
	release := c.acquire(ctx, id)
	if release == nil {
		return entity.EnsureResult{}, time.Time{}, nil, fmt.Errorf("waiting for an update slot: %w", ctx.Err())
	}
	defer release()

	usedAt := c.opts.Now()
	req := entity.EnsureRequest{RequestID: uuid.NewString(), Lease: lease, UsedAt: usedAt, SuspectSandboxID: c.takeSuspect(id)}
	h, err := c.opts.Temporal.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: c.startOperation(ref),
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
func (c *Client) startOperation(ref entity.Ref) client.WithStartWorkflowOperation {
	return c.opts.Temporal.NewWithStartWorkflowOperation(c.startOptions(ref), ref.Kind.WorkflowName(), c.input(ref))
}

// startOptions start an entity's workflow when it is not running (a
// running one is used as it is), searchable by user and thread.
func (c *Client) startOptions(ref entity.Ref) client.StartWorkflowOptions {
	attrs := []temporal.SearchAttributeUpdate{entity.AttrUserID.ValueSet(ref.UserID)}
	summary := "files session of user " + ref.UserID
	if ref.Kind == entity.KindThread {
		attrs = append(attrs, entity.AttrThreadID.ValueSet(ref.ThreadID))
		summary = "thread " + ref.ThreadID + " of user " + ref.UserID
	}
	return client.StartWorkflowOptions{
		ID:                       ref.WorkflowID(),
		TaskQueue:                c.opts.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		TypedSearchAttributes:    temporal.NewSearchAttributes(attrs...),
		StaticSummary:            summary,
	}
}

// input is the start input of an entity's workflow: the lifecycle settings
// new entities of its kind start with.
func (c *Client) input(ref entity.Ref) entity.Input {
	return entity.Input{Kind: ref.Kind, UserID: ref.UserID, ThreadID: ref.ThreadID, Config: c.config(ref.Kind)}
}

// store caches an answer, keeping the toolbox client when the sandbox is the
// same (building one allocates the generated client).
func (c *Client) store(ref entity.Ref, res entity.EnsureResult, horizon time.Time) *daytona.Toolbox {
	id := ref.WorkflowID()
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[id]
	if e == nil {
		c.sweepLocked()
		e = &entry{ref: ref}
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
	// The ensure reported the use like a touch would: the use's trailing
	// touch waits its turn (touchEvery) instead of signalling the workflow
	// at once, which cost a workflow task right behind every cold use (a
	// create's first exec ran beside it).
	if now := c.opts.Now(); now.After(e.lastSent) {
		e.lastSent = now
	}
	return e.tb
}

// maxEntries triggers a sweep of entries nobody can use any more.
const maxEntries = 10000

func (c *Client) sweepLocked() {
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
func (c *Client) acquire(ctx context.Context, id string) func() {
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
