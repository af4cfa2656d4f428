package apidoc_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/api/openapi"
	"github.com/threadbox/threadbox/api/openapi/apidoc"
	"github.com/threadbox/threadbox/internal/testenv"
)

// TestAPIMarkdownIsCurrent fails when docs/API.md is not what the document
// renders to: the document changed and the Markdown was not regenerated (or
// the Markdown was edited by hand).
func TestAPIMarkdownIsCurrent(t *testing.T) {
	want, err := apidoc.Render(openapi.YAML())
	require.NoError(t, err)
	got, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "docs", "API.md"))
	require.NoError(t, err, "docs/API.md is missing: run `go generate ./api/openapi`")
	if string(got) != string(want) {
		t.Fatal("docs/API.md is stale: run `go generate ./api/openapi` (make api-docs) and commit it")
	}
}

// The rendering names every operation with its error codes, and the
// schemas' fields, so a reader needs no YAML.
func TestRenderShowsOperationsCodesAndFields(t *testing.T) {
	md, err := apidoc.Render(openapi.YAML())
	require.NoError(t, err)
	s := string(md)
	for _, want := range []string{
		"### `POST /v1/threads/{id}/exec`",
		"`missing_command`, `invalid_command`",
		"### `POST /v1/uploads/`",
		"| `Upload-Metadata` | header |",
		"| `files[].code` |",
		"`sandbox_id` | string or null",
		"`Retry-After`",
	} {
		require.True(t, strings.Contains(s, want), "docs/API.md lacks %q", want)
	}
}
