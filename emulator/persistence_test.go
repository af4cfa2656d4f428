package emulator

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	apiclient "github.com/daytonaio/daytona/libs/api-client-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPersistenceAcrossRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()

	// First life.
	e1 := newEnv(t, Options{StateDir: dir})
	vol := e1.newVolume("pvol")
	sn, _, err := e1.api.SnapshotsAPI.CreateSnapshot(e1.ctx).CreateSnapshot(apiclient.CreateSnapshot{Name: "psnap:1", ImageName: apiclient.PtrString("ubuntu:22.04")}).Execute()
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		got, _, err := e1.api.SnapshotsAPI.GetSnapshot(e1.ctx, sn.Id).Execute()
		return err == nil && got.State == apiclient.SNAPSHOTSTATE_ACTIVE
	}, 30*time.Second, 10*time.Millisecond)
	run := e1.create(apiclient.CreateSandbox{Name: apiclient.PtrString("p-run"), Snapshot: apiclient.PtrString("psnap:1"),
		Labels:  &map[string]string{"k": "v"},
		Volumes: []apiclient.SandboxVolume{{VolumeId: "pvol", MountPath: "/home/daytona/volume"}}})
	e1.upload(run, "/home/daytona/notes.txt", "persisted")
	e1.upload(run, "/home/daytona/volume/v.txt", "in-volume")
	stop := e1.create(apiclient.CreateSandbox{Name: apiclient.PtrString("p-stop")})
	_, _, err = e1.api.SandboxAPI.StopSandbox(e1.ctx, stop.Id).Execute()
	require.NoError(t, err)
	e1.waitState(stop.Id, apiclient.SANDBOXSTATE_STOPPED)
	e1.hs.Close()
	require.NoError(t, e1.srv.Close())

	// Second life over the same directory.
	e2 := newEnv(t, Options{StateDir: dir})
	got, _, err := e2.api.SandboxAPI.GetSandbox(e2.ctx, "p-run").Execute()
	require.NoError(t, err)
	assert.Equal(t, run.Id, got.Id)
	assert.Equal(t, apiclient.SANDBOXSTATE_STARTED, got.GetState())
	assert.Equal(t, map[string]string{"k": "v"}, got.Labels)
	assert.Equal(t, "psnap:1", got.GetSnapshot())
	got.ToolboxProxyUrl = e2.hs.URL + "/toolbox" // the new server's URL
	body, code := e2.download(got, "/home/daytona/notes.txt")
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, "persisted", body)
	body, code = e2.download(got, "/home/daytona/volume/v.txt")
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, "in-volume", body)

	st, _, err := e2.api.SandboxAPI.GetSandbox(e2.ctx, "p-stop").Execute()
	require.NoError(t, err)
	assert.Equal(t, apiclient.SANDBOXSTATE_STOPPED, st.GetState())
	v, _, err := e2.api.VolumesAPI.GetVolume(e2.ctx, vol.Id).Execute()
	require.NoError(t, err)
	assert.Equal(t, apiclient.VOLUMESTATE_READY, v.State)
	s2, _, err := e2.api.SnapshotsAPI.GetSnapshot(e2.ctx, "psnap:1").Execute()
	require.NoError(t, err)
	assert.Equal(t, apiclient.SNAPSHOTSTATE_ACTIVE, s2.State)

	// And it keeps working: start the stopped one, duplicate names still 409.
	st, _, err = e2.api.SandboxAPI.StartSandbox(e2.ctx, "p-stop").Execute()
	require.NoError(t, err)
	assert.Equal(t, apiclient.SANDBOXSTATE_STARTED, st.GetState())
	_, resp, err := e2.api.SandboxAPI.CreateSandbox(e2.ctx).CreateSandbox(apiclient.CreateSandbox{Name: apiclient.PtrString("p-run")}).Execute()
	status, _ := apiErr(t, resp, err)
	assert.Equal(t, http.StatusConflict, status)
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRunServesHealthAndStops(t *testing.T) {
	t.Parallel()
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, "127.0.0.1:0", Options{Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	}()
	var addr string
	require.Eventually(t, func() bool {
		sc := bufio.NewScanner(strings.NewReader(logs.String()))
		for sc.Scan() {
			var rec map[string]any
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["addr"] != nil {
				addr = rec["addr"].(string)
				_, hasIso := rec["isolation"]
				return hasIso
			}
		}
		return false
	}, 30*time.Second, 10*time.Millisecond)
	resp, err := http.Get("http://" + addr + "/health")
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.JSONEq(t, `{"status":"ok"}`, string(b))
	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestHealthAndPublicURL(t *testing.T) {
	t.Parallel()
	s, err := New(context.Background(), Options{PublicURL: "http://emu.example:3986/", Logger: quietLogger(), TransitionDelay: 10 * time.Millisecond})
	require.NoError(t, err)
	defer s.Close()
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/sandbox", strings.NewReader(`{}`)))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var sb map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &sb))
	assert.Equal(t, "http://emu.example:3986/toolbox", sb["toolboxProxyUrl"])
}
