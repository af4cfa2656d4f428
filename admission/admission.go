// Package admission decides whether a request may have what it asks for, so
// that one user (or one runaway key) cannot use up the Daytona organisation
// everybody shares. Four limits, each configurable and each answered with its
// own error code (429 with Retry-After, by api/apierr):
//
//   - live threads per user (thread_limit), checked when a thread is created;
//   - running agent sandboxes per user (sandbox_limit), and
//   - running sandboxes in total, agent and files (total_sandbox_limit),
//     checked before a sandbox is started or created (sandbox.Options.Admit);
//   - requests per second per API key (rate_limited), a token bucket.
//
// The first three are counted in PostgreSQL under an advisory lock, so they
// hold however many API replicas serve: two replicas never both admit the
// last free place. The rate limit is per replica, in memory: a shared bucket
// would put a database write on every request of the hot path, and a
// replica's share is what protects it. A limit refuses the newcomer; nothing
// already running is ever stopped or evicted to make room.
package admission

import (
	"fmt"
	"time"
)

// Limits are the configured limits; 0 turns one off.
type Limits struct {
	ThreadsPerUser int
	// RunningPerUser counts a user's running agent sandboxes. Files
	// sandboxes are left out: a user has at most one, and it must start
	// while their agents run, or their files would be out of reach.
	RunningPerUser int
	// RunningTotal counts every running agent and files sandbox (both use
	// the organisation's CPU and memory). Size it to the Daytona
	// organisation's limits.
	RunningTotal int
	// RequestsPerSecond and Burst are each key's token bucket, per replica.
	RequestsPerSecond float64
	Burst             int
}

// The limits by name: the error code a refusal carries and the label of the
// admission metrics.
const (
	ThreadLimit       = "thread_limit"
	SandboxLimit      = "sandbox_limit"
	TotalSandboxLimit = "total_sandbox_limit"
	RateLimit         = "rate_limited"
)

// Error is a refusal: which limit, its value, and when trying again may
// succeed.
type Error struct {
	Limit      string
	Max        float64
	RetryAfter time.Duration
}

func (e *Error) Error() string { return e.Message() }

// Message is the client-facing explanation, naming the limit.
func (e *Error) Message() string {
	switch e.Limit {
	case ThreadLimit:
		return fmt.Sprintf("you have %g live threads, the most allowed (THREADBOX_MAX_THREADS_PER_USER); delete a thread to create another", e.Max)
	case SandboxLimit:
		return fmt.Sprintf("you have %g running sandboxes, the most allowed (THREADBOX_MAX_RUNNING_SANDBOXES_PER_USER); one frees up when a thread stops or is deleted", e.Max)
	case TotalSandboxLimit:
		return fmt.Sprintf("the service runs %g sandboxes, its capacity (THREADBOX_MAX_RUNNING_SANDBOXES); retry later", e.Max)
	case RateLimit:
		return fmt.Sprintf("more than %g requests per second with this key (THREADBOX_RATE_LIMIT); slow down", e.Max)
	}
	return "limit " + e.Limit + " reached"
}
