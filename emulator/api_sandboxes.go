package emulator

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
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

func (s *Server) handleCreateSandbox(w http.ResponseWriter, r *http.Request) {
	var req createSandboxReq
	if !decodeJSON(w, r, &req) {
		return
	}
	if req.BuildInfo != nil && req.Snapshot != nil && *req.Snapshot != "" {
		writeAPIError(w, r, http.StatusBadRequest, "Cannot specify a snapshot when using a build info entry")
		return
	}
	if req.BuildInfo == nil && (nonZero(req.CPU) || nonZero(req.GPU) || nonZero(req.Memory) || nonZero(req.Disk)) {
		writeAPIError(w, r, http.StatusBadRequest, "Cannot specify Sandbox resources when using a snapshot")
		return
	}
	if req.AutoStopInterval != nil && *req.AutoStopInterval < 0 {
		writeAPIError(w, r, http.StatusBadRequest, "Auto-stop interval must be non-negative")
		return
	}
	if req.AutoArchiveInterval != nil && *req.AutoArchiveInterval < 0 {
		writeAPIError(w, r, http.StatusBadRequest, "Auto-archive interval must be non-negative")
		return
	}
	for _, m := range req.Volumes {
		if err := validateMountPath(m.MountPath); err != nil {
			writeAPIError(w, r, http.StatusBadRequest, err.Error())
			return
		}
		if err := validateSubpath(m.Subpath); err != nil {
			writeAPIError(w, r, http.StatusBadRequest, err.Error())
			return
		}
	}

	now := time.Now().UTC()
	id := uuid.NewString()
	sb := &sandboxRec{
		ID:                  id,
		Name:                orDefault(req.Name, id),
		User:                orDefault(req.User, "daytona"),
		Env:                 copyMap(req.Env),
		Labels:              copyMap(req.Labels),
		Public:              orDefault(req.Public, false),
		NetworkBlockAll:     orDefault(req.NetworkBlockAll, false),
		NetworkAllowList:    orDefault(req.NetworkAllowList, ""),
		DomainAllowList:     orDefault(req.DomainAllowList, ""),
		Target:              orDefault(req.Target, defaultTarget),
		CPU:                 1,
		Memory:              1,
		Disk:                3,
		State:               stUnknown,
		DesiredState:        stStarted,
		AutoStopInterval:    orDefault(req.AutoStopInterval, 15),
		AutoArchiveInterval: orDefault(req.AutoArchiveInterval, 10080),
		AutoDeleteInterval:  orDefault(req.AutoDeleteInterval, -1),
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

	s.mu.Lock()
	template := ""
	if req.Snapshot != nil && *req.Snapshot != "" {
		sn := s.findSnapshotLocked(*req.Snapshot)
		if sn == nil {
			s.mu.Unlock()
			writeAPIError(w, r, http.StatusBadRequest, fmt.Sprintf("Snapshot %s not found. Did you add it through the Daytona Dashboard?", *req.Snapshot))
			return
		}
		if sn.State != "active" {
			s.mu.Unlock()
			writeAPIError(w, r, http.StatusBadRequest, fmt.Sprintf("Snapshot %s is %s", *req.Snapshot, sn.State))
			return
		}
		sb.Snapshot = sn.Name
		sb.CPU, sb.GPU, sb.Memory, sb.Disk = sn.CPU, sn.GPU, sn.Mem, sn.Disk
		sn.LastUsedAt = &now
		template = s.snapshotDir(sn.ID)
	}
	for _, m := range req.Volumes {
		v := s.findVolumeLocked(m.VolumeID)
		if v == nil {
			s.mu.Unlock()
			writeAPIError(w, r, http.StatusNotFound, fmt.Sprintf("Volume '%s' not found", m.VolumeID))
			return
		}
		if v.State != "ready" {
			s.mu.Unlock()
			writeAPIError(w, r, http.StatusBadRequest, fmt.Sprintf("Volume '%s' is not in a ready state. Current state: %s", v.Name, v.State))
			return
		}
		v.LastUsedAt = &now
		sb.Volumes = append(sb.Volumes, mountRec{VolumeID: v.ID, MountPath: m.MountPath, Subpath: m.Subpath})
	}
	if sb.Volumes == nil {
		sb.Volumes = []mountRec{}
	}
	for _, other := range s.sandboxes {
		if other.Name == sb.Name && other.State != stDestroyed {
			s.mu.Unlock()
			writeAPIError(w, r, http.StatusConflict, fmt.Sprintf("Sandbox with name %s already exists", sb.Name))
			return
		}
	}
	s.sandboxes[id] = sb
	s.notifyLocked()
	s.saveLockedLog()
	mounts := append([]mountRec(nil), sb.Volumes...)
	s.mu.Unlock()

	s.schedule(s.opts.TransitionDelay+s.opts.Faults.SlowCreate, func() { s.provision(id, 1, template, mounts) })

	// Like the API, wait (up to 30 s) for started and return the latest DTO.
	s.waitFor(r.Context(), createWaitPeriod, func() bool {
		cur, ok := s.sandboxes[id]
		return !ok || cur.State == stStarted || isErrorState(cur.State)
	})
	s.writeStartedAnswer(w, r, id, id)
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
	var (
		id   string
		wait bool
	)
	s.mu.Lock()
	sb, herr := s.findSandboxLocked(r.PathValue("id"))
	if herr == nil {
		id = sb.ID
		wait, herr = s.startLocked(sb)
	}
	s.mu.Unlock()
	if herr != nil {
		writeAPIError(w, r, herr.status, herr.msg)
		return
	}
	if wait {
		s.waitFor(r.Context(), createWaitPeriod, func() bool {
			cur, ok := s.sandboxes[id]
			return !ok || cur.State == stStarted || isErrorState(cur.State) || cur.DesiredState != stStarted
		})
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

func (s *Server) handleLastActivity(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sb, herr := s.findSandboxLocked(r.PathValue("id"))
	if herr != nil {
		writeAPIError(w, r, herr.status, herr.msg)
		return
	}
	s.touchLocked(sb)
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

// listCursor is the opaque nextCursor: the sort key of the last item.
type listCursor struct {
	CreatedAt int64  `json:"c"`
	ID        string `json:"i"`
}

func (s *Server) handleListSandboxes(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var labels map[string]string
	if l := q.Get("labels"); l != "" {
		if err := json.Unmarshal([]byte(l), &labels); err != nil {
			writeAPIError(w, r, http.StatusBadRequest, "Invalid labels JSON format")
			return
		}
	}
	limit := 100
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 200 {
			writeAPIError(w, r, http.StatusBadRequest, "limit must not be less than 1, limit must not be greater than 200")
			return
		}
		limit = n
	}
	var after *listCursor
	if c := q.Get("cursor"); c != "" {
		raw, err := base64.RawURLEncoding.DecodeString(c)
		var lc listCursor
		if err == nil {
			err = json.Unmarshal(raw, &lc)
		}
		if err != nil {
			writeAPIError(w, r, http.StatusBadRequest, "Invalid cursor")
			return
		}
		after = &lc
	}
	states := map[string]bool{}
	for _, st := range q["states"] {
		for _, part := range strings.Split(st, ",") {
			if part != "" {
				states[part] = true
			}
		}
	}
	idPrefix, namePrefix := strings.ToLower(q.Get("id")), strings.ToLower(q.Get("name"))
	includeErrDel := q.Get("includeErroredDeleted") == "true"

	s.mu.Lock()
	defer s.mu.Unlock()
	var matched []*sandboxRec
	for _, sb := range s.sandboxes {
		if sb.State == stDestroyed {
			continue
		}
		if !includeErrDel && isErrorState(sb.State) && sb.DesiredState == stDestroyed {
			continue
		}
		if len(states) > 0 && !states[dtoState(sb)] {
			continue
		}
		if idPrefix != "" && !strings.HasPrefix(strings.ToLower(sb.ID), idPrefix) {
			continue
		}
		if namePrefix != "" && !strings.HasPrefix(strings.ToLower(sb.Name), namePrefix) {
			continue
		}
		if !labelsContain(sb.Labels, labels) {
			continue
		}
		matched = append(matched, sb)
	}
	// Newest first; ties broken by id so the cursor is stable.
	less := func(a, b *sandboxRec) bool {
		if !a.CreatedAt.Equal(b.CreatedAt) {
			return a.CreatedAt.After(b.CreatedAt)
		}
		return a.ID > b.ID
	}
	sort.Slice(matched, func(i, j int) bool { return less(matched[i], matched[j]) })
	if after != nil {
		key := &sandboxRec{CreatedAt: time.Unix(0, after.CreatedAt).UTC(), ID: after.ID}
		i := sort.Search(len(matched), func(i int) bool { return less(key, matched[i]) })
		matched = matched[i:]
	}
	var next *string
	if len(matched) > limit {
		last := matched[limit-1]
		raw, _ := json.Marshal(listCursor{CreatedAt: last.CreatedAt.UnixNano(), ID: last.ID})
		c := base64.RawURLEncoding.EncodeToString(raw)
		next = &c
		matched = matched[:limit]
	}
	items := make([]sandboxListItemDTO, 0, len(matched))
	for _, sb := range matched {
		items = append(items, s.sandboxToListItem(r, sb))
	}
	writeJSON(w, http.StatusOK, struct {
		Items      []sandboxListItemDTO `json:"items"`
		NextCursor *string              `json:"nextCursor"`
	}{items, next})
}

// labelsContain is Postgres "labels @> filter": every filter pair must match.
func labelsContain(have, want map[string]string) bool {
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
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
