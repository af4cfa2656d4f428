package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// binary is the threadbox binary built for this test process.
var binary struct {
	sync.Once
	path string
	err  error
	out  []byte
}

// Binary returns the path of the threadbox binary, built once per test
// process. Tests that kill, stop or start threadbox's processes run it, as a
// deployment does: a SIGKILL then kills a real process and nothing of it
// survives in the test's memory. The binary lives in a temporary directory
// that outlives the test that built it (other tests of the process reuse it).
func Binary(t testing.TB) string {
	t.Helper()
	binary.Do(func() {
		dir, err := os.MkdirTemp("", "threadbox-bin-")
		if err != nil {
			binary.err = err
			return
		}
		binary.path = filepath.Join(dir, "threadbox")
		cmd := exec.Command("go", "build", "-o", binary.path, "./cmd/threadbox")
		cmd.Dir = RepoRoot(t)
		binary.out, binary.err = cmd.CombinedOutput()
	})
	if binary.err != nil {
		t.Fatalf("go build: %v\n%s", binary.err, binary.out)
	}
	return binary.path
}
