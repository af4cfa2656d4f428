package uploads

import (
	"context"
	"os"
	"path/filepath"
	"strings"
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

// Sweep removes spools whose data was not touched for SpoolTTL before now
// (an interrupted upload's client may still come back until then), marks
// them failed and releases their reservations; marks failed the uploads
// still receiving whose reservation is gone (their spool was on another
// replica, or lost with its disk: nobody can finish them); and forgets old
// finished records.
func (s *Service) Sweep(ctx context.Context, now time.Time) {
	infos, err := filepath.Glob(filepath.Join(s.cfg.Dir, "*.info"))
	if err != nil {
		return
	}
	for _, info := range infos {
		id := strings.TrimSuffix(filepath.Base(info), ".info")
		data := filepath.Join(s.cfg.Dir, id)
		last := modTime(info)
		if m := modTime(data); m.After(last) {
			last = m
		}
		if last.IsZero() || now.Sub(last) < s.cfg.SpoolTTL {
			continue
		}
		_ = os.Remove(data)
		_ = os.Remove(info)
		if idPattern.MatchString(id) {
			if err := s.cancelled(ctx, id); err != nil {
				s.cfg.Logger.WarnContext(ctx, "releasing stale upload", "upload", id, "err", err)
			}
		}
		s.cfg.Logger.InfoContext(ctx, "removed stale upload spool", "upload", id, "idle", now.Sub(last))
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

func modTime(p string) time.Time {
	fi, err := os.Stat(p)
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}
