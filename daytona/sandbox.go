package daytona

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	apiclient "github.com/daytonaio/daytona/libs/api-client-go"
)

// fromAPISandbox converts the generated model; ToolboxURL is built like the SDK's
// createToolboxClient: strings.TrimRight(toolboxProxyUrl, "/") + "/" + id.
func fromAPISandbox(s *apiclient.Sandbox) Sandbox {
	if s == nil {
		return Sandbox{}
	}
	return sandboxOf(s.Id, s.Name, s.State, s.DesiredState, s.Recoverable, s.Snapshot, s.Labels, s.ErrorReason,
		s.CreatedAt, s.LastActivityAt, s.ToolboxProxyUrl, s.AutoStopInterval, s.AutoDeleteInterval, s.AutoArchiveInterval)
}

func fromListItem(s *apiclient.SandboxListItem) Sandbox {
	return sandboxOf(s.Id, s.Name, s.State, s.DesiredState, s.Recoverable, s.Snapshot, s.Labels, s.ErrorReason,
		s.CreatedAt, s.LastActivityAt, s.ToolboxProxyUrl, s.AutoStopInterval, s.AutoDeleteInterval, s.AutoArchiveInterval)
}

// sandboxOf builds a Sandbox from the fields the API's Sandbox and SandboxListItem share.
func sandboxOf(id, name string, state *apiclient.SandboxState, desired *apiclient.SandboxDesiredState,
	recoverable *bool, snapshot *string, labels map[string]string, errorReason, createdAt, lastActivityAt *string,
	proxyURL string, autoStop, autoDelete, autoArchive *float32) Sandbox {
	out := Sandbox{
		ID:             id,
		Name:           name,
		State:          SandboxState(deref(state)),
		DesiredState:   SandboxState(deref(desired)),
		Recoverable:    deref(recoverable),
		Snapshot:       deref(snapshot),
		Labels:         labels,
		ErrorReason:    deref(errorReason),
		CreatedAt:      parseTime(createdAt),
		LastActivityAt: parseTime(lastActivityAt),
	}
	if proxyURL != "" {
		out.ToolboxURL = strings.TrimRight(proxyURL, "/") + "/" + id
	}
	if autoStop != nil {
		out.AutoStopMinutes = int(*autoStop)
	}
	if autoDelete != nil {
		out.AutoDeleteMinutes = int(*autoDelete)
	}
	if autoArchive != nil {
		out.AutoArchiveMinutes = int(*autoArchive)
	}
	return out
}

// failedErr reports a sandbox that ended in error/build_failed.
func failedErr(op string, sb Sandbox) error {
	msg := fmt.Sprintf("sandbox %s is in state %s", sb.ID, sb.State)
	if sb.ErrorReason != "" {
		msg += ": " + sb.ErrorReason
	}
	return &Error{Kind: ErrInvalidState, Op: op, Message: msg}
}

// GetSandbox fetches a sandbox by id or name (Daytona tries the id first, then the name).
// A missing or destroyed sandbox is ErrNotFound.
func (g *Gateway) GetSandbox(ctx context.Context, idOrName string) (Sandbox, error) {
	s, resp, err := g.api.SandboxAPI.GetSandbox(g.actx(ctx), idOrName).Execute()
	if err != nil {
		return Sandbox{}, mapErr("get sandbox", classPlain, resp, err)
	}
	return fromAPISandbox(s), nil
}

