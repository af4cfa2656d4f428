package daytona

import (
	"context"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
)

// patternReader yields n deterministic pseudo-random bytes without holding them.
type patternReader struct {
	rng *rand.ChaCha8
	n   int64
}

func newPattern(seed byte, n int64) *patternReader {
	var s [32]byte
	s[0] = seed
	return &patternReader{rng: rand.NewChaCha8(s), n: n}
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > p.n {
		b = b[:p.n]
	}
	n, _ := p.rng.Read(b)
	p.n -= int64(n)
	return n, nil
}

// downloadSum streams a whole file through Download into SHA-256.
func downloadSum(ctx context.Context, tb *Toolbox, p string) ([32]byte, error) {
	var sum [32]byte
	rc, err := tb.Download(ctx, p, 0, -1)
	if err != nil {
		return sum, err
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		return sum, err
	}
	copy(sum[:], h.Sum(nil))
	return sum, nil
}

func patternSum(seed byte, n int64) [32]byte {
	h := sha256.New()
	io.Copy(h, newPattern(seed, n))
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

// allocDuring returns the bytes allocated by the whole process while fn runs.
func allocDuring(fn func()) uint64 {
	var a, b runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&a)
	fn()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

// TestTransfersStreamWithBoundedMemory proves the client side never buffers a file: a 64 MiB
// upload and download against a streaming stub server allocate (in total, client and stub
// together) far less than the file size.
func TestTransfersStreamWithBoundedMemory(t *testing.T) {
	const size = 64 << 20
	const budget = 8 << 20
	var gotSum [32]byte
	var gotName string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/files/upload"):
			mr, err := r.MultipartReader()
			if err != nil {
				http.Error(w, err.Error(), 400)
				return
			}
			part, err := mr.NextPart()
			if err != nil || part.FormName() != "file" {
				http.Error(w, "no file part", 400)
				return
			}
			gotName = part.FileName()
			h := sha256.New()
			io.Copy(h, part)
			copy(gotSum[:], h.Sum(nil))
		case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/files/download"):
			w.Header().Set("Content-Type", "application/octet-stream")
			io.Copy(w, newPattern(2, size))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	g, err := New(Config{APIURL: srv.URL + "/api"})
	if err != nil {
		t.Fatal(err)
	}
	tb := g.Toolbox("sb", srv.URL+"/toolbox/sb")
	ctx := context.Background()

	var upErr error
	up := allocDuring(func() { upErr = tb.Upload(ctx, "/home/daytona/big.bin", newPattern(1, size)) })
	if upErr != nil {
		t.Fatal(upErr)
	}
	if gotSum != patternSum(1, size) || gotName != "big.bin" {
		t.Fatalf("upload corrupted (name %q)", gotName)
	}
	if up > budget {
		t.Errorf("upload of %d MiB allocated %d MiB: not streamed", size>>20, up>>20)
	}

	var sum [32]byte
	var dlErr error
	down := allocDuring(func() { sum, dlErr = downloadSum(ctx, tb, "/home/daytona/big.bin") })
	if dlErr != nil {
		t.Fatal(dlErr)
	}
	if sum != patternSum(2, size) {
		t.Fatal("download corrupted")
	}
	if down > budget {
		t.Errorf("download of %d MiB allocated %d MiB: not streamed", size>>20, down>>20)
	}
	t.Logf("allocated: upload %d KiB, download %d KiB for %d MiB each", up>>10, down>>10, size>>20)
}

// TestDownloadRangeFallback covers a server that ignores Range (answers 200 with the whole
// file): the gateway discards up to the offset and enforces the length itself.
func TestDownloadRangeFallback(t *testing.T) {
	const content = "0123456789abcdefghij"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, content) // 200, Range ignored
	}))
	defer srv.Close()
	g, _ := New(Config{APIURL: srv.URL + "/api"})
	tb := g.Toolbox("sb", srv.URL+"/toolbox/sb/")
	cases := []struct {
		off, n int64
		want   string
	}{{0, -1, content}, {5, 3, "567"}, {10, -1, "abcdefghij"}, {18, 10, "ij"}, {25, -1, ""}, {3, 0, ""}}
	for _, c := range cases {
		rc, err := tb.Download(context.Background(), "/f", c.off, c.n)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if string(b) != c.want {
			t.Errorf("off %d len %d: got %q want %q", c.off, c.n, b, c.want)
		}
	}
}
