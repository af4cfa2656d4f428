package volume

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/sandboxfs"
)

// phase is how far a write's commit got (volume_reservations.phase).
type phase string

const (
	// phaseSpool: the spool is being written; the target is untouched.
	phaseSpool phase = "spool"
	// phaseAside: the old file is being moved from the target to aside.
	phaseAside phase = "aside"
	// phaseMoveIn: the spool is being moved onto the target; HadOld says the
	// old file is at aside.
	phaseMoveIn phase = "move-in"
)

// commitState is where a write's files are and the step its commit is
// about to take. It is recorded in the write's reservation before each
// step, so whoever finishes the write (the writer itself after a failure,
// or the sweep after the writer died) knows what to look at.
type commitState struct {
	Spool, Target, Aside string
	Phase                phase
	HadOld               bool
}

func leftoverOf(row db.VolumeReservation) *commitState {
	if row.Spool == nil && row.Aside == nil {
		return nil
	}
	deref := func(s *string) string {
		if s == nil {
			return ""
		}
		return *s
	}
	return &commitState{Spool: deref(row.Spool), Target: deref(row.Target), Aside: deref(row.Aside),
		Phase: phase(row.Phase), HadOld: row.HadOld}
}

// commitTimeout bounds a commit and the recovery of a failed one. Both run
// on a context the client cannot cancel (a client hanging up mid-commit must
// not stop it between two moves); on Daytona volumes a move is a copy, so
// this allows for large files.
const commitTimeout = 15 * time.Minute

// detached is ctx without its cancellation, bounded by d.
func detached(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), d)
}

// commit puts the finished spool in the target's place so that the target
// always holds the old file or the new one, never neither: the old file is
// moved aside, the spool moved in, and the caller deletes the old file once
// the new one is there. Daytona's move never overwrites, which is why the
// old file cannot simply be replaced. hadTarget says a file was there when
// the write began. On error the returned state is where the files are; the
// caller hands it to settle.
func (v *Volume) commit(ctx context.Context, res *Reservation, st commitState, hadTarget bool) (commitState, error) {
	if hadTarget {
		st.Phase = phaseAside
		if err := res.track(ctx, st); err != nil {
			st.Phase = phaseSpool
			return st, err
		}
		err := v.retry(ctx, func() error { return v.Files.Move(ctx, st.Target, st.Aside) })
		switch {
		case err == nil:
			st.HadOld = true
		case errors.Is(err, fs.ErrNotExist):
			// Gone meanwhile, or moved by an attempt whose answer was lost.
			there, serr := v.exists(ctx, st.Aside)
			if serr != nil {
				return st, serr
			}
			st.HadOld = there
		default:
			return st, renamed(err, st.Target)
		}
	}
	st.Phase = phaseMoveIn
	if err := res.track(ctx, st); err != nil {
		return st, err
	}
	for attempt := 0; ; attempt++ {
		err := v.Files.Move(ctx, st.Spool, st.Target)
		if err == nil {
			return st, nil
		}
		if errors.Is(err, fs.ErrNotExist) {
			// The spool, or the directory it was in, is gone (a recursive
			// delete took it): settle finds out whether it arrived after all.
			return st, fmt.Errorf("%w: %w", ErrWriteInterrupted, renamed(err, st.Target))
		}
		if !errors.Is(err, fs.ErrExist) || attempt == 2 {
			return st, renamed(err, st.Target)
		}
		// A writer racing us committed between our two moves: the last
		// writer wins. (A directory there is refused by the delete.)
		if err := v.Files.Delete(ctx, st.Target, false); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return st, renamed(err, st.Target)
		}
	}
}