// createBody maps our params onto Daytona's CreateSandbox (see CreateSandboxParams for the
// interval rule).
func (g *Gateway) createBody(p CreateSandboxParams) apiclient.CreateSandbox {
	body := apiclient.CreateSandbox{
		Name:            ptr(p.Name),
		Public:          ptr(false),
		NetworkBlockAll: ptr(false),
	}
	if p.Snapshot != "" {
		body.Snapshot = ptr(p.Snapshot)
	}
	if g.cfg.Target != "" {
		body.Target = ptr(g.cfg.Target)
	}
	if len(p.Labels) > 0 {
		body.Labels = &p.Labels
	}
	if len(p.Env) > 0 {
		body.Env = &p.Env
	}
	switch {
	case p.AutoStopMinutes > 0:
		body.AutoStopInterval = ptr(int32(p.AutoStopMinutes))
	case p.AutoStopMinutes < 0:
		body.AutoStopInterval = ptr(int32(0))
	}
	switch {
	case p.AutoDeleteMinutes > 0:
		body.AutoDeleteInterval = ptr(int32(p.AutoDeleteMinutes))
	case p.AutoDeleteMinutes < 0:
		body.AutoDeleteInterval = ptr(int32(-1))
	}
	if p.AutoArchiveMinutes > 0 {
		body.AutoArchiveInterval = ptr(int32(p.AutoArchiveMinutes))
	}
	for _, v := range p.Volumes {
		sv := apiclient.SandboxVolume{VolumeId: v.VolumeID, MountPath: v.MountPath}
		if v.Subpath != "" {
			sv.Subpath = ptr(v.Subpath)
		}
		body.Volumes = append(body.Volumes, sv)
	}
	return body
}

// FindOrCreateSandbox returns the sandbox named p.Name, creating it when absent, and waits
// until it is started (starting it if it is stopped or archived, recovering it if it is in
// a recoverable error). The name is the idempotency key: a retried activity whose first
// create succeeded on the server but whose response was lost finds the existing sandbox
// instead of making a second one, and a 409 "already exists" from a concurrent create is
// resolved by re-reading by name. A sandbox in an error Daytona cannot recover (or
// build_failed) is reported as ErrInvalidState together with the sandbox (so the caller
// can delete it and move on to the next generation). An inactive snapshot is activated
// (see createSandbox); the organisation's limits are ErrOrgCapacity or ErrOrgSuspended.
func (g *Gateway) FindOrCreateSandbox(ctx context.Context, p CreateSandboxParams) (Sandbox, error) {
	const op = "find-or-create sandbox"
	if p.Name == "" {
		return Sandbox{}, &Error{Kind: ErrBadRequest, Op: op, Message: "name is required (it is the idempotency key)"}
	}
	sb, err := g.GetSandbox(ctx, p.Name)
	switch {
	case err == nil:
		g.log.DebugContext(ctx, "daytona: found sandbox", "name", p.Name, "id", sb.ID, "state", sb.State)
	case errors.Is(err, ErrNotFound):
		var cerr error
		sb, cerr = g.createSandbox(ctx, p)
		if cerr != nil {
			var e *Error
			if !errors.As(cerr, &e) || e.Status != http.StatusConflict { // 409: the name is taken
				return Sandbox{}, cerr
			}
			// Someone (maybe our own earlier attempt) created it meanwhile.
			sb, err = g.GetSandbox(ctx, p.Name)
			if err != nil {
				return Sandbox{}, fmt.Errorf("%w (after create conflict: %v)", err, cerr)
			}
		} else {
			g.log.InfoContext(ctx, "daytona: created sandbox", "name", p.Name, "id", sb.ID, "state", sb.State)
		}
	default:
		return Sandbox{}, err
	}
	if sb.Name != "" && sb.Name != p.Name && sb.ID != p.Name {
		return sb, &Error{Kind: ErrConflict, Op: op, Message: fmt.Sprintf("name %q resolved to sandbox %s named %q", p.Name, sb.ID, sb.Name)}
	}
	// The name is derived from the entity, but a sandbox found by it is adopted only if
	// its ownership labels agree: a name collision must never hand one user another
	// user's sandbox (and the volume mounted in it).
	for _, k := range []string{LabelManagedBy, LabelKind, LabelUser, LabelThread} {
		if want, ok := p.Labels[k]; ok && sb.Labels[k] != want {
			return Sandbox{}, &Error{Kind: ErrNotOwned, Op: op,
				Message: fmt.Sprintf("sandbox %s named %q has label %s=%q, want %q", sb.ID, p.Name, k, sb.Labels[k], want)}
		}
	}
	return g.driveStarted(ctx, op, sb)
}

