package emulator

import (
	"fmt"
	"math"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// snapshotNameRe is Daytona's CreateSnapshot name rule.
func snapshotNameRe() *regexp.Regexp {
	return regexp.MustCompile(`^[a-zA-Z0-9_.\-:]+(/[a-zA-Z0-9_.\-:]+)*(@sha256:[a-f0-9]{64})?$`)
}

// findSnapshotLocked resolves a snapshot by id, then by name.
func (s *Server) findSnapshotLocked(idOrName string) *snapshotRec {
	if sn, ok := s.snapshots[idOrName]; ok {
		return sn
	}
	return s.findSnapshotByNameLocked(idOrName)
}

func (s *Server) findSnapshotByNameLocked(name string) *snapshotRec {
	for _, sn := range s.snapshots {
		if sn.Name == name {
			return sn
		}
	}
	return nil
}

// validateImageName requires an explicit tag or digest that is not "latest".
func validateImageName(img string) error {
	if strings.Contains(img, "@sha256:") {
		return nil
	}
	lastSlash := strings.LastIndex(img, "/")
	tagSep := strings.LastIndex(img, ":")
	if tagSep <= lastSlash || tagSep == len(img)-1 {
		return fmt.Errorf("Image name must include a tag (e.g., ubuntu:22.04)")
	}
	if img[tagSep+1:] == "latest" {
		return fmt.Errorf("Images with tag \":latest\" are not allowed")
	}
	return nil
}

func (s *Server) handleCreateSnapshot(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name       string   `json:"name"`
		ImageName  string   `json:"imageName"`
		Entrypoint []string `json:"entrypoint"`
		CPU        *int     `json:"cpu"`
		GPU        *int     `json:"gpu"`
		Memory     *int     `json:"memory"`
		Disk       *int     `json:"disk"`
		BuildInfo  *struct {
			DockerfileContent string   `json:"dockerfileContent"`
			ContextHashes     []string `json:"contextHashes"`
		} `json:"buildInfo"`
	}
	if !decodeJSON(w, r, &req) {
		return
	}
	switch {
	case req.Name == "" || !snapshotNameRe().MatchString(req.Name):
		writeAPIError(w, r, http.StatusBadRequest, "Invalid snapshot name. Name must match "+snapshotNameRe().String())
		return
	case req.BuildInfo != nil && req.ImageName != "":
		writeAPIError(w, r, http.StatusBadRequest, "Cannot specify an image name when using a build info entry")
		return
	case req.BuildInfo != nil && len(req.Entrypoint) > 0:
		writeAPIError(w, r, http.StatusBadRequest, "Cannot specify an entrypoint when using a build info entry")
		return
	case req.BuildInfo == nil && req.ImageName == "":
		writeAPIError(w, r, http.StatusBadRequest, "Must specify an image name when not using a build info entry")
		return
	}
	if req.BuildInfo == nil {
		if err := validateImageName(req.ImageName); err != nil {
			writeAPIError(w, r, http.StatusBadRequest, err.Error())
			return
		}
	}
	now := time.Now().UTC()
	sn := &snapshotRec{
		ID:         uuid.NewString(),
		Name:       req.Name,
		ImageName:  req.ImageName,
		State:      "pending",
		Entrypoint: req.Entrypoint,
		CPU:        orDefault(req.CPU, 1),
		GPU:        orDefault(req.GPU, 0),
		Mem:        orDefault(req.Memory, 1),
		Disk:       orDefault(req.Disk, 3),
		CreatedAt:  now,
		UpdatedAt:  now,
		Op:         1,
	}
	phase := "pulling"
	if req.BuildInfo != nil {
		phase = "building"
		sn.BuildInfo = &buildInfoRec{
			DockerfileContent: req.BuildInfo.DockerfileContent,
			ContextHashes:     req.BuildInfo.ContextHashes,
			SnapshotRef:       "daytona-emulator/snapshot-" + sn.ID[:8] + ":latest",
			CreatedAt:         now,
		}
		sn.ImageName = sn.BuildInfo.SnapshotRef
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.findSnapshotByNameLocked(req.Name) != nil {
		writeAPIError(w, r, http.StatusConflict, fmt.Sprintf("Snapshot with name \"%s\" already exists for this organization", req.Name))
		return
	}
	s.snapshots[sn.ID] = sn
	s.saveLockedLog()
	s.runSnapshotPull(sn.ID, 1, phase)
	writeJSON(w, http.StatusOK, snapshotToDTO(sn))
}

// runSnapshotPull moves a snapshot pending → phase → active in the
// background. An image snapshot is an empty template seeded with /home/daytona.
// The second step is scheduled by the first, never beside it: two timers'
// goroutines may run in either order on a loaded machine, and a last step run
// first would find the snapshot still pending and leave it in phase forever.
func (s *Server) runSnapshotPull(id string, op uint64, phase string) {
	d := s.opts.TransitionDelay / 2
	step := func(from, to string) bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		cur, ok := s.snapshots[id]
		if !ok || cur.Op != op || cur.State != from {
			return false
		}
		cur.State = to
		cur.UpdatedAt = time.Now().UTC()
		if to == "active" {
			size := 0.0
			cur.Size = &size
		}
		s.notifyLocked()
		s.saveLockedLog()
		return true
	}
	finish := func() {
		err := os.MkdirAll(s.snapshotDir(id)+"/home/daytona", 0o755)
		if err != nil {
			s.mu.Lock()
			if cur, ok := s.snapshots[id]; ok && cur.Op == op {
				cur.State, cur.ErrorReason = "error", err.Error()
				s.notifyLocked()
				s.saveLockedLog()
			}
			s.mu.Unlock()
			return
		}
		step(phase, "active")
	}
	s.schedule(d, func() {
		if step("pending", phase) {
			s.schedule(d, finish)
		}
	})
}

