// Package memory_test measures the API's memory under load. It is a package
// of its own so that its test binary is a process of its own: nothing else
// runs beside it, and the heap it samples is the system's under that load
// alone (the API, the emulator and the worker share the process, so the
// figures are an upper bound for the API).
package memory_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/internal/testenv"
)

// batchDownloadCeiling is what 32 concurrent batch downloads may add to the
// heap, the figure docs/CONTRACT.md states: a streamed batch download holds
// two 32 KiB buffers whatever it returns.
const batchDownloadCeiling = 32 << 20

// 32 concurrent batch downloads of 2 MiB each (2.7 MiB of base64) raise the
// process's heap by less than batchDownloadCeiling: the answers are
// streamed, never held. Held whole (the file, its base64 and the encoded
// JSON), they would need about 7 MiB each, over 200 MiB together.
func TestConcurrentBatchDownloadsStayUnderTheCeiling(t *testing.T) {
	env := testenv.New(t, testenv.Options{AutoStop: 10 * time.Minute, AutoDelete: 10 * time.Minute})
	do := func(method, path, body string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, env.URL+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+env.UserKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		return resp
	}
	resp := do(http.MethodPost, "/v1/threads", `{"thread_id":"mem"}`)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	resp.Body.Close()
	resp = do(http.MethodPost, "/v1/threads/mem/exec", `{"command":"head -c 1048576 /dev/urandom > a.bin && head -c 1048576 /dev/urandom > b.bin"}`)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	resp.Body.Close()

	const request = `{"paths":["a.bin","b.bin"]}`
	resp = do(http.MethodPost, "/v1/threads/mem/files/download", request)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	whole, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	var answer struct {
		Files []struct {
			Path    string `json:"path"`
			Size    int64  `json:"size"`
			Content []byte `json:"content"`
		} `json:"files"`
	}
	require.NoError(t, json.Unmarshal(whole, &answer))
	require.Len(t, answer.Files, 2)
	for _, f := range answer.Files {
		require.EqualValues(t, 1<<20, f.Size)
		require.Len(t, f.Content, 1<<20)
	}
	want := sha256.Sum256(whole)
	answer.Files, whole = nil, nil

	runtime.GC()
	base := testenv.HeapBytes()
	var peak uint64
	stop := testenv.SamplePeakHeap(&peak)
	var wg sync.WaitGroup
	errs := make([]error, 32)
	for i := range errs {
		wg.Go(func() {
			resp := do(http.MethodPost, "/v1/threads/mem/files/download", request)
			defer resp.Body.Close()
			h := sha256.New()
			if _, err := io.Copy(h, resp.Body); err != nil || resp.StatusCode != 200 {
				errs[i] = fmt.Errorf("status %d: %v", resp.StatusCode, err)
				return
			}
			if !bytes.Equal(h.Sum(nil), want[:]) {
				errs[i] = fmt.Errorf("answer %d differs from the sequential one", i)
			}
		})
	}
	wg.Wait()
	stop()
	for _, err := range errs {
		require.NoError(t, err)
	}
	grew := int64(peak) - int64(base)
	t.Logf("32 concurrent batch downloads of 2 MiB: heap %d MiB before, peak %d MiB (+%d MiB)", base>>20, peak>>20, grew>>20)
	require.Less(t, grew, int64(batchDownloadCeiling), "peak heap growth %d MiB", grew>>20)
}
