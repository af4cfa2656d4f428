package daytona

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	apiclient "github.com/daytonaio/daytona/libs/api-client-go"
)

// fromAPISandbox converts the generated model; ToolboxURL is built like the SDK's
// createToolboxClient: strings.TrimRight(toolboxProxyUrl, "/") + "/" + id.
func fromAPISandbox(s *apiclient.Sandbox) Sandbox {
	if s == nil {
		return Sandbox{}
	}
	return sandboxOf(s.Id, s.Name, s.State, s.Snapshot, s.Labels, s.ErrorReason, s.CreatedAt,
		s.LastActivityAt, s.ToolboxProxyUrl, s.AutoStopInterval, s.AutoDeleteInterval)
}

func fromListItem(s *apiclient.SandboxListItem) Sandbox {
	return sandboxOf(s.Id, s.Name, s.State, s.Snapshot, s.Labels, s.ErrorReason, s.CreatedAt,
		s.LastActivityAt, s.ToolboxProxyUrl, s.AutoStopInterval, s.AutoDeleteInterval)
}

// sandboxOf builds a Sandbox from the fields the API's Sandbox and SandboxListItem share.
func sandboxOf(id, name string, state *apiclient.SandboxState, snapshot *string, labels map[string]string,
	errorReason, createdAt, lastActivityAt *string, proxyURL string, autoStop, autoDelete *float32) Sandbox {
	out := Sandbox{
		ID:             id,
		Name:           name,
		State:          SandboxState(deref(state)),
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
// until it is started (starting it if it is stopped or archived). The name is the
// idempotency key: a retried activity whose first create succeeded on the server but whose
// response was lost finds the existing sandbox instead of making a second one, and a 409
// "already exists" from a concurrent create is resolved by re-reading by name. A sandbox in
// error or build_failed is reported as ErrInvalidState together with the sandbox (so the
// caller can delete it and move on to the next generation).
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
		s, resp, cerr := g.api.SandboxAPI.CreateSandbox(g.actx(ctx)).CreateSandbox(g.createBody(p)).Execute()
		if cerr != nil {
			cerr = mapErr("create sandbox", classPlain, resp, cerr)
			if !errors.Is(cerr, ErrConflict) {
				return Sandbox{}, cerr
			}
			// Someone (maybe our own earlier attempt) created it meanwhile.
			sb, err = g.GetSandbox(ctx, p.Name)
			if err != nil {
				return Sandbox{}, fmt.Errorf("%w (after create conflict: %v)", err, cerr)
			}
		} else {
			sb = fromAPISandbox(s)
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

// StartSandbox starts a sandbox and waits until it is started. Already started is success;
// a start racing another transition (409) waits for that transition and then starts.
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
		if errors.Is(err, ErrInvalidState) && sb.State != StateStarted && !transitional(sb.State) {
			return sb, err
		}
		return g.driveStarted(ctx, op, sb)
	}
	return g.driveStarted(ctx, op, fromAPISandbox(s))
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

// driveStarted polls until sb is started, sending start when it is at rest in a stopped
// state. It fails on error/build_failed and on deletion.
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
		case sb.State.Failed():
			return failedErr(op, sb)
		case sb.State == StateDestroying || sb.State == StateDestroyed:
			return &Error{Kind: ErrNotFound, Op: op, Message: fmt.Sprintf("sandbox %s is being deleted", sb.ID)}
		case sb.State == StateStopped || sb.State == StateArchived || sb.State == StatePaused:
			if posts >= maxLifecyclePosts {
				return fatalErr{&Error{Kind: ErrConflict, Op: op, Message: fmt.Sprintf("sandbox %s did not start after %d start requests (state %s)", sb.ID, posts, sb.State)}}
			}
			posts++
			s, resp, err := g.api.SandboxAPI.StartSandbox(g.actx(ctx), sb.ID).Execute()
			if err != nil {
				return mapErr("start sandbox", classLifecycle, resp, err)
			}
			sb = fromAPISandbox(s)
			if sb.State == StateStarted {
				return errStop
			}
		}
		return nil
	})
	if err != nil {
		return sb, err
	}
	return sb, nil
}

// StopSandbox stops a sandbox and waits until it is stopped. Already stopped (or archived)
// is success, and so is a sandbox deleted by the stop itself (an ephemeral sandbox,
// autoDeleteInterval 0: then it waits until the sandbox is gone). A sandbox that does not
// exist is ErrNotFound, so the caller learns it was auto-deleted. A stop racing a start waits for started and
// stops again.
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
		if errors.Is(err, ErrInvalidState) && !transitional(cur.State) && !stoppedLike(cur.State) {
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
		case stoppedLike(sb.State), sb.State == StateDestroyed:
			return errStop
		case sb.State == StateDestroying:
			return nil // ephemeral: stop deletes it; wait until it is gone
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

func stoppedLike(s SandboxState) bool { return s == StateStopped || s == StateArchived }

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
		case sb.State == StateDestroying:
			needDelete = false
		default:
			// Settled in a deletable state (our delete was refused or lost): delete again.
			needDelete = !transitional(sb.State)
		}
		return nil
	})
}

// ListSandboxes lists every sandbox whose labels contain all of labels (exact key/value
// containment, Daytona's semantics), following nextCursor through all pages. The list is
// eventually consistent on real Daytona; look single sandboxes up by name instead.
// Destroying sandboxes are included (Daytona lists them until destroyed).
func (g *Gateway) ListSandboxes(ctx context.Context, labels map[string]string) ([]Sandbox, error) {
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

// SetAutoDelete changes a sandbox's auto-delete backstop (minutes after stop; negative
// disables it; 0 makes it ephemeral, i.e. deleted on stop).
func (g *Gateway) SetAutoDelete(ctx context.Context, id string, minutes int) error {
	_, resp, err := g.api.SandboxAPI.SetAutoDeleteInterval(g.actx(ctx), id, float32(minutes)).Execute()
	return mapErr("set auto-delete", classPlain, resp, err)
}
