package daytona

import (
	"context"
	"errors"
	"fmt"

	apiclient "github.com/daytonaio/daytona/libs/api-client-go"
)

func fromSnapshotDto(s *apiclient.SnapshotDto) Snapshot {
	return Snapshot{
		ID:          s.Id,
		Name:        s.Name,
		State:       string(s.State),
		ImageName:   deref(s.ImageName),
		ErrorReason: deref(s.ErrorReason.Get()),
		CreatedAt:   s.CreatedAt,
	}
}

// CreateSnapshot registers a snapshot built from p.ImageName (explicit tag, not :latest) or
// from p.Dockerfile content (sent as buildInfo). It returns at once with the pending
// snapshot; use WaitSnapshotActive (with a heartbeat callback) for the build. A duplicate
// name is ErrConflict; snapshots are immutable, so callers version names.
func (g *Gateway) CreateSnapshot(ctx context.Context, p CreateSnapshotParams) (Snapshot, error) {
	const op = "create snapshot"
	if (p.ImageName == "") == (p.Dockerfile == "") {
		return Snapshot{}, &Error{Kind: ErrBadRequest, Op: op, Message: "exactly one of ImageName or Dockerfile is required"}
	}
	body := apiclient.CreateSnapshot{Name: p.Name}
	if p.ImageName != "" {
		body.ImageName = ptr(p.ImageName)
		if len(p.Entrypoint) > 0 {
			body.Entrypoint = p.Entrypoint
		}
	} else {
		body.BuildInfo = &apiclient.CreateBuildInfo{DockerfileContent: p.Dockerfile, ContextHashes: []string{}}
	}
	if p.CPU > 0 {
		body.Cpu = ptr(int32(p.CPU))
	}
	if p.Memory > 0 {
		body.Memory = ptr(int32(p.Memory))
	}
	if p.Disk > 0 {
		body.Disk = ptr(int32(p.Disk))
	}
	s, resp, err := g.api.SnapshotsAPI.CreateSnapshot(g.actx(ctx)).CreateSnapshot(body).Execute()
	if err != nil {
		return Snapshot{}, mapErr(op, classPlain, resp, err)
	}
	return fromSnapshotDto(s), nil
}

// GetSnapshot fetches a snapshot by id or name.
func (g *Gateway) GetSnapshot(ctx context.Context, idOrName string) (Snapshot, error) {
	s, resp, err := g.api.SnapshotsAPI.GetSnapshot(g.actx(ctx), idOrName).Execute()
	if err != nil {
		return Snapshot{}, mapErr("get snapshot", classPlain, resp, err)
	}
	return fromSnapshotDto(s), nil
}

// WaitSnapshotActive polls a snapshot until it is active. progress (optional) is called
// with every observation so a Temporal activity can heartbeat during long builds. error and
// build_failed end the wait with ErrInvalidState (errorReason in the message), and so do
// inactive and removing, which never become active on their own.
func (g *Gateway) WaitSnapshotActive(ctx context.Context, idOrName string, progress func(Snapshot)) (Snapshot, error) {
	const op = "wait snapshot active"
	var snap Snapshot
	err := g.poll(ctx, op, "snapshot active", func(ctx context.Context) error {
		cur, err := g.GetSnapshot(ctx, idOrName)
		if err != nil {
			return err
		}
		snap = cur
		if progress != nil {
			progress(snap)
		}
		switch snap.State {
		case SnapshotActive:
			return errStop
		case SnapshotError, SnapshotBuildFailed, SnapshotInactive, SnapshotRemoving:
			msg := fmt.Sprintf("snapshot %s is %s", snap.Name, snap.State)
			if snap.ErrorReason != "" {
				msg += ": " + snap.ErrorReason
			}
			return &Error{Kind: ErrInvalidState, Op: op, Message: msg}
		}
		return nil
	})
	return snap, err
}

// snapshotID resolves a name to an id: activate, deactivate and delete accept only UUIDs.
func (g *Gateway) snapshotID(ctx context.Context, idOrName string) (string, error) {
	if isUUID(idOrName) {
		return idOrName, nil
	}
	s, err := g.GetSnapshot(ctx, idOrName)
	if err != nil {
		return "", err
	}
	return s.ID, nil
}

