package command

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"

	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/entity"
	"github.com/threadbox/threadbox/sandbox"
)

// Guard checks that the thread may be used (the thread routes check its
// row: a deleted thread answers 404 instead of coming back) and names its
// incarnation. It is sandbox.UseOptions.Guard.
type Guard = func(context.Context) (incarnation string, err error)

// cleanupTimeout bounds the work done after a client may have left: the
// record of a started command, a session's deletion, a lease's release.
const cleanupTimeout = 30 * time.Second

// Start starts a command in the thread's sandbox (started or created as
// needed) and returns as soon as Daytona accepted it. From then on the
// command belongs to the sandbox: a client that leaves does not stop it.
func (s *Service) Start(ctx context.Context, ref entity.Ref, guard Guard, r Request) (Command, error) {
	if _, err := guard(ctx); err != nil {
		return Command{}, err
	}
	n, err := s.opts.Queries.CommandCountRunning(ctx, db.CommandCountRunningParams{UserID: ref.UserID, ThreadID: ref.ThreadID})
	if err != nil {
		return Command{}, fmt.Errorf("counting running commands: %w", err)
	}
	if n >= MaxRunning {
		return Command{}, ErrTooMany
	}
	id := "cmd-" + uuid.NewString()
	// The lease first: from the moment the command starts the sandbox must
	// stay up, whoever is still there to see it end.
	if _, err := s.opts.Sandboxes.Lease(ctx, ref, id, r.Timeout+leaseGrace); err != nil {
		return Command{}, err
	}
	accepted := false
	var row db.ThreadCommand
	err = s.opts.Sandboxes.Use(ctx, ref, sandbox.UseOptions{Guard: guard, Replayable: func() bool { return !accepted }},
		func(ctx context.Context, sb *sandbox.Sandbox) error {
			if err := sb.Toolbox.CreateSession(ctx, id); err != nil {
				return err
			}
			res, err := sb.Toolbox.ExecuteSessionCommand(ctx, id, daytona.SessionExecRequest{
				Command: r.Command, Cwd: r.Cwd, Env: r.Env, Async: true, Stoppable: true,
				Timeout: r.Timeout, MaxOutput: int64(s.opts.OutputLimit) + 1,
			})
			if err != nil {
				// Daytona may have started it all the same (an answer lost).
				s.discard(sb, id)
				return err
			}
			accepted = true
			// The command runs: record it even if the client has left.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
			defer cancel()
			var cwd *string
			if r.Cwd != "" {
				cwd = &r.Cwd
			}
			row, err = s.opts.Queries.CommandInsert(rctx, db.CommandInsertParams{
				UserID: ref.UserID, ThreadID: ref.ThreadID, CommandID: id, Command: r.Command, Cwd: cwd,
				TimeoutS: int32(r.Timeout / time.Second), SandboxID: sb.Result.SandboxID, DaytonaCommandID: res.CommandID,
			})
			if err != nil {
				s.discard(sb, id) // nobody could ever see it
				return fmt.Errorf("recording command: %w", err)
			}
			return nil
		})
	if err != nil {
		s.releaseLease(ref, id)
		return Command{}, err
	}
	s.prune(ctx, ref)
	s.watch(ref, guard, row)
	return view(row), nil
}

// prune forgets the thread's oldest ended commands beyond KeepEnded.
func (s *Service) prune(ctx context.Context, ref entity.Ref) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if _, err := s.opts.Queries.CommandPrune(ctx, db.CommandPruneParams{UserID: ref.UserID, ThreadID: ref.ThreadID, Keep: KeepEnded}); err != nil {
		s.log.WarnContext(ctx, "pruning ended commands failed", "thread_id", ref.ThreadID, "err", err)
	}
}

// watch follows a command this replica started until it ends, and records
// the end, so its lease is released as soon as it ends even if nobody asks.
// It gives up at the command's deadline (plus the lease's grace), or when
// the command or its thread is gone; a replica that stops watching leaves
// the command to the reads of any replica and its lease to its expiry.
func (s *Service) watch(ref entity.Ref, guard Guard, row db.ThreadCommand) {
	s.goBackground(func(bg context.Context) {
		ctx, cancel := context.WithDeadline(bg, row.DeadlineAt.Add(leaseGrace))
		defer cancel()
		backoff := 200 * time.Millisecond
		for {
			var err error
			row, err = s.follow(ctx, ref, guard, row, nil)
			if err == nil && Status(row.State) != Running {
				return
			}
			if ctx.Err() != nil {
				return
			}
			s.log.DebugContext(ctx, "following a command failed; retrying", "command_id", row.CommandID, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 10*time.Second)
			// Someone else may have seen its end, or the thread is gone.
			r, err := s.row(ctx, ref, row.CommandID)
			if errors.Is(err, ErrNotFound) {
				return
			}
			if err == nil {
				if row = r; Status(row.State) != Running {
					return
				}
			}
		}
	})
}

