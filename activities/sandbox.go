package activities

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/threadbox/threadbox/config"
	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/entity"
)

// EnsureSandbox finds or creates the entity's sandbox of the given generation
// and waits until it runs: it gets or creates the user's volume, picks the
// snapshot (the active skills snapshot for agent sandboxes, else
// DAYTONA_BASE_SNAPSHOT), and creates the sandbox under its deterministic name
// with threadbox's labels, the volume mounted at /home/daytona/volume and
// Daytona's own auto-stop/auto-delete set a little longer than the
// workflow's, as a backstop. Because the name is the idempotency key, a retry
// after a lost response or a worker crash finds the sandbox instead of making
// a second one. A sandbox that ended in error is deleted and the attempt fails
// retryably, so the next attempt recreates it under the same name.
func (a *Activities) EnsureSandbox(ctx context.Context, in EnsureSandboxInput) (SandboxInfo, error) {
	if in.UserID == "" || (in.Kind == entity.KindThread && in.ThreadID == "") {
		return SandboxInfo{}, temporalError("ensure sandbox", &daytona.Error{Kind: daytona.ErrBadRequest, Message: "user and thread ids are required"})
	}
	sandboxType := in.Kind.SandboxType()
	var info SandboxInfo
	err := heartbeating(ctx, func(ctx context.Context) error {
		// The volume (a Daytona call and a row), the snapshot and the
		// generation (a query each) are independent: asked at once, they
		// cost the create one round trip instead of four.
		var mount daytona.VolumeMount
		var snapshot string
		var gen int
		g, gctx := errgroup.WithContext(ctx)
		g.Go(func() (err error) { mount, err = a.ensureVolume(gctx, in.UserID); return err })
		g.Go(func() (err error) { snapshot, err = a.snapshotFor(gctx, sandboxType); return err })
		g.Go(func() (err error) { gen, err = a.generationFor(gctx, sandboxType, in); return err })
		if err := g.Wait(); err != nil {
			return err
		}
		name := daytona.SandboxName(sandboxType, entityKey(in.Kind, in.UserID, in.ThreadID), gen)
		params := daytona.CreateSandboxParams{
			Name:              name,
			Snapshot:          snapshot,
			Labels:            daytona.Labels(sandboxType, in.UserID, in.ThreadID),
			Volumes:           []daytona.VolumeMount{mount},
			AutoStopMinutes:   backstopMinutes(in.AutoStop),
			AutoDeleteMinutes: backstopMinutes(in.AutoDelete),
		}
		if in.AutoDelete <= 0 {
			params.AutoDeleteMinutes = -1 // files sandboxes are only ever stopped
		}
		if in.Kind == entity.KindFiles {
			// Stopped, they are archived on our schedule, not Daytona's
			// default (config: DAYTONA_FILES_SANDBOX_AUTO_ARCHIVE).
			params.AutoArchiveMinutes = int((a.Config.FilesAutoArchive.Duration() + time.Minute - 1) / time.Minute)
		}
		sb, err := a.Daytona.FindOrCreateSandbox(ctx, params)
		if err != nil {
			if sb.ID != "" && sb.State.Failed() {
				// Clear the broken sandbox so the retry creates a healthy one under
				// the same name.
				if derr := a.Daytona.DeleteSandbox(ctx, sb.ID); derr != nil {
					a.Logger.WarnContext(ctx, "deleting failed sandbox", "sandbox", sb.ID, "err", derr)
				}
				_, _ = a.Queries.SetSandboxState(ctx, db.SetSandboxStateParams{SandboxID: sb.ID, State: "deleted"})
				return fmt.Errorf("sandbox %s failed (%s); deleted it for a clean retry", sb.ID, sb.ErrorReason)
			}
			return err
		}
		if err := a.Queries.UpsertSandbox(ctx, db.UpsertSandboxParams{
			SandboxID:   sb.ID,
			Name:        name,
			SandboxType: sandboxType,
			UserID:      &in.UserID,
			ThreadID:    optional(in.ThreadID),
			Generation:  int32(gen),
			Snapshot:    optional(sb.Snapshot),
			State:       "running",
		}); err != nil {
			return fmt.Errorf("recording sandbox %s: %w", sb.ID, err)
		}
		info = SandboxInfo{SandboxID: sb.ID, Name: name, ToolboxURL: sb.ToolboxURL, Snapshot: sb.Snapshot, Generation: gen}
		return nil
	})
	if err != nil {
		return SandboxInfo{}, temporalError("ensure sandbox", err)
	}
	return info, nil
}

