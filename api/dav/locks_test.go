package dav_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/db"
)

func lockBody(scope string) *strings.Reader {
	return strings.NewReader(`<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:` + scope +
		`/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner><D:href>me</D:href></D:owner></D:lockinfo>`)
}

// A LOCK taken through one replica is honoured by another over the same
// database: a write there without the token is refused, with it goes
// through, and the lock can be refreshed and removed there.
func TestLockHonouredByAnotherReplica(t *testing.T) {
	s := newDavServer(t, 1<<30)
	other := s.serve(t)
	resp, _ := s.do(t, http.MethodPut, "shared.txt", strings.NewReader("v1"), nil)
	require.Equal(t, 201, resp.StatusCode)
	resp, body := s.do(t, "LOCK", "shared.txt", lockBody("exclusive"), nil)
	require.Equal(t, 200, resp.StatusCode, body)
	tok := resp.Header.Get("Lock-Token")

	resp, _ = doAt(t, other, http.MethodPut, "shared.txt", strings.NewReader("v2"), nil)
	require.Equal(t, 423, resp.StatusCode, "the other replica sees the lock")
	resp, _ = doAt(t, other, "LOCK", "shared.txt", lockBody("exclusive"), nil)
	require.Equal(t, 423, resp.StatusCode)
	resp, _ = doAt(t, other, http.MethodDelete, "shared.txt", nil, nil)
	require.Equal(t, 423, resp.StatusCode)
	resp, body = doAt(t, other, http.MethodPut, "shared.txt", strings.NewReader("v3"), map[string]string{"If": "(" + tok + ")"})
	require.Contains(t, []int{200, 201, 204}, resp.StatusCode, body)
	require.Equal(t, "v3", string(s.read(t, "shared.txt")))
	resp, body = doAt(t, other, "LOCK", "shared.txt", nil, map[string]string{"If": "(" + tok + ")", "Timeout": "Second-120"})
	require.Equal(t, 200, resp.StatusCode, body)
	require.Contains(t, body, "Second-120", "refreshed through the other replica")
	resp, _ = doAt(t, other, "UNLOCK", "shared.txt", nil, map[string]string{"Lock-Token": tok})
	require.Equal(t, 204, resp.StatusCode)
	resp, _ = s.do(t, http.MethodPut, "shared.txt", strings.NewReader("v4"), nil)
	require.Contains(t, []int{200, 201, 204}, resp.StatusCode, "unlocked everywhere")
}

// The LOCK answer's lockroot is the URL clients use: with the /dav prefix.
func TestLockRootCarriesPrefix(t *testing.T) {
	s := newDavServer(t, 1<<30)
	resp, _ := s.do(t, "MKCOL", "dir/", nil, nil)
	require.Equal(t, 201, resp.StatusCode)
	resp, body := s.do(t, "LOCK", "dir/new file.txt", lockBody("exclusive"), map[string]string{"Depth": "0"})
	require.Equal(t, 201, resp.StatusCode, "an unmapped URL is created: %s", body)
	require.Contains(t, body, "<D:lockroot><D:href>/dav/dir/new%20file.txt</D:href></D:lockroot>")
	require.Contains(t, body, "<D:depth>0</D:depth>")
	require.Contains(t, body, "<D:owner><D:href>me</D:href></D:owner>")
	resp, body = s.do(t, "LOCK", "dir/new file.txt", nil, map[string]string{"If": "(" + resp.Header.Get("Lock-Token") + ")"})
	require.Equal(t, 200, resp.StatusCode, body)
	require.Contains(t, body, "<D:lockroot><D:href>/dav/dir/new%20file.txt</D:href></D:lockroot>", "on a refresh too")
}

