package e2e_test

import (
	"context"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	s3api "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/api"
	"github.com/threadbox/threadbox/api/dav/davtest"
	"github.com/threadbox/threadbox/config"
	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/guardcache"
	"github.com/threadbox/threadbox/internal/testenv"
)

// roundRobin is a load balancer in front of several API replicas: each
// request goes to the next one, with nothing sticky. served counts the
// requests each replica got.
type roundRobin struct {
	URL    string
	next   atomic.Uint64
	served []atomic.Int64
}

// newRoundRobin starts the balancer. With keepHost the replicas see the
// client's Host (as behind most ingresses), else their own.
func newRoundRobin(t *testing.T, keepHost bool, backends ...string) *roundRobin {
	t.Helper()
	rr := &roundRobin{served: make([]atomic.Int64, len(backends))}
	targets := make([]*url.URL, len(backends))
	for i, b := range backends {
		u, err := url.Parse(b)
		require.NoError(t, err)
		targets[i] = u
	}
	proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		i := int((rr.next.Add(1) - 1) % uint64(len(targets)))
		rr.served[i].Add(1)
		pr.SetURL(targets[i])
		if keepHost {
			pr.Out.Host = pr.In.Host
		}
		pr.SetXForwarded()
	}}
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	rr.URL = srv.URL
	return rr
}

// behind is env as a client behind the load balancer sees it.
func behind(env *testenv.Env, base string) *testenv.Env {
	e := *env
	e.URL = base
	return &e
}

