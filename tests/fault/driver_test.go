package fault_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/threadbox/threadbox/entity"
	"github.com/threadbox/threadbox/internal/testenv"
)

// driver is the suite's client: it runs thread and files lifecycles through
// the public API of both serves, as a real client would — every request
// goes to one of them, and a 429, a 5xx or a broken connection is retried
// with backoff (honouring Retry-After) on the other, a bounded number of
// times.
type driver struct {
	t     *testing.T
	hc    *http.Client
	bases []string
	next  atomic.Uint64

	requests atomic.Int64 // logical requests (each with its retries)
	retried  atomic.Int64 // requests that needed at least one retry
	retries  atomic.Int64 // attempts beyond the first
	gaveUp   atomic.Int64 // requests still failing after every attempt

	mu       sync.Mutex
	causes   map[string]int    // why attempts were retried
	files    map[string]string // "user\x00path" → sha256 of what was written
	threads  map[string]*threadRec
	started  map[string]int // lifecycles started, by kind
	finished map[string]int // lifecycles that ran to their end, by kind
	failures []string
	// errors500 names every attempt answered 500 (method, path, code):
	// a dependency outage must be a 503 with its code, a 500 is a bug, so
	// each is a test failure at the end even when its retry succeeded.
	errors500 []string
}

type threadRec struct {
	user, id string
	deleted  bool // the driver deleted it (DELETE answered)
}

// maxAttempts bounds a request's attempts: with the backoff below, a little
// over a minute, longer than any outage the suite injects.
const maxAttempts = 20

func newDriver(t *testing.T, bases []string) *driver {
	hc := testenv.APIClient(t)
	hc.Timeout = 2 * time.Minute
	return &driver{t: t, hc: hc, bases: bases, causes: map[string]int{}, started: map[string]int{}, finished: map[string]int{}, files: map[string]string{}, threads: map[string]*threadRec{}}
}

type answer struct {
	status int
	header http.Header
	body   []byte
	// attempts is how many times the request was sent.
	attempts int
}

// call sends a request, retrying 429, 5xx, 423 with Retry-After and
// connection errors. base < 0
// spreads the attempts across the serves (each retry goes to the next);
// otherwise every attempt goes to bases[base].
func (d *driver) call(ctx context.Context, key string, base int, method, path string, body []byte, hdr map[string]string) (answer, error) {
	d.requests.Add(1)
	start := int(d.next.Add(1))
	var last error
	for attempt := 0; attempt < maxAttempts; attempt++ {
		if attempt > 0 {
			d.retries.Add(1)
			if attempt == 1 {
				d.retried.Add(1)
			}
		}
		b := base
		if b < 0 {
			b = (start + attempt) % len(d.bases)
		}
		a, wait, err := d.once(ctx, key, d.bases[b], method, path, body, hdr)
		a.attempts = attempt + 1
		var cause string
		switch {
		case err != nil && ctx.Err() != nil:
			return a, ctx.Err()
		case err != nil:
			cause, last = "connection", err
		case a.status == 429 || a.status >= 500:
			cause, last = strconv.Itoa(a.status)+errorCode(a.body), fmt.Errorf("%s %s: %d %s", method, path, a.status, truncate(a.body))
			if a.status == http.StatusInternalServerError {
				d.mu.Lock()
				d.errors500 = append(d.errors500, fmt.Sprintf("%s %s (attempt %d, serve %d): 500%s %s", method, path, attempt+1, b, errorCode(a.body), truncate(a.body)))
				d.mu.Unlock()
			}
		case a.status == http.StatusLocked && wait > 0:
			// Another write of the resource is in progress (or its replica
			// died mid-write): the server says when its lock ends. A 423
			// without Retry-After (a client's LOCK) is not retried.
			cause, last = "423"+errorCode(a.body), fmt.Errorf("%s %s: 423 %s", method, path, truncate(a.body))
		default:
			return a, nil
		}
		d.mu.Lock()
		d.causes[cause]++
		d.mu.Unlock()
		backoff := min(250*time.Millisecond<<min(attempt, 4), 4*time.Second)
		if wait > backoff {
			backoff = min(wait, 5*time.Second)
		}
		select {
		case <-ctx.Done():
			return a, ctx.Err()
		case <-time.After(backoff):
		}
	}
	d.gaveUp.Add(1)
	return answer{}, fmt.Errorf("gave up after %d attempts: %w", maxAttempts, last)
}

func (d *driver) once(ctx context.Context, key, base, method, path string, body []byte, hdr map[string]string) (answer, time.Duration, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return answer{}, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := d.hc.Do(req)
	if err != nil {
		return answer{}, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, 0, err
	}
	var wait time.Duration
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
		wait = time.Duration(s) * time.Second
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: b}, wait, nil
}

// errorCode is " <code>" of an API error body, or "" for another body: the
// report tells a 500 internal from a 503 database_unavailable.
func errorCode(body []byte) string {
	if code := testenv.ErrorCode(body); code != "" {
		return " " + code
	}
	return ""
}

func truncate(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}

func (d *driver) fail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	d.mu.Lock()
	d.failures = append(d.failures, msg)
	d.mu.Unlock()
	d.t.Error(msg)
}