func (s *Server) handleGetSnapshot(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sn := s.findSnapshotLocked(r.PathValue("id"))
	if sn == nil {
		writeAPIError(w, r, http.StatusNotFound, fmt.Sprintf("Snapshot with ID or name %s not found", r.PathValue("id")))
		return
	}
	writeJSON(w, http.StatusOK, snapshotToDTO(sn))
}

func (s *Server) handleListSnapshots(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	page, limit := 1, 100
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeAPIError(w, r, http.StatusBadRequest, "page must not be less than 1")
			return
		}
		page = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 200 {
			writeAPIError(w, r, http.StatusBadRequest, "limit must not be less than 1, limit must not be greater than 200")
			return
		}
		limit = n
	}
	name := strings.ToLower(q.Get("name"))
	sortField, desc := q.Get("sort"), q.Get("order") != "asc"
	if sortField == "" {
		sortField = "lastUsedAt"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var all []*snapshotRec
	for _, sn := range s.snapshots {
		if name == "" || strings.Contains(strings.ToLower(sn.Name), name) {
			all = append(all, sn)
		}
	}
	key := func(sn *snapshotRec) string {
		switch sortField {
		case "name":
			return sn.Name
		case "state":
			return sn.State
		case "createdAt":
			return sn.CreatedAt.Format(time.RFC3339Nano)
		default:
			if sn.LastUsedAt == nil {
				return ""
			}
			return sn.LastUsedAt.Format(time.RFC3339Nano)
		}
	}
	sort.Slice(all, func(i, j int) bool {
		ki, kj := key(all[i]), key(all[j])
		if ki == kj {
			return all[i].CreatedAt.After(all[j].CreatedAt) == desc
		}
		return (ki > kj) == desc
	})
	total := len(all)
	start := (page - 1) * limit
	items := []snapshotDTO{}
	for i := start; i < total && i < start+limit; i++ {
		items = append(items, snapshotToDTO(all[i]))
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"items":      items,
		"total":      total,
		"page":       page,
		"totalPages": int(math.Ceil(float64(total) / float64(limit))),
	})
}