// ActivateSnapshot re-activates an inactive snapshot (Daytona deactivates snapshots unused
// for two weeks). Already active is success. It returns at once (state usually pending,
// while Daytona re-pulls); call WaitSnapshotActive to wait. A name is resolved to its id.
func (g *Gateway) ActivateSnapshot(ctx context.Context, id string) (Snapshot, error) {
	const op = "activate snapshot"
	sid, err := g.snapshotID(ctx, id)
	if err != nil {
		return Snapshot{}, err
	}
	s, resp, err := g.api.SnapshotsAPI.ActivateSnapshot(g.actx(ctx), sid).Execute()
	if err != nil {
		err = mapErr(op, classLifecycle, resp, err)
		if errors.Is(err, ErrInvalidState) {
			if cur, gerr := g.GetSnapshot(ctx, sid); gerr == nil && (cur.State == SnapshotActive || cur.State == SnapshotPending || cur.State == SnapshotPulling) {
				return cur, nil
			}
		}
		return Snapshot{}, err
	}
	return fromSnapshotDto(s), nil
}

// DeactivateSnapshot makes a snapshot inactive (idempotent on Daytona). New sandboxes can
// no longer use it until it is activated again.
func (g *Gateway) DeactivateSnapshot(ctx context.Context, id string) error {
	sid, err := g.snapshotID(ctx, id)
	if err != nil {
		return err
	}
	resp, err := g.api.SnapshotsAPI.DeactivateSnapshot(g.actx(ctx), sid).Execute()
	return mapErr("deactivate snapshot", classLifecycle, resp, err)
}

// RemoveSnapshot deletes a snapshot; missing is success. Daytona keeps it visible in state
// removing until cleanup; this call does not wait for that.
func (g *Gateway) RemoveSnapshot(ctx context.Context, id string) error {
	sid, err := g.snapshotID(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	resp, err := g.api.SnapshotsAPI.RemoveSnapshot(g.actx(ctx), sid).Execute()
	err = mapErr("remove snapshot", classLifecycle, resp, err)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// SnapshotSandbox captures a started or stopped sandbox as snapshot snapshotName. Daytona
// reports completion only through the sandbox state (snapshotting, then back to the
// previous state on success AND failure) and drops duplicate names silently, so this waits
// while the sandbox is snapshotting and then requires GET /snapshots/{name} to be active.
// When the snapshot already exists and is active (a retried activity) it returns it at once.
func (g *Gateway) SnapshotSandbox(ctx context.Context, sandboxID, snapshotName string) (Snapshot, error) {
	const op = "snapshot sandbox"
	if cur, err := g.GetSnapshot(ctx, snapshotName); err == nil && cur.State == SnapshotActive {
		return cur, nil
	} else if err != nil && !errors.Is(err, ErrNotFound) {
		return Snapshot{}, err
	}
	s, resp, err := g.api.SandboxAPI.CreateSandboxSnapshot(g.actx(ctx), sandboxID).
		CreateSandboxSnapshot(apiclient.CreateSandboxSnapshot{Name: snapshotName}).Execute()
	if err != nil {
		return Snapshot{}, mapErr(op, classLifecycle, resp, err)
	}
	sb := fromAPISandbox(s)
	first := true
	err = g.poll(ctx, op, "snapshot finished", func(ctx context.Context) error {
		if !first {
			cur, err := g.GetSandbox(ctx, sandboxID)
			if err != nil {
				return err
			}
			sb = cur
		}
		first = false
		switch {
		case sb.State == StateSnapshotting:
			return nil
		case sb.State.Failed():
			return failedErr(op, sb)
		}
		return errStop
	})
	if err != nil {
		return Snapshot{}, err
	}
	snap, err := g.GetSnapshot(ctx, snapshotName)
	if errors.Is(err, ErrNotFound) {
		return Snapshot{}, &Error{Kind: ErrInvalidState, Op: op, Message: fmt.Sprintf("sandbox %s finished snapshotting but snapshot %q does not exist (failed or duplicate name)", sandboxID, snapshotName)}
	}
	if err != nil {
		return Snapshot{}, err
	}
	if snap.State != SnapshotActive {
		return snap, &Error{Kind: ErrInvalidState, Op: op, Message: fmt.Sprintf("snapshot %q is %s, not active", snapshotName, snap.State)}
	}
	return snap, nil
}
