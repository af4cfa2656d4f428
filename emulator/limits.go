package emulator

import (
	"fmt"
	"net/http"
)

// Limits are an organisation's quotas as Daytona enforces them
// (sandbox.service.ts validateOrganizationQuotas, volume.service.ts,
// organization.service.ts assertOrganizationIsNotSuspended): totals of CPU,
// memory and disk over the organisation's sandboxes, checked on every create,
// start and recover; a number of volumes, checked on volume create; and
// suspension, which refuses all of those with 403 before any quota is looked at.
type Limits struct {
	// CPU, MemoryGiB and DiskGiB cap the organisation's totals; 0 means no limit.
	// CPU and memory count sandboxes that run or are about to; disk also counts
	// stopped ones (only archived, errored and destroyed sandboxes free disk).
	CPU, MemoryGiB, DiskGiB int
	// Volumes caps the number of volumes that are not deleted. 0 means Daytona's
	// default quota, 100; a negative value means no limit.
	Volumes int
	// Suspended refuses creates and starts (403 "Organization is suspended").
	Suspended bool
	// SuspensionReason is appended to the 403 message when set.
	SuspensionReason string
}

// defaultVolumeQuota is DEFAULT_ORGANIZATION_QUOTA.volumeQuota.
const defaultVolumeQuota = 100

// Daytona's texts (common/constants/error-messages.ts) that follow a limit message.
const (
	upgradeTierMessage      = "To increase concurrency limits, upgrade your organization's Tier by visiting https://app.daytona.io/dashboard/limits."
	archiveSandboxesMessage = "Consider archiving your unused Sandboxes to free up available storage."
)

// SetLimits replaces the organisation's limits, so a test can fill the
// organisation or suspend it while sandboxes exist.
func (s *Server) SetLimits(l Limits) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limits = l
}

// suspendedLocked answers 403 when the organisation is suspended. Caller holds s.mu.
func (s *Server) suspendedLocked() *httpError {
	if !s.limits.Suspended {
		return nil
	}
	if s.limits.SuspensionReason != "" {
		return errf(http.StatusForbidden, "Organization is suspended: "+s.limits.SuspensionReason)
	}
	return errf(http.StatusForbidden, "Organization is suspended")
}

// admitResourcesLocked checks suspension and then whether another cpu, mem and
// disk fit the organisation's totals, not counting the sandbox exclude (a start
// re-admits the sandbox it starts). Daytona answers 400 with the first limit
// exceeded, in the order CPU, memory, disk. Caller holds s.mu.
func (s *Server) admitResourcesLocked(exclude string, cpu, mem, disk int) *httpError {
	if herr := s.suspendedLocked(); herr != nil {
		return herr
	}
	l := s.limits
	usedCPU, usedMem, usedDisk := s.usageLocked(exclude)
	switch {
	case l.CPU > 0 && usedCPU+cpu > l.CPU:
		return errf(http.StatusBadRequest, fmt.Sprintf("Total CPU limit exceeded. Maximum allowed: %d.\n%s", l.CPU, upgradeTierMessage))
	case l.MemoryGiB > 0 && usedMem+mem > l.MemoryGiB:
		return errf(http.StatusBadRequest, fmt.Sprintf("Total memory limit exceeded. Maximum allowed: %dGiB.\n%s", l.MemoryGiB, upgradeTierMessage))
	case l.DiskGiB > 0 && usedDisk+disk > l.DiskGiB:
		return errf(http.StatusBadRequest, fmt.Sprintf("Total disk limit exceeded. Maximum allowed: %dGiB.\n%s\n%s", l.DiskGiB, archiveSandboxesMessage, upgradeTierMessage))
	}
	return nil
}

// usageLocked sums the organisation's CPU, memory and disk. A sandbox uses CPU
// and memory while it runs or is being brought up (Daytona counts those as
// pending usage), and disk unless it is archived (and staying so), errored or
// destroyed. Caller holds s.mu.
func (s *Server) usageLocked(exclude string) (cpu, mem, disk int) {
	for _, sb := range s.sandboxes {
		if sb.ID == exclude || sb.State == stDestroyed || isErrorState(sb.State) {
			continue
		}
		if usesCompute(sb) {
			cpu += sb.CPU
			mem += sb.Memory
		}
		if sb.State != stArchived || sb.DesiredState == stStarted {
			disk += sb.Disk
		}
	}
	return cpu, mem, disk
}

// usesCompute reports whether a sandbox holds (or is about to hold) CPU and memory.
func usesCompute(sb *sandboxRec) bool {
	switch sb.State {
	case stStarted, stUnknown, stRestoring:
		return true
	case stSnapshotting:
		return sb.PrevState == stStarted
	}
	return sb.DesiredState == stStarted
}

// admitVolumeLocked checks suspension and the volume quota before a volume
// create; Daytona checks both before it looks at the name. Caller holds s.mu.
func (s *Server) admitVolumeLocked() *httpError {
	if herr := s.suspendedLocked(); herr != nil {
		return herr
	}
	quota := s.limits.Volumes
	if quota == 0 {
		quota = defaultVolumeQuota
	}
	if quota < 0 {
		return nil
	}
	n := 0
	for _, v := range s.volumes {
		if v.State != "deleted" {
			n++
		}
	}
	if n+1 > quota {
		return errf(http.StatusBadRequest, fmt.Sprintf("Volume quota exceeded. Maximum allowed: %d", quota))
	}
	return nil
}