// TestReplicas runs two API servers (two `threadbox serve`) over one
// database, Temporal and Daytona: whatever one replica did, the other
// honours, so a load balancer needs no stickiness.
func TestReplicas(t *testing.T) {
	s3 := testenv.S3(t)
	env := testenv.New(t, testenv.Options{AutoStop: 30 * time.Second, AutoDelete: time.Minute, FilesAutoStop: time.Minute,
		Configure: func(c *config.Config) {
			c.UploadS3Endpoint, c.UploadS3Region, c.UploadS3Bucket = s3.Endpoint, s3.Region, s3.Bucket
			c.UploadS3AccessKey, c.UploadS3SecretKey = s3.AccessKey, s3.SecretKey
		}})
	// The second replica shares the database, Temporal, Daytona and the
	// bucket, not a directory.
	a, b := behind(env, env.URL), behind(env, env.Replica(func(c *config.Config) { c.UploadDir = t.TempDir() }))
	key := env.UserKey

	t.Run("lock-honoured-by-the-other", func(t *testing.T) {
		resp, body := fdo(t, a, key, http.MethodPut, "/dav/replicated.txt", strings.NewReader("v1"), nil)
		require.Equal(t, 201, resp.StatusCode, body)
		lock := `<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>`
		resp, body = fdo(t, a, key, "LOCK", "/dav/replicated.txt", strings.NewReader(lock), nil)
		require.Equal(t, 200, resp.StatusCode, body)
		require.Contains(t, body, "<D:lockroot><D:href>/dav/replicated.txt</D:href></D:lockroot>")
		token := resp.Header.Get("Lock-Token")

		resp, _ = fdo(t, b, key, http.MethodPut, "/dav/replicated.txt", strings.NewReader("v2"), nil)
		require.Equal(t, 423, resp.StatusCode, "replica B honours A's lock")
		resp, _ = fdo(t, b, key, "MOVE", "/dav/replicated.txt", nil, map[string]string{"Destination": "/dav/moved.txt"})
		require.Equal(t, 423, resp.StatusCode)
		resp, body = fdo(t, b, key, http.MethodPut, "/dav/replicated.txt", strings.NewReader("v3"), map[string]string{"If": "(" + token + ")"})
		require.Equal(t, 201, resp.StatusCode, body)
		resp, _ = fdo(t, b, key, "UNLOCK", "/dav/replicated.txt", nil, map[string]string{"Lock-Token": token})
		require.Equal(t, 204, resp.StatusCode, "unlocked through B")
		resp, body = fdo(t, a, key, http.MethodPut, "/dav/replicated.txt", strings.NewReader("v4"), nil)
		require.Equal(t, 201, resp.StatusCode, "A sees the unlock: %s", body)
	})

	t.Run("litmus-round-robin", func(t *testing.T) {
		rr := newRoundRobin(t, false, a.URL, b.URL)
		got, out := davtest.RunLitmus(t, rr.URL+"/dav/", "litmus", key)
		for _, r := range got {
			if r.Result != "pass" {
				t.Errorf("litmus %s: %s", r.Key(), r.Result)
			}
		}
		davtest.CompareWithBaseline(t, got,
			davtest.LoadResults(t, filepath.Join(testenv.RepoRoot(t), "api/dav/testdata/litmus-baseline-webdav-dir.txt")),
			davtest.LoadResults(t, filepath.Join(testenv.RepoRoot(t), "api/dav/testdata/litmus-threadbox.txt")))
		require.Greater(t, rr.served[0].Load(), int64(50))
		require.Greater(t, rr.served[1].Load(), int64(50))
		if t.Failed() {
			t.Log(out)
		}
	})

	t.Run("thread-deleted-through-the-other", func(t *testing.T) {
		// C trusts a cached guard verdict for an hour: only the delete's
		// notification can make it refuse the thread.
		c := behind(env, env.ReplicaDeps(func(d *api.Deps) { d.GuardMaxStale = time.Hour }))
		ca, cb, cc := newTC(t, a, key), newTC(t, b, key), newTC(t, c, key)
		ca.create("doomed")
		// Short commands, so B's uses fit the window it caches (a 300 s
		// default timeout would outlive a 30 s auto-stop and take a lease).
		execB := func(cmd string) (*http.Response, []byte) {
			return cb.call(http.MethodPost, "/v1/threads/doomed/exec", map[string]any{"command": cmd, "timeout_s": 5})
		}
		execC := func(cmd string) (*http.Response, []byte) {
			return cc.call(http.MethodPost, "/v1/threads/doomed/exec", map[string]any{"command": cmd, "timeout_s": 5})
		}
		resp, body := execB("echo b")
		require.Equal(t, 200, resp.StatusCode, string(body))
		resp, body = execB("echo b")
		require.Equal(t, 200, resp.StatusCode, "B caches the sandbox's window: %s", body)
		// Every replica's guard listener (A, B, C) has LISTENed, so C caches.
		testenv.Eventually(t, 10*time.Second, "the guard listeners of A, B and C", func() bool {
			var n int
			err := env.Pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
				WHERE datname = current_database() AND query = 'LISTEN '||$1::text`, guardcache.Channel).Scan(&n)
			require.NoError(t, err)
			return n >= 3
		})
		resp, body = execC("echo c")
		require.Equal(t, 200, resp.StatusCode, string(body))
		resp, body = execC("echo c")
		require.Equal(t, 200, resp.StatusCode, "C caches the sandbox's window and the thread's verdict: %s", body)
		th := ca.get("doomed")
		require.NotNil(t, th.SandboxID)
		sb, err := env.Gateway.GetSandbox(context.Background(), *th.SandboxID)
		require.NoError(t, err)
		direct := env.Gateway.Toolbox(sb.ID, sb.ToolboxURL)

		// Hold the delete between its two steps: the row is marked deleted at
		// once, the workflow (no worker now) destroys the sandbox later.
		env.StopWorker()
		deleted := make(chan int, 1)
		go func() {
			resp, _ := fdo(t, a, key, http.MethodDelete, "/v1/threads/doomed", nil, nil)
			deleted <- resp.StatusCode
		}()
		testenv.Eventually(t, 30*time.Second, "the thread row marked deleted", func() bool {
			row, err := db.New(env.Pool).APIGetThread(context.Background(), db.APIGetThreadParams{UserID: env.UserID, ThreadID: "doomed"})
			return err == nil && row.State == "deleted"
		})
		// C learns of the delete from PostgreSQL's notification (its own
		// bound is an hour); until then it may still run commands.
		testenv.Eventually(t, 30*time.Second, "C refuses the deleted thread", func() bool {
			resp, _ := execC("true")
			return resp.StatusCode == 404
		})
		// B trusts a verdict at most guardcache.MaxStale (the contract's
		// bound on another replica), notification or not.
		time.Sleep(guardcache.MaxStale)
		resp, body = execB("touch /home/daytona/reached")
		requireErr(t, resp, body, 404, "not_found")
		res, err := direct.Exec(context.Background(), daytona.ExecRequest{Command: "test -e /home/daytona/reached && echo reached || echo untouched", Timeout: time.Minute})
		require.NoError(t, err, "the sandbox still runs: only its row says deleted")
		require.Equal(t, "untouched", strings.TrimSpace(res.Output), "B must not use a deleted thread's sandbox")

		env.StartWorker()
		require.Contains(t, []int{202, 204}, <-deleted)
		resp, body = execB("true")
		requireErr(t, resp, body, 404, "not_found")

		// Created again through A: B serves the new thread, never the old sandbox.
		ca.create("doomed")
		resp, body = execB("echo again")
		require.Equal(t, 200, resp.StatusCode, string(body))
		require.Contains(t, string(body), "again")
		require.NotEqual(t, *th.SandboxID, *ca.get("doomed").SandboxID)
	})

	t.Run("tus-resumed-on-the-other", func(t *testing.T) {
		data := make([]byte, 12<<20+4321)
		_, _ = rand.Read(data)
		loc, status := tusCreate(t, a, key, "uploads/across.bin", len(data))
		require.Equal(t, 201, status, loc)
		first := 7<<20 + 3
		require.Equal(t, 204, tusPatch(t, a, key, loc, 0, data[:first]).StatusCode, "started on A")

		resp, _ := fdo(t, b, key, http.MethodHead, loc, nil, tusHeaders(nil))
		require.Equal(t, 200, resp.StatusCode)
		require.Equal(t, strconv.Itoa(first), resp.Header.Get("Upload-Offset"), "B knows how far A got")
		other := env.Key("tusother-"+env.UserID, false)
		resp, _ = fdo(t, b, other, http.MethodHead, loc, nil, tusHeaders(nil))
		require.Equal(t, 404, resp.StatusCode, "another user's upload does not exist for them on B either")
		resp = tusPatch(t, b, key, loc, first, data[first:])
		require.Equal(t, 204, resp.StatusCode, "finished on B")
		require.Equal(t, "true", resp.Header.Get("Upload-Stored"))

		resp, body := fdo(t, a, key, http.MethodGet, "/v1/files?path=uploads/across.bin", nil, nil)
		require.Equal(t, 200, resp.StatusCode)
		require.Equal(t, sha256hex(data), sha256hex([]byte(body)))
		resp, _ = fdo(t, a, key, http.MethodHead, loc, nil, tusHeaders(nil))
		require.Equal(t, 200, resp.StatusCode)
		require.Equal(t, strconv.Itoa(len(data)), resp.Header.Get("Upload-Offset"), "A answers the finished upload")
		objs, err := s3.Client.ListObjectsV2(context.Background(), &s3api.ListObjectsV2Input{Bucket: aws.String(s3.Bucket)})
		require.NoError(t, err)
		require.Empty(t, objs.Contents, "the spool is gone from the bucket")
	})

	t.Run("tus-round-robin", func(t *testing.T) {
		// Every request of the protocol suite lands on the next replica.
		rr := newRoundRobin(t, true, a.URL, b.URL)
		testTusProtocol(t, behind(env, rr.URL), key)
		require.Greater(t, rr.served[0].Load(), int64(3))
		require.Greater(t, rr.served[1].Load(), int64(3))
	})
}
