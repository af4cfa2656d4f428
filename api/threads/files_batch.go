package threads

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"

	"github.com/threadbox/threadbox/api/apierr"
	"github.com/threadbox/threadbox/api/httpio"
	"github.com/threadbox/threadbox/clientpath"
	"github.com/threadbox/threadbox/entity"
	"github.com/threadbox/threadbox/sandbox"

	"github.com/labstack/echo/v4"
)

// Batch limits: how many files one request may name, and how many bytes a
// batch download may return (base64 in JSON grows them by a third; the
// answer is streamed, so this bounds its length, not the API's memory).
const (
	maxBatchFiles         = 1000
	maxBatchDownloadBytes = 64 << 20
)

// threadBatchFile is one file's result. A failed file has a stable Code (the
// single-file routes' codes, or a batch one) so clients branch on it, and a
// human Error.
type threadBatchFile struct {
	Path    string  `json:"path"`
	Size    *int64  `json:"size,omitempty"`
	Content *string `json:"content,omitempty"` // base64
	Code    string  `json:"code,omitempty"`
	Error   string  `json:"error,omitempty"`
}

// fail records err as the file's failure, with the code and message apierr
// gives it (a server-side failure shows as "internal").
func (f *threadBatchFile) fail(err error) {
	e := apierr.Classify(err)
	f.Code, f.Error = e.Code, apierr.Message(err)
	if apierr.ServerFault(e) { // a full volume (507) is the client's condition
		f.Code = "internal"
	}
}

// refuse records a failure decided here.
func (f *threadBatchFile) refuse(code, msg string) { f.Code, f.Error = code, msg }

type threadBatchResult struct {
	Files []threadBatchFile `json:"files"`
}

// uploadFiles is POST /v1/threads/{id}/files/upload: a multipart body of
// repeated `path` fields each followed by a `file` part. Each file is
// streamed into the sandbox as it arrives; a bad path or a failed write is
// reported for that file and the batch goes on. 200 {"files":[...]}; the
// whole request is capped at Config.MaxBodyBytes (413).
func (t *Routes) uploadFiles(c echo.Context) error {
	req := c.Request()
	mt, _, err := mime.ParseMediaType(req.Header.Get(echo.HeaderContentType))
	if err != nil || mt != "multipart/form-data" {
		return apierr.New(http.StatusUnsupportedMediaType, "unsupported_media_type", "the body must be multipart/form-data")
	}
	limit := t.Config.MaxBodyBytes
	if req.ContentLength > limit {
		return apierr.TooLarge("the body exceeds " + strconv.FormatInt(limit, 10) + " bytes")
	}
	ref, err := threadRef(c)
	if err != nil {
		return err
	}
	ctx := req.Context()
	if _, err := t.guard(ref)(ctx); err != nil {
		return err
	}
	body := &cappedReader{r: req.Body, limit: limit}
	req.Body = io.NopCloser(body)
	tooLarge := body.tooLarge()
	mr, err := req.MultipartReader()
	if err != nil {
		return apierr.BadRequest("malformed_multipart", "the multipart body cannot be read")
	}
	out := threadBatchResult{Files: []threadBatchFile{}}
	// Results are held until the end: past maxBatchFiles one last entry says
	// the rest was skipped, and the remaining parts are only drained, so a
	// body of tiny parts cannot grow the answer with it.
	full := false
	add := func(f threadBatchFile) {
		switch {
		case full:
		case len(out.Files) >= maxBatchFiles:
			full = true
			f.refuse("too_many_files", "too many files in one batch (at most 1000); this and every later part were skipped")
			out.Files = append(out.Files, f)
		default:
			out.Files = append(out.Files, f)
		}
	}
	pending := ""
	havePath := false
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if body.over.Load() {
				return tooLarge
			}
			return apierr.BadRequest("malformed_multipart", "the multipart body is malformed")
		}
		if full {
			part.Close()
			if body.over.Load() {
				return tooLarge
			}
			continue
		}
		switch part.FormName() {
		case "path":
			v, err := io.ReadAll(io.LimitReader(part, clientpath.MaxPathBytes+1))
			part.Close()
			if err != nil {
				return apierr.BadRequest("malformed_multipart", "the multipart body is malformed")
			}
			if havePath {
				add(threadBatchFile{Path: pending, Code: "missing_file", Error: "no file part followed this path"})
			}
			pending, havePath = string(v), true
		case "file":
			res := threadBatchFile{Path: pending}
			switch {
			case !havePath:
				res.refuse("missing_path", "file part without a preceding path field")
			case len(out.Files) >= maxBatchFiles:
				// add reports it
			default:
				res = t.uploadPart(ctx, ref, pending, part, body)
			}
			part.Close()
			if body.over.Load() {
				return tooLarge
			}
			add(res)
			havePath = false
		default:
			part.Close()
		}
	}
	if havePath {
		add(threadBatchFile{Path: pending, Code: "missing_file", Error: "no file part followed this path"})
	}
	if len(out.Files) == 0 {
		return apierr.BadRequest("missing_files", "the body holds no path/file pairs")
	}
	return c.JSON(http.StatusOK, out)
}

