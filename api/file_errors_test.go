package api

import (
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/api/dav"
	"github.com/threadbox/threadbox/daytona"
)

// A toolbox refusal carries the daemon's message, which names paths on the
// machine that runs the sandbox (the emulator's are host paths under its
// state directory). The client learns the reason, never those paths.
func TestFileErrorHidesSandboxHostPaths(t *testing.T) {
	host := "/srv/threadbox/.threadbox/emulator/sandboxes/4f1c/home/daytona/volume"
	for _, msg := range []string{
		"stat " + host + "/a.txt/x: not a directory",
		"open " + host + "/d/.tbpart-0a1b-f: file name too long",
		"rename " + host + "/a " + host + "/b: invalid argument",
		"failed: " + host,
	} {
		de := &daytona.Error{Kind: daytona.ErrBadRequest, Op: "stat file", Status: 400, Message: msg}
		for name, err := range map[string]error{
			"thread": fileError("a.txt/x", de),
			"volume": volumeError("a.txt/x", &os.PathError{Op: "stat", Path: "/a.txt/x", Err: de}),
			"dav":    volumeError("/dav/a.txt/x", dav.ErrBadPath), // sanity: a refusal of ours keeps its text
		} {
			e := classify(err)
			require.Less(t, e.Status, 500, name)
			require.NotContains(t, e.Message, ".threadbox", "%s: %q leaks %q", name, e.Message, msg)
			require.NotContains(t, e.Message, "/srv/", "%s: %q", name, e.Message)
		}
		e := classify(fileError("a.txt/x", de))
		require.Equal(t, http.StatusBadRequest, e.Status)
		require.True(t, strings.HasPrefix(e.Message, "a.txt/x: "), e.Message)
		require.True(t, errors.Is(e, daytona.ErrBadRequest), "the cause is kept for the log")
	}
	e := classify(fileError("a.txt/x", &daytona.Error{Kind: daytona.ErrBadRequest, Message: "stat /x/a.txt/x: not a directory"}))
	require.Equal(t, "a.txt/x: not a directory", e.Message, "the reason itself is still shown")
}
