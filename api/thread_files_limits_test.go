package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/auth"
	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/internal/testenv"
)

// reviewServer is the API over a database only, with a user key and a live
// thread row: enough for routes that refuse before any sandbox call.
func reviewServer(t *testing.T) (url, key string) {
	t.Helper()
	ts, pool := baseServerPool(t)
	key, _, err := auth.NewStore(db.New(pool)).Create(context.Background(), "rev-user", false)
	require.NoError(t, err)
	_, err = db.New(pool).APICreateOrReviveThread(context.Background(), db.APICreateOrReviveThreadParams{UserID: "rev-user", ThreadID: "t1"})
	require.NoError(t, err)
	return ts.URL, key
}

// A batch upload's per-part results are bounded: a body of thousands of
// parts that never reach the sandbox (paths without files, files without
// paths) must not make the server hold, and answer, one entry per part.
func TestBatchUploadResultsBounded(t *testing.T) {
	url, key := reviewServer(t)
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	long := strings.Repeat("p", 4000)
	for range 3000 {
		require.NoError(t, mw.WriteField("path", long))
	}
	for range 3000 {
		fw, err := mw.CreateFormFile("file", "f")
		require.NoError(t, err)
		_, _ = fw.Write([]byte("x"))
	}
	require.NoError(t, mw.Close())
	req, err := http.NewRequest(http.MethodPost, url+"/v1/threads/t1/files/upload", &buf)
	require.NoError(t, err)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := testenv.APIClient(t).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var out struct {
		Files []struct {
			Path  string `json:"path"`
			Error string `json:"error"`
		} `json:"files"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	require.LessOrEqual(t, len(out.Files), 1001, "one result per part, unbounded")
	require.Contains(t, out.Files[len(out.Files)-1].Error, "too many files")
	for _, f := range out.Files {
		require.NotEmpty(t, f.Error)
	}
}