// createSandbox sends one create. Daytona deactivates snapshots unused for two weeks and
// then refuses creates from them (400 "Snapshot X is inactive"); threadbox's snapshots are
// its own, so the snapshot is activated, waited for and the create sent once more, and
// callers never see the deactivation. Only one retry: a snapshot deactivated again at once
// is a real failure.
func (g *Gateway) createSandbox(ctx context.Context, p CreateSandboxParams) (Sandbox, error) {
	const op = "create sandbox"
	s, resp, err := g.api.SandboxAPI.CreateSandbox(g.actx(ctx)).CreateSandbox(g.createBody(p)).Execute()
	if err == nil {
		return fromAPISandbox(s), nil
	}
	err = mapErr(op, classPlain, resp, err)
	if p.Snapshot == "" || !snapshotInactive(err) {
		return Sandbox{}, err
	}
	g.log.InfoContext(ctx, "daytona: snapshot inactive, activating it", "snapshot", p.Snapshot)
	if _, aerr := g.ActivateSnapshot(ctx, p.Snapshot); aerr != nil {
		return Sandbox{}, fmt.Errorf("activating inactive snapshot %s: %w", p.Snapshot, aerr)
	}
	if _, werr := g.WaitSnapshotActive(ctx, p.Snapshot, nil); werr != nil {
		return Sandbox{}, fmt.Errorf("waiting for reactivated snapshot %s: %w", p.Snapshot, werr)
	}
	s, resp, err = g.api.SandboxAPI.CreateSandbox(g.actx(ctx)).CreateSandbox(g.createBody(p)).Execute()
	if err != nil {
		return Sandbox{}, mapErr(op, classPlain, resp, err)
	}
	return fromAPISandbox(s), nil
}

// StartSandbox starts a sandbox and waits until it is started. Already started is success;
// a start racing another transition (409) waits for that transition and then starts; a
// sandbox Daytona is already bringing up (e.g. restoring it from archived, which can take
// minutes) is waited for, not started again; a recoverable error is recovered. An error
// Daytona cannot recover is ErrInvalidState with the sandbox (State error, !Recoverable).
func (g *Gateway) StartSandbox(ctx context.Context, id string) (Sandbox, error) {
	const op = "start sandbox"
	s, resp, err := g.api.SandboxAPI.StartSandbox(g.actx(ctx), id).Execute()
	if err != nil {
		err = mapErr(op, classLifecycle, resp, err)
		if !errors.Is(err, ErrConflict) && !errors.Is(err, ErrInvalidState) {
			return Sandbox{}, err
		}
		sb, gerr := g.GetSandbox(ctx, id)
		if gerr != nil {
			return Sandbox{}, err
		}
		if errors.Is(err, ErrInvalidState) && sb.State != StateStarted && !transitional(sb.State) && !sb.Recoverable {
			return sb, err
		}
		return g.driveStarted(ctx, op, sb)
	}
	return g.driveStarted(ctx, op, fromAPISandbox(s))
}

// RecoverSandbox repairs a sandbox in a recoverable error state (Sandbox.Recoverable:
// Daytona fixes e.g. a full disk in place, keeping the sandbox's files) and waits until it
// is started. StartSandbox and FindOrCreateSandbox recover by themselves and StopSandbox
// recovers into stopped; call this to recover without either. A sandbox that is not in a
// recoverable error is ErrInvalidState (an unrecoverable one can only be deleted).
func (g *Gateway) RecoverSandbox(ctx context.Context, id string) (Sandbox, error) {
	const op = "recover sandbox"
	sb, err := g.recover(ctx, id, false)
	if errors.Is(err, ErrConflict) {
		// Another recover is in progress: follow it.
		if sb, err = g.GetSandbox(ctx, id); err != nil {
			return Sandbox{}, err
		}
	} else if err != nil {
		return sb, err
	}
	return g.driveStarted(ctx, op, sb)
}

