package emulator

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// OptionsFromEnv reads the settings that shape the emulator from outside, so
// `threadbox emulator` and `threadbox dev` can be made unreliable or small:
// the faults (see FaultsFromEnv); the organisation's limits
// EMULATOR_CPU_LIMIT, EMULATOR_MEMORY_LIMIT and EMULATOR_DISK_LIMIT (GiB;
// unset means none), EMULATOR_VOLUME_LIMIT (default Daytona's 100; negative:
// none) and EMULATOR_SUSPENDED (any value suspends the organisation; a value
// other than "true" is the suspension reason); EMULATOR_RESTORE_DELAY, how
// long a start from archived waits before restoring; and
// EMULATOR_SNAPSHOT_IDLE_LIMIT, after which unused snapshots become inactive.
// Everything else of Options is left zero for the caller.
func OptionsFromEnv(getenv func(string) string) (Options, error) {
	faults, err := FaultsFromEnv(getenv)
	if err != nil {
		return Options{}, err
	}
	r := envReader{getenv: getenv}
	o := Options{
		Faults:            faults,
		RestoreDelay:      r.duration("EMULATOR_RESTORE_DELAY"),
		SnapshotIdleLimit: r.duration("EMULATOR_SNAPSHOT_IDLE_LIMIT"),
		Limits: Limits{
			CPU:       r.int("EMULATOR_CPU_LIMIT"),
			MemoryGiB: r.int("EMULATOR_MEMORY_LIMIT"),
			DiskGiB:   r.int("EMULATOR_DISK_LIMIT"),
			Volumes:   r.int("EMULATOR_VOLUME_LIMIT"),
		},
	}
	if reason := strings.TrimSpace(getenv("EMULATOR_SUSPENDED")); reason != "" {
		o.Limits.Suspended = true
		if reason != "true" {
			o.Limits.SuspensionReason = reason
		}
	}
	if r.err != nil {
		return Options{}, r.err
	}
	return o, nil
}

// envReader parses environment variables, keeping the first error.
type envReader struct {
	getenv func(string) string
	err    error
}

// get returns the trimmed value, or "" when unset or after an error.
func (r *envReader) get(name string) string {
	if r.err != nil {
		return ""
	}
	return strings.TrimSpace(r.getenv(name))
}

func (r *envReader) fail(name, v, want string, err error) {
	r.err = fmt.Errorf("emulator: %s=%q: want %s: %w", name, v, want, err)
}

func (r *envReader) duration(name string) time.Duration {
	v := r.get(name)
	if v == "" {
		return 0
	}
	d, err := time.ParseDuration(v)
	if err == nil && d < 0 {
		err = fmt.Errorf("negative")
	}
	if err != nil {
		r.fail(name, v, "a non-negative duration", err)
	}
	return d
}

func (r *envReader) rate(name string) float64 {
	v := r.get(name)
	if v == "" {
		return 0
	}
	p, err := strconv.ParseFloat(v, 64)
	if err == nil && (p < 0 || p > 1) {
		err = fmt.Errorf("out of range")
	}
	if err != nil {
		r.fail(name, v, "a rate between 0 and 1", err)
	}
	return p
}

func (r *envReader) int(name string) int {
	v := r.get(name)
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		r.fail(name, v, "an integer", err)
	}
	return n
}

func (r *envReader) uint(name string) uint64 {
	v := r.get(name)
	if v == "" {
		return 0
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		r.fail(name, v, "a non-negative integer", err)
	}
	return n
}
