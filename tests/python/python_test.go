// Package python_test runs the Python client's tests (clients/python) against
// a real threadbox: the whole integration stack of internal/testenv, reached
// through a proxy that checks every exchange against the OpenAPI document, so
// the Python client is held to the document as the Go tests are.
package python_test

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/threadbox/threadbox/internal/testenv"
)

func TestPythonClient(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3 is required for the Python client's tests (.ci/run installs it): %v", err)
	}
	env := testenv.New(t, testenv.Options{AutoStop: time.Minute, AutoDelete: 2 * time.Minute, FilesAutoStop: time.Minute})

	target, err := url.Parse(env.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = testenv.NewAPIValidator(t, http.DefaultTransport)
	front := httptest.NewServer(proxy)
	t.Cleanup(front.Close)

	cmd := exec.Command(py, "-m", "unittest", "discover", "-s", "tests", "-t", ".", "-v")
	cmd.Dir = filepath.Join(testenv.RepoRoot(t), "clients", "python")
	cmd.Env = append(os.Environ(),
		"THREADBOX_URL="+front.URL,
		"THREADBOX_API_KEY="+env.UserKey,
		"THREADBOX_ADMIN_KEY="+env.AdminKey,
		"PYTHONDONTWRITEBYTECODE=1",
		"PYTHONUNBUFFERED=1",
	)
	out, err := cmd.CombinedOutput()
	t.Logf("python3 -m unittest discover:\n%s", out)
	if err != nil {
		t.Fatalf("the Python client's tests failed: %v", err)
	}
}