// settle finishes a write whose commit was interrupted at st (by an error,
// or by the death of its writer): when the spool is gone and the target is
// there, the new file arrived and the old one is deleted (landed true);
// otherwise the old file goes back to the target and the spool is deleted.
// An error means the files could not be put in order (yet): the state stays
// recorded for the sweep.
func (v *Volume) settle(ctx context.Context, st commitState) (landed bool, err error) {
	if st.Phase == phaseAside {
		// The move aside may or may not have happened.
		there, err := v.exists(ctx, st.Aside)
		if err != nil {
			return false, err
		}
		st.Phase, st.HadOld = phaseMoveIn, there
		if !there {
			st.Phase = phaseSpool
		}
	}
	if st.Phase == phaseMoveIn {
		spool, err := v.stat(ctx, st.Spool)
		if err != nil {
			return false, err
		}
		target, err := v.stat(ctx, st.Target)
		if err != nil {
			return false, err
		}
		if spool == nil && target != nil {
			// The move in happened (a rename, or a copy whose source was
			// removed once it was complete).
			return true, v.removeIfThere(ctx, st.Aside, st.HadOld)
		}
		if err := v.restore(ctx, st, spool, target); err != nil {
			return false, err
		}
	}
	return false, v.removeIfThere(ctx, st.Spool, st.Spool != "")
}

// restore puts the old file back at the target after a move in that did not
// complete. What is at the target then is a partial copy of the spool (a
// move on a Daytona volume is a copy) or, when the old file was aside, what
// a racing writer left there: it gives way to the old file. Without an old
// file, a target at least as large as the spool is left alone (a complete
// copy, or another writer's file).
func (v *Volume) restore(ctx context.Context, st commitState, spool, target *daytona.FileInfo) error {
	partial := target != nil && spool != nil && target.Size < spool.Size
	if target != nil && !target.IsDir && (st.HadOld || partial) {
		if err := v.removeIfThere(ctx, st.Target, true); err != nil {
			return err
		}
	}
	if !st.HadOld {
		return nil
	}
	err := v.retry(ctx, func() error { return v.Files.Move(ctx, st.Aside, st.Target) })
	if errors.Is(err, fs.ErrNotExist) {
		return nil // the whole directory went away under the write
	}
	return err
}

// exists reports whether p is in the volume.
func (v *Volume) exists(ctx context.Context, p string) (bool, error) {
	fi, err := v.stat(ctx, p)
	return fi != nil, err
}

// stat describes p, nil when it does not exist.
func (v *Volume) stat(ctx context.Context, p string) (*daytona.FileInfo, error) {
	if p == "" {
		return nil, nil
	}
	var fi daytona.FileInfo
	err := v.retry(ctx, func() (err error) {
		fi, err = v.Files.Stat(ctx, p)
		return err
	})
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, sandboxfs.ErrNotDir):
		return nil, nil
	case err != nil:
		return nil, err
	}
	return &fi, nil
}

// removeIfThere deletes the file p when do, a missing one being fine.
func (v *Volume) removeIfThere(ctx context.Context, p string, do bool) error {
	if !do || p == "" {
		return nil
	}
	err := v.retry(ctx, func() error { return v.Files.Delete(ctx, p, false) })
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Retries of the steps of a commit and its recovery: a transient toolbox
// failure (5xx, 429, unreachable) is tried again a few times with backoff.
// Only steps that are safe to repeat are retried this way.
const (
	stepAttempts = 4
	stepBackoff  = 100 * time.Millisecond
)

func (v *Volume) retry(ctx context.Context, step func() error) error {
	return Retry(ctx, stepAttempts, stepBackoff, transient, step)
}

// Retry runs step up to attempts times while it fails with an error that
// retryable accepts, waiting backoff between tries (doubling each time); ctx
// ending cuts the wait short. It returns step's last error.
func Retry(ctx context.Context, attempts int, backoff time.Duration, retryable func(error) bool, step func() error) error {
	for attempt := 1; ; attempt++ {
		err := step()
		if err == nil || attempt >= attempts || !retryable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}

// transient reports a failure of the toolbox or the way to it, as opposed to
// an answer about the files.
func transient(err error) bool {
	var fe *sandboxfs.Error
	if errors.As(err, &fe) {
		return false
	}
	return errors.Is(err, daytona.ErrUnavailable) || errors.Is(err, daytona.ErrRateLimited)
}
