package emulator

import (
	"net/http"
	"strings"
	"time"
)

// Response shapes follow the generated models: every required key is always
// present (nullable ones as null) and optional ones are omitted when unset.

type sandboxVolumeDTO struct {
	VolumeID  string `json:"volumeId"`
	MountPath string `json:"mountPath"`
	Subpath   string `json:"subpath,omitempty"`
}

type buildInfoDTO struct {
	DockerfileContent string   `json:"dockerfileContent,omitempty"`
	ContextHashes     []string `json:"contextHashes"`
	CreatedAt         string   `json:"createdAt"`
	UpdatedAt         string   `json:"updatedAt"`
	SnapshotRef       string   `json:"snapshotRef"`
}

type sandboxDTO struct {
	ID                  string             `json:"id"`
	OrganizationID      string             `json:"organizationId"`
	Name                string             `json:"name"`
	Snapshot            string             `json:"snapshot,omitempty"`
	User                string             `json:"user"`
	Env                 map[string]string  `json:"env"`
	Labels              map[string]string  `json:"labels"`
	Public              bool               `json:"public"`
	NetworkBlockAll     bool               `json:"networkBlockAll"`
	NetworkAllowList    string             `json:"networkAllowList,omitempty"`
	DomainAllowList     string             `json:"domainAllowList,omitempty"`
	Target              string             `json:"target"`
	CPU                 float64            `json:"cpu"`
	GPU                 float64            `json:"gpu"`
	Memory              float64            `json:"memory"`
	Disk                float64            `json:"disk"`
	State               string             `json:"state"`
	DesiredState        string             `json:"desiredState"`
	ErrorReason         string             `json:"errorReason,omitempty"`
	Recoverable         bool               `json:"recoverable"`
	BackupState         string             `json:"backupState"`
	AutoStopInterval    float64            `json:"autoStopInterval"`
	AutoArchiveInterval float64            `json:"autoArchiveInterval"`
	AutoDeleteInterval  float64            `json:"autoDeleteInterval"`
	Volumes             []sandboxVolumeDTO `json:"volumes"`
	BuildInfo           *buildInfoDTO      `json:"buildInfo,omitempty"`
	CreatedAt           string             `json:"createdAt"`
	UpdatedAt           string             `json:"updatedAt"`
	LastActivityAt      string             `json:"lastActivityAt"`
	SandboxClass        string             `json:"sandboxClass"`
	DaemonVersion       string             `json:"daemonVersion"`
	RunnerID            string             `json:"runnerId"`
	ToolboxProxyURL     string             `json:"toolboxProxyUrl"`
}

type sandboxListItemDTO struct {
	ID                  string            `json:"id"`
	OrganizationID      string            `json:"organizationId"`
	Name                string            `json:"name"`
	Target              string            `json:"target"`
	RunnerID            string            `json:"runnerId"`
	SandboxClass        string            `json:"sandboxClass"`
	State               string            `json:"state"`
	DesiredState        string            `json:"desiredState"`
	Snapshot            string            `json:"snapshot,omitempty"`
	User                string            `json:"user"`
	ErrorReason         string            `json:"errorReason,omitempty"`
	Recoverable         bool              `json:"recoverable"`
	Public              bool              `json:"public"`
	CPU                 float64           `json:"cpu"`
	GPU                 float64           `json:"gpu"`
	Memory              float64           `json:"memory"`
	Disk                float64           `json:"disk"`
	Labels              map[string]string `json:"labels"`
	BackupState         string            `json:"backupState"`
	AutoStopInterval    float64           `json:"autoStopInterval"`
	AutoArchiveInterval float64           `json:"autoArchiveInterval"`
	AutoDeleteInterval  float64           `json:"autoDeleteInterval"`
	CreatedAt           string            `json:"createdAt"`
	UpdatedAt           string            `json:"updatedAt"`
	LastActivityAt      string            `json:"lastActivityAt"`
	DaemonVersion       string            `json:"daemonVersion"`
	ToolboxProxyURL     string            `json:"toolboxProxyUrl"`
}

type volumeDTO struct {
	ID             string  `json:"id"`
	Name           string  `json:"name"`
	OrganizationID string  `json:"organizationId"`
	State          string  `json:"state"`
	CreatedAt      string  `json:"createdAt"`
	UpdatedAt      string  `json:"updatedAt"`
	LastUsedAt     *string `json:"lastUsedAt"`
	ErrorReason    *string `json:"errorReason"`
}

