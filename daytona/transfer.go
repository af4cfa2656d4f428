package daytona

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
)

// Download streams a file's bytes. offset and length select a range (length < 0 means to
// the end); the range is requested with an HTTP Range header. If the server ignores Range
// and answers 200 with the whole file (Daytona's daemon serves downloads with gin's
// c.File, which honours Range, but proxies in between might not), the offset is skipped
// by discarding and the length enforced by limiting, so the result is the same either way.
// An offset at or past the end yields an empty stream. The caller must Close the reader;
// only ctx bounds the transfer.
func (t *Toolbox) Download(ctx context.Context, p string, offset, length int64) (io.ReadCloser, error) {
	const op = "download file"
	if offset < 0 {
		return nil, &Error{Kind: ErrBadRequest, Op: op, Message: "negative offset"}
	}
	if length == 0 {
		return io.NopCloser(strings.NewReader("")), nil
	}
	req, err := t.newRequest(ctx, http.MethodGet, t.endpoint("/files/download", url.Values{"path": {p}}), nil)
	if err != nil {
		return nil, &Error{Kind: ErrBadRequest, Op: op, Err: err}
	}
	ranged := offset > 0 || length > 0
	if ranged {
		if length > 0 {
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", offset, offset+length-1))
		} else {
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-", offset))
		}
	}
	resp, err := t.g.tbHTTP.Do(req)
	if err != nil {
		return nil, mapErr(op, classPlain, nil, err)
	}
	switch {
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && ranged:
		resp.Body.Close()
		return io.NopCloser(strings.NewReader("")), nil
	case resp.StatusCode >= 400:
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		return nil, statusErr(op, classPlain, resp, body)
	case resp.StatusCode == http.StatusPartialContent:
		start, ok := contentRangeStart(resp.Header.Get("Content-Range"))
		if !ok || start > offset {
			resp.Body.Close()
			return nil, &Error{Kind: ErrUnavailable, Op: op, Status: resp.StatusCode, Message: "unusable Content-Range " + strconv.Quote(resp.Header.Get("Content-Range"))}
		}
		return limited(resp.Body, offset-start, length)
	default:
		return limited(resp.Body, offset, length)
	}
}

// contentRangeStart parses "bytes START-END/SIZE".
func contentRangeStart(v string) (int64, bool) {
	v, ok := strings.CutPrefix(strings.TrimSpace(v), "bytes ")
	if !ok {
		return 0, false
	}
	startStr, _, ok := strings.Cut(v, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(startStr), 10, 64)
	return n, err == nil && n >= 0
}

// limited skips skip bytes of body and caps it at length (if >= 0).
func limited(body io.ReadCloser, skip, length int64) (io.ReadCloser, error) {
	if skip > 0 {
		if _, err := io.CopyN(io.Discard, body, skip); err != nil {
			body.Close()
			if errors.Is(err, io.EOF) {
				return io.NopCloser(strings.NewReader("")), nil
			}
			return nil, &Error{Kind: ErrUnavailable, Op: "download file", Err: err}
		}
	}
	if length < 0 {
		return body, nil
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(body, length), body}, nil
}

// streamMultipart POSTs a multipart body produced by write through an io.Pipe, so nothing
// is buffered beyond the copy buffer, and returns the response whatever its status. The
// writer goroutine always ends: once the request is over the pipe is closed and any pending
// write fails. A failure to read the caller's source is reported as ErrBadRequest.
func (t *Toolbox) streamMultipart(ctx context.Context, op, u string, write func(mw *multipart.Writer) error) (*http.Response, error) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	done := make(chan error, 1)
	go func() {
		err := write(mw)
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err)
		done <- err
	}()
	req, err := t.newRequest(ctx, http.MethodPost, u, pr)
	if err != nil {
		pr.CloseWithError(err)
		<-done
		return nil, &Error{Kind: ErrBadRequest, Op: op, Err: err}
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := t.g.tbHTTP.Do(req)
	pr.CloseWithError(errRequestOver)
	werr := <-done
	var se sourceError
	if errors.As(werr, &se) {
		// The caller's reader failed; whatever the server said, the file is incomplete.
		if resp != nil {
			resp.Body.Close()
		}
		return nil, &Error{Kind: ErrBadRequest, Op: op, Message: "reading the upload source failed", Err: se.err}
	}
	if err != nil {
		return nil, mapErr(op, classPlain, nil, err)
	}
	return resp, nil
}

// sourceError marks a failure to read the caller's upload source (as opposed to the pipe
// being closed because the request ended).
type sourceError struct{ err error }

