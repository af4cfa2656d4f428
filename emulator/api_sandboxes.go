package emulator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// createSandboxReq is CreateSandbox; pointers tell "absent" from zero.
type createSandboxReq struct {
	Name                *string           `json:"name"`
	Snapshot            *string           `json:"snapshot"`
	User                *string           `json:"user"`
	Env                 map[string]string `json:"env"`
	Labels              map[string]string `json:"labels"`
	Public              *bool             `json:"public"`
	NetworkBlockAll     *bool             `json:"networkBlockAll"`
	NetworkAllowList    *string           `json:"networkAllowList"`
	DomainAllowList     *string           `json:"domainAllowList"`
	Target              *string           `json:"target"`
	CPU                 *int              `json:"cpu"`
	GPU                 *int              `json:"gpu"`
	Memory              *int              `json:"memory"`
	Disk                *int              `json:"disk"`
	AutoStopInterval    *int              `json:"autoStopInterval"`
	AutoArchiveInterval *int              `json:"autoArchiveInterval"`
	AutoDeleteInterval  *int              `json:"autoDeleteInterval"`
	Volumes             []mountRec        `json:"volumes"`
	BuildInfo           *struct {
		DockerfileContent string   `json:"dockerfileContent"`
		ContextHashes     []string `json:"contextHashes"`
	} `json:"buildInfo"`
}

func nonZero(p *int) bool { return p != nil && *p != 0 }

func orDefault[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

// decodeJSON decodes a request body, answering 400 like Nest's ValidationPipe.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(v); err != nil {
		writeAPIError(w, r, http.StatusBadRequest, "Invalid request body: "+err.Error())
		return false
	}
	return true
}

// handleCreateSandbox is POST /sandbox: validate the body, build the record,
// admit it (snapshot, organisation limits, volumes, name), then provision it
// in the background and, like the API, wait up to 30 s for started.
func (s *Server) handleCreateSandbox(w http.ResponseWriter, r *http.Request) {
	var req createSandboxReq
	if !decodeJSON(w, r, &req) {
		return
	}
	if herr := validateCreate(&req); herr != nil {
		writeAPIError(w, r, herr.status, herr.msg)
		return
	}
	sb := newSandboxRec(&req, time.Now().UTC())
	s.mu.Lock()
	template, herr := s.admitSandboxLocked(&req, sb)
	s.mu.Unlock()
	if herr != nil {
		writeAPIError(w, r, herr.status, herr.msg)
		return
	}
	mounts := append([]mountRec(nil), sb.Volumes...)
	s.schedule(s.opts.TransitionDelay+s.opts.Faults.SlowCreate, func() { s.provision(sb.ID, 1, template, mounts) })
	s.waitStarted(r, sb.ID)
	s.writeStartedAnswer(w, r, sb.ID, sb.ID)
}

// validateCreate applies the checks Daytona makes on the body alone.
func validateCreate(req *createSandboxReq) *httpError {
	switch {
	case req.BuildInfo != nil && req.Snapshot != nil && *req.Snapshot != "":
		return errf(http.StatusBadRequest, "Cannot specify a snapshot when using a build info entry")
	case req.BuildInfo == nil && (nonZero(req.CPU) || nonZero(req.GPU) || nonZero(req.Memory) || nonZero(req.Disk)):
		return errf(http.StatusBadRequest, "Cannot specify Sandbox resources when using a snapshot")
	case req.AutoStopInterval != nil && *req.AutoStopInterval < 0:
		return errf(http.StatusBadRequest, "Auto-stop interval must be non-negative")
	case req.AutoArchiveInterval != nil && *req.AutoArchiveInterval < 0:
		return errf(http.StatusBadRequest, "Auto-archive interval must be non-negative")
	}
	for _, m := range req.Volumes {
		if err := validateMountPath(m.MountPath); err != nil {
			return errf(http.StatusBadRequest, err.Error())
		}
		if err := validateSubpath(m.Subpath); err != nil {
			return errf(http.StatusBadRequest, err.Error())
		}
	}
	return nil
}

