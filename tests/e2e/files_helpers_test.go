package e2e_test

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/internal/testenv"
)

// fdo sends a request to the files routes with Bearer auth (key may be
// empty) and returns the response and its body. Through env.HTTP, every
// exchange outside WebDAV is checked against the OpenAPI document.
func fdo(t *testing.T, env *testenv.Env, key, method, path string, body io.Reader, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, env.URL+path, body)
	require.NoError(t, err)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := env.HTTP.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

// rawRequest sends a request line verbatim (no client-side path cleaning),
// to test traversal in WebDAV URLs.
func rawRequest(t *testing.T, env *testenv.Env, key, method, rawPath string, hdr map[string]string) int {
	t.Helper()
	req, err := http.NewRequest(method, env.URL+"/", nil)
	require.NoError(t, err)
	req.URL.Opaque = rawPath
	req.Header.Set("Authorization", "Bearer "+key)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := httpClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// sandboxesOf lists the user's live sandboxes of a kind ("files" or "agent").
func sandboxesOf(t *testing.T, env *testenv.Env, user, kind string) []daytona.Sandbox {
	t.Helper()
	return liveSandboxesLabelled(t, env, map[string]string{daytona.LabelUser: user, daytona.LabelKind: kind})
}

func bearer(key string) map[string]string { return map[string]string{"Authorization": "Bearer " + key} }

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
