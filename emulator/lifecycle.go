package emulator

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
)

// This file is the sandbox state machine: the stored state/desiredState pair,
// the runner-like transitions that complete after TransitionDelay, errors and
// their recovery, and the crons (auto-stop/archive/delete, idle snapshots,
// activity flushes, injected sandbox errors).

const (
	msgStateChange   = "Sandbox state change in progress"
	msgErrored       = "Sandbox is in an errored state"
	maxAutoArchive   = 43200
	createWaitPeriod = 30 * time.Second

	// Error reasons of BreakSandbox. Daytona marks an error recoverable from
	// its reason (the runner's storage errors, e.g. a full disk, can be
	// repaired by expanding the disk); the texts are the emulator's own.
	reasonRecoverable   = "sandbox storage limit reached: no space left on device"
	reasonUnrecoverable = "sandbox container exited unexpectedly"
)

func isErrorState(st string) bool { return st == stError || st == stBuildFailed }

// inTransition is Daytona's "pending or state != desiredState".
func inTransition(sb *sandboxRec) bool {
	return sb.State != sb.DesiredState && !isErrorState(sb.State)
}

// archiving is a stopped sandbox on its way to archived. Unlike the other
// transitions Daytona lets a start or a delete interrupt it (the archive is
// not marked pending).
func archiving(sb *sandboxRec) bool {
	return sb.State == stStopped && sb.DesiredState == stArchived
}

// running reports whether the sandbox's "container" runs, i.e. the toolbox answers.
func running(sb *sandboxRec) bool {
	return sb.State == stStarted || (sb.State == stSnapshotting && sb.PrevState == stStarted)
}

// setStateLocked changes the stored state; like sandbox.repository.ts every
// state change refreshes lastActivityAt.
func (s *Server) setStateLocked(sb *sandboxRec, st string) {
	now := time.Now().UTC()
	sb.State = st
	sb.UpdatedAt = now
	sb.LastActivityAt = now
	s.dropPendingActivityLocked(sb.ID)
	s.notifyLocked()
	s.saveLockedLog()
}

// moveAfter sets the stored state to `to` after d, unless another transition
// (a newer op) has been scheduled since; then runs next, if any, under s.mu.
func (s *Server) moveAfter(d time.Duration, id string, op uint64, to string, next func()) {
	s.schedule(d, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if cur, ok := s.sandboxes[id]; ok && cur.Op == op {
			s.setStateLocked(cur, to)
			if next != nil {
				next()
			}
		}
	})
}

// setDesiredLocked changes desiredState and returns the op token for the
// scheduled completion.
func (s *Server) setDesiredLocked(sb *sandboxRec, desired string) uint64 {
	sb.DesiredState = desired
	sb.UpdatedAt = time.Now().UTC()
	sb.Op++
	s.notifyLocked()
	s.saveLockedLog()
	return sb.Op
}

// findSandboxLocked looks a sandbox up by id, then by name; destroyed ones
// and errored ones being deleted are invisible (404), as in Daytona.
func (s *Server) findSandboxLocked(idOrName string) (*sandboxRec, *httpError) {
	visible := func(sb *sandboxRec) bool {
		if sb.State == stDestroyed {
			return false
		}
		return !(isErrorState(sb.State) && sb.DesiredState == stDestroyed)
	}
	if sb, ok := s.sandboxes[idOrName]; ok && visible(sb) {
		return sb, nil
	}
	for _, sb := range s.sandboxes {
		if sb.Name == idOrName && visible(sb) {
			return sb, nil
		}
	}
	return nil, errf(http.StatusNotFound, fmt.Sprintf("Sandbox with ID or name %s not found", idOrName))
}