// newSandboxRec builds the record of a sandbox about to be created, with
// Daytona's defaults for everything the body leaves out.
func newSandboxRec(req *createSandboxReq, now time.Time) *sandboxRec {
	id := uuid.NewString()
	sb := &sandboxRec{
		ID:                  id,
		Name:                orDefault(req.Name, ""),
		User:                orDefault(req.User, ""),
		Env:                 copyMap(req.Env),
		Labels:              copyMap(req.Labels),
		Public:              orDefault(req.Public, false),
		NetworkBlockAll:     orDefault(req.NetworkBlockAll, false),
		NetworkAllowList:    orDefault(req.NetworkAllowList, ""),
		DomainAllowList:     orDefault(req.DomainAllowList, ""),
		Target:              orDefault(req.Target, ""),
		CPU:                 1,
		Memory:              1,
		Disk:                3,
		State:               stUnknown,
		DesiredState:        stStarted,
		AutoStopInterval:    orDefault(req.AutoStopInterval, 15),
		AutoArchiveInterval: orDefault(req.AutoArchiveInterval, 10080),
		AutoDeleteInterval:  orDefault(req.AutoDeleteInterval, -1),
		Volumes:             []mountRec{},
		CreatedAt:           now,
		UpdatedAt:           now,
		LastActivityAt:      now,
		Op:                  1,
	}
	if sb.Name == "" {
		sb.Name = id
	}
	if sb.User == "" {
		sb.User = "daytona"
	}
	if sb.Target == "" {
		sb.Target = defaultTarget
	}
	if sb.AutoArchiveInterval == 0 || sb.AutoArchiveInterval > maxAutoArchive {
		sb.AutoArchiveInterval = maxAutoArchive
	}
	if req.BuildInfo != nil {
		sb.CPU = orDefault(req.CPU, 1)
		sb.GPU = orDefault(req.GPU, 0)
		sb.Memory = orDefault(req.Memory, 1)
		sb.Disk = orDefault(req.Disk, 3)
		sb.BuildInfo = &buildInfoRec{
			DockerfileContent: req.BuildInfo.DockerfileContent,
			ContextHashes:     req.BuildInfo.ContextHashes,
			SnapshotRef:       "daytona-emulator/build-" + id[:8] + ":latest",
			CreatedAt:         now,
		}
	}
	return sb
}

// admitSandboxLocked runs createFromSnapshot's checks in Daytona's order (the
// snapshot, suspension and the organisation's limits, the volumes, the name)
// and inserts the sandbox. It returns the template directory the sandbox root
// is seeded from. Caller holds s.mu.
func (s *Server) admitSandboxLocked(req *createSandboxReq, sb *sandboxRec) (string, *httpError) {
	var snap *snapshotRec
	if req.Snapshot != nil && *req.Snapshot != "" {
		sn, herr := s.activeSnapshotLocked(*req.Snapshot)
		if herr != nil {
			return "", herr
		}
		snap = sn
		sb.Snapshot = sn.Name
		sb.CPU, sb.GPU, sb.Memory, sb.Disk = sn.CPU, sn.GPU, sn.Mem, sn.Disk
	}
	if herr := s.admitResourcesLocked("", sb.CPU, sb.Memory, sb.Disk); herr != nil {
		return "", herr
	}
	mounts, herr := s.resolveMountsLocked(req.Volumes)
	if herr != nil {
		return "", herr
	}
	for _, other := range s.sandboxes {
		if other.Name == sb.Name && other.State != stDestroyed {
			return "", errf(http.StatusConflict, fmt.Sprintf("Sandbox with name %s already exists", sb.Name))
		}
	}
	now := sb.CreatedAt
	template := ""
	if snap != nil {
		snap.LastUsedAt = &now
		template = s.snapshotDir(snap.ID)
	}
	for _, m := range mounts {
		s.volumes[m.VolumeID].LastUsedAt = &now
	}
	sb.Volumes = mounts
	s.sandboxes[sb.ID] = sb
	s.notifyLocked()
	s.saveLockedLog()
	return template, nil
}

// activeSnapshotLocked resolves a create's snapshot, which must exist and be
// active (400 otherwise, e.g. "Snapshot X is inactive"). Caller holds s.mu.
func (s *Server) activeSnapshotLocked(idOrName string) (*snapshotRec, *httpError) {
	sn := s.findSnapshotLocked(idOrName)
	if sn == nil {
		return nil, errf(http.StatusBadRequest, fmt.Sprintf("Snapshot %s not found. Did you add it through the Daytona Dashboard?", idOrName))
	}
	if sn.State != "active" {
		return nil, errf(http.StatusBadRequest, fmt.Sprintf("Snapshot %s is %s", idOrName, sn.State))
	}
	return sn, nil
}

