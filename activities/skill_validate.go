package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"go.temporal.io/sdk/temporal"

	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/entity"
	"github.com/threadbox/threadbox/skills"
)

// Dependency installs get this long; they are bounded so a hanging registry
// cannot hold a validation forever.
const installTimeout = 10 * time.Minute

// maxStepLog caps the output kept per step in the validation log.
const maxStepLog = 32 << 10

// ValidateSkill runs a stored skill version in a scratch sandbox made from the
// active snapshot (the environment it will live in): it uploads the skill to
// /home/daytona/skills/<name>/, installs its declared dependencies
// (requirements.txt, package.json) and runs its check command with its
// timeout. A failing step is a verdict (Passed=false with the log), not an
// error; errors are infrastructure failures that Temporal retries. The
// workflow deletes the scratch sandbox afterwards, whatever happened.
func (a *Activities) ValidateSkill(ctx context.Context, in ValidateSkillInput) (ValidateSkillResult, error) {
	// Heartbeat throughout, not only during commands: creating the scratch
	// sandbox waits until Daytona has started it, which can take longer than
	// the workflow's heartbeat timeout, and cancellation only arrives through
	// heartbeats.
	stop := keepAlive(ctx, "validating "+in.ScratchKey)
	defer stop()
	bundle, err := a.loadSkill(ctx, in.SkillID)
	if err != nil {
		var se *skills.Error
		if errors.As(err, &se) {
			return ValidateSkillResult{Log: "archive rejected: " + se.Error() + "\n"}, nil
		}
		return ValidateSkillResult{}, err
	}
	var log strings.Builder
	logf := func(format string, args ...any) { fmt.Fprintf(&log, format+"\n", args...) }

	snapshot, err := a.snapshotFor(ctx, entity.SandboxTypeAgent)
	if err != nil {
		return ValidateSkillResult{}, err
	}
	m := bundle.Manifest
	logf("skill %s: %d files, %d bytes", m.Name, len(bundle.Files), bundle.TotalBytes)
	logf("$ create scratch sandbox from snapshot %q", displaySnapshot(snapshot))
	sb, err := a.ensureScratch(ctx, in.ScratchKey, snapshot, in.Actor)
	if err != nil {
		return ValidateSkillResult{}, err
	}
	res := ValidateSkillResult{SandboxID: sb.ID}
	tb := a.Daytona.Toolbox(sb.ID, sb.ToolboxURL)
	dir := skillDir(m.Name)
	logf("$ upload to %s/", dir)
	if err := uploadSkill(ctx, tb, bundle); err != nil {
		return res, err
	}
	steps := installSteps(m)
	if m.Check != "" {
		steps = append(steps, step{name: "check", cmd: m.Check, timeout: m.CheckTimeout})
	} else {
		logf("(no check command declared)")
	}
	for _, s := range steps {
		logf("$ %s", s.cmd)
		out, err := tb.Exec(ctx, daytona.ExecRequest{Command: s.cmd, Cwd: dir, Timeout: s.timeout})
		switch {
		case errors.Is(err, daytona.ErrTimeout):
			logf("%s timed out after %s", s.name, s.timeout)
			res.Log = log.String()
			return res, nil
		case err != nil:
			return res, temporalError(s.name, err)
		}
		log.WriteString(truncate(out.Output, maxStepLog))
		if out.Output != "" && !strings.HasSuffix(out.Output, "\n") {
			log.WriteString("\n")
		}
		if out.ExitCode != 0 {
			logf("%s failed with exit code %d", s.name, out.ExitCode)
			res.Log = log.String()
			return res, nil
		}
	}
	logf("validation passed")
	res.Passed, res.Log = true, log.String()
	return res, nil
}

// step is one command of a validation.
type step struct {
	name    string
	cmd     string
	timeout time.Duration
}

// installSteps are the dependency installs a manifest asks for.
func installSteps(m skills.Manifest) []step {
	var out []step
	if m.PythonRequirements {
		out = append(out, step{name: "pip install", timeout: installTimeout,
			cmd: "python3 -m pip install --user --disable-pip-version-check --no-input -r requirements.txt"})
	}
	if m.NodePackage {
		out = append(out, step{name: "npm install", timeout: installTimeout,
			cmd: "npm install --no-audit --no-fund --loglevel=error"})
	}
	return out
}

// FinishSkillValidation records the verdict. Only a skill still validating
// changes, so a retry or a duplicate is harmless.
func (a *Activities) FinishSkillValidation(ctx context.Context, in FinishSkillValidationInput) error {
	id, err := uuid.Parse(in.SkillID)
	if err != nil {
		return temporal.NewNonRetryableApplicationError("bad skill id", "BadInput", err)
	}
	status := "invalid"
	if in.Passed {
		status = "valid"
	}
	if _, err := a.Queries.FinishSkillValidation(ctx, db.FinishSkillValidationParams{ID: id, Status: status, ValidationLog: in.Log}); err != nil {
		return fmt.Errorf("recording validation of skill %s: %w", in.SkillID, err)
	}
	return nil
}

// loadSkill reads a stored archive and checks it again (the same pure checks
// the API ran), so the files uploaded are exactly the ones that were checked.
func (a *Activities) loadSkill(ctx context.Context, skillID string) (*skills.Bundle, error) {
	id, err := uuid.Parse(skillID)
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError("bad skill id", "BadInput", err)
	}
	row, err := a.Queries.GetSkillArchive(ctx, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, temporal.NewNonRetryableApplicationError("skill "+skillID+" does not exist", "SkillNotFound", err)
	}
	if err != nil {
		return nil, fmt.Errorf("reading skill %s: %w", skillID, err)
	}
	b, err := skills.Parse(row.Archive, skills.DefaultLimits())
	if err != nil {
		return nil, err
	}
	if b.Manifest.Name != row.Name {
		return nil, &skills.Error{Code: "bad_manifest", Message: fmt.Sprintf("stored archive names skill %q, row says %q", b.Manifest.Name, row.Name)}
	}
	return b, nil
}

func displaySnapshot(s string) string {
	if s == "" {
		return "(Daytona default)"
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "\n… (output truncated)\n"
}
