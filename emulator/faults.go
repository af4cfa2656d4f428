package emulator

import (
	crand "crypto/rand"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Faults configures injected latency and failures so threadbox's retry,
// backoff and conflict handling can be exercised against the emulator.
type Faults struct {
	// Latency is added to every /api and /toolbox request.
	Latency time.Duration
	// Fail5xxRate is the probability (0..1) of answering 500/503.
	Fail5xxRate float64
	// Fail429Rate is the probability of answering 429 with Retry-After.
	Fail429Rate float64
	// Fail409Rate is the probability of answering 409 "Sandbox state change
	// in progress" on lifecycle calls (start, stop, delete, archive, snapshot).
	Fail409Rate float64
	// SlowCreate is extra time a sandbox spends in "creating".
	SlowCreate time.Duration
	// SandboxErrorRate is the probability (0..1), per running sandbox and
	// cron tick, that the sandbox breaks: it goes to state error as when its
	// runner reports a failure (Server.BreakSandbox does it on demand).
	SandboxErrorRate float64
	// SandboxErrorRecoverable is the probability that such an error is one
	// Daytona marks recoverable (POST /sandbox/{id}/recover can repair it).
	SandboxErrorRecoverable float64
	// FollowUntilDeleted keeps a followed session command's log stream open
	// after the command ended, until its session is deleted or the client
	// leaves, as the daemon's tail-like follow (util.ReadLog) does in
	// Daytona versions where it does not watch the exit code: a client must
	// not rely on the stream closing to learn that a command ended.
	FollowUntilDeleted bool
	// Seed makes the injected sequence reproducible; 0 picks a random seed.
	Seed uint64
}

// FaultsFromEnv reads EMULATOR_LATENCY, EMULATOR_FAIL_5XX_RATE,
// EMULATOR_FAIL_429_RATE, EMULATOR_FAIL_409_RATE, EMULATOR_SLOW_CREATE,
// EMULATOR_SANDBOX_ERROR_RATE, EMULATOR_SANDBOX_ERROR_RECOVERABLE,
// EMULATOR_FOLLOW_UNTIL_DELETED (true) and EMULATOR_SEED, so `threadbox emulator` can be made unreliable from outside.
func FaultsFromEnv(getenv func(string) string) (Faults, error) {
	r := envReader{getenv: getenv}
	f := Faults{
		Latency:                 r.duration("EMULATOR_LATENCY"),
		SlowCreate:              r.duration("EMULATOR_SLOW_CREATE"),
		Fail5xxRate:             r.rate("EMULATOR_FAIL_5XX_RATE"),
		Fail429Rate:             r.rate("EMULATOR_FAIL_429_RATE"),
		Fail409Rate:             r.rate("EMULATOR_FAIL_409_RATE"),
		SandboxErrorRate:        r.rate("EMULATOR_SANDBOX_ERROR_RATE"),
		SandboxErrorRecoverable: r.rate("EMULATOR_SANDBOX_ERROR_RECOVERABLE"),
		FollowUntilDeleted:      getenv("EMULATOR_FOLLOW_UNTIL_DELETED") == "true",
		Seed:                    r.uint("EMULATOR_SEED"),
	}
	if r.err != nil {
		return Faults{}, r.err
	}
	if f.Fail5xxRate+f.Fail429Rate+f.Fail409Rate > 1 {
		return Faults{}, fmt.Errorf("emulator: fault rates sum to more than 1")
	}
	return f, nil
}

// faultInjector draws from one seeded, mutex-guarded source: exactly one
// draw per request, so equal request sequences get equal fault sequences.
// Sandbox errors draw from a second source, so cron ticks do not shift the
// request sequence.
type faultInjector struct {
	cfg      Faults
	mu       sync.Mutex
	rng      *rand.Rand
	breakRng *rand.Rand
	seed     uint64
}

func newFaultInjector(cfg Faults) *faultInjector {
	seed := cfg.Seed
	if seed == 0 {
		var b [8]byte
		_, _ = crand.Read(b[:])
		seed = binary.LittleEndian.Uint64(b[:]) | 1
	}
	return &faultInjector{cfg: cfg, seed: seed,
		rng:      rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		breakRng: rand.New(rand.NewPCG(seed^0xbf58476d1ce4e5b9, seed))}
}

// breaks decides whether one running sandbox breaks at this cron tick, and
// whether its error is recoverable.
func (f *faultInjector) breaks() (broken, recoverable bool) {
	if f.cfg.SandboxErrorRate <= 0 {
		return false, false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.breakRng.Float64() >= f.cfg.SandboxErrorRate {
		return false, false
	}
	return true, f.breakRng.Float64() < f.cfg.SandboxErrorRecoverable
}

func (f *faultInjector) enabled() bool {
	c := f.cfg
	return c.Latency > 0 || c.Fail5xxRate > 0 || c.Fail429Rate > 0 || c.Fail409Rate > 0
}

// decide returns the status to inject (0 = none) for one request.
func (f *faultInjector) decide(lifecycle bool) int {
	f.mu.Lock()
	x := f.rng.Float64()
	f.mu.Unlock()
	c := f.cfg
	switch {
	case x < c.Fail5xxRate/2:
		return http.StatusInternalServerError
	case x < c.Fail5xxRate:
		return http.StatusServiceUnavailable
	case x < c.Fail5xxRate+c.Fail429Rate:
		return http.StatusTooManyRequests
	case x < c.Fail5xxRate+c.Fail429Rate+c.Fail409Rate && lifecycle:
		return http.StatusConflict
	}
	return 0
}

// isLifecycleCall tells the calls Daytona can answer with a transition 409.
func isLifecycleCall(r *http.Request) bool {
	p := strings.TrimSuffix(r.URL.Path, "/")
	if !strings.HasPrefix(p, "/api/sandbox/") {
		return false
	}
	rest := strings.TrimPrefix(p, "/api/sandbox/")
	parts := strings.Split(rest, "/")
	switch {
	case len(parts) == 1 && r.Method == http.MethodDelete:
		return true
	case len(parts) == 2 && r.Method == http.MethodPost:
		switch parts[1] {
		case "start", "stop", "archive", "snapshot", "recover":
			return true
		}
	}
	return false
}

// withFaults applies latency and injected failures before routing.
func (s *Server) withFaults(next http.Handler) http.Handler {
	f := s.faults
	if !f.enabled() {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.cfg.Latency > 0 {
			t := time.NewTimer(f.cfg.Latency)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		status := f.decide(isLifecycleCall(r))
		toolbox := strings.HasPrefix(r.URL.Path, "/toolbox/")
		var msg string
		switch status {
		case 0:
			next.ServeHTTP(w, r)
			return
		case http.StatusTooManyRequests:
			w.Header().Set("Retry-After", "1")
			msg = "ThrottlerException: Too Many Requests"
		case http.StatusConflict:
			msg = msgStateChange
		default:
			msg = "injected fault"
		}
		if toolbox {
			writeToolboxError(w, r, status, msg)
		} else {
			writeAPIError(w, r, status, msg)
		}
	})
}