// Shared locks: several holders, each writes with its own token; no
// exclusive lock beside them; a write without a token is refused.
func TestSharedLocksOverHTTP(t *testing.T) {
	s := newDavServer(t, 1<<30)
	resp, _ := s.do(t, http.MethodPut, "s.txt", strings.NewReader("s"), nil)
	require.Equal(t, 201, resp.StatusCode)
	var toks []string
	for range 2 {
		resp, body := s.do(t, "LOCK", "s.txt", lockBody("shared"), nil)
		require.Equal(t, 200, resp.StatusCode, body)
		require.Contains(t, body, "<D:lockscope><D:shared/></D:lockscope>")
		toks = append(toks, resp.Header.Get("Lock-Token"))
	}
	resp, _ = s.do(t, "LOCK", "s.txt", lockBody("exclusive"), nil)
	require.Equal(t, 423, resp.StatusCode)
	resp, _ = s.do(t, http.MethodPut, "s.txt", strings.NewReader("x"), nil)
	require.Equal(t, 423, resp.StatusCode)
	for i, tok := range toks {
		resp, body := s.do(t, http.MethodPut, "s.txt", strings.NewReader(fmt.Sprint(i)), map[string]string{"If": "(" + tok + ")"})
		require.Contains(t, []int{200, 201, 204}, resp.StatusCode, body)
	}
}

// Entity tags in the If header are compared with the resource's ETag (the
// engine ignored them), and a true If header whose tokens do not include
// the resource's lock answers 423, not 412.
func TestIfHeaderEntityTags(t *testing.T) {
	s := newDavServer(t, 1<<30)
	resp, _ := s.do(t, http.MethodPut, "e.txt", strings.NewReader("e"), nil)
	require.Equal(t, 201, resp.StatusCode)
	resp, _ = s.do(t, http.MethodHead, "e.txt", nil, nil)
	etag := resp.Header.Get("ETag")
	require.NotEmpty(t, etag)

	resp, _ = s.do(t, http.MethodPut, "e.txt", strings.NewReader("e2"), map[string]string{"If": `(["not-the-etag"])`})
	require.Equal(t, 412, resp.StatusCode)
	resp, _ = s.do(t, http.MethodPut, "e.txt", strings.NewReader("e2"), map[string]string{"If": "(Not [" + etag + "])"})
	require.Equal(t, 412, resp.StatusCode)
	resp, body := s.do(t, http.MethodPut, "e.txt", strings.NewReader("e2"), map[string]string{"If": "([" + etag + "])"})
	require.Contains(t, []int{200, 201, 204}, resp.StatusCode, "an unlocked resource with its ETag: %s", body)
	require.Equal(t, "e2", string(s.read(t, "e.txt")))

	resp, body = s.do(t, "LOCK", "e.txt", lockBody("exclusive"), nil)
	require.Equal(t, 200, resp.StatusCode, body)
	tok := resp.Header.Get("Lock-Token")
	resp, _ = s.do(t, http.MethodHead, "e.txt", nil, nil)
	etag = resp.Header.Get("ETag")
	resp, _ = s.do(t, http.MethodPut, "e.txt", strings.NewReader("e3"), map[string]string{"If": "(" + tok + ` ["wrong"]) (Not <DAV:no-lock> ["wrong"])`})
	require.Equal(t, 412, resp.StatusCode, "no list holds (litmus fail_complex_cond_put)")
	resp, _ = s.do(t, http.MethodPut, "e.txt", strings.NewReader("e3"), map[string]string{"If": "(<urn:uuid:00000000-0000-0000-0000-000000000000>) (Not <DAV:no-lock>)"})
	require.Equal(t, 423, resp.StatusCode, "the header holds but the lock's token is missing (litmus cond_put_corrupt_token)")
	resp, body = s.do(t, http.MethodPut, "e.txt", strings.NewReader("e3"), map[string]string{"If": "(" + tok + " [" + etag + "])"})
	require.Contains(t, []int{200, 201, 204}, resp.StatusCode, body)
	resp, _ = s.do(t, http.MethodPut, "e.txt", strings.NewReader("e4"), map[string]string{"If": "(" + tok})
	require.Equal(t, 400, resp.StatusCode, "a malformed If header")
}

