package command

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/entity"
	"github.com/threadbox/threadbox/sandbox"
)

// Get is one of the thread's commands, as it is now: a running one is
// asked about in the sandbox.
func (s *Service) Get(ctx context.Context, ref entity.Ref, guard Guard, id string) (Command, error) {
	row, err := s.current(ctx, ref, guard, id)
	return view(row), err
}

// current is one of the thread's commands, a running one settled against
// the sandbox first (see refresh: a command past its deadline whose
// sandbox has stopped is not worth starting it again).
func (s *Service) current(ctx context.Context, ref entity.Ref, guard Guard, id string) (db.ThreadCommand, error) {
	row, err := s.row(ctx, ref, id)
	if err != nil {
		return db.ThreadCommand{}, err
	}
	return s.refresh(ctx, ref, guard, []db.ThreadCommand{row})[0], nil
}

// List is the thread's commands, newest first, as they are now.
func (s *Service) List(ctx context.Context, ref entity.Ref, guard Guard) ([]Command, error) {
	rows, err := s.opts.Queries.CommandList(ctx, db.CommandListParams{UserID: ref.UserID, ThreadID: ref.ThreadID})
	if err != nil {
		return nil, fmt.Errorf("listing commands: %w", err)
	}
	rows = s.refresh(ctx, ref, guard, rows)
	out := make([]Command, 0, len(rows))
	for _, r := range rows {
		out = append(out, view(r))
	}
	return out, nil
}

// Output is what a command printed so far (all of it, up to the limit,
// once it ended).
func (s *Service) Output(ctx context.Context, ref entity.Ref, guard Guard, id string) (Command, Output, error) {
	row, err := s.current(ctx, ref, guard, id)
	if err != nil {
		return Command{}, Output{}, err
	}
	var out Output
	if Status(row.State) == Running {
		err := s.opts.Sandboxes.Use(ctx, ref, sandbox.UseOptions{Guard: guard}, func(ctx context.Context, sb *sandbox.Sandbox) error {
			logs, err := sb.Toolbox.SessionCommandLogs(ctx, row.CommandID, row.DaytonaCommandID)
			if errors.Is(err, daytona.ErrNotFound) {
				// It ended and its session was deleted meanwhile: its record says how.
				row, err = s.finish(ctx, sb.Ref, nil, row, nil, Output{})
				return err
			}
			if err != nil {
				return err
			}
			out = cut([]byte(logs.Output), s.opts.OutputLimit)
			return nil
		})
		if err != nil {
			return view(row), Output{}, err
		}
	}
	if Status(row.State) != Running {
		out = Output{Text: string(row.Output), Truncated: row.Truncated}
	}
	return view(row), out, nil
}

// Sink receives a followed command: the command as it was found, then its
// output, piece by piece.
type Sink interface {
	Started(Command) error
	Output(string) error
}

// Follow passes a command to out and its output as it is printed, from its
// first byte, until the command ends, and returns the command as it ended.
// Pieces never split a UTF-8 sequence; at most the output limit is passed
// on. It returns early, with ctx's error, when ctx ends (the command runs
// on), or with out's error.
func (s *Service) Follow(ctx context.Context, ref entity.Ref, guard Guard, id string, out Sink) (Command, error) {
	row, err := s.current(ctx, ref, guard, id)
	if err != nil {
		return Command{}, err
	}
	if err := out.Started(view(row)); err != nil {
		return view(row), err
	}
	if Status(row.State) != Running {
		if len(row.Output) > 0 {
			if err := out.Output(string(row.Output)); err != nil {
				return view(row), err
			}
		}
		return view(row), nil
	}
	w := &outWriter{emit: out.Output, limit: s.opts.OutputLimit}
	for attempt := 0; ; attempt++ {
		if row, err = s.follow(ctx, ref, guard, row, w); err != nil {
			return view(row), err
		}
		if Status(row.State) != Running {
			break
		}
		if attempt == 4 {
			return view(row), ErrStreamEnded
		}
		select {
		case <-ctx.Done():
			return view(row), ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 200 * time.Millisecond):
		}
	}
	if err := w.flush(); err != nil {
		return view(row), err
	}
	c := view(row)
	c.Truncated = c.Truncated || w.Truncated
	return c, nil
}

// Signal sends sig to a running command (see daytona.SignalSessionCommand:
// KILL ends its whole process group, other signals reach each of its
// processes). ErrNotRunning when it has ended.
func (s *Service) Signal(ctx context.Context, ref entity.Ref, guard Guard, id string, sig daytona.Signal) error {
	row, err := s.current(ctx, ref, guard, id)
	if err != nil {
		return err
	}
	if Status(row.State) != Running {
		return ErrNotRunning
	}
	return s.opts.Sandboxes.Use(ctx, ref, sandbox.UseOptions{Guard: guard}, func(ctx context.Context, sb *sandbox.Sandbox) error {
		if sb.Result.SandboxID != row.SandboxID {
			_, err := s.settle(ctx, sb, row)
			return errors.Join(ErrNotRunning, err)
		}
		return s.untilStarted(ctx, sb, &row, func() (bool, error) {
			return sb.Toolbox.SignalSessionCommand(ctx, row.CommandID, sig)
		})
	})
}

// untilStarted runs act (a signal or a stop, reporting whether it found the
// command's process group) until it did, or the command is seen ended
// (ErrNotRunning). A command Daytona has just accepted may not have written
// its group's id yet, and one whose main process has just exited is still
// draining its output: both answer "none" while Daytona says running.
func (s *Service) untilStarted(ctx context.Context, sb *sandbox.Sandbox, row *db.ThreadCommand, act func() (bool, error)) error {
	for i := 0; ; i++ {
		done, err := act()
		if err != nil || done {
			return err
		}
		if *row, err = s.settle(ctx, sb, *row); err != nil {
			return err
		}
		if Status(row.State) != Running {
			return ErrNotRunning
		}
		if i == 50 {
			return ErrNotStarted
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop ends a running command: SIGTERM to its processes, SIGKILL to its
// process group StopGrace later if anything of it is left. It returns the
// command once its end is recorded (status killed), or as it is after a
// while if a process that left its group still holds its output. Stopping
// an ended command changes nothing.
func (s *Service) Stop(ctx context.Context, ref entity.Ref, guard Guard, id string) (Command, error) {
	row, err := s.current(ctx, ref, guard, id)
	if err != nil || Status(row.State) != Running {
		return view(row), err
	}
	if _, err := s.opts.Queries.CommandRequestStop(ctx, db.CommandRequestStopParams{UserID: ref.UserID, ThreadID: ref.ThreadID, CommandID: id}); err != nil {
		return view(row), fmt.Errorf("recording a stop: %w", err)
	}
	err = s.opts.Sandboxes.Use(ctx, ref, sandbox.UseOptions{Guard: guard}, func(ctx context.Context, sb *sandbox.Sandbox) error {
		if sb.Result.SandboxID == row.SandboxID {
			err := s.untilStarted(ctx, sb, &row, func() (bool, error) {
				return sb.Toolbox.StopSessionCommand(ctx, row.CommandID, StopGrace)
			})
			if errors.Is(err, ErrNotRunning) {
				return nil // it ended meanwhile: row says how
			}
			if err != nil {
				return err
			}
		}
		// Daytona records the end once the command's output is drained.
		for i := 0; ; i++ {
			var err error
			if row, err = s.settle(ctx, sb, row); err != nil || Status(row.State) != Running || i == 50 {
				return err
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
	return view(row), err
}