// follow reads a running command's output until it ends, passing it to w
// (nil: dropping it), and records the end. A follow that broke off is
// resumed by calling follow again with the same w. It never restarts the
// sandbox for a command: a sandbox found gone means the command is lost.
//
// Daytona's log stream is not the only sign of the end: while it runs, the
// command is also asked about now and then (endPoll), and a stream that has
// not closed shortly after the command ended is closed by us; what it had
// not yet delivered is passed to w from the recorded output.
func (s *Service) follow(ctx context.Context, ref entity.Ref, guard Guard, row db.ThreadCommand, w *outWriter) (db.ThreadCommand, error) {
	never := func() bool { return false }
	err := s.opts.Sandboxes.Use(ctx, ref, sandbox.UseOptions{Guard: guard, Replayable: never},
		func(ctx context.Context, sb *sandbox.Sandbox) error {
			sctx, stop := context.WithCancel(ctx)
			defer stop()
			stream, err := sb.Toolbox.FollowSessionCommandLogs(sctx, row.CommandID, row.DaytonaCommandID)
			if err != nil {
				// A command whose session is gone (or whose sandbox is) has
				// ended, or is lost: settle tells which.
				r, serr := s.settle(ctx, sb, row)
				if serr == nil && Status(r.State) != Running {
					row = r
					return nil
				}
				return err
			}
			go s.endPoll(sctx, stop, sb, row)
			if w == nil {
				_, err = io.Copy(io.Discard, stream)
			} else {
				err = w.from(stream)
			}
			stream.Close()
			if err != nil && (ctx.Err() != nil || sctx.Err() == nil) {
				return err
			}
			// The stream ends with the command; Daytona has its exit code
			// then, or a moment later.
			for i := 0; ; i++ {
				if row, err = s.settle(ctx, sb, row); err != nil || Status(row.State) != Running || i == 20 {
					break
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(100 * time.Millisecond):
				}
			}
			if err == nil && w != nil && Status(row.State) != Running && w.consumed < int64(len(row.Output)) {
				err = w.write(row.Output[w.consumed:])
			}
			return err
		})
	return row, err
}

// endPoll closes a command's log stream (stop) once the command has been
// seen ended for a moment: Daytona's stream is meant to close by itself
// then, and this bounds the wait if it does not. It asks rarely (from every
// second to every endPollMax) so that long commands cost little.
func (s *Service) endPoll(ctx context.Context, stop context.CancelFunc, sb *sandbox.Sandbox, row db.ThreadCommand) {
	every := time.Second
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
		every = min(2*every, endPollMax)
		c, err := sb.Toolbox.GetSessionCommand(ctx, row.CommandID, row.DaytonaCommandID)
		if (err == nil && c.ExitCode != nil) || errors.Is(err, daytona.ErrNotFound) {
			select {
			case <-ctx.Done():
			case <-time.After(endPollDrain):
				stop()
			}
			return
		}
	}
}

// endPollMax is the longest interval between two questions of endPoll, and
// endPollDrain how long a stream gets to deliver its tail after the end.
const (
	endPollMax   = 10 * time.Second
	endPollDrain = 500 * time.Millisecond
)

// discard ends a command nobody will know of (its start failed after
// Daytona may have run it) and drops its session, in the background: KILL
// to its process group, which deleting the session would not reach. If that
// fails too, its timeout ends it.
func (s *Service) discard(sb *sandbox.Sandbox, id string) {
	s.goBackground(func(bg context.Context) {
		ctx, cancel := context.WithTimeout(bg, cleanupTimeout)
		defer cancel()
		if _, err := sb.Toolbox.SignalSessionCommand(ctx, id, daytona.SIGKILL); err != nil {
			s.log.WarnContext(ctx, "killing an unrecorded command failed; its timeout ends it", "command_id", id, "err", err)
		}
		s.dropSession(ctx, sb, id)
	})
}

// deleteSession drops a command's session (and Daytona's log of it) in the
// background; a session left behind dies with its sandbox.
func (s *Service) deleteSession(sb *sandbox.Sandbox, id string) {
	s.goBackground(func(bg context.Context) {
		ctx, cancel := context.WithTimeout(bg, cleanupTimeout)
		defer cancel()
		s.dropSession(ctx, sb, id)
	})
}

func (s *Service) dropSession(ctx context.Context, sb *sandbox.Sandbox, id string) {
	if err := sb.Toolbox.DeleteSession(ctx, id); err != nil && !errors.Is(err, daytona.ErrNotFound) {
		s.log.WarnContext(ctx, "deleting a command's session failed", "command_id", id, "err", err)
	}
}

// releaseLease releases a command's lease in the background; one that
// cannot be released expires by itself.
func (s *Service) releaseLease(ref entity.Ref, id string) {
	s.goBackground(func(bg context.Context) {
		ctx, cancel := context.WithTimeout(bg, cleanupTimeout)
		defer cancel()
		if err := s.opts.Sandboxes.ReleaseLease(ctx, ref, id); err != nil {
			s.log.WarnContext(ctx, "releasing a command's lease failed; it expires by itself", "command_id", id, "err", err)
		}
	})
}