type snapshotDTO struct {
	ID             string        `json:"id"`
	OrganizationID string        `json:"organizationId"`
	General        bool          `json:"general"`
	Name           string        `json:"name"`
	ImageName      string        `json:"imageName,omitempty"`
	State          string        `json:"state"`
	Size           *float64      `json:"size"`
	Entrypoint     []string      `json:"entrypoint"`
	CPU            float64       `json:"cpu"`
	GPU            float64       `json:"gpu"`
	Mem            float64       `json:"mem"`
	Disk           float64       `json:"disk"`
	ErrorReason    *string       `json:"errorReason"`
	CreatedAt      string        `json:"createdAt"`
	UpdatedAt      string        `json:"updatedAt"`
	LastUsedAt     *string       `json:"lastUsedAt"`
	BuildInfo      *buildInfoDTO `json:"buildInfo,omitempty"`
	RegionIDs      []string      `json:"regionIds"`
	Ref            string        `json:"ref,omitempty"`
	SandboxClass   string        `json:"sandboxClass"`
}

const (
	emulatorDaemonVersion = "v0.190.0-emulator"
	emulatorRunnerID      = "emulator-runner"
	defaultTarget         = "local"
)

func isoTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func isoTimePtr(t *time.Time) *string {
	if t == nil {
		return nil
	}
	v := isoTime(*t)
	return &v
}