// resolveMountsLocked resolves each mount's volume (by id or name; 404 when
// unknown, 400 when not ready) to its id. Caller holds s.mu.
func (s *Server) resolveMountsLocked(req []mountRec) ([]mountRec, *httpError) {
	mounts := make([]mountRec, 0, len(req))
	for _, m := range req {
		v := s.findVolumeLocked(m.VolumeID)
		if v == nil {
			return nil, errf(http.StatusNotFound, fmt.Sprintf("Volume '%s' not found", m.VolumeID))
		}
		if v.State != "ready" {
			return nil, errf(http.StatusBadRequest, fmt.Sprintf("Volume '%s' is not in a ready state. Current state: %s", v.Name, v.State))
		}
		mounts = append(mounts, mountRec{VolumeID: v.ID, MountPath: m.MountPath, Subpath: m.Subpath})
	}
	return mounts, nil
}

// waitStarted waits, like the API's waitForSandboxStarted (up to 30 s), until
// the sandbox is started, errored, gone or no longer meant to start.
func (s *Server) waitStarted(r *http.Request, id string) {
	s.waitFor(r.Context(), createWaitPeriod, func() bool {
		cur, ok := s.sandboxes[id]
		return !ok || cur.State == stStarted || isErrorState(cur.State) || cur.DesiredState != stStarted
	})
}

func (s *Server) handleGetSandbox(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sb, herr := s.findSandboxLocked(r.PathValue("id"))
	if herr != nil {
		writeAPIError(w, r, herr.status, herr.msg)
		return
	}
	writeJSON(w, http.StatusOK, s.sandboxToDTO(r, sb))
}

// sandboxOp runs op on the sandbox under the lock and answers with its DTO.
func (s *Server) sandboxOp(w http.ResponseWriter, r *http.Request, status int, op func(sb *sandboxRec) *httpError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sb, herr := s.findSandboxLocked(r.PathValue("id"))
	if herr == nil {
		herr = op(sb)
	}
	if herr != nil {
		writeAPIError(w, r, herr.status, herr.msg)
		return
	}
	writeJSON(w, status, s.sandboxToDTO(r, sb))
}

func (s *Server) handleStartSandbox(w http.ResponseWriter, r *http.Request) {
	s.startingOp(w, r, s.startLocked)
}

// handleRecoverSandbox is POST /sandbox/{id}/recover[?skipStart=true].
func (s *Server) handleRecoverSandbox(w http.ResponseWriter, r *http.Request) {
	skipStart := r.URL.Query().Get("skipStart") == "true"
	s.startingOp(w, r, func(sb *sandboxRec) (bool, *httpError) { return s.recoverLocked(sb, skipStart) })
}

// startingOp runs a start-like operation under the lock and answers like the
// start controller: after waiting for started when op asks for it.
func (s *Server) startingOp(w http.ResponseWriter, r *http.Request, op func(sb *sandboxRec) (bool, *httpError)) {
	var (
		id   string
		wait bool
	)
	s.mu.Lock()
	sb, herr := s.findSandboxLocked(r.PathValue("id"))
	if herr == nil {
		id = sb.ID
		wait, herr = op(sb)
	}
	s.mu.Unlock()
	if herr != nil {
		writeAPIError(w, r, herr.status, herr.msg)
		return
	}
	if wait {
		s.waitStarted(r, id)
	}
	s.writeStartedAnswer(w, r, id, r.PathValue("id"))
}

func (s *Server) handleStopSandbox(w http.ResponseWriter, r *http.Request) {
	s.sandboxOp(w, r, http.StatusOK, s.stopLocked)
}

func (s *Server) handleDeleteSandbox(w http.ResponseWriter, r *http.Request) {
	s.sandboxOp(w, r, http.StatusOK, s.deleteLocked)
}

func (s *Server) handleArchiveSandbox(w http.ResponseWriter, r *http.Request) {
	s.sandboxOp(w, r, http.StatusOK, s.archiveLocked)
}

