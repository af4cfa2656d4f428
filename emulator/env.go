package emulator

import (
	"errors"
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
	unsafeHostExec, err := UnsafeHostExecFromEnv(getenv)
	if err != nil {
		return Options{}, err
	}
	r := envReader{getenv: getenv}
	o := Options{
		Faults:            faults,
		UnsafeHostExec:    unsafeHostExec,
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

// parse reads name with conv, keeping the zero value when it is unset and the first
// error (naming the variable and what it wants) otherwise.
func parse[T any](r *envReader, name, want string, conv func(string) (T, error)) T {
	var zero T
	if r.err != nil {
		return zero
	}
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return zero
	}
	x, err := conv(v)
	if err != nil {
		r.err = fmt.Errorf("emulator: %s=%q: want %s: %w", name, v, want, err)
		return zero
	}
	return x
}

func (r *envReader) duration(name string) time.Duration {
	return parse(r, name, "a non-negative duration", func(v string) (time.Duration, error) {
		d, err := time.ParseDuration(v)
		if err == nil && d < 0 {
			err = errors.New("negative")
		}
		return d, err
	})
}

func (r *envReader) rate(name string) float64 {
	return parse(r, name, "a rate between 0 and 1", func(v string) (float64, error) {
		p, err := strconv.ParseFloat(v, 64)
		if err == nil && (p < 0 || p > 1) {
			err = errors.New("out of range")
		}
		return p, err
	})
}

func (r *envReader) int(name string) int {
	return parse(r, name, "an integer", strconv.Atoi)
}

func (r *envReader) uint(name string) uint64 {
	return parse(r, name, "a non-negative integer", func(v string) (uint64, error) { return strconv.ParseUint(v, 10, 64) })
}
