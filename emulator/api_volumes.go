package emulator

import (
	"fmt"
	"net/http"
	"os"
	"sort"
	"time"

	"github.com/google/uuid"
)

// findVolumeLocked resolves a volume by id or name, ignoring deleted ones.
func (s *Server) findVolumeLocked(idOrName string) *volumeRec {
	if v, ok := s.volumes[idOrName]; ok && v.State != "deleted" {
		return v
	}
	for _, v := range s.volumes {
		if v.Name == idOrName && v.State != "deleted" {
			return v
		}
	}
	return nil
}

// setVolumeStateLocked records a volume state change.
func (s *Server) setVolumeStateLocked(v *volumeRec, st string) {
	v.State = st
	v.UpdatedAt = time.Now().UTC()
	s.notifyLocked()
	s.saveLockedLog()
}

func (s *Server) handleCreateVolume(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name string `json:"name"`
	}
	if !decodeJSON(w, r, &req) {
		return
	}
	now := time.Now().UTC()
	id := uuid.NewString()
	if req.Name == "" {
		req.Name = id
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if herr := s.admitVolumeLocked(); herr != nil {
		writeAPIError(w, r, herr.status, herr.msg)
		return
	}
	for _, v := range s.volumes {
		if v.Name == req.Name && v.State != "deleted" {
			// Daytona answers 400 (not 409) for a duplicate volume name.
			writeAPIError(w, r, http.StatusBadRequest, fmt.Sprintf("Volume with name %s already exists", req.Name))
			return
		}
	}
	v := &volumeRec{ID: id, Name: req.Name, State: "pending_create", CreatedAt: now, UpdatedAt: now}
	s.volumes[id] = v
	s.saveLockedLog()
	d := s.opts.TransitionDelay / 2
	s.schedule(d, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if cur, ok := s.volumes[id]; ok && cur.State == "pending_create" {
			s.setVolumeStateLocked(cur, "creating")
		}
	})
	s.schedule(2*d, func() {
		err := os.MkdirAll(s.volumeDir(id), 0o777)
		s.mu.Lock()
		defer s.mu.Unlock()
		cur, ok := s.volumes[id]
		if !ok || (cur.State != "creating" && cur.State != "pending_create") {
			return
		}
		if err != nil {
			cur.ErrorReason = err.Error()
			s.setVolumeStateLocked(cur, "error")
			return
		}
		s.setVolumeStateLocked(cur, "ready")
	})
	writeJSON(w, http.StatusOK, volumeToDTO(v))
}

func (s *Server) handleGetVolume(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.volumes[r.PathValue("id")]
	if !ok {
		writeAPIError(w, r, http.StatusNotFound, fmt.Sprintf("Volume with ID %s not found", r.PathValue("id")))
		return
	}
	writeJSON(w, http.StatusOK, volumeToDTO(v))
}

func (s *Server) handleGetVolumeByName(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name := r.PathValue("name")
	for _, v := range s.volumes {
		if v.Name == name && v.State != "deleted" {
			writeJSON(w, http.StatusOK, volumeToDTO(v))
			return
		}
	}
	writeAPIError(w, r, http.StatusNotFound, fmt.Sprintf("Volume with name %s not found", name))
}

func (s *Server) handleListVolumes(w http.ResponseWriter, r *http.Request) {
	includeDeleted := r.URL.Query().Get("includeDeleted") == "true"
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]volumeDTO, 0, len(s.volumes))
	vs := make([]*volumeRec, 0, len(s.volumes))
	for _, v := range s.volumes {
		if v.State == "deleted" && !includeDeleted {
			continue
		}
		vs = append(vs, v)
	}
	sort.Slice(vs, func(i, j int) bool { return vs[i].CreatedAt.Before(vs[j].CreatedAt) })
	for _, v := range vs {
		out = append(out, volumeToDTO(v))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleDeleteVolume(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := r.PathValue("id")
	v, ok := s.volumes[id]
	if !ok || v.State == "deleted" {
		writeAPIError(w, r, http.StatusNotFound, fmt.Sprintf("Volume with ID %s not found", id))
		return
	}
	if v.State != "ready" && v.State != "error" {
		writeAPIError(w, r, http.StatusBadRequest, "Volume must be in 'ready' or 'error' state in order to be deleted")
		return
	}
	for _, sb := range s.sandboxes {
		if sb.DesiredState == stDestroyed {
			continue
		}
		for _, m := range sb.Volumes {
			if m.VolumeID == id {
				writeAPIError(w, r, http.StatusConflict, fmt.Sprintf("Volume cannot be deleted because it is in use by one or more sandboxes (e.g. %s)", sb.Name))
				return
			}
		}
	}
	s.setVolumeStateLocked(v, "pending_delete")
	d := s.opts.TransitionDelay / 2
	s.schedule(d, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if cur, ok := s.volumes[id]; ok && cur.State == "pending_delete" {
			s.setVolumeStateLocked(cur, "deleting")
		}
	})
	s.schedule(2*d, func() {
		if err := os.RemoveAll(s.volumeDir(id)); err != nil {
			s.log.Error("remove volume dir", "volume", id, "err", err)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if cur, ok := s.volumes[id]; ok {
			s.setVolumeStateLocked(cur, "deleted")
		}
	})
	w.WriteHeader(http.StatusOK)
}
