package files

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/internal/testenv"
)

var client = &http.Client{Timeout: 30 * time.Minute}

// rig is one environment shared by the benchmarks of a run.
type rig struct {
	env *testenv.Env
	tb  *daytona.Toolbox
	key string
}

// BenchmarkFiles runs every files benchmark on one environment (its
// teardown is tied to this benchmark).
func BenchmarkFiles(b *testing.B) {
	env := testenv.New(b, testenv.Options{FilesAutoStop: 10 * time.Minute, AutoStop: 10 * time.Minute})
	r := &rig{env: env, key: env.UserKey}
	drain(b, do(b, r, http.MethodPut, "/dav/warmup", strings.NewReader("x"), nil), 201)
	all, err := env.Gateway.ListSandboxes(context.Background(), map[string]string{daytona.LabelUser: env.UserID, daytona.LabelKind: "files"})
	if err != nil || len(all) != 1 {
		b.Fatalf("files sandbox: %v %v", all, err)
	}
	r.tb = env.Gateway.Toolbox(all[0].ID, all[0].ToolboxURL)
	b.Run("Get100MB", func(b *testing.B) { benchGet(b, r) })
	b.Run("GetSmall", func(b *testing.B) { benchGetSmall(b, r) })
	b.Run("Put100MB", func(b *testing.B) { benchPut(b, r) })
	b.Run("Propfind1000", func(b *testing.B) { benchPropfind(b, r) })
	b.Run("Tus", func(b *testing.B) { benchTus(b, r) })
}

func do(b *testing.B, r *rig, method, path string, body io.Reader, hdr map[string]string) *http.Response {
	b.Helper()
	req, err := http.NewRequest(method, r.env.URL+path, body)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+r.key)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	return resp
}

func drain(b *testing.B, resp *http.Response, want int) int64 {
	b.Helper()
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || resp.StatusCode != want {
		b.Fatalf("status %d (want %d): %v", resp.StatusCode, want, err)
	}
	return n
}

func randomFile(b *testing.B, size int64) string {
	b.Helper()
	p := filepath.Join(b.TempDir(), "data")
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.CopyN(f, rand.Reader, size); err != nil {
		b.Fatal(err)
	}
	f.Close()
	return p
}

const mb100 = 100 << 20

// benchGet: WebDAV GET vs. a direct toolbox download of the same file.
func benchGet(b *testing.B, r *rig) {
	src := randomFile(b, mb100)
	f, _ := os.Open(src)
	if err := r.tb.Upload(context.Background(), "/home/daytona/volume/get.bin", f); err != nil {
		b.Fatal(err)
	}
	f.Close()
	b.Run("webdav", func(b *testing.B) {
		b.SetBytes(mb100)
		for b.Loop() {
			drain(b, do(b, r, http.MethodGet, "/dav/get.bin", nil, nil), 200)
		}
	})
	b.Run("direct", func(b *testing.B) {
		b.SetBytes(mb100)
		for b.Loop() {
			rc, err := r.tb.Download(context.Background(), "/home/daytona/volume/get.bin", 0, -1)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, rc)
			rc.Close()
		}
	})
}

// benchGetSmall: the fixed cost of a WebDAV GET (auth, stat, a download
// round trip) on a 1 KiB file, vs. a direct download.
func benchGetSmall(b *testing.B, r *rig) {
	if err := r.tb.Upload(context.Background(), "/home/daytona/volume/small.bin", strings.NewReader(strings.Repeat("s", 1024))); err != nil {
		b.Fatal(err)
	}
	b.Run("webdav", func(b *testing.B) {
		for b.Loop() {
			drain(b, do(b, r, http.MethodGet, "/dav/small.bin", nil, nil), 200)
		}
	})
	b.Run("direct", func(b *testing.B) {
		for b.Loop() {
			rc, err := r.tb.Download(context.Background(), "/home/daytona/volume/small.bin", 0, -1)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, rc)
			rc.Close()
		}
	})
}

// benchPut: WebDAV PUT (spool + rename, quota) vs. a direct upload.
func benchPut(b *testing.B, r *rig) {
	src := randomFile(b, mb100)
	b.Run("webdav", func(b *testing.B) {
		b.SetBytes(mb100)
		for b.Loop() {
			f, _ := os.Open(src)
			drain(b, do(b, r, http.MethodPut, "/dav/put.bin", f, nil), 201)
			f.Close()
		}
	})
	b.Run("direct", func(b *testing.B) {
		b.SetBytes(mb100)
		for b.Loop() {
			f, _ := os.Open(src)
			if err := r.tb.Upload(context.Background(), "/home/daytona/volume/put-direct.bin", f); err != nil {
				b.Fatal(err)
			}
			f.Close()
		}
	})
}

// benchPropfind: PROPFIND Depth 1 (allprop) of 1,000 entries vs. the
// direct listing call it makes.
func benchPropfind(b *testing.B, r *rig) {
	res, err := r.tb.Exec(context.Background(), daytona.ExecRequest{Command: "mkdir -p /home/daytona/volume/many && cd /home/daytona/volume/many && for i in $(seq 1000); do echo $i > f$i.txt; done"})
	if err != nil || res.ExitCode != 0 {
		b.Fatalf("%v %v", res, err)
	}
	b.Run("webdav", func(b *testing.B) {
		for b.Loop() {
			drain(b, do(b, r, "PROPFIND", "/dav/many/", nil, map[string]string{"Depth": "1"}), 207)
		}
	})
	b.Run("direct-list", func(b *testing.B) {
		for b.Loop() {
			if _, err := r.tb.List(context.Background(), "/home/daytona/volume/many"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// benchTus uploads 256 MB and 1 GB through tus (64 MB PATCHes) and
// reports throughput and the process's peak Go heap while it runs (API,
// emulator and worker share this process, so it is an upper bound for the
// API's own memory).
func benchTus(b *testing.B, r *rig) {
	for _, size := range []int64{256 << 20, 1 << 30} {
		b.Run(fmt.Sprintf("%dMB", size>>20), func(b *testing.B) {
			src := randomFile(b, size)
			b.SetBytes(size)
			var peak uint64
			for b.Loop() {
				runtime.GC()
				stop := testenv.SamplePeakHeap(&peak)
				tusUpload(b, r, src, size)
				stop()
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
		})
	}
}

func tusUpload(b *testing.B, r *rig, src string, size int64) {
	b.Helper()
	resp := do(b, r, http.MethodPost, "/v1/uploads/", nil, map[string]string{"Tus-Resumable": "1.0.0",
		"Upload-Length": strconv.FormatInt(size, 10), "Upload-Metadata": "path " + base64.StdEncoding.EncodeToString([]byte("tus.bin"))})
	drain(b, resp, 201)
	loc := strings.TrimPrefix(resp.Header.Get("Location"), r.env.URL)
	f, _ := os.Open(src)
	defer f.Close()
	const chunk = 64 << 20
	for off := int64(0); off < size; off += chunk {
		n := min(chunk, size-off)
		req, _ := http.NewRequest(http.MethodPatch, r.env.URL+loc, io.NewSectionReader(f, off, n))
		req.ContentLength = n
		req.Header.Set("Authorization", "Bearer "+r.key)
		req.Header.Set("Tus-Resumable", "1.0.0")
		req.Header.Set("Upload-Offset", strconv.FormatInt(off, 10))
		req.Header.Set("Content-Type", "application/offset+octet-stream")
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		drain(b, resp, 204)
	}
}