func (e sourceError) Error() string { return e.err.Error() }
func (e sourceError) Unwrap() error { return e.err }

// trackedReader remembers its source's read error.
type trackedReader struct {
	r   io.Reader
	err error
}

func (t *trackedReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && err != io.EOF {
		t.err = err
	}
	return n, err
}

// copySource copies src into w, tagging read failures of src as sourceError.
func copySource(w io.Writer, src io.Reader) error {
	tr := &trackedReader{r: src}
	_, err := io.Copy(w, tr)
	if tr.err != nil {
		return sourceError{tr.err}
	}
	return err
}

// errRequestOver closes an upload pipe once its request has finished.
var errRequestOver = errors.New("daytona: upload request finished")

// Upload streams r into the file at p (parents created, existing file overwritten), using
// POST /files/upload with the multipart part "file". The body is produced through an
// io.Pipe, so files of any size use constant memory; only ctx bounds the transfer.
func (t *Toolbox) Upload(ctx context.Context, p string, r io.Reader) error {
	const op = "upload file"
	resp, err := t.streamMultipart(ctx, op, t.endpoint("/files/upload", url.Values{"path": {p}}), func(mw *multipart.Writer) error {
		fw, err := mw.CreateFormFile("file", path.Base(p))
		if err != nil {
			return err
		}
		return copySource(fw, r)
	})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 400 {
		return statusErr(op, classPlain, resp, body)
	}
	return nil
}

// bulkUploadResponse is Daytona's bulk-upload answer: 200 {"files":[{path,bytes}]}, or 400
// {"errors":[...],"files":[...]} when some items failed.
type bulkUploadResponse struct {
	Files []struct {
		Path  string `json:"path"`
		Bytes int64  `json:"bytes"`
	} `json:"files"`
	Errors []string `json:"errors"`
}

// UploadBatch streams several files in one POST /files/bulk-upload (fields files[i].path
// before parts files[i].file, as the daemon requires) and reports one outcome per item, in
// order. Items Daytona lists as written succeed; the others carry an ErrBadRequest with the
// server's error text (matched by item index when the message names it, otherwise all
// messages). A failure of the whole request (transport, 5xx, malformed body) is the error
// return.
func (t *Toolbox) UploadBatch(ctx context.Context, items []UploadItem) ([]UploadOutcome, error) {
	const op = "bulk upload"
	if len(items) == 0 {
		return nil, nil
	}
	resp, err := t.streamMultipart(ctx, op, t.endpoint("/files/bulk-upload", nil), func(mw *multipart.Writer) error {
		for i, it := range items {
			if err := mw.WriteField(fmt.Sprintf("files[%d].path", i), it.Path); err != nil {
				return err
			}
			fw, err := mw.CreateFormFile(fmt.Sprintf("files[%d].file", i), it.Path)
			if err != nil {
				return err
			}
			if it.Body != nil {
				if err := copySource(fw, it.Body); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	var br bulkUploadResponse
	decodeErr := json.Unmarshal(body, &br)
	if resp.StatusCode >= 400 && (resp.StatusCode != http.StatusBadRequest || decodeErr != nil || len(br.Files)+len(br.Errors) == 0 || (len(br.Files) == 0 && len(br.Errors) == 1 && br.Errors[0] == "invalid multipart form")) {
		return nil, statusErr(op, classPlain, resp, body)
	}
	if decodeErr != nil {
		return nil, &Error{Kind: ErrUnavailable, Op: op, Status: resp.StatusCode, Message: "undecodable bulk-upload response", Err: decodeErr}
	}
	written := make(map[string]int64, len(br.Files))
	for _, f := range br.Files {
		written[f.Path] = f.Bytes
	}
	out := make([]UploadOutcome, len(items))
	for i, it := range items {
		out[i].Path = it.Path
		if n, ok := written[it.Path]; ok {
			out[i].Bytes = n
			continue
		}
		out[i].Err = &Error{Kind: ErrBadRequest, Op: op, Status: resp.StatusCode, Message: itemError(br.Errors, i, it.Path)}
	}
	return out, nil
}

// itemError picks the server messages about item i (by "[i]" or its path), else all of them.
func itemError(errs []string, i int, p string) string {
	var mine []string
	tag := fmt.Sprintf("[%d]", i)
	for _, e := range errs {
		if strings.Contains(e, tag) || strings.Contains(e, p) {
			mine = append(mine, e)
		}
	}
	if len(mine) == 0 {
		mine = errs
	}
	if len(mine) == 0 {
		return "not written"
	}
	return strings.Join(mine, "; ")
}
