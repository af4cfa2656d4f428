package e2e_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/internal/testenv"
)

// An HTML file an agent wrote comes back, on every route that serves user
// files, with headers that stop it from running on the API's origin: the
// browser may not sniff, must sandbox the document (no script, opaque
// origin) and downloads it instead of rendering it. Plain text is shown
// inline, still sandboxed.
func TestUserFilesCannotRunInABrowser(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	c := newTC(t, env, env.UserKey)
	c.create("web")
	page := `<html><script>fetch("/v1/threads",{method:"POST"})</script></html>`
	r := c.exec("web", `mkdir -p /home/daytona/volume/site && printf '%s' '`+page+`' > /home/daytona/volume/site/index.html && `+
		`cp /home/daytona/volume/site/index.html /home/daytona/volume/site/noext && `+
		`printf '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>' > /home/daytona/volume/site/logo.svg && `+
		`printf '<script>alert(1)</script>' > /home/daytona/volume/site/notes.txt`)
	require.Equal(t, 0, r.ExitCode, r.Output)

	routes := map[string]func(name string) string{
		"thread files": func(n string) string { return "/v1/threads/web/files?path=/home/daytona/volume/site/" + n },
		"user files":   func(n string) string { return "/v1/files?path=/site/" + n },
		"webdav":       func(n string) string { return "/dav/site/" + n },
	}
	for route, path := range routes {
		methods := []string{http.MethodGet}
		if route == "webdav" {
			methods = append(methods, http.MethodHead)
		}
		for _, method := range methods {
			for name, disposition := range map[string]string{
				"index.html": `attachment; filename=index.html`,
				"noext":      `attachment; filename=noext`,
				"logo.svg":   `attachment; filename=logo.svg`,
				"notes.txt":  ``,
			} {
				resp, body := fdo(t, env, env.UserKey, method, path(name), nil, nil)
				require.Equal(t, http.StatusOK, resp.StatusCode, "%s %s %s: %s", route, method, name, body)
				h := resp.Header
				require.Equal(t, "nosniff", h.Get("X-Content-Type-Options"), "%s %s", route, name)
				require.Equal(t, "sandbox", h.Get("Content-Security-Policy"), "%s %s", route, name)
				require.Equal(t, disposition, h.Get("Content-Disposition"), "%s %s", route, name)
				if method == http.MethodGet && name == "index.html" {
					require.Equal(t, page, body, route)
					require.Equal(t, "text/html; charset=utf-8", h.Get("Content-Type"), route)
				}
			}
		}
	}

	// An error on a file route is no download.
	resp, _ := fdo(t, env, env.UserKey, http.MethodGet, "/dav/site/missing.html", nil, nil)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	require.Empty(t, resp.Header.Get("Content-Disposition"))
}

// A page on another site can post a multipart form (no CORS preflight) to
// the API, and a browser that used /dav/ attaches the Basic credentials it
// cached: such a post is refused before it touches anything, while the same
// request from an API client (no Origin, no Sec-Fetch-Site) is served.
func TestCrossSiteFormPostIsRefused(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	c := newTC(t, env, env.UserKey)
	c.create("web")
	basic := func(req *http.Request) { req.SetBasicAuth("me", env.UserKey) }

	post := func(hdr map[string]string, path string) *http.Response {
		ct, body := multipartBody(t, path, "planted")
		req, err := http.NewRequest(http.MethodPost, env.URL+"/v1/threads/web/files/upload", body)
		require.NoError(t, err)
		basic(req)
		req.Header.Set("Content-Type", ct)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := httpClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp
	}
	resp := post(map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}, "/home/daytona/evil.sh")
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	require.Equal(t, 1, c.exec("web", "test -e /home/daytona/evil.sh").ExitCode, "nothing was written")

	resp = post(nil, "/home/daytona/fine.sh")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, 0, c.exec("web", "test -e /home/daytona/fine.sh").ExitCode)
}