// recover sends one recover; skipStart leaves the sandbox stopped instead of starting it.
func (g *Gateway) recover(ctx context.Context, id string, skipStart bool) (Sandbox, error) {
	s, resp, err := g.api.SandboxAPI.RecoverSandbox(g.actx(ctx), id).SkipStart(skipStart).Execute()
	if err != nil {
		return Sandbox{}, mapErr("recover sandbox", classLifecycle, resp, err)
	}
	g.log.InfoContext(ctx, "daytona: recovered sandbox", "id", id, "skipStart", skipStart)
	return fromAPISandbox(s), nil
}

// transitional reports states that change on their own (wait, don't act).
func transitional(s SandboxState) bool {
	switch s {
	case StateCreating, StateRestoring, StateStarting, StateStopping, StatePendingBuild,
		StateBuildingSnapshot, StatePullingSnapshot, StateArchiving, StateResizing,
		StateSnapshotting, StateForking, StatePausing, StateResuming, StateUnknown:
		return true
	}
	return false
}

// maxLifecyclePosts bounds how many start/stop/delete requests one wait may send, so two
// callers fighting over a sandbox cannot loop forever.
const maxLifecyclePosts = 5

// driveStarted polls until sb is started: it sends start when the sandbox is at rest in a
// stopped state (or archiving, which a start interrupts), recover when it is in a
// recoverable error, and only waits while Daytona is bringing it up (desiredState started:
// from archived that means waiting for a runner and the backup, minutes on Daytona). It
// fails on an unrecoverable error and on deletion.
func (g *Gateway) driveStarted(ctx context.Context, op string, sb Sandbox) (Sandbox, error) {
	posts := 0
	first := true
	err := g.poll(ctx, op, "state started", func(ctx context.Context) error {
		if !first {
			cur, err := g.GetSandbox(ctx, sb.ID)
			if err != nil {
				return err
			}
			sb = cur
		}
		first = false
		switch {
		case sb.State == StateStarted:
			return errStop
		case sb.State.Failed() && !sb.Recoverable:
			return failedErr(op, sb)
		case sb.State == StateDestroying || sb.State == StateDestroyed || sb.DesiredState == StateDestroyed:
			return &Error{Kind: ErrNotFound, Op: op, Message: fmt.Sprintf("sandbox %s is being deleted", sb.ID)}
		case sb.DesiredState == StateStarted && !sb.State.Failed():
			return nil // on its way up
		case sb.State.Failed(), sb.State == StateStopped, sb.State == StateArchived, sb.State == StateArchiving,
			sb.State == StatePaused:
			if posts >= maxLifecyclePosts {
				return fatalErr{&Error{Kind: ErrConflict, Op: op, Message: fmt.Sprintf("sandbox %s did not start after %d start requests (state %s)", sb.ID, posts, sb.State)}}
			}
			posts++
			next, err := g.startOnce(ctx, sb)
			if err != nil {
				return err
			}
			if sb = next; sb.State == StateStarted {
				return errStop
			}
		}
		return nil
	})
	return sb, err
}

// startOnce sends start, or recover for a sandbox in a (recoverable) error.
func (g *Gateway) startOnce(ctx context.Context, sb Sandbox) (Sandbox, error) {
	if sb.State.Failed() {
		return g.recover(ctx, sb.ID, false)
	}
	s, resp, err := g.api.SandboxAPI.StartSandbox(g.actx(ctx), sb.ID).Execute()
	if err != nil {
		return Sandbox{}, mapErr("start sandbox", classLifecycle, resp, err)
	}
	return fromAPISandbox(s), nil
}

