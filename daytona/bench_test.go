package daytona

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Benchmarks (not run by go test without -bench):
//
//	go test -run '^$' -bench . -benchtime 20x ./daytona/
//
// They compare the gateway with hand-written raw HTTP against the same in-process emulator,
// so the difference is the gateway's own overhead (generated-client encoding, typed errors,
// polling), and compare 100 MiB transfers with a local file copy.

// rawClient is the minimum a caller would write by hand.
type rawClient struct {
	base, key string
	hc        *http.Client
}

func (r rawClient) do(ctx context.Context, method, url string, body any, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequestWithContext(ctx, method, url, rd)
	req.Header.Set("Authorization", "Bearer "+r.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode < 300 {
		json.NewDecoder(resp.Body).Decode(out)
	} else {
		io.Copy(io.Discard, resp.Body)
	}
	return resp.StatusCode, nil
}

func (r rawClient) waitState(ctx context.Context, id, want string) error {
	for {
		var sb struct {
			State string `json:"state"`
		}
		code, err := r.do(ctx, "GET", r.base+"/sandbox/"+id, nil, &sb)
		if err != nil {
			return err
		}
		if (want == "" && code == 404) || (want != "" && sb.State == want) {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func BenchmarkLifecycleGateway(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		sb, err := e.g.FindOrCreateSandbox(ctx, CreateSandboxParams{Name: fmt.Sprintf("tb-bench-g-%d", i)})
		if err != nil {
			b.Fatal(err)
		}
		if err := e.g.StopSandbox(ctx, sb.ID); err != nil {
			b.Fatal(err)
		}
		if _, err := e.g.StartSandbox(ctx, sb.ID); err != nil {
			b.Fatal(err)
		}
		if err := e.g.DeleteSandbox(ctx, sb.ID); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLifecycleRawHTTP(b *testing.B) {
	e := newEnv(b)
	r := rawClient{base: e.api, key: "test-key", hc: &http.Client{}}
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		var sb struct {
			ID    string `json:"id"`
			State string `json:"state"`
		}
		if code, err := r.do(ctx, "POST", r.base+"/sandbox", map[string]any{"name": fmt.Sprintf("tb-bench-r-%d", i)}, &sb); err != nil || code != 200 {
			b.Fatal(code, err)
		}
		if err := r.waitState(ctx, sb.ID, "started"); err != nil {
			b.Fatal(err)
		}
		if code, err := r.do(ctx, "POST", r.base+"/sandbox/"+sb.ID+"/stop", nil, nil); err != nil || code != 200 {
			b.Fatal(code, err)
		}
		if err := r.waitState(ctx, sb.ID, "stopped"); err != nil {
			b.Fatal(err)
		}
		if code, err := r.do(ctx, "POST", r.base+"/sandbox/"+sb.ID+"/start", nil, nil); err != nil || code != 200 {
			b.Fatal(code, err)
		}
		if err := r.waitState(ctx, sb.ID, "started"); err != nil {
			b.Fatal(err)
		}
		if code, err := r.do(ctx, "DELETE", r.base+"/sandbox/"+sb.ID, nil, nil); err != nil || code != 200 {
			b.Fatal(code, err)
		}
		if err := r.waitState(ctx, sb.ID, ""); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkExecGateway(b *testing.B) {
	e := newEnv(b)
	_, tb := newSandbox(b, e, "tb-bench-exec-g", CreateSandboxParams{})
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		res, err := tb.Exec(ctx, ExecRequest{Command: "echo hi"})
		if err != nil || res.ExitCode != 0 {
			b.Fatal(res, err)
		}
	}
}

func BenchmarkExecRawHTTP(b *testing.B) {
	e := newEnv(b)
	sb, _ := newSandbox(b, e, "tb-bench-exec-r", CreateSandboxParams{})
	r := rawClient{key: "test-key", hc: &http.Client{}}
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		var res struct {
			ExitCode int    `json:"exitCode"`
			Result   string `json:"result"`
		}
		code, err := r.do(ctx, "POST", sb.ToolboxURL+"/process/execute", map[string]any{"command": "echo hi"}, &res)
		if err != nil || code != 200 || res.ExitCode != 0 {
			b.Fatal(code, err)
		}
	}
}

const benchSize = 100 << 20

func BenchmarkUpload100MiB(b *testing.B) {
	e := newEnv(b)
	_, tb := newSandbox(b, e, "tb-bench-up", CreateSandboxParams{})
	ctx := context.Background()
	b.SetBytes(benchSize)
	b.ResetTimer()
	for range b.N {
		if err := tb.Upload(ctx, "/home/daytona/big.bin", io.LimitReader(zeroReader{}, benchSize)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDownload100MiB(b *testing.B) {
	e := newEnv(b)
	_, tb := newSandbox(b, e, "tb-bench-down", CreateSandboxParams{})
	ctx := context.Background()
	if err := tb.Upload(ctx, "/home/daytona/big.bin", io.LimitReader(zeroReader{}, benchSize)); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(benchSize)
	b.ResetTimer()
	for range b.N {
		rc, err := tb.Download(ctx, "/home/daytona/big.bin", 0, -1)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil || n != benchSize {
			b.Fatal(n, err)
		}
	}
}

// BenchmarkLocalCopy100MiB is the baseline: write 100 MiB to a file, then read it back,
// what the emulator does underneath a transfer.
func BenchmarkLocalCopy100MiB(b *testing.B) {
	dir := b.TempDir()
	p := filepath.Join(dir, "big.bin")
	b.SetBytes(benchSize)
	b.ResetTimer()
	for range b.N {
		f, err := os.Create(p)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(f, io.LimitReader(zeroReader{}, benchSize)); err != nil {
			b.Fatal(err)
		}
		f.Close()
		f, _ = os.Open(p)
		io.Copy(io.Discard, f)
		f.Close()
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// BenchmarkGetSandboxGateway / RawHTTP isolate the gateway's per-call overhead (generated
// client encode/decode with required-field checks, error mapping) on the cheapest call.
func BenchmarkGetSandboxGateway(b *testing.B) {
	e := newEnv(b)
	sb, _ := newSandbox(b, e, "tb-bench-get-g", CreateSandboxParams{})
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		if _, err := e.g.GetSandbox(ctx, sb.ID); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetSandboxRawHTTP(b *testing.B) {
	e := newEnv(b)
	sb, _ := newSandbox(b, e, "tb-bench-get-r", CreateSandboxParams{})
	r := rawClient{base: e.api, key: "test-key", hc: &http.Client{}}
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		var out struct {
			ID    string `json:"id"`
			State string `json:"state"`
		}
		if code, err := r.do(ctx, "GET", r.base+"/sandbox/"+sb.ID, nil, &out); err != nil || code != 200 {
			b.Fatal(code, err)
		}
	}
}
