package emulator

import (
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apiclient "github.com/daytonaio/daytona/libs/api-client-go"
	"github.com/stretchr/testify/require"
)

// failingReader yields n bytes of data and then fails, as a client that dies
// mid-upload does.
type failingReader struct{ left int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, errors.New("client went away")
	}
	n := min(len(p), r.left)
	for i := range n {
		p[i] = 'x'
	}
	r.left -= n
	return n, nil
}

// An upload whose body breaks off leaves nothing at its path (Daytona's
// daemon parses the whole form before writing), and no spool behind.
func TestUploadAbortedLeavesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	sb := e.create(apiclient.CreateSandbox{})

	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		part, err := mw.CreateFormFile("file", "half.bin")
		if err == nil {
			_, err = io.Copy(part, &failingReader{left: 3 << 20})
		}
		_ = pw.CloseWithError(err)
	}()
	req, err := http.NewRequest(http.MethodPost, e.hs.URL+"/toolbox/"+sb.Id+"/files/upload?path="+q("/home/daytona/half.bin"), pr)
	require.NoError(t, err)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		resp.Body.Close()
	}
	require.Error(t, err, "the client saw its own upload fail")

	spool := filepath.Join(e.srv.baseDir, "uploads")
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, code := e.download(sb, "/home/daytona/half.bin")
		entries, _ := os.ReadDir(spool)
		if code == http.StatusNotFound && len(entries) == 0 {
			break
		}
		require.True(t, time.Now().Before(deadline), "partial file (status %d) or spool %v left behind", code, entries)
		time.Sleep(50 * time.Millisecond)
	}

	// A complete upload to the same path still works.
	e.upload(sb, "/home/daytona/half.bin", strings.Repeat("y", 10))
	body, code := e.download(sb, "/home/daytona/half.bin")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, strings.Repeat("y", 10), body)
}