// StopSandbox stops a sandbox and waits until it is stopped. Already stopped (or archived)
// is success, and so is a sandbox deleted by the stop itself (an ephemeral sandbox,
// autoDeleteInterval 0: then it waits until the sandbox is gone). A sandbox that does not
// exist is ErrNotFound, so the caller learns it was auto-deleted. A stop racing a start
// waits for started and stops again. A sandbox in a recoverable error is recovered into
// stopped (Daytona refuses to stop an errored sandbox, and recovery keeps its files); one in
// an error Daytona cannot recover is ErrInvalidState: it can only be deleted.
func (g *Gateway) StopSandbox(ctx context.Context, id string) error {
	const op = "stop sandbox"
	var sb Sandbox
	s, resp, err := g.api.SandboxAPI.StopSandbox(g.actx(ctx), id).Execute()
	if err != nil {
		err = mapErr(op, classLifecycle, resp, err)
		if !errors.Is(err, ErrConflict) && !errors.Is(err, ErrInvalidState) {
			return err
		}
		cur, gerr := g.GetSandbox(ctx, id)
		if errors.Is(gerr, ErrNotFound) {
			return nil
		}
		if gerr != nil {
			return err
		}
		if cur.State.Failed() && !cur.Recoverable {
			return failedErr(op, cur)
		}
		if errors.Is(err, ErrInvalidState) && !transitional(cur.State) && !stoppedLike(cur) && !cur.Recoverable {
			return err
		}
		sb = cur
	} else {
		sb = fromAPISandbox(s)
	}
	posts := 0
	first := true
	return g.poll(ctx, op, "state stopped", func(ctx context.Context) error {
		if !first {
			cur, err := g.GetSandbox(ctx, sb.ID)
			if errors.Is(err, ErrNotFound) {
				return errStop
			}
			if err != nil {
				return err
			}
			sb = cur
		}
		first = false
		switch {
		case stoppedLike(sb), sb.State == StateDestroyed:
			return errStop
		case sb.State == StateDestroying:
			return nil // ephemeral: stop deletes it; wait until it is gone
		case sb.State.Failed() && sb.Recoverable && posts < maxLifecyclePosts:
			posts++
			cur, err := g.recover(ctx, sb.ID, true)
			if err != nil {
				return err
			}
			sb = cur
		case sb.State.Failed():
			return failedErr(op, sb)
		case sb.State == StateStarted:
			if posts >= maxLifecyclePosts {
				return fatalErr{&Error{Kind: ErrConflict, Op: op, Message: fmt.Sprintf("sandbox %s did not stop after %d stop requests", sb.ID, posts)}}
			}
			posts++
			s, resp, err := g.api.SandboxAPI.StopSandbox(g.actx(ctx), sb.ID).Execute()
			if err != nil {
				return mapErr(op, classLifecycle, resp, err)
			}
			sb = fromAPISandbox(s)
		}
		return nil
	})
}

// stoppedLike reports a sandbox at rest stopped or archived; an archived one that Daytona
// is about to restore (desired state started) is not.
func stoppedLike(sb Sandbox) bool {
	return (sb.State == StateStopped || sb.State == StateArchived) && sb.DesiredState != StateStarted
}

// DeleteSandbox deletes a sandbox and waits until Daytona no longer returns it (GET 404 or
// state destroyed). A missing sandbox is success, so the call is idempotent. A delete
// refused because of a transition in progress (409) waits for the transition to settle and
// deletes again. Unlike the SDK it waits, because callers (cleanup, quota) need to know the
// sandbox is really gone.
func (g *Gateway) DeleteSandbox(ctx context.Context, id string) error {
	const op = "delete sandbox"
	posts := 0
	needDelete := true
	var lastErr error
	return g.poll(ctx, op, "sandbox gone", func(ctx context.Context) error {
		if needDelete {
			if posts >= maxLifecyclePosts {
				return fatalErr{lastErr}
			}
			posts++
			_, resp, err := g.api.SandboxAPI.DeleteSandbox(g.actx(ctx), id).Execute()
			err = mapErr(op, classLifecycle, resp, err)
			switch {
			case err == nil:
				needDelete = false
			case errors.Is(err, ErrNotFound):
				return errStop
			case Retryable(err):
				// 409: mid-transition (observe, delete again once settled); 5xx/429: again.
				lastErr = err
			default:
				return err
			}
		}
		sb, err := g.GetSandbox(ctx, id)
		if errors.Is(err, ErrNotFound) {
			return errStop
		}
		if err != nil {
			return err
		}
		switch {
		case sb.State == StateDestroyed:
			return errStop
		case sb.State == StateDestroying, sb.DesiredState == StateDestroyed:
			// An archived sandbox being deleted still shows archived.
			needDelete = false
		default:
			// Settled in a deletable state (our delete was refused or lost): delete again.
			needDelete = !transitional(sb.State)
		}
		return nil
	})
}