// provision lays out a new sandbox root from its snapshot template and
// creates its mount points and volume subpaths, then marks it started.
func (s *Server) provision(id string, op uint64, template string, mounts []mountRec) {
	root := s.sandboxRoot(id)
	err := seedRoot(root, template)
	if err == nil {
		for _, m := range mounts {
			if err = os.MkdirAll(filepath.Join(root, filepath.FromSlash(m.MountPath)), 0o755); err != nil {
				break
			}
			if err = os.MkdirAll(s.volumeHostDir(m), 0o777); err != nil {
				break
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sb, ok := s.sandboxes[id]
	if !ok || sb.Op != op {
		// Deleted while provisioning: do not leave files behind.
		if !ok || sb.DesiredState == stDestroyed {
			_ = os.RemoveAll(root)
		}
		return
	}
	if err != nil {
		s.log.Error("provision sandbox", "sandbox", id, "err", err)
		sb.ErrorReason = err.Error()
		sb.DesiredState = stStarted
		s.setStateLocked(sb, stError)
		return
	}
	s.setStateLocked(sb, stStarted)
}

// volumeHostDir is the directory a mount shows (volume dir plus subpath).
func (s *Server) volumeHostDir(m mountRec) string {
	d := s.volumeDir(m.VolumeID)
	if m.Subpath != "" {
		d = filepath.Join(d, filepath.FromSlash(m.Subpath))
	}
	return d
}

// startLocked implements POST /sandbox/{id}/start (sandbox.service.ts start).
// It returns whether the caller should wait for started: the controller waits
// up to 30 s unless the sandbox is archived, restoring or started.
//
// From archived the sandbox stays archived with desiredState started for
// RestoreDelay (Daytona picks a runner and checks the backup meanwhile; a
// second start gets 409), then restores. A start interrupts an archiving.
func (s *Server) startLocked(sb *sandboxRec) (bool, *httpError) {
	if sb.State == stStarted && sb.DesiredState == stStarted {
		return false, nil
	}
	if isErrorState(sb.State) {
		return false, errf(http.StatusBadRequest, msgErrored)
	}
	if inTransition(sb) && !archiving(sb) {
		return false, errf(http.StatusConflict, msgStateChange)
	}
	if sb.State != stStopped && sb.State != stArchived {
		return false, errf(http.StatusBadRequest, "Sandbox is not in valid state")
	}
	if herr := s.admitResourcesLocked(sb.ID, sb.CPU, sb.Memory, sb.Disk); herr != nil {
		return false, herr
	}
	op := s.setDesiredLocked(sb, stStarted)
	if sb.State == stArchived {
		id, restore := sb.ID, s.opts.TransitionDelay
		s.moveAfter(s.opts.RestoreDelay, id, op, stRestoring, func() {
			s.moveAfter(restore, id, op, stStarted, nil)
		})
		return false, nil
	}
	s.moveAfter(s.opts.TransitionDelay, sb.ID, op, stStarted, nil)
	return true, nil
}

// stopLocked implements POST /sandbox/{id}/stop (ephemeral sandboxes are deleted).
func (s *Server) stopLocked(sb *sandboxRec) *httpError {
	if isErrorState(sb.State) {
		return errf(http.StatusBadRequest, msgErrored)
	}
	if inTransition(sb) {
		return errf(http.StatusConflict, msgStateChange)
	}
	if sb.State != stStarted {
		return errf(http.StatusBadRequest, "Sandbox is not in a stoppable state")
	}
	if sb.AutoDeleteInterval == 0 {
		s.destroyLocked(sb)
		return nil
	}
	op := s.setDesiredLocked(sb, stStopped)
	id := sb.ID
	s.schedule(s.opts.TransitionDelay, func() {
		s.killProcs(id)
		s.mu.Lock()
		defer s.mu.Unlock()
		if cur, ok := s.sandboxes[id]; ok && cur.Op == op {
			s.setStateLocked(cur, stStopped)
		}
	})
	return nil
}

// deleteLocked implements DELETE /sandbox/{id}; an archiving may be interrupted.
func (s *Server) deleteLocked(sb *sandboxRec) *httpError {
	if inTransition(sb) && !archiving(sb) {
		return errf(http.StatusConflict, msgStateChange)
	}
	s.destroyLocked(sb)
	return nil
}

// destroyLocked soft-deletes: renames to DESTROYED_<name>_<ms> (freeing the
// name), shows "destroying", then removes the files and the record.
func (s *Server) destroyLocked(sb *sandboxRec) {
	sb.Name = fmt.Sprintf("DESTROYED_%s_%d", sb.Name, time.Now().UnixMilli())
	op := s.setDesiredLocked(sb, stDestroyed)
	id := sb.ID
	s.schedule(s.opts.TransitionDelay, func() {
		s.killProcs(id)
		if err := os.RemoveAll(s.sandboxRoot(id)); err != nil {
			s.log.Error("remove sandbox root", "sandbox", id, "err", err)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if cur, ok := s.sandboxes[id]; ok && cur.Op == op {
			delete(s.sandboxes, id)
			s.notifyLocked()
			s.saveLockedLog()
		}
	})
}

// archiveLocked moves a stopped sandbox to archived (files are kept).
func (s *Server) archiveLocked(sb *sandboxRec) *httpError {
	if inTransition(sb) {
		return errf(http.StatusConflict, msgStateChange)
	}
	if sb.State != stStopped {
		return errf(http.StatusBadRequest, "Sandbox is not stopped")
	}
	if sb.AutoDeleteInterval == 0 {
		return errf(http.StatusBadRequest, "Ephemeral sandboxes cannot be archived")
	}
	op := s.setDesiredLocked(sb, stArchived)
	s.moveAfter(s.opts.TransitionDelay, sb.ID, op, stArchived, nil)
	return nil
}

// BreakSandbox puts a started sandbox into state error, as when its runner
// reports a failure, so callers' handling of errored sandboxes can be tested.
// A recoverable error can be repaired with POST /sandbox/{id}/recover.
func (s *Server) BreakSandbox(idOrName string, recoverable bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sb, herr := s.findSandboxLocked(idOrName)
	if herr != nil {
		return herr
	}
	if sb.State != stStarted {
		return fmt.Errorf("emulator: sandbox %s is %s, not started", sb.ID, dtoState(sb))
	}
	s.breakLocked(sb, recoverable)
	return nil
}

// breakLocked moves a sandbox to error; its commands die with it and a
// scheduled transition is cancelled. desiredState stays: Daytona keeps what
// the user asked for. Caller holds s.mu.
func (s *Server) breakLocked(sb *sandboxRec, recoverable bool) {
	sb.Op++
	sb.Recoverable = recoverable
	sb.ErrorReason = reasonUnrecoverable
	if recoverable {
		sb.ErrorReason = reasonRecoverable
	}
	s.setStateLocked(sb, stError)
	id := sb.ID
	s.schedule(0, func() { s.killProcs(id) })
}

// recoverLocked implements POST /sandbox/{id}/recover (sandbox.service.ts
// recover, in place): the error is repaired and the sandbox stopped, then
// started like POST start unless skipStart. It returns whether the caller
// should wait for started.
func (s *Server) recoverLocked(sb *sandboxRec, skipStart bool) (bool, *httpError) {
	if !sb.Recoverable {
		return false, errf(http.StatusBadRequest, "Sandbox is not in a recoverable state")
	}
	if sb.State != stError {
		return false, errf(http.StatusBadRequest, "Sandbox must be in error state to recover")
	}
	// Leaving error makes the sandbox use disk again; the start below admits
	// CPU and memory.
	if herr := s.admitResourcesLocked(sb.ID, 0, 0, sb.Disk); herr != nil {
		return false, herr
	}
	sb.Op++
	sb.ErrorReason, sb.Recoverable = "", false
	sb.DesiredState = stStopped
	s.setStateLocked(sb, stStopped)
	if skipStart {
		return false, nil
	}
	return s.startLocked(sb)
}

// snapshotSandboxLocked implements POST /sandbox/{id}/snapshot: the sandbox
// shows "snapshotting", its root is copied into a new active snapshot's
// template, and it returns to its previous state (also on failure). A
// duplicate name fails silently, as in Daytona.
func (s *Server) snapshotSandboxLocked(sb *sandboxRec, name string) *httpError {
	if inTransition(sb) {
		return errf(http.StatusConflict, msgStateChange)
	}
	if sb.State != stStarted && sb.State != stStopped {
		return errf(http.StatusBadRequest, "Sandbox must be in started or stopped state to create a snapshot")
	}
	sb.PrevState = sb.State
	sb.Op++
	op := sb.Op
	s.setStateLocked(sb, stSnapshotting)
	id, cpu, mem, disk := sb.ID, sb.CPU, sb.Memory, sb.Disk
	s.schedule(s.opts.TransitionDelay, func() {
		snapID := uuid.NewString()
		dir := s.snapshotDir(snapID)
		err := copyTree(s.sandboxRoot(id), dir)
		s.mu.Lock()
		defer s.mu.Unlock()
		dup := s.findSnapshotByNameLocked(name) != nil
		switch {
		case err != nil:
			s.log.Error("snapshot sandbox", "sandbox", id, "err", err)
			_ = os.RemoveAll(dir)
		case dup:
			s.log.Warn("snapshot name already exists; snapshot dropped", "sandbox", id, "name", name)
			_ = os.RemoveAll(dir)
		default:
			now := time.Now().UTC()
			s.snapshots[snapID] = &snapshotRec{
				ID: snapID, Name: name, ImageName: name, State: "active",
				CPU: cpu, Mem: mem, Disk: disk, CreatedAt: now, UpdatedAt: now,
			}
		}
		if cur, ok := s.sandboxes[id]; ok && cur.Op == op && cur.State == stSnapshotting {
			prev := cur.PrevState
			cur.PrevState = ""
			s.setStateLocked(cur, prev)
		} else {
			s.notifyLocked()
			s.saveLockedLog()
		}
	})
	return nil
}

// cronLoop runs the sandbox crons every CronInterval (auto-stop, auto-archive
// and auto-delete measured from lastActivityAt as in
// managers/sandbox.manager.ts, injected sandbox errors), flushes buffered
// activity every Activity.Flush, and looks for idle snapshots every 10
// minutes of TimeUnit (snapshot.manager.ts deactivateOldSnapshots).
func (s *Server) cronLoop() {
	defer s.wg.Done()
	crons := time.NewTicker(s.opts.CronInterval)
	defer crons.Stop()
	flush := time.NewTicker(s.opts.Activity.Flush)
	defer flush.Stop()
	snapshots := time.NewTicker(10 * s.opts.TimeUnit)
	defer snapshots.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-crons.C:
			s.runCrons(time.Now().UTC())
		case <-flush.C:
			s.mu.Lock()
			s.flushActivityLocked()
			s.mu.Unlock()
		case <-snapshots.C:
			s.mu.Lock()
			s.deactivateIdleSnapshotsLocked(time.Now().UTC())
			s.mu.Unlock()
		}
	}
}

func (s *Server) runCrons(now time.Time) {
	unit := s.opts.TimeUnit
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sb := range s.sandboxes {
		idle := now.Sub(sb.LastActivityAt)
		switch {
		case sb.State == stStarted && sb.DesiredState == stStarted:
			if broken, recoverable := s.faults.breaks(); broken {
				s.log.Info("injected sandbox error", "sandbox", sb.ID, "recoverable", recoverable)
				s.breakLocked(sb, recoverable)
				continue
			}
			if sb.AutoStopInterval > 0 && idle > time.Duration(sb.AutoStopInterval)*unit {
				s.log.Info("auto-stop", "sandbox", sb.ID)
				if err := s.stopLocked(sb); err != nil {
					s.log.Warn("auto-stop failed", "sandbox", sb.ID, "err", err)
				}
			}
		case sb.State == stStopped && sb.DesiredState == stStopped && sb.AutoDeleteInterval >= 0 &&
			idle > time.Duration(sb.AutoDeleteInterval)*unit:
			s.log.Info("auto-delete", "sandbox", sb.ID)
			s.destroyLocked(sb)
		case sb.State == stStopped && sb.DesiredState == stStopped:
			iv := sb.AutoArchiveInterval
			if iv <= 0 || iv > maxAutoArchive {
				iv = maxAutoArchive
			}
			if idle > time.Duration(iv)*unit {
				s.log.Info("auto-archive", "sandbox", sb.ID)
				if err := s.archiveLocked(sb); err != nil {
					s.log.Warn("auto-archive failed", "sandbox", sb.ID, "err", err)
				}
			}
		}
	}
}

// validateMountPath applies volume-mount-path-validation.util.ts.
func validateMountPath(p string) error {
	switch {
	case !strings.HasPrefix(p, "/"):
		return fmt.Errorf("Invalid mount path %s: must be absolute", p)
	case p == "/" || p == "//":
		return fmt.Errorf("Invalid mount path %s: cannot mount to the root directory", p)
	case strings.Contains(p, "/../") || strings.Contains(p, "/./") || strings.HasSuffix(p, "/..") || strings.HasSuffix(p, "/."):
		return fmt.Errorf("Invalid mount path %s: cannot contain relative path components", p)
	case strings.Contains(p[1:], "//"):
		return fmt.Errorf("Invalid mount path %s: cannot contain consecutive slashes", p)
	}
	for _, sys := range []string{"/proc", "/sys", "/dev", "/boot", "/etc", "/bin", "/sbin", "/lib", "/lib64"} {
		if p == sys || strings.HasPrefix(p, sys+"/") {
			return fmt.Errorf("Invalid mount path %s: cannot mount to system directory %s", p, sys)
		}
	}
	return nil
}

// validateSubpath checks a volume subpath (an S3 prefix).
func validateSubpath(p string) error {
	if strings.HasPrefix(p, "/") || strings.Contains(p, "..") || strings.Contains(p, "//") || strings.ContainsRune(p, 0) {
		return fmt.Errorf("Invalid subpath %s: must be a relative path without '..' or '//'", p)
	}
	return nil
}
