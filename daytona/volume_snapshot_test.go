package daytona

import (
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/threadbox/threadbox/emulator"
)

const volMount = "/home/daytona/volume"

func readAll(t testing.TB, tb *Toolbox, p string) (string, error) {
	t.Helper()
	rc, err := tb.Download(testCtx(t), p, 0, -1)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	return string(b), err
}

func TestVolumePerUser(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t)
	name, sub := VolumeFor(PerUser, "User.One", "")
	v1, err := e.g.EnsureVolume(ctx, name)
	if err != nil || v1.State != VolumeReady || v1.Name != name || v1.ID == "" {
		t.Fatalf("ensure: %+v %v", v1, err)
	}
	v2, err := e.g.EnsureVolume(ctx, name)
	if err != nil || v2.ID != v1.ID {
		t.Fatalf("ensure is get-or-create: %+v %v", v2, err)
	}
	mount := []VolumeMount{{VolumeID: v1.ID, MountPath: volMount, Subpath: sub}}
	_, a := newSandbox(t, e, SandboxName("agent", "pu-a", 1), CreateSandboxParams{Volumes: mount})
	// The second sandbox mounts by name: Daytona resolves names too.
	_, b := newSandbox(t, e, SandboxName("agent", "pu-b", 1), CreateSandboxParams{Volumes: []VolumeMount{{VolumeID: name, MountPath: volMount}}})
	if err := a.Upload(ctx, volMount+"/notes/shared.txt", strings.NewReader("from a")); err != nil {
		t.Fatal(err)
	}
	if got, err := readAll(t, b, volMount+"/notes/shared.txt"); err != nil || got != "from a" {
		t.Fatalf("sandbox b does not see a's file: %q %v", got, err)
	}
	res, err := b.Exec(ctx, ExecRequest{Command: "cat " + volMount + "/notes/shared.txt"})
	if err != nil || res.Output != "from a" {
		t.Fatalf("command in b does not see the volume: %+v %v", res, err)
	}
	// The volume outlives the sandboxes; in use it cannot be deleted.
	err = e.g.DeleteVolume(ctx, v1.ID)
	wantKind(t, err, ErrConflict, "delete volume in use")
}

func TestVolumeSharedSubpathIsolation(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t)
	volName, sub1 := VolumeFor(Shared, "u1", "tb-shared")
	_, sub2 := VolumeFor(Shared, "u2", "tb-shared")
	v, err := e.g.EnsureVolume(ctx, volName)
	if err != nil {
		t.Fatal(err)
	}
	m := func(sub string) []VolumeMount {
		return []VolumeMount{{VolumeID: v.ID, MountPath: volMount, Subpath: sub}}
	}
	_, u1a := newSandbox(t, e, SandboxName("agent", "sh-u1a", 1), CreateSandboxParams{Volumes: m(sub1)})
	_, u1b := newSandbox(t, e, SandboxName("agent", "sh-u1b", 1), CreateSandboxParams{Volumes: m(sub1)})
	_, u2 := newSandbox(t, e, SandboxName("agent", "sh-u2", 1), CreateSandboxParams{Volumes: m(sub2)})
	if err := u1a.Upload(ctx, volMount+"/secret.txt", strings.NewReader("u1 only")); err != nil {
		t.Fatal(err)
	}
	if got, err := readAll(t, u1b, volMount+"/secret.txt"); err != nil || got != "u1 only" {
		t.Fatalf("same user, other sandbox: %q %v", got, err)
	}
	_, err = readAll(t, u2, volMount+"/secret.txt")
	wantKind(t, err, ErrNotFound, "other user's file")
	entries, err := u2.List(ctx, volMount)
	if err != nil {
		t.Fatal(err)
	}
	for _, en := range entries {
		if en.Name == "secret.txt" || en.Name == "users" {
			t.Fatalf("u2 sees outside its subpath: %+v", entries)
		}
	}
	res, err := u2.Exec(ctx, ExecRequest{Command: "ls -a " + volMount + "; cat " + volMount + "/../volume/secret.txt"})
	if err != nil || strings.Contains(res.Output, "u1 only") {
		t.Fatalf("u2's command reached u1's data: %+v %v", res, err)
	}
}

