package dav_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/db"
)

func (s *davServer) do(t *testing.T, method, p string, body io.Reader, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	return doAt(t, s.URL, method, p, body, hdr)
}

// doAt is do against the handler at base (another replica).
func doAt(t *testing.T, base, method, p string, body io.Reader, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, base+strings.TrimPrefix(p, "/"), body)
	require.NoError(t, err)
	req.SetBasicAuth("alice", testKey)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// A Depth 1 PROPFIND of 1,000 entries makes one listing call and no
// per-entry stat or download (the stat cache and ContentTyper at work), and
// loads dead properties in one query.
func TestPropfindOneListing(t *testing.T) {
	s := newDavServer(t, 1<<30)
	// No extension: the engine would sniff the content type.
	s.exec(t, `mkdir many && cd many && for i in $(seq -w 0 999); do printf x > f$i; done`)
	s.SB.Calls.Reset()
	resp, body := s.do(t, "PROPFIND", "many/", nil, map[string]string{"Depth": "1"})
	require.Equal(t, 207, resp.StatusCode)
	require.Equal(t, 1001, strings.Count(body, "<D:response>"))
	require.Equal(t, 1, s.SB.Calls.Count("GET files"), "one listing call")
	require.LessOrEqual(t, s.SB.Calls.Count("GET files/info"), 2, "no per-entry stat")
	require.Equal(t, 0, s.SB.Calls.Count("GET files/download"), "no content sniffing")
}

// GET with Range opens one ranged download at the offset; HEAD downloads
// nothing.
func TestRangedRead(t *testing.T) {
	s := newDavServer(t, 1<<30)
	data := make([]byte, 1<<20)
	_, _ = rand.Read(data)
	s.put(t, "blob", data)
	s.SB.Calls.Reset()
	resp, body := s.do(t, http.MethodGet, "blob", nil, map[string]string{"Range": "bytes=500000-500099"})
	require.Equal(t, 206, resp.StatusCode)
	require.Equal(t, data[500000:500100], []byte(body))
	require.Equal(t, 1, s.SB.Calls.Count("GET files/download"))
	resp, _ = s.do(t, http.MethodHead, "blob", nil, nil)
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, "application/octet-stream", resp.Header.Get("Content-Type"))
	require.Equal(t, 1, s.SB.Calls.Count("GET files/download"), "HEAD reads no content")
	resp, body = s.do(t, http.MethodGet, "blob", nil, nil)
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, data, []byte(body))
}

// Over-quota writes are 507 and leave no file, no spool and no change in
// the accounted usage; fitting writes are accounted exactly.
func TestQuotaLeavesNothing(t *testing.T) {
	s := newDavServer(t, 100_000)
	ctx := context.Background()
	resp, body := s.do(t, http.MethodPut, "a.bin", bytes.NewReader(make([]byte, 60_000)), nil)
	require.Equal(t, 201, resp.StatusCode, body)
	u, err := s.Q.VolumeUsage(ctx, testUser)
	require.NoError(t, err)
	require.EqualValues(t, 60_000, u.UsedBytes)

	resp, body = s.do(t, http.MethodPut, "b.bin", bytes.NewReader(make([]byte, 50_000)), nil)
	require.Equal(t, 507, resp.StatusCode, body)
	require.Contains(t, body, `"quota_exceeded"`)
	// A body announced larger than the whole quota can never fit: 413, as on
	// every other path into the volume.
	resp, body = s.do(t, http.MethodPut, "huge.bin", bytes.NewReader(make([]byte, 100_001)), nil)
	require.Equal(t, 413, resp.StatusCode, body)
	require.Contains(t, body, `"too_large"`)
	// Unknown length: refused mid-stream.
	resp, body = s.do(t, http.MethodPut, "c.bin", io.MultiReader(bytes.NewReader(make([]byte, 50_000))), nil)
	require.Equal(t, 507, resp.StatusCode, body)
	resp, _ = s.do(t, "COPY", "a.bin", nil, map[string]string{"Destination": "/dav/d.bin"})
	require.Equal(t, 507, resp.StatusCode)
	// Overwriting a file frees its bytes first.
	resp, _ = s.do(t, http.MethodPut, "a.bin", bytes.NewReader(make([]byte, 90_000)), nil)
	require.Equal(t, 201, resp.StatusCode)

	require.Equal(t, []string{"a.bin"}, s.names(t, "/"), "only a.bin: no file, no spool left")
	u, _ = s.Q.VolumeUsage(ctx, testUser)
	require.EqualValues(t, 90_000, u.UsedBytes)

	resp, _ = s.do(t, http.MethodDelete, "a.bin", nil, nil)
	require.Equal(t, 204, resp.StatusCode)
	u, _ = s.Q.VolumeUsage(ctx, testUser)
	require.EqualValues(t, 0, u.UsedBytes)
}

