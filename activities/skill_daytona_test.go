package activities_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/activities"
	"github.com/threadbox/threadbox/daytona"
	st "github.com/threadbox/threadbox/skills/skilltest"
)

// TestValidateSkillOnEmulator runs real validations in emulator sandboxes: a
// passing check, a failing check, a check that times out. The workflow's
// cleanup activity leaves no scratch sandbox behind.
func TestValidateSkillOnEmulator(t *testing.T) {
	e := newSkillEnv(t, true)
	ctx := context.Background()
	cases := []struct {
		name, check string
		passed      bool
		logHas      []string
	}{
		{"good", "test -x scripts/run.sh && ./scripts/run.sh && pwd", true, []string{"run", "/home/daytona/skills/good", "validation passed"}},
		{"bad", "echo broken >&2; exit 3", false, []string{"broken", "exit code 3"}},
		{"slow", "sleep 5", false, []string{"timed out"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			entries := st.Valid(c.name, c.check)
			if c.name == "slow" {
				entries[0] = st.File("SKILL.md", st.SkillMD("name: slow\ndescription: d\ncheck: sleep 5\ncheck_timeout: 1"))
			}
			id := e.addSkill(t, st.TarGz(entries...), "validating")
			res, err := e.acts.ValidateSkill(ctx, activities.ValidateSkillInput{SkillID: id.String(), ScratchKey: "skill-" + c.name + "-v1", Actor: "admin"})
			require.NoError(t, err)
			require.Equal(t, c.passed, res.Passed, res.Log)
			for _, s := range c.logHas {
				require.Contains(t, res.Log, s)
			}
			require.NotEmpty(t, res.SandboxID)
			require.NoError(t, e.acts.FinishSkillValidation(ctx, activities.FinishSkillValidationInput{SkillID: id.String(), Passed: res.Passed, Log: res.Log}))
			row, err := e.q.GetSkill(ctx, id)
			require.NoError(t, err)
			want := map[bool]string{true: "valid", false: "invalid"}[c.passed]
			require.Equal(t, want, row.Status)
			require.Equal(t, res.Log, row.ValidationLog)
			require.NoError(t, e.acts.DeleteScratchSandbox(ctx, activities.ScratchSandboxInput{ScratchKey: "skill-" + c.name + "-v1"}))
			// Deleting again (a retried cleanup) is success.
			require.NoError(t, e.acts.DeleteScratchSandbox(ctx, activities.ScratchSandboxInput{ScratchKey: "skill-" + c.name + "-v1"}))
		})
	}
	require.Empty(t, e.scratchLeft(t))
}

// TestBuildSnapshotImageResumesAfterCrash: a second attempt of the build
// activity (what Temporal runs after a worker died mid-build) finds the same
// scratch sandbox and snapshot by name instead of building another, and a
// sandbox created from the result has every skill under
// /home/daytona/skills/<name>/.
func TestBuildSnapshotImageResumesAfterCrash(t *testing.T) {
	e := newSkillEnv(t, true)
	ctx := context.Background()
	e.addSkill(t, st.Zip(st.Valid("alpha", "")...), "valid")
	e.addSkill(t, st.TarGz(st.Valid("beta", "")...), "valid")
	start, err := e.acts.StartSnapshotBuild(ctx, activities.StartSnapshotBuildInput{Version: 1, DaytonaName: "threadbox-skills-v1-abc", Actor: "admin", WorkflowID: "snapshot-build:1"})
	require.NoError(t, err)
	require.Len(t, start.SkillIDs, 2)
	// A retried StartSnapshotBuild returns the same row.
	again, err := e.acts.StartSnapshotBuild(ctx, activities.StartSnapshotBuildInput{Version: 1, DaytonaName: "threadbox-skills-v1-abc", Actor: "admin", WorkflowID: "snapshot-build:1"})
	require.NoError(t, err)
	require.Equal(t, start.SnapshotID, again.SnapshotID)
	_, err = e.acts.StartSnapshotBuild(ctx, activities.StartSnapshotBuildInput{Version: 1, DaytonaName: "threadbox-skills-v1-other", Actor: "admin", WorkflowID: "snapshot-build:1"})
	require.Error(t, err, "a version number is never reused for another build")

	in := activities.BuildSnapshotImageInput{SnapshotID: start.SnapshotID, DaytonaName: start.DaytonaName, ScratchKey: "build-v1-abc", SkillIDs: start.SkillIDs}
	first, err := e.acts.BuildSnapshotImage(ctx, in)
	require.NoError(t, err)
	second, err := e.acts.BuildSnapshotImage(ctx, in)
	require.NoError(t, err)
	require.Equal(t, first.DaytonaSnapshotID, second.DaytonaSnapshotID, "the retry must resume the same snapshot")
	require.Len(t, e.scratchLeft(t), 1, "the retry must not create a second build sandbox")
	require.NoError(t, e.acts.DeleteScratchSandbox(ctx, activities.ScratchSandboxInput{ScratchKey: "build-v1-abc"}))
	require.Empty(t, e.scratchLeft(t))

	sb, err := e.gw.FindOrCreateSandbox(ctx, daytona.CreateSandboxParams{Name: "agent-check", Snapshot: start.DaytonaName})
	require.NoError(t, err)
	out, err := e.gw.Toolbox(sb.ID, sb.ToolboxURL).Exec(ctx, daytona.ExecRequest{Command: "cat /home/daytona/skills/alpha/SKILL.md /home/daytona/skills/beta/SKILL.md && test -x /home/daytona/skills/beta/scripts/run.sh && echo EXEC-OK"})
	require.NoError(t, err)
	require.Equal(t, 0, out.ExitCode, out.Output)
	require.Equal(t, 2, strings.Count(out.Output, "name: "), out.Output)
	require.Contains(t, out.Output, "EXEC-OK")
}