// snapshotByUUID implements the ParseUUIDPipe plus lookup used by
// activate/deactivate/remove.
func (s *Server) snapshotByUUIDLocked(w http.ResponseWriter, r *http.Request) *snapshotRec {
	id := r.PathValue("id")
	if _, err := uuid.Parse(id); err != nil {
		writeAPIError(w, r, http.StatusBadRequest, "Validation failed (uuid is expected)")
		return nil
	}
	sn, ok := s.snapshots[id]
	if !ok {
		writeAPIError(w, r, http.StatusNotFound, fmt.Sprintf("Snapshot with ID %s not found", id))
		return nil
	}
	return sn
}

func (s *Server) handleActivateSnapshot(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sn := s.snapshotByUUIDLocked(w, r)
	if sn == nil {
		return
	}
	switch {
	case sn.State == "active":
		writeAPIError(w, r, http.StatusBadRequest, fmt.Sprintf("Snapshot %s is already active", sn.Name))
		return
	case sn.State != "inactive":
		writeAPIError(w, r, http.StatusBadRequest, fmt.Sprintf("Snapshot %s cannot be activated - it is in %s state", sn.Name, sn.State))
		return
	case sn.DeactivatedAt != nil && time.Since(*sn.DeactivatedAt) < 10*s.opts.TimeUnit:
		writeAPIError(w, r, http.StatusBadRequest, "Snapshot deactivation is still in progress. Please try again in a few minutes.")
		return
	}
	// Daytona counts an activation as a use (snapshot.service.ts activateSnapshot sets
	// lastUsedAt): without it, a snapshot re-activated after its idle limit would be
	// deactivated again by the next sweep, before anyone could create from it.
	now := time.Now().UTC()
	sn.Op++
	sn.State = "pending"
	sn.UpdatedAt = now
	sn.LastUsedAt = &now
	s.saveLockedLog()
	s.runSnapshotPull(sn.ID, sn.Op, "pulling")
	writeJSON(w, http.StatusOK, snapshotToDTO(sn))
}

func (s *Server) handleDeactivateSnapshot(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sn := s.snapshotByUUIDLocked(w, r)
	if sn == nil {
		return
	}
	if sn.State != "inactive" {
		deactivate(sn, time.Now().UTC())
		s.notifyLocked()
		s.saveLockedLog()
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleRemoveSnapshot(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sn := s.snapshotByUUIDLocked(w, r)
	if sn == nil {
		return
	}
	sn.Op++
	op := sn.Op
	sn.State = "removing"
	sn.UpdatedAt = time.Now().UTC()
	s.notifyLocked()
	s.saveLockedLog()
	id := sn.ID
	s.schedule(s.opts.TransitionDelay, func() {
		if err := os.RemoveAll(s.snapshotDir(id)); err != nil {
			s.log.Error("remove snapshot template", "snapshot", id, "err", err)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if cur, ok := s.snapshots[id]; ok && cur.Op == op {
			delete(s.snapshots, id)
			s.notifyLocked()
			s.saveLockedLog()
		}
	})
	w.WriteHeader(http.StatusOK)
}

// deactivateIdleSnapshotsLocked makes active snapshots unused for
// SnapshotIdleLimit inactive, as Daytona's cron does after two weeks; a
// create from one then answers 400 "Snapshot X is inactive" until it is
// activated again. "Unused" is measured from the last sandbox created from it,
// or from its creation. Activation does not reset that clock (Daytona's does
// not either): an activated snapshot that is not used before the next sweep
// becomes inactive again. Caller holds s.mu.
func (s *Server) deactivateIdleSnapshotsLocked(now time.Time) {
	changed := false
	for _, sn := range s.snapshots {
		last := sn.CreatedAt
		if sn.LastUsedAt != nil {
			last = *sn.LastUsedAt
		}
		if sn.State != "active" || now.Sub(last) <= s.opts.SnapshotIdleLimit {
			continue
		}
		s.log.Info("snapshot idle: deactivated", "snapshot", sn.Name)
		deactivate(sn, now)
		changed = true
	}
	if changed {
		s.notifyLocked()
		s.saveLockedLog()
	}
}

// deactivate makes a snapshot inactive (cancelling a pull in flight).
func deactivate(sn *snapshotRec, now time.Time) {
	sn.Op++
	sn.State = "inactive"
	sn.UpdatedAt = now
	sn.DeactivatedAt = &now
}
