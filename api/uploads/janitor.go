package uploads

import (
	"context"
	"time"

	"github.com/threadbox/threadbox/db"
)

// recordTTL is how long finished uploads are remembered for HEAD.
const recordTTL = 7 * 24 * time.Hour

// janitor sweeps stale spools every SpoolTTL/4 (at most hourly).
func (s *Service) janitor(ctx context.Context) {
	defer close(s.done)
	every := min(s.cfg.SpoolTTL/4, time.Hour)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		s.Sweep(ctx, time.Now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sweep removes spools that received no bytes for SpoolTTL before now (an
// interrupted upload's client may still come back until then), marks them
// failed and releases their reservations; marks failed the uploads still
// receiving whose reservation is gone (their spool was lost, or their
// process died: nobody can finish them); and forgets old finished records.
func (s *Service) Sweep(ctx context.Context, now time.Time) {
	stale, err := s.spool.Stale(ctx, now.Add(-s.cfg.SpoolTTL))
	if err != nil && ctx.Err() == nil {
		s.cfg.Logger.WarnContext(ctx, "listing stale upload spools", "err", err)
	}
	for _, id := range stale {
		if err := s.spool.Remove(ctx, id); err != nil {
			s.cfg.Logger.WarnContext(ctx, "removing stale upload spool", "upload", id, "err", err)
			continue
		}
		if idPattern.MatchString(id) {
			if err := s.cancelled(ctx, id); err != nil {
				s.cfg.Logger.WarnContext(ctx, "releasing stale upload", "upload", id, "err", err)
			}
		}
		s.cfg.Logger.InfoContext(ctx, "removed stale upload spool", "upload", id)
	}
	abandoned, err := s.cfg.Queries.AbandonedUploads(ctx, now.Add(-s.cfg.SpoolTTL))
	if err != nil && ctx.Err() == nil {
		s.cfg.Logger.WarnContext(ctx, "listing abandoned uploads", "err", err)
	}
	for _, u := range abandoned {
		if err := s.cfg.Queries.SetUploadState(ctx, db.SetUploadStateParams{ID: u.ID, State: stateFailed}); err != nil {
			s.cfg.Logger.WarnContext(ctx, "failing abandoned upload", "upload", u.ID, "err", err)
		}
	}
	before := now.Add(-recordTTL)
	if _, err := s.cfg.Queries.ForgetUploadsBefore(ctx, &before); err != nil && ctx.Err() == nil {
		s.cfg.Logger.WarnContext(ctx, "forgetting old uploads", "err", err)
	}
}
