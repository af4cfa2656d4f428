package daytona

import (
	"bytes"
	"context"
	"errors"
	"io"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func newSandbox(t testing.TB, e *env, name string, p CreateSandboxParams) (Sandbox, *Toolbox) {
	t.Helper()
	p.Name = name
	sb, err := e.g.FindOrCreateSandbox(testCtx(t), p)
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	return sb, e.g.Toolbox(sb.ID, sb.ToolboxURL)
}

func TestToolboxOperations(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t)
	_, tb := newSandbox(t, e, "tb-agent-tools-1", CreateSandboxParams{})

	res, err := tb.Exec(ctx, ExecRequest{Command: "cd sub 2>/dev/null; echo \"$A-$B\"; pwd; echo err >&2; exit 3", Cwd: "/home/daytona", Env: map[string]string{"A": "x", "B": "y"}, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 3 || !strings.Contains(res.Output, "x-y") || !strings.Contains(res.Output, "err") || !strings.Contains(res.Output, "/home/daytona") {
		t.Fatalf("exec: %+v", res)
	}
	if _, err := tb.Exec(ctx, ExecRequest{Command: "  "}); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("blank command: %v", err)
	}

	if err := tb.Mkdir(ctx, "/home/daytona/a/b"); err != nil {
		t.Fatal(err)
	}
	if err := tb.Mkdir(ctx, "/home/daytona/a/b"); err != nil {
		t.Fatalf("mkdir is idempotent: %v", err)
	}
	if err := tb.Upload(ctx, "/home/daytona/new/dir/hello.txt", strings.NewReader("hello world")); err != nil {
		t.Fatal(err)
	}
	fi, err := tb.Stat(ctx, "/home/daytona/new/dir/hello.txt")
	if err != nil || fi.Name != "hello.txt" || fi.Size != 11 || fi.IsDir || fi.ModTime.IsZero() || fi.Mode == "" {
		t.Fatalf("stat: %+v %v", fi, err)
	}
	entries, err := tb.List(ctx, "/home/daytona/new/dir")
	if err != nil || len(entries) != 1 || entries[0].Name != "hello.txt" {
		t.Fatalf("list: %+v %v", entries, err)
	}
	dir, err := tb.Stat(ctx, "/home/daytona/new")
	if err != nil || !dir.IsDir {
		t.Fatalf("stat dir: %+v %v", dir, err)
	}
	_, err = tb.List(ctx, "/home/daytona/missing")
	wantKind(t, err, ErrNotFound, "list missing")

	// Ranged download (the emulator honours Range like the daemon's http.ServeContent).
	for _, c := range []struct {
		off, n int64
		want   string
	}{{0, -1, "hello world"}, {6, -1, "world"}, {0, 5, "hello"}, {4, 3, "o w"}, {11, -1, ""}, {50, 2, ""}} {
		rc, err := tb.Download(ctx, "/home/daytona/new/dir/hello.txt", c.off, c.n)
		if err != nil {
			t.Fatalf("download %d/%d: %v", c.off, c.n, err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if string(b) != c.want {
			t.Fatalf("download %d/%d: %q want %q", c.off, c.n, b, c.want)
		}
	}
	_, err = tb.Download(ctx, "/home/daytona/nope.txt", 0, -1)
	wantKind(t, err, ErrNotFound, "download missing")

	// Move: rename works, never overwrites.
	if err := tb.Upload(ctx, "/home/daytona/other.txt", strings.NewReader("other")); err != nil {
		t.Fatal(err)
	}
	err = tb.Move(ctx, "/home/daytona/other.txt", "/home/daytona/new/dir/hello.txt")
	wantKind(t, err, ErrConflict, "move onto existing")
	if err := tb.Move(ctx, "/home/daytona/other.txt", "/home/daytona/a/moved.txt"); err != nil {
		t.Fatal(err)
	}
	_, err = tb.Stat(ctx, "/home/daytona/other.txt")
	wantKind(t, err, ErrNotFound, "moved source")
	err = tb.Move(ctx, "/home/daytona/other.txt", "/home/daytona/x.txt")
	wantKind(t, err, ErrNotFound, "move missing source")

	// Delete: a directory needs recursive.
	err = tb.Delete(ctx, "/home/daytona/a", false)
	wantKind(t, err, ErrBadRequest, "delete dir without recursive")
	if err := tb.Delete(ctx, "/home/daytona/a", true); err != nil {
		t.Fatal(err)
	}
	_, err = tb.Stat(ctx, "/home/daytona/a/moved.txt")
	wantKind(t, err, ErrNotFound, "deleted tree")
	err = tb.Delete(ctx, "/home/daytona/a", true)
	wantKind(t, err, ErrNotFound, "delete missing")
}

func TestUploadBatchPerItem(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t)
	_, tb := newSandbox(t, e, "tb-agent-batch-1", CreateSandboxParams{})
	if err := tb.Upload(ctx, "/home/daytona/plain", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	items := []UploadItem{
		{Path: "/home/daytona/batch/one.txt", Body: strings.NewReader("one")},
		{Path: "/home/daytona/plain/under-a-file.txt", Body: strings.NewReader("bad")}, // parent is a file
		{Path: "/home/daytona/batch/deep/three.bin", Body: bytes.NewReader(bytes.Repeat([]byte{7}, 300_000))},
	}
	out, err := tb.UploadBatch(ctx, items)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 3 {
		t.Fatalf("outcomes: %+v", out)
	}
	if out[0].Err != nil || out[0].Bytes != 3 || out[2].Err != nil || out[2].Bytes != 300_000 {
		t.Fatalf("good items: %+v", out)
	}
	if out[1].Err == nil || !errors.Is(out[1].Err, ErrBadRequest) {
		t.Fatalf("bad item must fail: %+v", out[1])
	}
	rc, err := tb.Download(ctx, "/home/daytona/batch/one.txt", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "one" {
		t.Fatalf("batch content: %q", b)
	}
	fi, err := tb.Stat(ctx, "/home/daytona/batch/deep/three.bin")
	if err != nil || fi.Size != 300_000 {
		t.Fatalf("batch stat: %+v %v", fi, err)
	}
}

// peakHeap samples HeapInuse while fn runs.
func peakHeap(fn func()) (base, peak uint64) {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base = ms.HeapInuse
	var max atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			if m.HeapInuse > max.Load() {
				max.Store(m.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	fn()
	close(stop)
	<-done
	return base, max.Load()
}

// TestLargeFileThroughEmulator round-trips 20 MiB through the emulator byte-identically.
// Client-side streaming is proven by TestTransfersStreamWithBoundedMemory; here the whole
// process (gateway + emulator) heap is sampled and must stay well below the file size.
func TestLargeFileThroughEmulator(t *testing.T) {
	const size = 20 << 20
	e := newEnv(t)
	ctx := testCtx(t)
	_, tb := newSandbox(t, e, "tb-agent-large-1", CreateSandboxParams{})
	var upErr error
	b1, p1 := peakHeap(func() { upErr = tb.Upload(ctx, "/home/daytona/large.bin", newPattern(9, size)) })
	if upErr != nil {
		t.Fatal(upErr)
	}
	var sum [32]byte
	var dlErr error
	b2, p2 := peakHeap(func() { sum, dlErr = downloadSum(ctx, tb, "/home/daytona/large.bin") })
	if dlErr != nil {
		t.Fatal(dlErr)
	}
	if sum != patternSum(9, size) {
		t.Fatal("20 MiB round trip not byte-identical")
	}
	// Ranged read from the middle of the large file.
	rc, err := tb.Download(ctx, "/home/daytona/large.bin", 10<<20, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	mid, _ := io.ReadAll(rc)
	rc.Close()
	ref := newPattern(9, size)
	io.CopyN(io.Discard, ref, 10<<20)
	want := make([]byte, 1<<20)
	io.ReadFull(ref, want)
	if !bytes.Equal(mid, want) {
		t.Fatal("ranged read of the large file differs")
	}
	t.Logf("heap growth: upload %d KiB, download %d KiB (file %d MiB)", (p1-min(b1, p1))>>10, (p2-min(b2, p2))>>10, size>>20)
	if p1-min(b1, p1) > size/2 || p2-min(b2, p2) > size/2 {
		t.Errorf("heap grew by more than half the file size: the path buffers the file")
	}
}

var errDiskOnFire = errors.New("disk on fire")

type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errDiskOnFire
	}
	if len(p) > f.n {
		p = p[:f.n]
	}
	clear(p)
	f.n -= len(p)
	return len(p), nil
}

// TestUploadFailures: a failing source, a cancelled ctx and a stopped sandbox all end the
// upload with a typed error and without leaking the pipe goroutine.
func TestUploadFailures(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t)
	sb, tb := newSandbox(t, e, "tb-agent-upfail-1", CreateSandboxParams{})
	before := runtime.NumGoroutine()

	err := tb.Upload(ctx, "/home/daytona/f.bin", &failingReader{n: 3 << 20})
	wantKind(t, err, ErrBadRequest, "failing source")
	if !errors.Is(err, errDiskOnFire) || Retryable(err) {
		t.Fatalf("source error not carried or wrongly retryable: %v", err)
	}

	cctx, cancel := context.WithCancel(ctx)
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	start := time.Now()
	err = tb.Upload(cctx, "/home/daytona/g.bin", io.LimitReader(zeroReader{}, 1<<40))
	if err == nil || !errors.Is(err, context.Canceled) || time.Since(start) > 5*time.Second {
		t.Fatalf("cancelled upload: %v after %v", err, time.Since(start))
	}

	if err := e.g.StopSandbox(ctx, sb.ID); err != nil {
		t.Fatal(err)
	}
	err = tb.Upload(ctx, "/home/daytona/h.bin", io.LimitReader(zeroReader{}, 8<<20))
	wantKind(t, err, ErrBadRequest, "upload to stopped sandbox")

	deadline := time.Now().Add(30 * time.Second)
	for runtime.NumGoroutine() > before+2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+2 {
		t.Fatalf("goroutines leaked: %d -> %d", before, n)
	}
}