// StartSandbox starts a stopped sandbox and waits until it runs. When Daytona
// no longer has it, or it broke (error state), the activity fails with
// entity.ErrTypeSandboxGone so the workflow creates the next generation.
func (a *Activities) StartSandbox(ctx context.Context, ref SandboxRef) (SandboxInfo, error) {
	var sb daytona.Sandbox
	err := heartbeating(ctx, func(ctx context.Context) error {
		var err error
		sb, err = a.Daytona.StartSandbox(ctx, ref.SandboxID)
		return err
	})
	switch {
	case errors.Is(err, daytona.ErrNotFound):
		_, _ = a.Queries.SetSandboxState(ctx, db.SetSandboxStateParams{SandboxID: ref.SandboxID, State: "deleted"})
		return SandboxInfo{}, goneError(ref.SandboxID, err)
	case errors.Is(err, daytona.ErrInvalidState):
		if gone, derr := a.deleteIfBroken(ctx, ref.SandboxID); derr != nil {
			return SandboxInfo{}, derr
		} else if gone {
			return SandboxInfo{}, goneError(ref.SandboxID, err)
		}
		return SandboxInfo{}, temporalError("start sandbox", err)
	case err != nil:
		return SandboxInfo{}, temporalError("start sandbox", err)
	}
	if _, err := a.Queries.SetSandboxState(ctx, db.SetSandboxStateParams{SandboxID: sb.ID, State: "running"}); err != nil {
		return SandboxInfo{}, fmt.Errorf("recording sandbox %s: %w", sb.ID, err)
	}
	return SandboxInfo{SandboxID: sb.ID, Name: sb.Name, ToolboxURL: sb.ToolboxURL, Snapshot: sb.Snapshot, Generation: ref.Generation}, nil
}

// StopSandbox stops the sandbox and waits until it is stopped; stopping a
// stopped sandbox is success, and a sandbox in a recoverable error is
// recovered into stopped (by the gateway). A sandbox Daytona no longer has,
// or one broken beyond recovery (deleted here: Daytona refuses to stop it,
// and it could never run again), is reported as Gone rather than as an
// error, so the workflow ends the generation instead of retrying forever.
func (a *Activities) StopSandbox(ctx context.Context, ref SandboxRef) (StopResult, error) {
	err := heartbeating(ctx, func(ctx context.Context) error { return a.Daytona.StopSandbox(ctx, ref.SandboxID) })
	state, res := "stopped", StopResult{}
	switch {
	case errors.Is(err, daytona.ErrNotFound):
		state, res = "deleted", StopResult{Gone: true}
	case errors.Is(err, daytona.ErrInvalidState):
		gone, derr := a.deleteIfBroken(ctx, ref.SandboxID)
		if derr != nil {
			return StopResult{}, derr
		}
		if !gone {
			return StopResult{}, temporalError("stop sandbox", err)
		}
		return StopResult{Gone: true}, nil
	case err != nil:
		return StopResult{}, temporalError("stop sandbox", err)
	}
	if _, err := a.Queries.SetSandboxState(ctx, db.SetSandboxStateParams{SandboxID: ref.SandboxID, State: state}); err != nil {
		return StopResult{}, fmt.Errorf("recording sandbox %s: %w", ref.SandboxID, err)
	}
	return res, nil
}

// deleteIfBroken deletes the sandbox when it is in an error Daytona cannot
// recover (the gateway already recovered a recoverable one) and records it
// deleted: such a sandbox can never run again, and only a delete removes it.
// gone reports whether it was deleted.
func (a *Activities) deleteIfBroken(ctx context.Context, id string) (gone bool, err error) {
	sb, err := a.Daytona.GetSandbox(ctx, id)
	switch {
	case errors.Is(err, daytona.ErrNotFound):
		gone = true
	case err != nil:
		return false, temporalError("look at sandbox", err)
	case !sb.State.Failed() || sb.Recoverable:
		return false, nil
	default:
		a.Logger.WarnContext(ctx, "deleting a sandbox Daytona cannot recover", "sandbox", id, "state", sb.State, "reason", sb.ErrorReason)
		if err := heartbeating(ctx, func(ctx context.Context) error { return a.Daytona.DeleteSandbox(ctx, id) }); err != nil {
			return false, temporalError("delete broken sandbox", err)
		}
	}
	if _, err := a.Queries.SetSandboxState(ctx, db.SetSandboxStateParams{SandboxID: id, State: "deleted"}); err != nil {
		return false, fmt.Errorf("recording sandbox %s: %w", id, err)
	}
	return true, nil
}

