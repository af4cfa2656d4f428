// Package openapi holds threadbox's OpenAPI 3.1 document, the description of
// the whole REST API that clients generate code from and that the test suite
// holds the server to: every request and response of the API tests is
// validated against it (internal/testenv), a coverage test fails when a route
// the server registers is missing from it or it names a route that does not
// exist (api.TestOpenAPIDescribesEveryRoute), and docs/API.md is rendered from
// it (apidoc). The server serves it, unauthenticated, at Paths.
package openapi

//go:generate go run ./apidoc/gen -o ../../docs/API.md

import (
	_ "embed"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"
	"sigs.k8s.io/yaml"
)

//go:embed openapi.yaml
var document []byte

// YAML is the document as committed.
func YAML() []byte { return append([]byte(nil), document...) }

// Paths are where the document is served: YAML and JSON.
const (
	PathYAML = "/v1/openapi.yaml"
	PathJSON = "/v1/openapi.json"
)

// Public reports whether a route serves the document, which needs no API key
// (a client generator must be able to fetch it before it has one).
func Public(route string) bool { return route == PathYAML || route == PathJSON }

// Routes serve the document.
type Routes struct {
	json []byte
}

// New converts the document to JSON once, so both forms are served from memory.
func New() (*Routes, error) {
	j, err := yaml.YAMLToJSON(document)
	if err != nil {
		return nil, fmt.Errorf("openapi document to JSON: %w", err)
	}
	return &Routes{json: j}, nil
}

// Register adds GET PathYAML and GET PathJSON.
func (r *Routes) Register(e *echo.Echo) {
	e.GET(PathYAML, func(c echo.Context) error {
		return c.Blob(http.StatusOK, "application/yaml", document)
	})
	e.GET(PathJSON, func(c echo.Context) error {
		return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, r.json)
	})
}
