package dav_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"golang.org/x/net/webdav"

	"github.com/stretchr/testify/require"
	"github.com/threadbox/threadbox/api/dav/davtest"
	"github.com/threadbox/threadbox/entity"
)

// Baseline files: webdav.Dir's results (the anchor: nothing that passes there
// may fail on ours) and our own expected results (so a change is noticed).
const (
	baselineFile = "testdata/litmus-baseline-webdav-dir.txt"
	oursFile     = "testdata/litmus-threadbox.txt"
)

// TestLitmusBaseline runs litmus against plain webdav.Dir + NewMemLS and
// checks the committed baseline still describes it (UPDATE_LITMUS=1 rewrites).
func TestLitmusBaseline(t *testing.T) {
	dir := t.TempDir()
	h := &webdav.Handler{Prefix: "/dav", FileSystem: webdav.Dir(dir), LockSystem: webdav.NewMemLS()}
	srv := httptest.NewServer(http.StripPrefix("", h))
	defer srv.Close()
	got, out := davtest.RunLitmus(t, srv.URL+"/dav/", "user", "pass")
	if os.Getenv("UPDATE_LITMUS") == "1" {
		davtest.WriteResults(t, baselineFile, got)
	}
	davtest.CompareWithBaseline(t, got, nil, davtest.LoadResults(t, baselineFile))
	if t.Failed() {
		t.Log(out)
	}
}

// TestLitmusFS runs litmus against our handler over an emulated sandbox's
// volume: no baseline pass may fail, and the results must match the
// committed record.
func TestLitmusFS(t *testing.T) {
	s := newDavServer(t, 1<<30)
	got, out := davtest.RunLitmus(t, s.URL, "alice", testKey)
	if os.Getenv("UPDATE_LITMUS") == "1" {
		davtest.WriteResults(t, oursFile, got)
	}
	davtest.CompareWithBaseline(t, got, davtest.LoadResults(t, baselineFile), davtest.LoadResults(t, oursFile))
	if t.Failed() {
		t.Log(out)
	}
	// litmus cleans up after itself; nothing of ours (spools) may remain.
	res, err := s.SB.Toolbox.Exec(context.Background(), daytonaExec("find "+entity.VolumeMountPath+" -name '.tbpart-*'"))
	require.NoError(t, err)
	require.Empty(t, strings.TrimSpace(res.Output), "spool files left behind")
}
