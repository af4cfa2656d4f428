package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// organizationID is the single organisation the emulator serves.
const organizationID = "00000000-0000-4000-8000-00000000e001"

// Stored sandbox states (Daytona's SandboxState values used here).
const (
	stUnknown      = "unknown"
	stStarted      = "started"
	stStopped      = "stopped"
	stDestroyed    = "destroyed"
	stArchived     = "archived"
	stRestoring    = "restoring"
	stSnapshotting = "snapshotting"
	stError        = "error"
	stBuildFailed  = "build_failed"
)

// mountRec is one volume mount of a sandbox.
type mountRec struct {
	VolumeID  string `json:"volumeId"`
	MountPath string `json:"mountPath"`
	Subpath   string `json:"subpath,omitempty"`
}

// buildInfoRec is a declarative image (Dockerfile) attached to a sandbox or snapshot.
type buildInfoRec struct {
	DockerfileContent string    `json:"dockerfileContent"`
	ContextHashes     []string  `json:"contextHashes"`
	SnapshotRef       string    `json:"snapshotRef"`
	CreatedAt         time.Time `json:"createdAt"`
}

// sandboxRec is the stored sandbox entity (state, desiredState, intervals...).
type sandboxRec struct {
	ID                  string            `json:"id"`
	Name                string            `json:"name"`
	Snapshot            string            `json:"snapshot,omitempty"`
	User                string            `json:"user"`
	Env                 map[string]string `json:"env"`
	Labels              map[string]string `json:"labels"`
	Public              bool              `json:"public"`
	NetworkBlockAll     bool              `json:"networkBlockAll"`
	NetworkAllowList    string            `json:"networkAllowList,omitempty"`
	DomainAllowList     string            `json:"domainAllowList,omitempty"`
	Target              string            `json:"target"`
	CPU                 int               `json:"cpu"`
	GPU                 int               `json:"gpu"`
	Memory              int               `json:"memory"`
	Disk                int               `json:"disk"`
	State               string            `json:"state"`
	DesiredState        string            `json:"desiredState"`
	PrevState           string            `json:"prevState,omitempty"`
	ErrorReason         string            `json:"errorReason,omitempty"`
	Recoverable         bool              `json:"recoverable,omitempty"`
	AutoStopInterval    int               `json:"autoStopInterval"`
	AutoArchiveInterval int               `json:"autoArchiveInterval"`
	AutoDeleteInterval  int               `json:"autoDeleteInterval"`
	Volumes             []mountRec        `json:"volumes"`
	BuildInfo           *buildInfoRec     `json:"buildInfo,omitempty"`
	CreatedAt           time.Time         `json:"createdAt"`
	UpdatedAt           time.Time         `json:"updatedAt"`
	LastActivityAt      time.Time         `json:"lastActivityAt"`
	// Op is bumped on every scheduled transition so stale timers do nothing.
	Op uint64 `json:"op"`
}

// volumeRec is a stored volume.
type volumeRec struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	State       string     `json:"state"`
	ErrorReason string     `json:"errorReason,omitempty"`
	CreatedAt   time.Time  `json:"createdAt"`
	UpdatedAt   time.Time  `json:"updatedAt"`
	LastUsedAt  *time.Time `json:"lastUsedAt,omitempty"`
}

// snapshotRec is a stored snapshot; its template directory seeds new sandboxes.
type snapshotRec struct {
	ID            string        `json:"id"`
	Name          string        `json:"name"`
	ImageName     string        `json:"imageName,omitempty"`
	State         string        `json:"state"`
	Entrypoint    []string      `json:"entrypoint,omitempty"`
	CPU           int           `json:"cpu"`
	GPU           int           `json:"gpu"`
	Mem           int           `json:"mem"`
	Disk          int           `json:"disk"`
	Size          *float64      `json:"size,omitempty"`
	ErrorReason   string        `json:"errorReason,omitempty"`
	BuildInfo     *buildInfoRec `json:"buildInfo,omitempty"`
	CreatedAt     time.Time     `json:"createdAt"`
	UpdatedAt     time.Time     `json:"updatedAt"`
	LastUsedAt    *time.Time    `json:"lastUsedAt,omitempty"`
	DeactivatedAt *time.Time    `json:"deactivatedAt,omitempty"`
	Op            uint64        `json:"op"`
}

