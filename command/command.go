// Package command runs a thread's background commands: started without
// waiting for them, read and followed while they print, signalled, stopped,
// and recorded in PostgreSQL so that any API replica can answer for them.
//
// A command is a Daytona session command (one session per command, named
// after the command id) started Stoppable, so that:
//   - its timeout is enforced in the sandbox by timeout(1), whatever happens
//     to the API replica that started it;
//   - its output is cut in the sandbox at the output limit (plus one byte,
//     to tell a cut), so neither Daytona's log on the sandbox's disk nor
//     what threadbox reads and stores can grow past it;
//   - it can be signalled and stopped (Daytona v0.190.0 has no route for it).
//
// While it runs it holds a lease on its thread (the lease id is the command
// id) whose TTL is its timeout plus leaseGrace, taken before it starts: the
// sandbox is never auto-stopped under it, and if nobody ever sees it end
// (every replica that could died) the lease still expires by itself once
// the sandbox has ended the command. The replica that started it follows it
// to its end (a watcher); any replica that reads a running command asks the
// sandbox too. Whoever first sees the end records it (exit code, output),
// releases the lease and deletes the session.
package command

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/entity"
	"github.com/threadbox/threadbox/sandbox"
)

// Status is where a command is in its life.
type Status string

const (
	// Running: started, not seen ended.
	Running Status = "running"
	// Exited: it ended by itself (or of a signal sent with Signal); ExitCode
	// is what the shell reported (128+N for signal N).
	Exited Status = "exited"
	// TimedOut: the sandbox ended it at its timeout (exit code 124, or 137
	// when it ignored SIGTERM).
	TimedOut Status = "timed_out"
	// Killed: it ended after a Stop.
	Killed Status = "killed"
	// Lost: its sandbox was stopped or replaced behind threadbox's back
	// before its end was seen; how it ended is unknown.
	Lost Status = "lost"
)

// Limits of the design, in the contract.
const (
	// MaxRunning bounds a thread's running commands (each is a shell in the
	// sandbox and a lease on the thread).
	MaxRunning = 16
	// KeepEnded is how many ended commands of a thread are kept, with their
	// output; older ones are forgotten.
	KeepEnded = 64
	// StopGrace is how long a stopped command has between SIGTERM and SIGKILL.
	StopGrace = 5 * time.Second
	// MaxTimeout is the longest timeout a command can have: its lease must
	// fit in one lease.
	MaxTimeout = entity.MaxLeaseTTL - leaseGrace
)

// leaseGrace is added to a command's timeout for its lease: timeout(1)'s
// SIGKILL after SIGTERM, the start of the command after the lease was taken,
// clock differences between the API and the worker.
const leaseGrace = daytona.SessionKillAfter + 25*time.Second

// Errors the API maps to statuses (api/apierr).
var (
	ErrNotFound   = errors.New("command not found")
	ErrTooMany    = fmt.Errorf("a thread runs at most %d commands at a time", MaxRunning)
	ErrNotRunning = errors.New("the command has ended")
	// ErrNotStarted: Daytona says the command runs, but its process group
	// could not be found for seconds.
	ErrNotStarted = errors.New("the command's processes cannot be found")
	// ErrStreamEnded: Daytona's log stream kept ending while the command
	// ran on.
	ErrStreamEnded = errors.New("the output stream keeps ending before the command")
)

// Request is a command to start.
type Request struct {
	Command string
	Cwd     string // empty: the sandbox's default
	Env     map[string]string
	Timeout time.Duration // 1 s … MaxTimeout
}

// Command is a command as its thread's user sees it.
type Command struct {
	ID         string
	ThreadID   string
	Command    string
	Cwd        string
	Status     Status
	ExitCode   *int // nil while running, and when lost
	Timeout    time.Duration
	StartedAt  time.Time
	FinishedAt *time.Time
	// Truncated: the command printed more than the output limit (known
	// once it ended; a follow or a read of the output says so earlier).
	Truncated bool
}

// Output is what a command printed (stdout and stderr merged), at most the
// output limit, cut at a UTF-8 boundary.
type Output struct {
	Text      string
	Truncated bool
}

// Options configure a Service.
type Options struct {
	Sandboxes *sandbox.Client
	Queries   *db.Queries
	Logger    *slog.Logger
	// OutputLimit is the most output kept per command, in bytes
	// (THREADBOX_EXEC_OUTPUT_LIMIT).
	OutputLimit int
}

// Service runs the background commands of every thread. Close stops its
// watchers (the commands run on; their leases expire by themselves).
type Service struct {
	opts Options
	log  *slog.Logger

	bg   context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup

	mu     sync.Mutex
	closed bool
}

// New makes a Service.
func New(o Options) *Service {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	bg, stop := context.WithCancel(context.Background())
	return &Service{opts: o, log: o.Logger, bg: bg, stop: stop}
}

// Close stops the watchers and waits for them. It never stops a command or
// releases its lease: another replica, or the lease's expiry, takes over.
func (s *Service) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.stop()
	s.wg.Wait()
}

// goBackground runs f on a goroutine Close waits for; false once closed.
func (s *Service) goBackground(f func(ctx context.Context)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f(s.bg)
	}()
	return true
}

// view is a stored command as its user sees it.
func view(r db.ThreadCommand) Command {
	c := Command{
		ID: r.CommandID, ThreadID: r.ThreadID, Command: r.Command, Status: Status(r.State),
		Timeout: time.Duration(r.TimeoutS) * time.Second, StartedAt: r.StartedAt,
		FinishedAt: r.FinishedAt, Truncated: r.Truncated,
	}
	if r.Cwd != nil {
		c.Cwd = *r.Cwd
	}
	if r.ExitCode != nil {
		code := int(*r.ExitCode)
		c.ExitCode = &code
	}
	return c
}

// row reads one of the thread's commands (ErrNotFound when the thread or
// the command is not the caller's, or the thread was deleted).
func (s *Service) row(ctx context.Context, ref entity.Ref, id string) (db.ThreadCommand, error) {
	r, err := s.opts.Queries.CommandGet(ctx, db.CommandGetParams{UserID: ref.UserID, ThreadID: ref.ThreadID, CommandID: id})
	if errors.Is(err, pgx.ErrNoRows) {
		return db.ThreadCommand{}, ErrNotFound
	}
	if err != nil {
		return db.ThreadCommand{}, fmt.Errorf("reading command: %w", err)
	}
	return r, nil
}

// EndThread forgets a deleted thread's commands: the thread's sandbox, and
// every process in it, goes with the thread.
func (s *Service) EndThread(ctx context.Context, ref entity.Ref) error {
	if _, err := s.opts.Queries.CommandDeleteForThread(ctx, db.CommandDeleteForThreadParams{UserID: ref.UserID, ThreadID: ref.ThreadID}); err != nil {
		return fmt.Errorf("forgetting the thread's commands: %w", err)
	}
	return nil
}
