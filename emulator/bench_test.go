package emulator

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Benchmarks (not run by `go test` without -bench):
//
//	go test -run '^$' -bench . -benchtime 5x ./emulator/
//
// They use plain HTTP (no OpenAPI validator, which buffers bodies) and the
// default TransitionDelay, so lifecycle numbers are what a client waits.

type benchEnv struct {
	srv *Server
	hs  *httptest.Server
	hc  *http.Client
}

func newBenchEnv(b *testing.B) *benchEnv {
	b.Helper()
	s, err := New(context.Background(), Options{Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	b.Cleanup(func() {
		hs.Close()
		_ = s.Close()
	})
	return &benchEnv{srv: s, hs: hs, hc: &http.Client{Timeout: 5 * time.Minute}}
}

func (be *benchEnv) do(b *testing.B, method, path string, body io.Reader, ctype string) (int, []byte) {
	b.Helper()
	req, err := http.NewRequest(method, be.hs.URL+path, body)
	if err != nil {
		b.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := be.hc.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

func (be *benchEnv) createSandbox(b *testing.B) string {
	code, body := be.do(b, http.MethodPost, "/api/sandbox", bytes.NewReader([]byte(`{}`)), "application/json")
	if code != http.StatusOK {
		b.Fatalf("create: %d %s", code, body)
	}
	var sb struct{ ID, State string }
	_ = json.Unmarshal(body, &sb)
	return sb.ID
}

func (be *benchEnv) waitState(b *testing.B, id, state string) {
	for {
		code, body := be.do(b, http.MethodGet, "/api/sandbox/"+id, nil, "")
		if state == "" && code == http.StatusNotFound {
			return
		}
		var sb struct{ State string }
		_ = json.Unmarshal(body, &sb)
		if sb.State == state {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func BenchmarkLifecycle(b *testing.B) {
	be := newBenchEnv(b)
	var create, stop, start, del time.Duration
	for b.Loop() {
		t0 := time.Now()
		id := be.createSandbox(b)
		t1 := time.Now()
		be.do(b, http.MethodPost, "/api/sandbox/"+id+"/stop", nil, "")
		be.waitState(b, id, "stopped")
		t2 := time.Now()
		if code, body := be.do(b, http.MethodPost, "/api/sandbox/"+id+"/start", nil, ""); code != http.StatusOK {
			b.Fatalf("start: %d %s", code, body)
		}
		t3 := time.Now()
		be.do(b, http.MethodDelete, "/api/sandbox/"+id, nil, "")
		be.waitState(b, id, "")
		t4 := time.Now()
		create += t1.Sub(t0)
		stop += t2.Sub(t1)
		start += t3.Sub(t2)
		del += t4.Sub(t3)
	}
	n := float64(b.N)
	b.ReportMetric(float64(create.Milliseconds())/n, "create-ms")
	b.ReportMetric(float64(stop.Milliseconds())/n, "stop-ms")
	b.ReportMetric(float64(start.Milliseconds())/n, "start-ms")
	b.ReportMetric(float64(del.Milliseconds())/n, "delete-ms")
}

func BenchmarkExecute(b *testing.B) {
	be := newBenchEnv(b)
	id := be.createSandbox(b)
	for b.Loop() {
		code, body := be.do(b, http.MethodPost, "/toolbox/"+id+"/process/execute",
			bytes.NewReader([]byte(`{"command":"echo hi"}`)), "application/json")
		if code != http.StatusOK || !bytes.Contains(body, []byte("hi")) {
			b.Fatalf("execute: %d %s", code, body)
		}
	}
	b.ReportMetric(boolMetric(be.srv.IsolationActive()), "bwrap")
}

func boolMetric(v bool) float64 {
	if v {
		return 1
	}
	return 0
}

const benchFileSize = 100 << 20

// benchFile writes a 100 MB random file once per benchmark.
func benchFile(b *testing.B) string {
	b.Helper()
	p := filepath.Join(b.TempDir(), "src.bin")
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.CopyN(f, rand.Reader, benchFileSize); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return p
}

// uploadStream sends a file as a streamed multipart upload (io.Pipe).
func (be *benchEnv) uploadStream(b *testing.B, id, src, dest string) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		f, err := os.Open(src)
		if err != nil {
			pw.CloseWithError(err)
			return
		}
		defer f.Close()
		part, err := mw.CreateFormFile("file", filepath.Base(dest))
		if err == nil {
			_, err = io.Copy(part, f)
		}
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err)
	}()
	code, body := be.do(b, http.MethodPost, "/toolbox/"+id+"/files/upload?path="+q(dest), pr, mw.FormDataContentType())
	if code != http.StatusOK {
		b.Fatalf("upload: %d %s", code, body)
	}
}

func BenchmarkUpload100MB(b *testing.B) {
	be := newBenchEnv(b)
	id := be.createSandbox(b)
	src := benchFile(b)
	b.SetBytes(benchFileSize)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		be.uploadStream(b, id, src, fmt.Sprintf("/home/daytona/up-%d.bin", i%2))
	}
}

func BenchmarkDownload100MB(b *testing.B) {
	be := newBenchEnv(b)
	id := be.createSandbox(b)
	src := benchFile(b)
	be.uploadStream(b, id, src, "/home/daytona/big.bin")
	dst := filepath.Join(b.TempDir(), "dst.bin")
	b.SetBytes(benchFileSize)
	b.ResetTimer()
	for b.Loop() {
		resp, err := be.hc.Get(be.hs.URL + "/toolbox/" + id + "/files/download?path=" + q("/home/daytona/big.bin"))
		if err != nil {
			b.Fatal(err)
		}
		f, err := os.Create(dst)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(f, resp.Body)
		resp.Body.Close()
		f.Close()
		if err != nil || n != benchFileSize {
			b.Fatalf("download: %d bytes, %v", n, err)
		}
	}
}

// BenchmarkLocalCopy100MB is the baseline: io.Copy between two local files.
func BenchmarkLocalCopy100MB(b *testing.B) {
	src := benchFile(b)
	dst := filepath.Join(b.TempDir(), "dst.bin")
	b.SetBytes(benchFileSize)
	b.ResetTimer()
	for b.Loop() {
		in, err := os.Open(src)
		if err != nil {
			b.Fatal(err)
		}
		out, err := os.Create(dst)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(out, in); err != nil {
			b.Fatal(err)
		}
		in.Close()
		out.Close()
	}
}
