package files

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
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
	b.Run("Get100MBCurl", func(b *testing.B) {
		// THREADBOX_BENCH_CPUPROFILE=file: a CPU profile of this process
		// (API, emulator) while the curl downloads run.
		if p := os.Getenv("THREADBOX_BENCH_CPUPROFILE"); p != "" {
			f, err := os.Create(p)
			if err != nil {
				b.Fatal(err)
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				b.Fatal(err)
			}
			defer func() { pprof.StopCPUProfile(); f.Close() }()
		}
		benchGetCurl(b, r, all[0])
	})
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

// benchGetCurl measures a 100 MB GET the way a client sees it: each
// download is a separate curl process (the client's own CPU is not this
// process's), WebDAV GET and the files sandbox's toolbox download
// alternating (A B A B, THREADBOX_BENCH_CURL_PAIRS pairs, default 10), on
// loopback. Time is the whole process's wall time, start to exit.
func benchGetCurl(b *testing.B, r *rig, sb daytona.Sandbox) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		b.Fatalf("curl is needed: %v", err)
	}
	src := randomFile(b, mb100)
	f, _ := os.Open(src)
	if err := r.tb.Upload(context.Background(), "/home/daytona/volume/curl.bin", f); err != nil {
		b.Fatal(err)
	}
	f.Close()
	pairs := 10
	if v := os.Getenv("THREADBOX_BENCH_CURL_PAIRS"); v != "" {
		pairs, _ = strconv.Atoi(v)
	}
	run := func(url, auth string) time.Duration {
		b.Helper()
		cmd := exec.Command(curl, "--silent", "--show-error", "--fail", "--output", "/dev/null",
			"--write-out", "%{size_download}", "--header", "Authorization: "+auth, url)
		s := time.Now()
		out, err := cmd.Output()
		took := time.Since(s)
		if err != nil || strings.TrimSpace(string(out)) != strconv.Itoa(mb100) {
			b.Fatalf("curl %s: %v (%s bytes)", url, err, out)
		}
		return took
	}
	davURL := r.env.URL + "/dav/curl.bin"
	directURL := strings.TrimRight(sb.ToolboxURL, "/") + "/files/download?path=" + url.QueryEscape("/home/daytona/volume/curl.bin")
	davAuth, directAuth := "Bearer "+r.key, "Bearer "+r.env.Config.DaytonaAPIKey
	run(davURL, davAuth) // warm both (page cache, connections of the API)
	run(directURL, directAuth)
	load := loadavg()
	var dav, direct []time.Duration
	for i := range pairs {
		if i%2 == 0 {
			dav = append(dav, run(davURL, davAuth))
			direct = append(direct, run(directURL, directAuth))
		} else {
			direct = append(direct, run(directURL, directAuth))
			dav = append(dav, run(davURL, davAuth))
		}
	}
	slices.Sort(dav)
	slices.Sort(direct)
	mbps := func(d time.Duration) float64 { return mb100 / d.Seconds() / 1e6 }
	med := func(l []time.Duration) time.Duration { return l[len(l)/2] }
	fmt.Println("### WebDAV GET 100 MB, curl processes, alternating")
	fmt.Println("| pairs | load avg | direct median MB/s (range) | WebDAV median MB/s (range) | throughput ratio (medians) |")
	fmt.Println("|---|---|---|---|---|")
	fmt.Printf("| %d | %s | %.0f (%.0f–%.0f) | %.0f (%.0f–%.0f) | **%.2f** |\n\n", pairs, load,
		mbps(med(direct)), mbps(direct[len(direct)-1]), mbps(direct[0]),
		mbps(med(dav)), mbps(dav[len(dav)-1]), mbps(dav[0]),
		med(direct).Seconds()/med(dav).Seconds())
}

// loadavg is the 1-minute load average, recorded next to each figure.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "?"
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