// uploadPart streams one part to its validated path (see FilePath); it
// returns the file's result (the resolved path, and the failure if any).
func (t *Routes) uploadPart(ctx context.Context, ref entity.Ref, raw string, part io.Reader, body *cappedReader) threadBatchFile {
	res := threadBatchFile{Path: raw}
	p, err := FilePath(raw, true)
	if err != nil {
		res.fail(err)
		return res
	}
	res.Path = p
	before := body.n.Load()
	err = t.Sandboxes.Use(ctx, ref, sandbox.UseOptions{
		Need: t.fileNeed(), Guard: t.guard(ref),
		Replayable: func() bool { return body.n.Load() == before },
	}, func(ctx context.Context, sb *sandbox.Sandbox) error {
		return t.write(ctx, sb, ref.UserID, p, part, -1)
	})
	if err != nil {
		if body.over.Load() {
			res.refuse("too_large", "request body too large")
			return res
		}
		t.Logger.WarnContext(ctx, "batch upload item failed", "path", p, "err", err)
		res.fail(err)
	}
	return res
}

type threadDownloadRequest struct {
	Paths []string `json:"paths"`
}

// downloadFiles is POST /v1/threads/{id}/files/download {"paths":[...]}:
// each file's bytes (base64 `content`, then its `size`) or its `error`, in
// order. The answer is streamed: each file is encoded as it is read from the
// sandbox, so a request holds a few buffers (see batchBuffer), not its
// files. The total is capped at 64 MiB: files past the cap carry an error,
// so a client can fetch them one by one through GET. Every file is stat-ed
// before the answer starts (a sandbox found stopped is started again and
// the request replayed); a file that cannot be read whole once its content
// has started (it shrank, grew past the cap, or the sandbox went away) cuts
// the connection, so a client never takes a truncated answer for a whole
// one.
func (t *Routes) downloadFiles(c echo.Context) error {
	var req threadDownloadRequest
	if err := httpio.DecodeJSON(c, &req); err != nil {
		return err
	}
	if len(req.Paths) == 0 {
		return apierr.BadRequest("missing_paths", "paths must list at least one file")
	}
	if len(req.Paths) > maxBatchFiles {
		return apierr.BadRequest("too_many_paths", "at most 1000 paths per request")
	}
	ref, err := threadRef(c)
	if err != nil {
		return err
	}
	return t.Sandboxes.Use(c.Request().Context(), ref, sandbox.UseOptions{
		Need: t.fileNeed(), Guard: t.guard(ref),
		Replayable: func() bool { return !c.Response().Committed },
	}, func(ctx context.Context, sb *sandbox.Sandbox) error {
		plan, err := planDownload(ctx, sb, req.Paths)
		if err != nil {
			return err
		}
		return t.streamDownload(ctx, c, sb, plan)
	})
}

// batchBuffer is the size of the buffers a streamed batch download holds:
// one for reading a file, one in front of the connection.
const batchBuffer = 32 << 10

