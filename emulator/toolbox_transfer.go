package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Uploads and downloads stream: nothing here holds a whole file in memory.

// contentDisposition mirrors the daemon's attachment header.
func contentDisposition(kind, field, name string) string {
	ascii := strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return '_'
		}
		return r
	}, name)
	v := kind
	if field != "" {
		v += `; name="` + field + `"`
	}
	return v + `; filename="` + ascii + `"; filename*=utf-8''` + url.PathEscape(name)
}

func (s *Server) handleDownload(w http.ResponseWriter, r *http.Request, t *tbSandbox) {
	res, ok := t.pathParam(w, r, true)
	if !ok {
		return
	}
	f, err := res.open()
	if err != nil {
		fsError(w, err)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		fsError(w, err)
		return
	}
	if fi.IsDir() {
		fileError(w, http.StatusBadRequest)
		return
	}
	h := w.Header()
	h.Set("Content-Description", "File Transfer")
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", contentDisposition("attachment", "", path.Base(res.sandbox)))
	h.Set("Content-Transfer-Encoding", "binary")
	h.Set("Expires", "0")
	h.Set("Cache-Control", "must-revalidate")
	h.Set("Pragma", "public")
	// Like gin's c.File in the daemon: Range, If-Range and HEAD all work.
	http.ServeContent(w, r, "", fi.ModTime(), f)
}