func (s *Server) handleReplaceLabels(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Labels map[string]string `json:"labels"`
	}
	if !decodeJSON(w, r, &req) {
		return
	}
	if req.Labels == nil {
		writeAPIError(w, r, http.StatusBadRequest, "labels must be an object")
		return
	}
	// The code returns the full Sandbox DTO (the OpenAPI says SandboxLabels).
	s.sandboxOp(w, r, http.StatusOK, func(sb *sandboxRec) *httpError {
		sb.Labels = copyMap(req.Labels)
		sb.UpdatedAt = time.Now().UTC()
		s.saveLockedLog()
		return nil
	})
}

type intervalKind int

const (
	intervalAutoStop intervalKind = iota
	intervalAutoArchive
	intervalAutoDelete
)

// handleSetInterval serves autostop/autoarchive/autodelete. Nest's default
// POST status (201) applies: the controller has no @HttpCode(200).
func (s *Server) handleSetInterval(kind intervalKind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f, err := strconv.ParseFloat(r.PathValue("interval"), 64)
		if err != nil {
			writeAPIError(w, r, http.StatusBadRequest, "Validation failed (numeric string is expected)")
			return
		}
		n := int(f)
		s.sandboxOp(w, r, http.StatusCreated, func(sb *sandboxRec) *httpError {
			switch kind {
			case intervalAutoStop:
				if n < 0 {
					return errf(http.StatusBadRequest, "Auto-stop interval must be non-negative")
				}
				sb.AutoStopInterval = n
			case intervalAutoArchive:
				if n < 0 {
					return errf(http.StatusBadRequest, "Auto-archive interval must be non-negative")
				}
				if n == 0 || n > maxAutoArchive {
					n = maxAutoArchive
				}
				sb.AutoArchiveInterval = n
			case intervalAutoDelete:
				sb.AutoDeleteInterval = n
			}
			sb.UpdatedAt = time.Now().UTC()
			s.saveLockedLog()
			return nil
		})
	}
}

// handleLastActivity is POST /sandbox/{id}/last-activity: 201 at once, the
// update itself throttled and buffered (see ActivityTimings).
func (s *Server) handleLastActivity(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sb, herr := s.findSandboxLocked(r.PathValue("id"))
	if herr != nil {
		writeAPIError(w, r, herr.status, herr.msg)
		return
	}
	s.recordActivityLocked(sb.ID, time.Now().UTC())
	w.WriteHeader(http.StatusCreated)
}

func (s *Server) handleToolboxProxyURL(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	_, herr := s.findSandboxLocked(r.PathValue("id"))
	s.mu.Unlock()
	if herr != nil {
		writeAPIError(w, r, herr.status, herr.msg)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"url": s.toolboxBase(r)})
}

func (s *Server) handleSandboxSnapshot(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name          string `json:"name"`
		IncludeMemory bool   `json:"includeMemory"`
	}
	if !decodeJSON(w, r, &req) {
		return
	}
	if strings.TrimSpace(req.Name) == "" {
		writeAPIError(w, r, http.StatusBadRequest, "name must be a string")
		return
	}
	if req.IncludeMemory {
		writeAPIError(w, r, http.StatusBadRequest, "includeMemory is only supported for Windows sandboxes")
		return
	}
	s.sandboxOp(w, r, http.StatusOK, func(sb *sandboxRec) *httpError {
		return s.snapshotSandboxLocked(sb, req.Name)
	})
}

// writeStartedAnswer answers a create or start after its wait, as Daytona does: the
// latest DTO, or 400 "Sandbox failed to start" when it ended in an error state, or 404
// when it is gone (named as the client named it).
func (s *Server) writeStartedAnswer(w http.ResponseWriter, r *http.Request, id, asNamed string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.sandboxes[id]
	if !ok {
		writeAPIError(w, r, http.StatusNotFound, fmt.Sprintf("Sandbox with ID or name %s not found", asNamed))
		return
	}
	if isErrorState(cur.State) {
		writeAPIError(w, r, http.StatusBadRequest, "Sandbox failed to start: "+cur.ErrorReason)
		return
	}
	writeJSON(w, http.StatusOK, s.sandboxToDTO(r, cur))
}