// expect checks an answer's status.
func expect(a answer, err error, what string, statuses ...int) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	for _, s := range statuses {
		if a.status == s {
			return nil
		}
	}
	return fmt.Errorf("%s: status %d (want %v): %s", what, a.status, statuses, truncate(a.body))
}

func (d *driver) wrote(user, path string, data []byte) {
	sum := sha256.Sum256(data)
	d.mu.Lock()
	d.files[user+"\x00"+path] = hex.EncodeToString(sum[:])
	d.mu.Unlock()
}

func randomText(n int) []byte {
	b := make([]byte, n*3/4+1)
	_, _ = rand.Read(b)
	return []byte(base64.RawURLEncoding.EncodeToString(b)[:n])
}

type threadView struct {
	State     string  `json:"state"`
	SandboxID *string `json:"sandbox_id"`
}

// execWrite writes a fresh file into the user's volume from the thread's
// sandbox (a retried exec writes the same bytes again: idempotent).
func (d *driver) execWrite(ctx context.Context, key, user, thread, name string) error {
	data := randomText(3000)
	rel := "fault/" + thread + "/" + name
	cmd := fmt.Sprintf("mkdir -p %s/fault/%s && printf '%%s' '%s' > %s/%s", entity.VolumeMountPath, thread, data, entity.VolumeMountPath, rel)
	body, _ := json.Marshal(map[string]any{"command": cmd, "timeout_s": 60})
	a, err := d.call(ctx, key, -1, http.MethodPost, "/v1/threads/"+thread+"/exec", body, map[string]string{"Content-Type": "application/json"})
	if err := expect(a, err, "exec in "+thread, 200); err != nil {
		return err
	}
	var res struct {
		ExitCode int    `json:"exit_code"`
		Output   string `json:"output"`
	}
	if err := json.Unmarshal(a.body, &res); err != nil || res.ExitCode != 0 {
		return fmt.Errorf("exec in %s: exit %d (%v): %s", thread, res.ExitCode, err, res.Output)
	}
	d.wrote(user, rel, data)
	return nil
}

func (d *driver) getThread(ctx context.Context, key, thread string) (threadView, int, error) {
	a, err := d.call(ctx, key, -1, http.MethodGet, "/v1/threads/"+thread, nil, nil)
	if err != nil {
		return threadView{}, 0, err
	}
	var v threadView
	if a.status == 200 {
		if err := json.Unmarshal(a.body, &v); err != nil {
			return v, a.status, err
		}
	}
	return v, a.status, nil
}

