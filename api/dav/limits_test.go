package dav_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/api/dav"
	"github.com/threadbox/threadbox/db"
)

// COPY of the volume root into one of its own directories is a copy into
// itself like any other: refused before anything is written (it used to
// recurse, copying the whole volume again at every level).
func TestCopyRootIntoItselfRefused(t *testing.T) {
	s := newDavServer(t, 1<<30)
	resp, _ := s.do(t, http.MethodPut, "a.txt", strings.NewReader("a"), nil)
	require.Equal(t, 201, resp.StatusCode)
	for _, m := range []string{"COPY", "MOVE"} {
		resp, body := s.do(t, m, "", nil, map[string]string{"Destination": "/dav/inside/", "Depth": "infinity"})
		require.Equal(t, http.StatusForbidden, resp.StatusCode, "%s / → /inside/: %s", m, body)
		require.False(t, s.exists(t, "inside"), "%s of the root into itself must touch nothing", m)
		require.True(t, s.exists(t, "a.txt"))
	}
}

// The XML bodies of PROPPATCH, PROPFIND and LOCK are capped: the engine
// would read (and, for dead properties and lock owners, keep) any amount.
func TestXMLBodiesCapped(t *testing.T) {
	s := newDavServer(t, 1<<30)
	resp, _ := s.do(t, http.MethodPut, "p.txt", strings.NewReader("p"), nil)
	require.Equal(t, 201, resp.StatusCode)
	big := strings.Repeat("x", 2<<20)
	patch := `<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z"><D:set><D:prop><Z:k>` + big + `</Z:k></D:prop></D:set></D:propertyupdate>`
	resp, body := s.do(t, "PROPPATCH", "p.txt", strings.NewReader(patch), nil)
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, body)
	rows, err := s.Q.DeadProps(context.Background(), db.DeadPropsParams{UserID: testUser, Paths: []string{"/p.txt"}})
	require.NoError(t, err)
	require.Empty(t, rows, "nothing stored")

	// Without a Content-Length (chunked) as well.
	resp, body = s.do(t, "PROPPATCH", "p.txt", struct{ *strings.Reader }{strings.NewReader(patch)}, nil)
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, body)

	lock := `<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner>` + big + `</D:owner></D:lockinfo>`
	resp, body = s.do(t, "LOCK", "p.txt", struct{ *strings.Reader }{strings.NewReader(lock)}, nil)
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, body)
	resp, _ = s.do(t, http.MethodPut, "p.txt", strings.NewReader("p2"), nil)
	require.Equal(t, 201, resp.StatusCode, "no lock was taken")

	find := `<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><Z:` + big + ` xmlns:Z="urn:z"/></D:prop></D:propfind>`
	resp, body = s.do(t, "PROPFIND", "p.txt", strings.NewReader(find), map[string]string{"Depth": "0"})
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, body)

	// Ordinary bodies still work.
	small := `<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z"><D:set><D:prop><Z:k>v</Z:k></D:prop></D:set></D:propertyupdate>`
	resp, body = s.do(t, "PROPPATCH", "p.txt", strings.NewReader(small), nil)
	require.Equal(t, 207, resp.StatusCode, body)
}

// Over the limit, LOCK answers 429 and creates nothing.
func TestLockOverLimitIs429(t *testing.T) {
	s := newDavServer(t, 1<<30)
	lock := `<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>`
	for i := range dav.MaxLocksPerUser {
		resp, body := s.do(t, "LOCK", fmt.Sprintf("l%d.txt", i), strings.NewReader(lock), nil)
		require.Contains(t, []int{200, 201}, resp.StatusCode, body)
	}
	resp, body := s.do(t, "LOCK", "over.txt", strings.NewReader(lock), nil)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, body)
	require.False(t, s.exists(t, "over.txt"), "nothing created")
}
