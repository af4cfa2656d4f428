package activities

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/threadbox/threadbox/entity"

	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/internal/shell"
	"github.com/threadbox/threadbox/skills"
)

// scratchName is the Daytona name of a scratch sandbox: deterministic from
// the workflow's key, so a retried or resumed activity finds the sandbox an
// earlier attempt created instead of making another.
func scratchName(key string) string { return daytona.SandboxName(SandboxTypeScratch, key, 0) }

// ensureScratch finds or creates a started scratch sandbox from snapshot and
// records it in the sandboxes table.
func (a *Activities) ensureScratch(ctx context.Context, key, snapshot, actor string) (daytona.Sandbox, error) {
	name := scratchName(key)
	labels := daytona.Labels(SandboxTypeScratch, actor, "")
	labels["purpose"] = strings.SplitN(key, "-", 2)[0]
	sb, err := a.Daytona.FindOrCreateSandbox(ctx, daytona.CreateSandboxParams{
		Name:     name,
		Snapshot: snapshot,
		Labels:   labels,
		// A backstop only: the workflow always deletes it.
		AutoStopMinutes:   60,
		AutoDeleteMinutes: 120,
	})
	if err != nil {
		return daytona.Sandbox{}, temporalError("create scratch sandbox", err)
	}
	snap := snapshot
	if err := a.Queries.UpsertSandbox(ctx, db.UpsertSandboxParams{
		SandboxID: sb.ID, Name: name, SandboxType: SandboxTypeScratch, Snapshot: &snap, State: string(sb.State),
	}); err != nil {
		return daytona.Sandbox{}, fmt.Errorf("recording scratch sandbox: %w", err)
	}
	return sb, nil
}

// DeleteScratchSandbox deletes a scratch sandbox by its key and waits until it
// is gone. A sandbox that never existed is success, so the workflows call it
// unconditionally on every exit path.
func (a *Activities) DeleteScratchSandbox(ctx context.Context, in ScratchSandboxInput) error {
	name := scratchName(in.ScratchKey)
	sb, err := a.Daytona.GetSandbox(ctx, name)
	if errors.Is(err, daytona.ErrNotFound) {
		return nil
	}
	if err != nil {
		return temporalError("find scratch sandbox", err)
	}
	stop := keepAlive(ctx, "deleting "+name)
	defer stop()
	if err := a.Daytona.DeleteSandbox(ctx, sb.ID); err != nil {
		return temporalError("delete scratch sandbox", err)
	}
	if _, err := a.Queries.SetSandboxState(ctx, db.SetSandboxStateParams{SandboxID: sb.ID, State: "deleted"}); err != nil {
		return fmt.Errorf("recording scratch sandbox deletion: %w", err)
	}
	return nil
}

// skillDir is where a skill lives in a sandbox.
func skillDir(name string) string { return path.Join(entity.SkillsDir, name) }

// uploadSkill writes a skill's files under its folder in one batch upload and
// restores executable bits. Existing files are overwritten, so a retry is
// harmless.
func uploadSkill(ctx context.Context, tb *daytona.Toolbox, b *skills.Bundle) error {
	dir := skillDir(b.Manifest.Name)
	items := make([]daytona.UploadItem, 0, len(b.Files))
	var execs []string
	for _, f := range b.Files {
		p := path.Join(dir, f.Path)
		items = append(items, daytona.UploadItem{Path: p, Body: strings.NewReader(string(f.Data))})
		if f.Executable {
			execs = append(execs, shell.Quote(p))
		}
	}
	if err := tb.Mkdir(ctx, dir); err != nil && !errors.Is(err, daytona.ErrConflict) {
		return temporalError("create skill folder", err)
	}
	out, err := tb.UploadBatch(ctx, items)
	if err != nil {
		return temporalError("upload skill", err)
	}
	for _, o := range out {
		if o.Err != nil {
			return temporalError("upload "+o.Path, o.Err)
		}
	}
	if len(execs) > 0 {
		res, err := tb.Exec(ctx, daytona.ExecRequest{Command: "chmod +x " + strings.Join(execs, " "), Timeout: time.Minute})
		if err != nil {
			return temporalError("chmod skill scripts", err)
		}
		if res.ExitCode != 0 {
			return fmt.Errorf("chmod skill scripts: exit %d: %s", res.ExitCode, res.Output)
		}
	}
	return nil
}