// persisted is the JSON document written to StateDir/state.json.
type persisted struct {
	Sandboxes []*sandboxRec  `json:"sandboxes"`
	Volumes   []*volumeRec   `json:"volumes"`
	Snapshots []*snapshotRec `json:"snapshots"`
}

func (s *Server) statePath() string { return filepath.Join(s.baseDir, "state.json") }

func (s *Server) sandboxRoot(id string) string { return filepath.Join(s.baseDir, "sandboxes", id) }

func (s *Server) volumeDir(id string) string { return filepath.Join(s.baseDir, "volumes", id) }

func (s *Server) snapshotDir(id string) string { return filepath.Join(s.baseDir, "snapshots", id) }

// saveLocked writes the state atomically when persistence is on. Caller holds s.mu.
func (s *Server) saveLocked() error {
	if !s.persist {
		return nil
	}
	var p persisted
	for _, sb := range s.sandboxes {
		p.Sandboxes = append(p.Sandboxes, sb)
	}
	for _, v := range s.volumes {
		p.Volumes = append(p.Volumes, v)
	}
	for _, sn := range s.snapshots {
		p.Snapshots = append(p.Snapshots, sn)
	}
	data, err := json.MarshalIndent(&p, "", "  ")
	if err != nil {
		return fmt.Errorf("emulator: encode state: %w", err)
	}
	tmp := s.statePath() + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("emulator: write state: %w", err)
	}
	if err := os.Rename(tmp, s.statePath()); err != nil {
		return fmt.Errorf("emulator: replace state: %w", err)
	}
	return nil
}

// save persists and logs (instead of failing the request) on error.
func (s *Server) saveLockedLog() {
	if err := s.saveLocked(); err != nil {
		s.log.Error("persist state", "err", err)
	}
}

// load reads StateDir/state.json and settles transitions that were in flight
// when the previous process stopped (no runner survives a restart).
func (s *Server) load() error {
	data, err := os.ReadFile(s.statePath())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("emulator: read state: %w", err)
	}
	var p persisted
	if err := json.Unmarshal(data, &p); err != nil {
		return fmt.Errorf("emulator: decode state: %w", err)
	}
	now := time.Now().UTC()
	for _, sb := range p.Sandboxes {
		switch {
		case sb.DesiredState == stDestroyed || sb.State == stDestroyed:
			_ = os.RemoveAll(s.sandboxRoot(sb.ID))
			continue
		case sb.State == stSnapshotting:
			sb.State = sb.PrevState
		case sb.State == stUnknown || sb.State == stRestoring:
			sb.State = sb.DesiredState
		case sb.State != sb.DesiredState && (sb.DesiredState == stStarted || sb.DesiredState == stStopped || sb.DesiredState == stArchived):
			sb.State = sb.DesiredState
		}
		if sb.State == "" {
			sb.State = stStopped
			sb.DesiredState = stStopped
		}
		sb.PrevState = ""
		sb.LastActivityAt = now
		if sb.Env == nil {
			sb.Env = map[string]string{}
		}
		if sb.Labels == nil {
			sb.Labels = map[string]string{}
		}
		s.sandboxes[sb.ID] = sb
	}
	for _, v := range p.Volumes {
		switch v.State {
		case "pending_create", "creating":
			v.State = "ready"
		case "pending_delete", "deleting":
			v.State = "deleted"
			_ = os.RemoveAll(s.volumeDir(v.ID))
		}
		s.volumes[v.ID] = v
	}
	for _, sn := range p.Snapshots {
		switch sn.State {
		case "pending", "pulling", "building":
			sn.State = "active"
		case "removing":
			_ = os.RemoveAll(s.snapshotDir(sn.ID))
			continue
		}
		s.snapshots[sn.ID] = sn
	}
	return nil
}