func strPtrOrNil(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// dtoState derives the DTO state like SandboxDto.getSandboxState. An archived
// sandbox shows archived whatever its desired state: while it waits to be
// restored (desired started) and while it is being deleted (desired destroyed).
func dtoState(sb *sandboxRec) string {
	switch {
	case sb.State == stStarted && sb.DesiredState == stStopped:
		return "stopping"
	case sb.State == stStarted && sb.DesiredState == stDestroyed:
		return "destroying"
	case sb.State == stStopped && sb.DesiredState == stStarted:
		return "starting"
	case sb.State == stStopped && sb.DesiredState == stDestroyed:
		return "destroying"
	case sb.State == stStopped && sb.DesiredState == stArchived:
		return "archiving"
	case sb.State == stUnknown && sb.DesiredState == stStarted:
		return "creating"
	case sb.State == stUnknown && sb.DesiredState == stDestroyed:
		return "destroying"
	}
	return sb.State
}

// listItemState derives a list item's state like SandboxListItemDto.deriveState,
// which differs from dtoState in one case: archived with desired started is
// listed as restoring.
func listItemState(sb *sandboxRec) string {
	if sb.State == stArchived && sb.DesiredState == stStarted {
		return stRestoring
	}
	return dtoState(sb)
}

// toolboxBase is the toolboxProxyUrl for this request.
func (s *Server) toolboxBase(r *http.Request) string {
	if s.opts.PublicURL != "" {
		return strings.TrimRight(s.opts.PublicURL, "/") + "/toolbox"
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + "/toolbox"
}

func buildInfoToDTO(b *buildInfoRec) *buildInfoDTO {
	if b == nil {
		return nil
	}
	hashes := b.ContextHashes
	if hashes == nil {
		hashes = []string{}
	}
	return &buildInfoDTO{
		DockerfileContent: b.DockerfileContent,
		ContextHashes:     hashes,
		CreatedAt:         isoTime(b.CreatedAt),
		UpdatedAt:         isoTime(b.CreatedAt),
		SnapshotRef:       b.SnapshotRef,
	}
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// sandboxToDTO renders a Sandbox. Caller holds s.mu.
func (s *Server) sandboxToDTO(r *http.Request, sb *sandboxRec) sandboxDTO {
	vols := make([]sandboxVolumeDTO, 0, len(sb.Volumes))
	for _, m := range sb.Volumes {
		vols = append(vols, sandboxVolumeDTO(m))
	}
	return sandboxDTO{
		ID:                  sb.ID,
		OrganizationID:      organizationID,
		Name:                sb.Name,
		Snapshot:            sb.Snapshot,
		User:                sb.User,
		Env:                 copyMap(sb.Env),
		Labels:              copyMap(sb.Labels),
		Public:              sb.Public,
		NetworkBlockAll:     sb.NetworkBlockAll,
		NetworkAllowList:    sb.NetworkAllowList,
		DomainAllowList:     sb.DomainAllowList,
		Target:              sb.Target,
		CPU:                 float64(sb.CPU),
		GPU:                 float64(sb.GPU),
		Memory:              float64(sb.Memory),
		Disk:                float64(sb.Disk),
		State:               dtoState(sb),
		DesiredState:        sb.DesiredState,
		ErrorReason:         sb.ErrorReason,
		Recoverable:         sb.Recoverable,
		BackupState:         "None",
		AutoStopInterval:    float64(sb.AutoStopInterval),
		AutoArchiveInterval: float64(sb.AutoArchiveInterval),
		AutoDeleteInterval:  float64(sb.AutoDeleteInterval),
		Volumes:             vols,
		BuildInfo:           buildInfoToDTO(sb.BuildInfo),
		CreatedAt:           isoTime(sb.CreatedAt),
		UpdatedAt:           isoTime(sb.UpdatedAt),
		LastActivityAt:      isoTime(sb.LastActivityAt),
		SandboxClass:        "container",
		DaemonVersion:       emulatorDaemonVersion,
		RunnerID:            emulatorRunnerID,
		ToolboxProxyURL:     s.toolboxBase(r),
	}
}

// sandboxToListItem renders a SandboxListItem (no env, no volumes). Caller holds s.mu.
func (s *Server) sandboxToListItem(r *http.Request, sb *sandboxRec) sandboxListItemDTO {
	return sandboxListItemDTO{
		ID:                  sb.ID,
		OrganizationID:      organizationID,
		Name:                sb.Name,
		Target:              sb.Target,
		RunnerID:            emulatorRunnerID,
		SandboxClass:        "container",
		State:               listItemState(sb),
		DesiredState:        sb.DesiredState,
		Snapshot:            sb.Snapshot,
		User:                sb.User,
		ErrorReason:         sb.ErrorReason,
		Recoverable:         sb.Recoverable,
		Public:              sb.Public,
		CPU:                 float64(sb.CPU),
		GPU:                 float64(sb.GPU),
		Memory:              float64(sb.Memory),
		Disk:                float64(sb.Disk),
		Labels:              copyMap(sb.Labels),
		BackupState:         "None",
		AutoStopInterval:    float64(sb.AutoStopInterval),
		AutoArchiveInterval: float64(sb.AutoArchiveInterval),
		AutoDeleteInterval:  float64(sb.AutoDeleteInterval),
		CreatedAt:           isoTime(sb.CreatedAt),
		UpdatedAt:           isoTime(sb.UpdatedAt),
		LastActivityAt:      isoTime(sb.LastActivityAt),
		DaemonVersion:       emulatorDaemonVersion,
		ToolboxProxyURL:     s.toolboxBase(r),
	}
}

func volumeToDTO(v *volumeRec) volumeDTO {
	return volumeDTO{
		ID:             v.ID,
		Name:           v.Name,
		OrganizationID: organizationID,
		State:          v.State,
		CreatedAt:      isoTime(v.CreatedAt),
		UpdatedAt:      isoTime(v.UpdatedAt),
		LastUsedAt:     isoTimePtr(v.LastUsedAt),
		ErrorReason:    strPtrOrNil(v.ErrorReason),
	}
}

func snapshotToDTO(sn *snapshotRec) snapshotDTO {
	var ep []string
	if len(sn.Entrypoint) > 0 {
		ep = append([]string(nil), sn.Entrypoint...)
	}
	return snapshotDTO{
		ID:             sn.ID,
		OrganizationID: organizationID,
		Name:           sn.Name,
		ImageName:      sn.ImageName,
		State:          sn.State,
		Size:           sn.Size,
		Entrypoint:     ep,
		CPU:            float64(sn.CPU),
		GPU:            float64(sn.GPU),
		Mem:            float64(sn.Mem),
		Disk:           float64(sn.Disk),
		ErrorReason:    strPtrOrNil(sn.ErrorReason),
		CreatedAt:      isoTime(sn.CreatedAt),
		UpdatedAt:      isoTime(sn.UpdatedAt),
		LastUsedAt:     isoTimePtr(sn.LastUsedAt),
		BuildInfo:      buildInfoToDTO(sn.BuildInfo),
		RegionIDs:      []string{defaultTarget},
		Ref:            sn.ImageName,
		SandboxClass:   "container",
	}
}
