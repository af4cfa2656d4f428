package command

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/entity"
	"github.com/threadbox/threadbox/sandbox"
)

// settle asks the sandbox whether a running command has ended and records
// its end if so; the row comes back as it is now. A command whose sandbox
// was replaced, or whose session is gone (the sandbox was stopped: Daytona
// keeps sessions in its daemon's memory), is lost.
func (s *Service) settle(ctx context.Context, sb *sandbox.Sandbox, row db.ThreadCommand) (db.ThreadCommand, error) {
	if Status(row.State) != Running {
		return row, nil
	}
	if sb.Result.SandboxID != row.SandboxID {
		return s.finish(ctx, sb.Ref, nil, row, nil, Output{})
	}
	c, err := sb.Toolbox.GetSessionCommand(ctx, row.CommandID, row.DaytonaCommandID)
	if err != nil {
		if errors.Is(err, daytona.ErrNotFound) || sb.Gone(ctx, err) {
			return s.finish(ctx, sb.Ref, nil, row, nil, Output{})
		}
		return row, err
	}
	if c.ExitCode == nil {
		return row, nil
	}
	logs, err := sb.Toolbox.SessionCommandLogs(ctx, row.CommandID, row.DaytonaCommandID)
	if errors.Is(err, daytona.ErrNotFound) {
		// Its session was deleted in between: by whoever recorded its end
		// (a concurrent follow or read), whose record finish returns.
		return s.finish(ctx, sb.Ref, nil, row, nil, Output{})
	}
	if err != nil {
		return row, err
	}
	return s.finish(ctx, sb.Ref, sb, row, c.ExitCode, cut([]byte(logs.Output), s.opts.OutputLimit))
}

// finish records the end of a command (exitCode nil: lost). The first to
// record it releases its lease and deletes its session (when sb is given);
// anyone else gets the row as recorded.
func (s *Service) finish(ctx context.Context, ref entity.Ref, sb *sandbox.Sandbox, row db.ThreadCommand, exitCode *int, out Output) (db.ThreadCommand, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	p := db.CommandFinishParams{UserID: ref.UserID, ThreadID: ref.ThreadID, CommandID: row.CommandID, State: string(Lost)}
	if exitCode != nil {
		code := int64(*exitCode)
		p.State, p.ExitCode, p.Output, p.Truncated = string(Exited), &code, []byte(out.Text), out.Truncated
	}
	done, err := s.opts.Queries.CommandFinish(ctx, p)
	if errors.Is(err, pgx.ErrNoRows) {
		return s.row(ctx, ref, row.CommandID)
	}
	if err != nil {
		return row, fmt.Errorf("recording the end of a command: %w", err)
	}
	s.releaseLease(ref, row.CommandID)
	if sb != nil {
		s.deleteSession(sb, row.CommandID)
	}
	return done, nil
}

// refresh settles the running commands among rows, with one use of the
// thread's sandbox. A command past its deadline no longer holds the
// sandbox up: if the sandbox has stopped since, it is not started again
// just to learn that the command is lost. Failures leave rows as stored.
func (s *Service) refresh(ctx context.Context, ref entity.Ref, guard Guard, rows []db.ThreadCommand) []db.ThreadCommand {
	var running []int
	held := false
	now := time.Now()
	for i, r := range rows {
		if Status(r.State) == Running {
			running = append(running, i)
			held = held || now.Before(r.DeadlineAt.Add(leaseGrace))
		}
	}
	if len(running) == 0 {
		return rows
	}
	if !held {
		st, ok, err := s.opts.Sandboxes.State(ctx, ref)
		if err != nil {
			s.log.WarnContext(ctx, "reading the thread's state failed", "thread_id", ref.ThreadID, "err", err)
			return rows
		}
		if !ok || st.Phase != entity.PhaseRunning {
			for _, i := range running {
				if r, err := s.finish(ctx, ref, nil, rows[i], nil, Output{}); err == nil {
					rows[i] = r
				}
			}
			return rows
		}
	}
	err := s.opts.Sandboxes.Use(ctx, ref, sandbox.UseOptions{Guard: guard}, func(ctx context.Context, sb *sandbox.Sandbox) error {
		for _, i := range running {
			r, err := s.settle(ctx, sb, rows[i])
			if err != nil {
				return err
			}
			rows[i] = r
		}
		return nil
	})
	if err != nil {
		s.log.WarnContext(ctx, "asking the sandbox about running commands failed", "thread_id", ref.ThreadID, "err", err)
	}
	return rows
}