// A body binding a namespace prefix to the empty name is malformed XML
// (litmus propfind_invalid2); encoding/xml accepts it, the wrapper does not.
func TestEmptyNamespacePrefixRefused(t *testing.T) {
	s := newDavServer(t, 1<<30)
	bad := `<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><bar:foo xmlns:bar=""/></D:prop></D:propfind>`
	resp, body := s.do(t, "PROPFIND", "", strings.NewReader(bad), map[string]string{"Depth": "0"})
	require.Equal(t, 400, resp.StatusCode, body)
	good := `<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><foo xmlns=""/></D:prop></D:propfind>`
	resp, body = s.do(t, "PROPFIND", "", strings.NewReader(good), map[string]string{"Depth": "0"})
	require.Equal(t, 207, resp.StatusCode, "undeclaring the default namespace is allowed: %s", body)
}

// Deleting or moving a collection needs the tokens of locked members (RFC
// 4918 §9.6.1); the engine's temporary locks only looked at the collection.
func TestTreeWriteNeedsMemberTokens(t *testing.T) {
	s := newDavServer(t, 1<<30)
	resp, _ := s.do(t, "MKCOL", "tree/", nil, nil)
	require.Equal(t, 201, resp.StatusCode)
	resp, _ = s.do(t, http.MethodPut, "tree/m.txt", strings.NewReader("m"), nil)
	require.Equal(t, 201, resp.StatusCode)
	resp, body := s.do(t, "LOCK", "tree/m.txt", lockBody("exclusive"), map[string]string{"Depth": "0"})
	require.Equal(t, 200, resp.StatusCode, body)
	tok := resp.Header.Get("Lock-Token")
	resp, _ = s.do(t, http.MethodDelete, "tree/", nil, nil)
	require.Equal(t, 423, resp.StatusCode)
	resp, _ = s.do(t, "MOVE", "tree/", nil, map[string]string{"Destination": "/dav/tree2/"})
	require.Equal(t, 423, resp.StatusCode)
	require.True(t, s.exists(t, "tree/m.txt"))
	resp, _ = s.do(t, http.MethodDelete, "tree/", nil, map[string]string{"If": "<" + strings.TrimSuffix(s.URL, "/") + "/tree/m.txt> (" + tok + ")"})
	require.Equal(t, 204, resp.StatusCode, "with the member's token (a tagged list)")
}

// A PUT refused because another replica's write of the file is in progress
// (or its replica died mid-PUT, leaving its transient lock to run out its
// lease) is 423 with Retry-After, the end of that lease; once it ends the
// retried PUT is served. A client's LOCK gives no Retry-After.
func TestPutLockedByAnotherWriteSaysWhenToRetry(t *testing.T) {
	s := newDavServer(t, 1<<30)
	// The row a replica SIGKILLed mid-PUT leaves: a transient lock whose
	// lease nobody renews any more.
	until := time.Now().Add(3 * time.Second)
	require.NoError(t, s.Q.InsertDavLock(context.Background(), db.InsertDavLockParams{
		Token: "urn:uuid:dead-writer", UserID: testUser, Root: "/cut.bin", ZeroDepth: true, Transient: true, ExpiresAt: until,
	}))
	resp, _ := s.do(t, http.MethodPut, "cut.bin", strings.NewReader("again"), nil)
	require.Equal(t, http.StatusLocked, resp.StatusCode)
	ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	require.NoError(t, err, "Retry-After %q", resp.Header.Get("Retry-After"))
	require.True(t, ra >= 1 && ra <= 3, "Retry-After %d: the lease's end, 3 s away", ra)

	time.Sleep(time.Until(until) + 100*time.Millisecond)
	resp, _ = s.do(t, http.MethodPut, "cut.bin", strings.NewReader("again"), nil)
	require.Equal(t, http.StatusCreated, resp.StatusCode, "the dead writer's lease ended")

	resp, _ = s.do(t, "LOCK", "cut.bin", lockBody("exclusive"), nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	resp, _ = s.do(t, http.MethodPut, "cut.bin", strings.NewReader("v3"), nil)
	require.Equal(t, http.StatusLocked, resp.StatusCode)
	require.Empty(t, resp.Header.Get("Retry-After"), "a client's LOCK lasts until it unlocks")
}