// COPY and MOVE work on trees, and dead properties follow MOVE and DELETE.
func TestCopyMoveTree(t *testing.T) {
	s := newDavServer(t, 1<<30)
	for _, p := range []string{"t/", "t/sub/"} {
		resp, _ := s.do(t, "MKCOL", p, nil, nil)
		require.Equal(t, 201, resp.StatusCode)
	}
	for _, p := range []string{"t/a.txt", "t/sub/b.txt"} {
		resp, _ := s.do(t, http.MethodPut, p, strings.NewReader("content of "+p), nil)
		require.Equal(t, 201, resp.StatusCode)
	}
	patch := `<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z"><D:set><D:prop><Z:k>v</Z:k></D:prop></D:set></D:propertyupdate>`
	resp, _ := s.do(t, "PROPPATCH", "t/sub/b.txt", strings.NewReader(patch), nil)
	require.Equal(t, 207, resp.StatusCode)

	resp, _ = s.do(t, "COPY", "t/", nil, map[string]string{"Destination": "/dav/t2/"})
	require.Equal(t, 201, resp.StatusCode)
	resp, _ = s.do(t, "MOVE", "t/", nil, map[string]string{"Destination": "/dav/t3/"})
	require.Equal(t, 201, resp.StatusCode)
	for _, p := range []string{"t2/a.txt", "t2/sub/b.txt", "t3/a.txt", "t3/sub/b.txt"} {
		require.Equal(t, "content of t/"+strings.SplitN(p, "/", 2)[1], string(s.read(t, p)))
	}
	require.False(t, s.exists(t, "t"))
	rows, err := s.Q.DeadProps(context.Background(), db.DeadPropsParams{UserID: testUser, Paths: []string{"/t/sub/b.txt", "/t2/sub/b.txt", "/t3/sub/b.txt"}})
	require.NoError(t, err)
	var paths []string
	for _, r := range rows {
		paths = append(paths, r.Path)
	}
	require.ElementsMatch(t, []string{"/t2/sub/b.txt", "/t3/sub/b.txt"}, paths)

	resp, _ = s.do(t, "COPY", "t3/", nil, map[string]string{"Destination": "/dav/t3/inside/"})
	require.Equal(t, 403, resp.StatusCode, "a collection cannot be copied into itself")
	resp, _ = s.do(t, http.MethodDelete, "t3/", nil, nil)
	require.Equal(t, 204, resp.StatusCode)
	rows, _ = s.Q.DeadProps(context.Background(), db.DeadPropsParams{UserID: testUser, Paths: []string{"/t3/sub/b.txt"}})
	require.Empty(t, rows)
}

func TestLockTimeoutClamped(t *testing.T) {
	s := newDavServer(t, 1<<30)
	lock := `<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>`
	for hdr, want := range map[string]string{"": "Second-3600", "Infinite": "Second-3600", "Second-99999999": "Second-3600", "Second-60": "Second-60", "Infinite, Second-30": "Second-30"} {
		resp, body := s.do(t, "LOCK", "l.txt", strings.NewReader(lock), map[string]string{"Timeout": hdr})
		require.Contains(t, []int{200, 201}, resp.StatusCode, body)
		require.Contains(t, body, want, "Timeout %q", hdr)
		resp, _ = s.do(t, "UNLOCK", "l.txt", nil, map[string]string{"Lock-Token": resp.Header.Get("Lock-Token")})
		require.Equal(t, 204, resp.StatusCode)
	}
}

// Lock tokens are URIs (RFC 4918 §6.5), not the engine's counters, and they
// work for writing and unlocking; a made-up token does not.
func TestLockTokensAreURIs(t *testing.T) {
	s := newDavServer(t, 1<<30)
	lock := `<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>`
	resp, body := s.do(t, "LOCK", "u.txt", strings.NewReader(lock), nil)
	require.Contains(t, []int{200, 201}, resp.StatusCode, body)
	tok := resp.Header.Get("Lock-Token")
	require.Regexp(t, `^<urn:uuid:[0-9a-f-]{36}>$`, tok)
	require.Contains(t, body, strings.Trim(tok, "<>"), "the body names the same token")

	resp, _ = s.do(t, http.MethodPut, "u.txt", strings.NewReader("no token"), nil)
	require.Equal(t, 423, resp.StatusCode, "locked without the token")
	resp, _ = s.do(t, http.MethodPut, "u.txt", strings.NewReader("forged"), map[string]string{"If": "(<urn:uuid:00000000-0000-0000-0000-000000000000>)"})
	require.Equal(t, 412, resp.StatusCode, "a made-up token is not the lock's")
	resp, body = s.do(t, http.MethodPut, "u.txt", strings.NewReader("with token"), map[string]string{"If": "(" + tok + ")"})
	require.Contains(t, []int{200, 201, 204}, resp.StatusCode, body)
	resp, _ = s.do(t, "UNLOCK", "u.txt", nil, map[string]string{"Lock-Token": tok})
	require.Equal(t, 204, resp.StatusCode)
	resp, _ = s.do(t, http.MethodPut, "u.txt", strings.NewReader("after unlock"), nil)
	require.Contains(t, []int{200, 201, 204}, resp.StatusCode)
}