// waitThread polls the thread until cond holds (the lifecycle's idle
// periods: nothing but these reads touches it meanwhile).
func (d *driver) waitThread(ctx context.Context, key, thread, what string, timeout time.Duration, cond func(threadView) bool) error {
	deadline := time.Now().Add(timeout)
	var last threadView
	for time.Now().Before(deadline) {
		v, status, err := d.getThread(ctx, key, thread)
		if err != nil {
			return fmt.Errorf("waiting for %s of %s: %w", what, thread, err)
		}
		if status == 200 && cond(v) {
			return nil
		}
		last = v
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s of %s not seen within %s (last state %q)", what, thread, timeout, last.State)
}

// threadLifecycle: create, exec (writing a file in the volume), idle past
// auto-stop, exec (a start), idle past auto-delete, exec (a new sandbox),
// delete.
func (d *driver) threadLifecycle(ctx context.Context, key, user, thread string, idleTimeout time.Duration) error {
	d.mu.Lock()
	d.threads[user+"/"+thread] = &threadRec{user: user, id: thread}
	d.mu.Unlock()
	body, _ := json.Marshal(map[string]string{"thread_id": thread})
	a, err := d.call(ctx, key, -1, http.MethodPost, "/v1/threads", body, map[string]string{"Content-Type": "application/json"})
	if err := expect(a, err, "create "+thread, 200, 201); err != nil {
		return err
	}
	if err := d.execWrite(ctx, key, user, thread, "a.txt"); err != nil {
		return err
	}
	if err := d.waitThread(ctx, key, thread, "auto-stop", idleTimeout, func(v threadView) bool { return v.State == "stopped" }); err != nil {
		return err
	}
	if err := d.execWrite(ctx, key, user, thread, "b.txt"); err != nil {
		return err
	}
	if err := d.waitThread(ctx, key, thread, "auto-delete", idleTimeout, func(v threadView) bool {
		return v.State == "deleted" || (v.State == "stopped" && v.SandboxID == nil)
	}); err != nil {
		return err
	}
	if err := d.execWrite(ctx, key, user, thread, "c.txt"); err != nil {
		return err
	}
	return d.deleteThread(ctx, key, user, thread)
}

func (d *driver) deleteThread(ctx context.Context, key, user, thread string) error {
	a, err := d.call(ctx, key, -1, http.MethodDelete, "/v1/threads/"+thread, nil, nil)
	if err == nil && a.status == 404 && a.attempts > 1 {
		// An earlier attempt deleted it and its answer was lost.
		a.status = 204
	}
	if err := expect(a, err, "delete "+thread, 202, 204); err != nil {
		return err
	}
	d.mu.Lock()
	d.threads[user+"/"+thread].deleted = true
	d.mu.Unlock()
	_, status, err := d.getThread(ctx, key, thread)
	if err != nil {
		return err
	}
	if status != 404 {
		return fmt.Errorf("thread %s answers %d after its delete", thread, status)
	}
	return nil
}

// davPut writes a file over WebDAV.
func (d *driver) davPut(ctx context.Context, key, user, path string, size int) error {
	data := randomText(size)
	a, err := d.call(ctx, key, -1, http.MethodPut, "/dav/"+path, data, map[string]string{"Content-Type": "application/octet-stream"})
	if err := expect(a, err, "WebDAV PUT "+path, 201, 204); err != nil {
		return err
	}
	d.wrote(user, path, data)
	return nil
}

// tusUpload uploads data with tus: it starts on serve first, which is
// SIGKILLed (kill) after the first part; the rest goes to the other serve,
// which finds the upload in the S3 spool. A PATCH whose answer is lost is
// resumed from the offset a HEAD reports.
func (d *driver) tusUpload(ctx context.Context, key, user, path string, size, first int, kill func(int)) error {
	data := randomText(size)
	meta := "path " + base64.StdEncoding.EncodeToString([]byte(path))
	tus := map[string]string{"Tus-Resumable": "1.0.0"}
	with := func(kv ...string) map[string]string {
		h := map[string]string{"Tus-Resumable": "1.0.0"}
		for i := 0; i+1 < len(kv); i += 2 {
			h[kv[i]] = kv[i+1]
		}
		return h
	}
	a, err := d.call(ctx, key, first, http.MethodPost, "/v1/uploads/", nil, with("Upload-Length", strconv.Itoa(size), "Upload-Metadata", meta))
	if err := expect(a, err, "tus create "+path, 201); err != nil {
		return err
	}
	loc := a.header.Get("Location")
	if i := strings.Index(loc, "/v1/uploads/"); i >= 0 {
		loc = loc[i:]
	}
	part := size / 3
	patch := func(serve, offset, end int) error {
		for try := 0; ; try++ {
			a, err := d.call(ctx, key, serve, http.MethodPatch, loc, data[offset:end], with("Upload-Offset", strconv.Itoa(offset), "Content-Type", "application/offset+octet-stream"))
			if err == nil && a.status == 204 {
				return nil
			}
			if try >= 5 {
				return expect(a, err, fmt.Sprintf("tus PATCH %s at %d", path, offset), 204)
			}
			// The answer was lost or the offset moved: ask where it is.
			h, err := d.call(ctx, key, serve, http.MethodHead, loc, nil, tus)
			if err := expect(h, err, "tus HEAD "+path, 200); err != nil {
				return err
			}
			got, _ := strconv.Atoi(h.header.Get("Upload-Offset"))
			if got >= end {
				return nil
			}
			offset = got
		}
	}
	if err := patch(first, 0, part); err != nil {
		return err
	}
	kill(first)
	other := (first + 1) % len(d.bases)
	h, err := d.call(ctx, key, other, http.MethodHead, loc, nil, tus)
	if err := expect(h, err, "tus HEAD on the other serve "+path, 200); err != nil {
		return err
	}
	if got := h.header.Get("Upload-Offset"); got != strconv.Itoa(part) {
		return fmt.Errorf("tus %s: the other serve reports offset %s, want %d", path, got, part)
	}
	if err := patch(other, part, size); err != nil {
		return err
	}
	d.wrote(user, path, data)
	return nil
}

// readBack reads every file the driver wrote and compares its hash.
func (d *driver) readBack(ctx context.Context, keys map[string]string) (checked, lost int, problems []string) {
	d.mu.Lock()
	files := make(map[string]string, len(d.files))
	for k, v := range d.files {
		files[k] = v
	}
	d.mu.Unlock()
	for k, want := range files {
		user, path, _ := strings.Cut(k, "\x00")
		a, err := d.call(ctx, keys[user], -1, http.MethodGet, "/v1/files?path="+path, nil, nil)
		checked++
		if err != nil || a.status != 200 {
			lost++
			problems = append(problems, fmt.Sprintf("%s %s: %v %d %s", user, path, err, a.status, truncate(a.body)))
			continue
		}
		sum := sha256.Sum256(a.body)
		if got := hex.EncodeToString(sum[:]); got != want {
			lost++
			problems = append(problems, fmt.Sprintf("%s %s: %d bytes, sha256 %s, want %s", user, path, len(a.body), got, want))
		}
	}
	return checked, lost, problems
}

func (d *driver) lifecycleStarted(kind string) {
	d.mu.Lock()
	d.started[kind]++
	d.mu.Unlock()
}

func (d *driver) lifecycleDone(kind string, err error, what string) {
	if err != nil && !errors.Is(err, context.Canceled) {
		d.fail("%s lifecycle %s: %v", kind, what, err)
		return
	}
	if err == nil {
		d.mu.Lock()
		d.finished[kind]++
		d.mu.Unlock()
	}
}
