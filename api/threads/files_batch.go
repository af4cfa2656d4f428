package threads

import (
	"context"
	"encoding/base64"
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
// batch download may return (base64 in JSON grows them by a third and the
// whole answer is held in memory).
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
	if e.Status >= 500 {
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
	if _, err := t.liveThread(ctx, ref); err != nil {
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

// uploadPart streams one part to its validated path; it returns the file's
// result (the resolved path, and the failure if any).
func (t *Routes) uploadPart(ctx context.Context, ref entity.Ref, raw string, part io.Reader, body *cappedReader) threadBatchFile {
	res := threadBatchFile{Path: raw}
	p, err := clientpath.Thread(raw)
	if err != nil {
		res.fail(err)
		return res
	}
	res.Path = p
	if clientpath.Protected(p) {
		res.refuse("invalid_path", "cannot write to "+p)
		return res
	}
	before := body.n.Load()
	err = t.Sandboxes.Use(ctx, ref, sandbox.UseOptions{
		Need: t.fileNeed(), Guard: t.guard(ref),
		Replayable: func() bool { return body.n.Load() == before },
	}, func(ctx context.Context, sb *sandbox.Sandbox) error {
		return files(sb).Upload(ctx, p, part)
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
// each file's bytes (base64 `content`) or its error, in order. The total is
// capped at 64 MiB: files past the cap carry an error, so a client can fetch
// them one by one through GET.
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
	out := threadBatchResult{Files: make([]threadBatchFile, len(req.Paths))}
	resolved := make([]string, len(req.Paths))
	for i, raw := range req.Paths {
		out.Files[i].Path = raw
		p, err := clientpath.Thread(raw)
		if err != nil {
			out.Files[i].fail(err)
			continue
		}
		resolved[i] = p
		out.Files[i].Path = p
	}
	budget := int64(maxBatchDownloadBytes)
	err = t.Sandboxes.Use(c.Request().Context(), ref, sandbox.UseOptions{Need: t.fileNeed(), Guard: t.guard(ref)}, func(ctx context.Context, sb *sandbox.Sandbox) error {
		for i, p := range resolved {
			if p == "" || out.Files[i].Content != nil || out.Files[i].Error != "" { // done before a retry
				continue
			}
			info, err := files(sb).Stat(ctx, p)
			if err != nil {
				if sb.Gone(ctx, err) {
					return err // the sandbox, not the file: Use ensures it again
				}
				out.Files[i].fail(err)
				continue
			}
			if info.IsDir {
				out.Files[i].refuse("is_a_directory", "is a directory: "+p)
				continue
			}
			if info.Size > budget {
				out.Files[i].refuse("batch_too_large", "batch size limit (64 MiB) reached; download this file on its own")
				continue
			}
			data, err := readWholeFile(ctx, sb, p, budget)
			if err != nil {
				out.Files[i].fail(err)
				continue
			}
			budget -= int64(len(data))
			n := int64(len(data))
			enc := base64.StdEncoding.EncodeToString(data)
			out.Files[i].Size = &n
			out.Files[i].Content = &enc
		}
		return nil
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// readWholeFile reads a whole file, refusing one that grew past budget meanwhile.
func readWholeFile(ctx context.Context, sb *sandbox.Sandbox, p string, budget int64) ([]byte, error) {
	r, err := sb.Toolbox.Download(ctx, p, 0, -1)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, budget+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	if int64(len(data)) > budget {
		return nil, apierr.BadRequest("batch_too_large", "batch size limit (64 MiB) reached; download this file on its own")
	}
	return data, nil
}
