package api_test

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/threadbox/threadbox/api"
	"github.com/threadbox/threadbox/api/openapi"
	"github.com/threadbox/threadbox/config"
	"github.com/threadbox/threadbox/internal/testenv"
)

// notInDocument are the routes the OpenAPI document leaves out on purpose,
// with the reason (the document's description says so too).
var notInDocument = map[string]string{
	"/dav":     "WebDAV: methods OpenAPI 3.1 cannot express, RFC 4918 XML bodies; litmus checks it",
	"/dav/{*}": "WebDAV: methods OpenAPI 3.1 cannot express, RFC 4918 XML bodies; litmus checks it",
}

var echoParam = regexp.MustCompile(`:([A-Za-z0-9_]+)`)

// docPath writes an echo route pattern the way the document does:
// ":id" -> "{id}", "*" -> "{*}".
func docPath(p string) string {
	return strings.ReplaceAll(echoParam.ReplaceAllString(p, "{$1}"), "*", "{*}")
}

var anyParam = regexp.MustCompile(`\{[^}]*\}`)

// shape forgets parameter names, which the two sides may spell differently.
func shape(method, p string) string { return method + " " + anyParam.ReplaceAllString(p, "{}") }

// TestOpenAPIDescribesEveryRoute fails when the server registers a route the
// document does not describe, or the document describes one the server does
// not have. A route added without its description fails here by name.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	cfg, err := config.Load("", func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	cfg.UploadDir = t.TempDir()
	pool, _ := testenv.Database(t)
	srv, err := api.New(api.Deps{Config: cfg, Pool: pool})
	require.NoError(t, err)
	t.Cleanup(srv.Close)

	doc := testenv.APIDocument(t)
	described := map[string]string{} // shape -> "METHOD /path" as the document spells it
	for p, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			described[shape(method, p)] = method + " " + p
		}
	}
	served := map[string]bool{}
	var problems []string
	for _, r := range srv.Routes() {
		p := docPath(r.Path)
		if _, skip := notInDocument[p]; skip {
			continue
		}
		served[shape(r.Method, p)] = true
		if _, ok := described[shape(r.Method, p)]; !ok {
			problems = append(problems, fmt.Sprintf(
				"the server registers %s %s but api/openapi/openapi.yaml does not describe it: add paths.%q.%s "+
					"(operationId, parameters, request body, and every status with its error codes), "+
					"then run `go generate ./api/openapi` to refresh docs/API.md",
				r.Method, r.Path, p, strings.ToLower(r.Method)))
		}
	}
	for s, name := range described {
		if !served[s] {
			problems = append(problems, fmt.Sprintf(
				"api/openapi/openapi.yaml describes %s but the server has no such route: remove it from the document, or register it", name))
		}
	}
	slices.Sort(problems)
	require.Empty(t, problems, strings.Join(problems, "\n"))
}

// The document is served, unauthenticated, as YAML and as the same JSON.
func TestOpenAPIServed(t *testing.T) {
	ts, _ := baseServer(t)
	client := testenv.APIClient(t)
	get := func(path string) (*http.Response, []byte) {
		resp, err := client.Get(ts.URL + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp, b
	}
	resp, y := get(openapi.PathYAML)
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, "application/yaml", resp.Header.Get("Content-Type"))
	require.Equal(t, openapi.YAML(), y)

	resp, j := get(openapi.PathJSON)
	require.Equal(t, 200, resp.StatusCode)
	require.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json"))
	fromYAML, err := yaml.YAMLToJSON(y)
	require.NoError(t, err)
	require.JSONEq(t, string(fromYAML), string(j))
	require.Contains(t, string(j), `"openapi":"3.1.0"`)
}