// planned is one entry of a batch download: what to send, decided before
// the answer starts.
type planned struct {
	threadBatchFile
	size int64 // bytes to stream; content is sent when Error is empty
}

// planDownload resolves and stats every path, and applies the byte cap. An
// error is returned only when the sandbox itself is gone (the use retries).
func planDownload(ctx context.Context, sb *sandbox.Sandbox, paths []string) ([]planned, error) {
	plan := make([]planned, len(paths))
	budget := int64(maxBatchDownloadBytes)
	for i, raw := range paths {
		e := &plan[i]
		e.Path = raw
		p, err := FilePath(raw, false)
		if err != nil {
			e.fail(err)
			continue
		}
		e.Path = p
		info, err := files(sb).Stat(ctx, p)
		switch {
		case err != nil && sb.Gone(ctx, err):
			return nil, err // the sandbox, not the file
		case err != nil:
			e.fail(err)
		case info.IsDir:
			e.refuse("is_a_directory", "is a directory: "+p)
		case info.Size > budget:
			e.refuse("batch_too_large", "batch size limit (64 MiB) reached; download this file on its own")
		default:
			e.size = info.Size
			budget -= info.Size
		}
	}
	return plan, nil
}

// streamDownload writes the answer for plan, encoding each file as it is
// read.
func (t *Routes) streamDownload(ctx context.Context, c echo.Context, sb *sandbox.Sandbox, plan []planned) error {
	res := c.Response()
	res.Header().Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	res.WriteHeader(http.StatusOK)
	w := bufio.NewWriterSize(res, batchBuffer)
	buf := make([]byte, batchBuffer)
	_, _ = w.WriteString(`{"files":[`)
	for i, e := range plan {
		if i > 0 {
			_ = w.WriteByte(',')
		}
		if e.Error == "" {
			if err := streamFile(ctx, w, sb, e, buf); err != nil {
				if !errors.Is(err, errOpen) {
					t.Logger.WarnContext(ctx, "batch download cut off", "path", e.Path, "err", err)
					_ = w.Flush()
					panic(http.ErrAbortHandler) // headers are out: cut the connection
				}
				e.fail(err)
			}
			if e.Error == "" {
				continue
			}
		}
		b, _ := json.Marshal(threadBatchFile{Path: e.Path, Code: e.Code, Error: e.Error})
		_, _ = w.Write(b)
	}
	_, _ = w.WriteString("]}\n")
	if err := w.Flush(); err != nil {
		t.Logger.WarnContext(ctx, "batch download interrupted", "err", err)
	}
	return nil
}

// errOpen marks a file that could not be opened: nothing of its entry was
// written yet, so it is reported as the entry's error.
var errOpen = errors.New("opening the file")

// streamFile writes one entry {"path","content","size"} with the file's
// bytes base64-encoded as they arrive.
func streamFile(ctx context.Context, w *bufio.Writer, sb *sandbox.Sandbox, e planned, buf []byte) error {
	r, err := files(sb).Download(ctx, e.Path, 0, -1)
	if err != nil {
		if sb.Gone(ctx, err) {
			return err
		}
		return fmt.Errorf("%w: %w", errOpen, err)
	}
	defer r.Close()
	path, _ := json.Marshal(e.Path)
	_, _ = w.WriteString(`{"path":`)
	_, _ = w.Write(path)
	_, _ = w.WriteString(`,"content":"`)
	enc := base64.NewEncoder(base64.StdEncoding, w)
	n, err := io.CopyBuffer(enc, io.LimitReader(r, e.size+1), buf)
	if err != nil {
		return fmt.Errorf("reading %s: %w", e.Path, err)
	}
	if n != e.size {
		return fmt.Errorf("%s changed while it was read (%d bytes, %d at its stat)", e.Path, n, e.size)
	}
	if err := enc.Close(); err != nil {
		return err
	}
	_, err = w.WriteString(`","size":` + strconv.FormatInt(n, 10) + `}`)
	return err
}