func (s *Server) handleBulkDownload(w http.ResponseWriter, r *http.Request, t *tbSandbox) {
	var req struct {
		Paths []string `json:"paths"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil || len(req.Paths) == 0 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": `request body must be {"paths": [ ... ]} and non-empty`})
		return
	}
	mw := multipart.NewWriter(w)
	_ = mw.SetBoundary("DAYTONA-FILE-BOUNDARY")
	w.Header().Set("Content-Type", mw.FormDataContentType())
	w.WriteHeader(http.StatusOK)
	for _, p := range req.Paths {
		if err := s.writeDownloadPart(mw, r, t, p); err != nil {
			s.log.Warn("bulk-download aborted", "sandbox", t.id, "err", err)
			return
		}
	}
	_ = mw.Close()
}

// writeDownloadPart writes one "file" or "error" part; it returns an error
// only when the response itself can no longer be written.
func (s *Server) writeDownloadPart(mw *multipart.Writer, r *http.Request, t *tbSandbox, p string) error {
	fail := func(status int, code, msg string) error {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", contentDisposition("form-data", "error", p))
		h.Set("Content-Type", "application/json")
		pw, err := mw.CreatePart(h)
		if err != nil {
			return fmt.Errorf("create error part: %w", err)
		}
		return json.NewEncoder(pw).Encode(toolboxErrorBody{
			StatusCode: status, Message: msg, Code: code,
			Timestamp: time.Now().UTC().Format(time.RFC3339Nano), Path: p, Method: r.Method,
		})
	}
	res, err := t.resolve(p, true)
	if err != nil {
		return fail(http.StatusBadRequest, "INVALID_FILE_PATH", "invalid file path: "+p)
	}
	f, err := res.open()
	if err != nil {
		switch {
		case errors.Is(err, os.ErrNotExist):
			return fail(http.StatusNotFound, "FILE_NOT_FOUND", "file not found: "+p)
		case errors.Is(err, os.ErrPermission):
			return fail(http.StatusForbidden, "FILE_ACCESS_DENIED", "access denied: "+p)
		}
		return fail(http.StatusInternalServerError, "FILE_READ_FAILED", "failed to read file: "+p)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.IsDir() {
		return fail(http.StatusBadRequest, "INVALID_FILE_PATH", "path is a directory: "+p)
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", contentDisposition("form-data", "file", p))
	ct := mime.TypeByExtension(filepath.Ext(p))
	if ct == "" {
		ct = "application/octet-stream"
	}
	h.Set("Content-Type", ct)
	h.Set("Content-Length", strconv.FormatInt(fi.Size(), 10))
	pw, err := mw.CreatePart(h)
	if err != nil {
		return fmt.Errorf("create file part: %w", err)
	}
	if _, err := io.Copy(pw, f); err != nil {
		return fmt.Errorf("stream %s: %w", p, err)
	}
	return nil
}

// writeUpload streams one upload into a sandbox path, creating parents. The
// bytes land in a spool outside every sandbox and are renamed into place only
// once the part was read to its end: like Daytona's daemon, which parses the
// whole multipart form before it writes the file, a broken or aborted upload
// never leaves a partial file behind. The rename goes through a handle of the
// destination's directory, so it cannot be redirected out of the sandbox.
// Errors name the sandbox path only, like the daemon's.
func (s *Server) writeUpload(t *tbSandbox, p string, src io.Reader, dirMode os.FileMode) (int64, error) {
	res, err := t.resolve(p, true)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", p, err)
	}
	failed := func(op, at string, err error) error {
		return &os.PathError{Op: p + ": create: " + op, Path: at, Err: unwrapPathErr(err)}
	}
	parent := path.Dir(res.rel)
	if err := mkdirAll(res.fs, parent, dirMode); err != nil {
		return 0, failed("mkdir", path.Dir(res.sandbox), err)
	}
	dir, err := res.fs.Open(parent)
	if err != nil {
		return 0, failed("open", path.Dir(res.sandbox), err)
	}
	defer dir.Close()
	f, err := os.CreateTemp(filepath.Join(s.baseDir, "uploads"), "part-")
	if err != nil {
		return 0, failed("open", res.sandbox, err)
	}
	defer os.Remove(f.Name())
	n, err := io.Copy(f, src)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return n, fmt.Errorf("%s: write: %w", p, unwrapPathErr(err))
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return n, failed("chmod", res.sandbox, err)
	}
	if err := unix.Renameat(unix.AT_FDCWD, f.Name(), int(dir.Fd()), path.Base(res.rel)); err != nil {
		return n, failed("open", res.sandbox, err)
	}
	return n, nil
}

func (s *Server) handleUpload(w http.ResponseWriter, r *http.Request, t *tbSandbox) {
	p := r.URL.Query().Get("path")
	if p == "" {
		fileError(w, http.StatusBadRequest)
		return
	}
	mr, err := r.MultipartReader()
	if err != nil {
		fileError(w, http.StatusBadRequest)
		return
	}
	for {
		part, err := mr.NextPart()
		if err != nil {
			// io.EOF: no "file" part; anything else: a broken form.
			fileError(w, http.StatusBadRequest)
			return
		}
		if part.FormName() != "file" {
			_ = part.Close()
			continue
		}
		_, err = s.writeUpload(t, p, part, 0o750)
		_ = part.Close()
		if err != nil {
			fsError(w, err)
			return
		}
		w.WriteHeader(http.StatusOK)
		return
	}
}

// bulkFieldRe matches files[i].path and files[i].file.
func bulkFieldRe() *regexp.Regexp { return regexp.MustCompile(`^files\[(\d+)\]\.(path|file)$`) }

type uploadedFile struct {
	Path  string `json:"path"`
	Bytes int64  `json:"bytes"`
}

func (s *Server) handleBulkUpload(w http.ResponseWriter, r *http.Request, t *tbSandbox) {
	mr, err := r.MultipartReader()
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string][]string{"errors": {"invalid multipart form"}})
		return
	}
	re := bulkFieldRe()
	paths := map[string]string{}
	files := []uploadedFile{}
	var errs []string
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			errs = append(errs, "invalid multipart form: "+err.Error())
			break
		}
		m := re.FindStringSubmatch(part.FormName())
		if m == nil {
			_ = part.Close()
			continue
		}
		idx, kind := m[1], m[2]
		if kind == "path" {
			b, err := io.ReadAll(io.LimitReader(part, 4096))
			_ = part.Close()
			if err != nil {
				errs = append(errs, fmt.Sprintf("file[%s]: read path: %v", idx, err))
				continue
			}
			paths[idx] = string(b)
			continue
		}
		dest, ok := paths[idx]
		if !ok {
			_ = part.Close()
			errs = append(errs, fmt.Sprintf("file[%s]: missing .path metadata", idx))
			continue
		}
		n, err := s.writeUpload(t, dest, part, 0o755)
		_ = part.Close()
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		files = append(files, uploadedFile{Path: dest, Bytes: n})
	}
	if len(errs) > 0 {
		writeJSON(w, http.StatusBadRequest, map[string]any{"errors": errs, "files": files})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"files": files})
}