func TestSnapshots(t *testing.T) {
	// TimeUnit shrinks Daytona's 10-minute re-activation cooldown to 200ms; sandboxes here
	// disable auto-stop so the shrunken 15-"minute" default cannot stop them mid-test.
	const unit = 20 * time.Millisecond
	e := newEnv(t, func(o *emulator.Options, _ *Config) { o.TimeUnit = unit })
	ctx := testCtx(t)
	s, err := e.g.CreateSnapshot(ctx, CreateSnapshotParams{Name: "tb-skills-v1", ImageName: "python:3.12-slim"})
	if err != nil {
		t.Fatal(err)
	}
	if s.ID == "" || s.State == SnapshotActive || s.ImageName != "python:3.12-slim" {
		t.Fatalf("create must return at once, pending: %+v", s)
	}
	var calls atomic.Int32
	act, err := e.g.WaitSnapshotActive(ctx, s.ID, func(Snapshot) { calls.Add(1) })
	if err != nil || act.State != SnapshotActive || calls.Load() == 0 {
		t.Fatalf("wait: %+v %v (progress calls %d)", act, err, calls.Load())
	}
	byName, err := e.g.GetSnapshot(ctx, "tb-skills-v1")
	if err != nil || byName.ID != s.ID || byName.CreatedAt.IsZero() {
		t.Fatalf("get by name: %+v %v", byName, err)
	}
	_, err = e.g.CreateSnapshot(ctx, CreateSnapshotParams{Name: "tb-skills-v1", ImageName: "python:3.12-slim"})
	wantKind(t, err, ErrConflict, "duplicate snapshot")
	_, err = e.g.CreateSnapshot(ctx, CreateSnapshotParams{Name: "x"})
	wantKind(t, err, ErrBadRequest, "no image")

	df, err := e.g.CreateSnapshot(ctx, CreateSnapshotParams{Name: "tb-skills-df", Dockerfile: "FROM python:3.12-slim\nRUN true\n"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.g.WaitSnapshotActive(ctx, df.Name, nil); err != nil {
		t.Fatalf("dockerfile snapshot: %v", err)
	}

	// A sandbox from the snapshot.
	sb, err := e.g.FindOrCreateSandbox(ctx, CreateSandboxParams{Name: "tb-agent-snap-1", Snapshot: "tb-skills-v1", AutoStopMinutes: -1})
	if err != nil || sb.Snapshot != "tb-skills-v1" {
		t.Fatalf("sandbox from snapshot: %+v %v", sb, err)
	}

	// Deactivate → inactive, unusable; activate (by name: resolved to the id) → active.
	if err := e.g.DeactivateSnapshot(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	if cur, _ := e.g.GetSnapshot(ctx, s.ID); cur.State != SnapshotInactive {
		t.Fatalf("after deactivate: %s", cur.State)
	}
	_, err = e.g.WaitSnapshotActive(ctx, s.ID, nil)
	wantKind(t, err, ErrInvalidState, "wait on inactive")
	// Daytona refuses re-activation for 10 minutes after a deactivation, asking to try
	// again in a few minutes: a conflict (retryable), also for a create that activates.
	_, err = e.g.ActivateSnapshot(ctx, "tb-skills-v1")
	wantKind(t, err, ErrConflict, "activate during cooldown")
	_, err = e.g.FindOrCreateSandbox(ctx, CreateSandboxParams{Name: "tb-agent-snap-2", Snapshot: "tb-skills-v1", AutoStopMinutes: -1})
	wantKind(t, err, ErrConflict, "sandbox from inactive snapshot during the cooldown")
	time.Sleep(10*unit + 50*time.Millisecond)
	if _, err := e.g.ActivateSnapshot(ctx, "tb-skills-v1"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.g.WaitSnapshotActive(ctx, s.ID, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := e.g.ActivateSnapshot(ctx, s.ID); err != nil || got.State != SnapshotActive {
		t.Fatalf("activate of active must succeed: %+v %v", got, err)
	}

	// Snapshot a sandbox with a file in it; a sandbox from it has the file.
	tb := e.g.Toolbox(sb.ID, sb.ToolboxURL)
	if err := tb.Upload(ctx, "/home/daytona/skills/demo/SKILL.md", strings.NewReader("# demo")); err != nil {
		t.Fatal(err)
	}
	snap, err := e.g.SnapshotSandbox(ctx, sb.ID, "tb-skills-v2")
	if err != nil || snap.State != SnapshotActive || snap.Name != "tb-skills-v2" {
		t.Fatalf("snapshot sandbox: %+v %v", snap, err)
	}
	if again, err := e.g.SnapshotSandbox(ctx, sb.ID, "tb-skills-v2"); err != nil || again.ID != snap.ID {
		t.Fatalf("retried snapshot sandbox: %+v %v", again, err)
	}
	if cur, _ := e.g.GetSandbox(ctx, sb.ID); cur.State != StateStarted {
		t.Fatalf("sandbox after snapshot: %s", cur.State)
	}
	_, tb2 := newSandbox(t, e, "tb-agent-snap-3", CreateSandboxParams{Snapshot: "tb-skills-v2", AutoStopMinutes: -1})
	if got, err := readAll(t, tb2, "/home/daytona/skills/demo/SKILL.md"); err != nil || got != "# demo" {
		t.Fatalf("file not in snapshot: %q %v", got, err)
	}

	if err := e.g.RemoveSnapshot(ctx, df.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.g.RemoveSnapshot(ctx, "no-such-snapshot"); err != nil {
		t.Fatalf("remove missing must succeed: %v", err)
	}
	if cur, err := e.g.GetSnapshot(ctx, df.ID); err == nil && cur.State != SnapshotRemoving {
		t.Fatalf("after remove: %+v", cur)
	} else if err != nil && !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
}
