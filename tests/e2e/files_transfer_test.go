package e2e_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/internal/testenv"
)

// slowBody yields n chunks of chunk bytes, one every gap.
type slowBody struct {
	chunk []byte
	left  int
	gap   time.Duration
}

func (b *slowBody) Read(p []byte) (int, error) {
	if b.left == 0 {
		return 0, io.EOF
	}
	time.Sleep(b.gap)
	b.left--
	return copy(p, b.chunk), nil
}

// testLongTransfer: a WebDAV PUT that lasts well past the files sandbox's
// idle interval must not be cut. Transfers hold the sandbox: a lease is taken
// only when the transfer outlives the window the cache guarantees.
func testLongTransfer(t *testing.T, env *testenv.Env, key string) {
	autoStop := env.Config.FilesAutoStopInterval.Duration()
	chunk := bytes.Repeat([]byte("x"), 1024)
	const n = 16
	gap := (3 * autoStop) / n // the upload lasts about three idle intervals

	// Wake the files sandbox first, so only a stop can be seen below.
	resp0, body0 := fdo(t, env, key, "PROPFIND", "/dav/", nil, map[string]string{"Depth": "0"})
	require.Equal(t, 207, resp0.StatusCode, body0)

	var stoppedDuring atomic.Bool
	doneUpload := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-time.After(200 * time.Millisecond):
			case <-doneUpload:
				return
			}
			for _, sb := range sandboxesOf(t, env, env.UserID, "files") {
				if sb.State != daytona.StateStarted {
					stoppedDuring.Store(true)
				}
			}
		}
	}()

	req, err := http.NewRequest(http.MethodPut, env.URL+"/dav/slow.bin", &slowBody{chunk: chunk, left: n, gap: gap})
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	close(doneUpload)
	<-done
	require.Contains(t, []int{201, 204}, resp.StatusCode)
	require.Greater(t, time.Since(start), 2*autoStop, "the upload really outlived the idle interval")
	require.False(t, stoppedDuring.Load(), "the files sandbox stopped during the transfer")

	resp2, body := fdo(t, env, key, http.MethodGet, "/v1/files?path=slow.bin", nil, nil)
	require.Equal(t, 200, resp2.StatusCode)
	require.Equal(t, strings.Repeat("x", n*1024), body)
}

// brokenBody yields some bytes and then fails, as a client that goes away
// mid-upload does.
type brokenBody struct{ left int }

func (b *brokenBody) Read(p []byte) (int, error) {
	if b.left == 0 {
		return 0, io.ErrUnexpectedEOF
	}
	n := min(len(p), b.left)
	b.left -= n
	return n, nil
}

func (b *brokenBody) Close() error { return nil }

// testIncompleteBody: a write whose body breaks off is the client's fault
// (400 incomplete_body, not a 500) and leaves nothing behind, on both the
// REST route and WebDAV.
func testIncompleteBody(t *testing.T, env *testenv.Env, key string) {
	for _, target := range []string{"/v1/files?path=broken.bin", "/dav/broken-dav.bin"} {
		req := httptest.NewRequest(http.MethodPut, target, &brokenBody{left: 64 << 10})
		req.Header.Set("Authorization", "Bearer "+key)
		rec := httptest.NewRecorder()
		env.API.Handler().ServeHTTP(rec, req)
		require.Equal(t, http.StatusBadRequest, rec.Code, "%s: %s", target, rec.Body.String())
		require.Contains(t, rec.Body.String(), "incomplete_body", target)
	}
	for _, p := range []string{"broken.bin", "broken-dav.bin"} {
		resp, body := fdo(t, env, key, http.MethodGet, "/v1/files?path="+p, nil, nil)
		require.Equal(t, http.StatusNotFound, resp.StatusCode, body)
	}
}