// ListSandboxes lists every sandbox whose labels contain all of labels (exact key/value
// containment, Daytona's semantics), following nextCursor through all pages, in the given
// order (at most one; default ByLastActivity, Daytona's). A caller that acts on every
// sandbox of a long list, like the reconciler, wants OldestFirst. The list is eventually
// consistent on real Daytona; look single sandboxes up by name instead. Destroying
// sandboxes are included (Daytona lists them until destroyed).
func (g *Gateway) ListSandboxes(ctx context.Context, labels map[string]string, order ...ListOrder) ([]Sandbox, error) {
	const op = "list sandboxes"
	var lbl string
	if len(labels) > 0 {
		b, err := json.Marshal(labels)
		if err != nil {
			return nil, &Error{Kind: ErrBadRequest, Op: op, Err: err}
		}
		lbl = string(b)
	}
	var out []Sandbox
	cursor := ""
	seen := map[string]bool{}
	for {
		req := g.api.SandboxAPI.ListSandboxes(g.actx(ctx)).Limit(float32(g.cfg.ListPageSize))
		if len(order) > 0 && order[0] == OldestFirst {
			req = req.Sort(apiclient.SANDBOXLISTSORTFIELD_CREATED_AT).Order(apiclient.SANDBOXLISTSORTDIRECTION_ASC)
		}
		if lbl != "" {
			req = req.Labels(lbl)
		}
		if cursor != "" {
			req = req.Cursor(cursor)
		}
		page, resp, err := req.Execute()
		if err != nil {
			return nil, mapErr(op, classPlain, resp, err)
		}
		for i := range page.Items {
			out = append(out, fromListItem(&page.Items[i]))
		}
		next := page.NextCursor.Get()
		if next == nil || *next == "" {
			return out, nil
		}
		if seen[*next] {
			return nil, &Error{Kind: ErrUnavailable, Op: op, Message: "server repeated a pagination cursor"}
		}
		seen[*next] = true
		cursor = *next
	}
}

// RefreshActivity resets Daytona's auto-stop clock (lastActivityAt = now). Running
// processes do not count as activity on Daytona, so the workflow calls this while a lease
// or a long command is live.
func (g *Gateway) RefreshActivity(ctx context.Context, id string) error {
	resp, err := g.api.SandboxAPI.UpdateLastActivity(g.actx(ctx), id).Execute()
	return mapErr("refresh activity", classPlain, resp, err)
}

// SetAutoStop changes a sandbox's auto-stop backstop (minutes; 0 disables it).
func (g *Gateway) SetAutoStop(ctx context.Context, id string, minutes int) error {
	_, resp, err := g.api.SandboxAPI.SetAutostopInterval(g.actx(ctx), id, float32(minutes)).Execute()
	return mapErr("set auto-stop", classPlain, resp, err)
}

// SetAutoArchive changes after how many minutes stopped a sandbox is archived (0 means
// Daytona's maximum, 30 days).
func (g *Gateway) SetAutoArchive(ctx context.Context, id string, minutes int) error {
	_, resp, err := g.api.SandboxAPI.SetAutoArchiveInterval(g.actx(ctx), id, float32(minutes)).Execute()
	return mapErr("set auto-archive", classPlain, resp, err)
}

// SetAutoDelete changes a sandbox's auto-delete backstop (minutes after stop; negative
// disables it; 0 makes it ephemeral, i.e. deleted on stop).
func (g *Gateway) SetAutoDelete(ctx context.Context, id string, minutes int) error {
	_, resp, err := g.api.SandboxAPI.SetAutoDeleteInterval(g.actx(ctx), id, float32(minutes)).Execute()
	return mapErr("set auto-delete", classPlain, resp, err)
}