// DeleteSandbox destroys the sandbox and waits until Daytona no longer has
// it; a missing sandbox is success. Without a sandbox id it looks the
// generation's sandbox up by its deterministic name, so a create whose result
// the workflow never saw is not left behind.
func (a *Activities) DeleteSandbox(ctx context.Context, ref SandboxRef) error {
	id := ref.SandboxID
	err := heartbeating(ctx, func(ctx context.Context) error {
		if id == "" {
			if ref.Generation <= 0 {
				return nil
			}
			name := daytona.SandboxName(ref.Kind.SandboxType(), entityKey(ref.Kind, ref.UserID, ref.ThreadID), ref.Generation)
			sb, err := a.Daytona.GetSandbox(ctx, name)
			if errors.Is(err, daytona.ErrNotFound) {
				return nil
			}
			if err != nil {
				return err
			}
			id = sb.ID
		}
		return a.Daytona.DeleteSandbox(ctx, id)
	})
	if err != nil {
		return temporalError("delete sandbox", err)
	}
	if id == "" {
		return nil
	}
	if _, err := a.Queries.SetSandboxState(ctx, db.SetSandboxStateParams{SandboxID: id, State: "deleted"}); err != nil {
		return fmt.Errorf("recording sandbox %s: %w", id, err)
	}
	return nil
}

// RefreshSandbox resets Daytona's auto-stop clock while a lease is held: a
// long command is not activity to Daytona, and its backstop must not stop a
// sandbox the workflow keeps running. (Registered as NameRefreshSandbox, the
// method's first name.)
func (a *Activities) RefreshSandbox(ctx context.Context, ref SandboxRef) error {
	err := a.Daytona.RefreshActivity(ctx, ref.SandboxID)
	if errors.Is(err, daytona.ErrNotFound) {
		return goneError(ref.SandboxID, err)
	}
	return temporalError("refresh sandbox activity", err)
}

// ensureVolume gets or creates the user's volume (or the shared one) and
// records it; it returns the mount for new sandboxes.
func (a *Activities) ensureVolume(ctx context.Context, userID string) (daytona.VolumeMount, error) {
	strategy := daytona.PerUser
	if a.Config.VolumeStrategy == config.VolumeShared {
		strategy = daytona.Shared
	}
	name, subpath := daytona.VolumeFor(strategy, userID, a.Config.SharedVolumeName)
	vol, err := a.Daytona.EnsureVolume(ctx, name)
	if err != nil {
		return daytona.VolumeMount{}, err
	}
	if err := a.Queries.UpsertVolume(ctx, db.UpsertVolumeParams{
		UserID: userID, VolumeName: name, Subpath: subpath, DaytonaVolumeID: &vol.ID,
	}); err != nil {
		return daytona.VolumeMount{}, fmt.Errorf("recording volume %s: %w", name, err)
	}
	return daytona.VolumeMount{VolumeID: vol.ID, MountPath: entity.VolumeMountPath, Subpath: subpath}, nil
}

// snapshotFor picks the snapshot of a new sandbox: agent sandboxes use the
// active skills snapshot, falling back to DAYTONA_BASE_SNAPSHOT (empty means
// Daytona's default); files sandboxes need no skills and use the base.
func (a *Activities) snapshotFor(ctx context.Context, sandboxType string) (string, error) {
	if sandboxType != entity.SandboxTypeAgent {
		return a.Config.BaseSnapshot, nil
	}
	name, err := a.Queries.ActiveSnapshotName(ctx)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return a.Config.BaseSnapshot, nil
	case err != nil:
		return "", fmt.Errorf("reading the active snapshot: %w", err)
	}
	return name, nil
}

// generationFor returns the generation to create: the one asked for, unless
// its name may belong to a sandbox this entity must not adopt (one that was
// destroyed, or one of the thread's earlier life, whose workflow run ended
// with a destroy that failed): then the first generation above them all (see
// the PastGeneration query). A new workflow run asks for generation 1 again.
func (a *Activities) generationFor(ctx context.Context, sandboxType string, in EnsureSandboxInput) (int, error) {
	gen := max(in.Generation, 1)
	past, err := a.Queries.PastGeneration(ctx, db.PastGenerationParams{
		SandboxType: sandboxType, UserID: in.UserID, ThreadID: in.ThreadID,
	})
	if err != nil {
		return 0, fmt.Errorf("reading past generations: %w", err)
	}
	return max(gen, int(past)+1), nil
}

// entityKey is the id part of a sandbox name: the user for a files session,
// user and thread (each escaped, so the pair stays unambiguous) for a thread.
func entityKey(kind entity.Kind, userID, threadID string) string {
	if kind == entity.KindFiles {
		return userID
	}
	return url.PathEscape(userID) + "/" + url.PathEscape(threadID)
}

// backstopMinutes turns one of our intervals into Daytona's whole minutes, at
// least one minute longer, so Daytona only acts when the workflow could not.
func backstopMinutes(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int((d+time.Minute-1)/time.Minute) + 1
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
