package emulator

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// fileInfoDTO is the toolbox FileInfo model.
type fileInfoDTO struct {
	Name        string `json:"name"`
	Size        int64  `json:"size"`
	Mode        string `json:"mode"`
	ModTime     string `json:"modTime"`
	ModifiedAt  string `json:"modifiedAt"`
	IsDir       bool   `json:"isDir"`
	Owner       string `json:"owner"`
	Group       string `json:"group"`
	Permissions string `json:"permissions"`
}

func toFileInfo(name string, fi os.FileInfo) fileInfoDTO {
	owner, group := "0", "0"
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		owner, group = strconv.FormatUint(uint64(st.Uid), 10), strconv.FormatUint(uint64(st.Gid), 10)
	}
	return fileInfoDTO{
		Name:    name,
		Size:    fi.Size(),
		Mode:    fi.Mode().String(),
		ModTime: fi.ModTime().String(),
		// The daemon keeps the nanoseconds (Go's RFC 3339 with fraction).
		ModifiedAt:  fi.ModTime().UTC().Format(time.RFC3339Nano),
		IsDir:       fi.IsDir(),
		Owner:       owner,
		Group:       group,
		Permissions: fmt.Sprintf("%04o", fi.Mode().Perm()),
	}
}

// fileError answers a /files failure the way the daemon does: the status
// alone, Content-Length 0 and no content type. Clients get no reason text;
// they must decide from the status (and a stat of their own where a precise
// reason matters).
func fileError(w http.ResponseWriter, status int) {
	h := w.Header()
	h.Del("Content-Type")
	h.Set("Content-Length", "0")
	w.WriteHeader(status)
}

// fsError answers a filesystem error with the daemon's status and no body.
func fsError(w http.ResponseWriter, err error) { fileError(w, pathErrStatus(err)) }

func (s *Server) handleListFiles(w http.ResponseWriter, r *http.Request, t *tbSandbox) {
	res, err := t.resolve(r.URL.Query().Get("path"), true)
	if err != nil {
		fsError(w, err)
		return
	}
	dir, err := res.open()
	if err != nil {
		fsError(w, err)
		return
	}
	defer dir.Close()
	fi, err := dir.Stat()
	if err != nil {
		fsError(w, err)
		return
	}
	if !fi.IsDir() {
		fileError(w, http.StatusBadRequest)
		return
	}
	entries, err := dir.ReadDir(-1)
	if err != nil {
		fsError(w, err)
		return
	}
	out := make([]fileInfoDTO, 0, len(entries))
	for _, e := range entries {
		child, err := t.resolve(path.Join(res.sandbox, e.Name()), true)
		if err != nil {
			continue
		}
		cfi, err := child.stat()
		if err != nil {
			continue
		}
		out = append(out, toFileInfo(e.Name(), cfi))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleFileInfo(w http.ResponseWriter, r *http.Request, t *tbSandbox) {
	res, ok := t.pathParam(w, r, true)
	if !ok {
		return
	}
	fi, err := res.stat()
	if err != nil {
		fsError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, toFileInfo(path.Base(res.sandbox), fi))
}

func (s *Server) handleDeleteFile(w http.ResponseWriter, r *http.Request, t *tbSandbox) {
	res, ok := t.pathParam(w, r, false)
	if !ok {
		return
	}
	fi, err := res.lstat()
	if err != nil {
		fsError(w, err)
		return
	}
	switch {
	case !fi.IsDir():
		err = res.fs.Remove(res.rel)
	case r.URL.Query().Get("recursive") != "true":
		fileError(w, http.StatusBadRequest)
		return
	case res.isBase():
		// The sandbox root or a mount point: empty it, keep the directory.
		err = removeContents(res.fs)
	default:
		err = res.fs.RemoveAll(res.rel)
	}
	if err != nil {
		fsError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleMove(w http.ResponseWriter, r *http.Request, t *tbSandbox) {
	q := r.URL.Query()
	src, dst := q.Get("source"), q.Get("destination")
	if src == "" || dst == "" {
		fileError(w, http.StatusBadRequest)
		return
	}
	rs, err := t.resolve(src, false)
	if err != nil {
		fsError(w, err)
		return
	}
	rd, err := t.resolve(dst, false)
	if err != nil {
		fsError(w, err)
		return
	}
	if _, err := rs.lstat(); err != nil {
		fsError(w, err)
		return
	}
	if rs.isBase() || rd.isBase() {
		fileError(w, http.StatusBadRequest)
		return
	}
	err = renameNoReplace(rs, rd)
	if errors.Is(err, syscall.EXDEV) {
		// Across filesystems: copy, then remove, like the daemon.
		if err = copyAcross(rs, rd); err == nil {
			if rerr := rs.fs.RemoveAll(rs.rel); rerr != nil {
				writeJSON(w, http.StatusOK, map[string]string{
					"message": "file copied successfully but source could not be deleted",
					"error":   rerr.Error(),
				})
				return
			}
		}
	}
	if err != nil {
		fsError(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// renameNoReplace renames src onto dst through directory handles of their
// trees, failing with os.ErrExist (409) when dst exists: the daemon never
// overwrites, and RENAME_NOREPLACE makes the check and the move one step.
func renameNoReplace(src, dst resolved) error {
	sd, err := src.fs.Open(path.Dir(src.rel))
	if err != nil {
		return err
	}
	defer sd.Close()
	dd, err := dst.fs.Open(path.Dir(dst.rel))
	if err != nil {
		return err
	}
	defer dd.Close()
	if err := unix.Renameat2(int(sd.Fd()), path.Base(src.rel), int(dd.Fd()), path.Base(dst.rel), unix.RENAME_NOREPLACE); err != nil {
		return &os.LinkError{Op: "rename", Old: src.sandbox, New: dst.sandbox, Err: err}
	}
	return nil
}

func (s *Server) handleCreateFolder(w http.ResponseWriter, r *http.Request, t *tbSandbox) {
	q := r.URL.Query()
	p := q.Get("path")
	if p == "" {
		fileError(w, http.StatusBadRequest)
		return
	}
	mode := os.FileMode(0o755)
	if m := q.Get("mode"); m != "" {
		v, err := strconv.ParseUint(m, 8, 32)
		if err != nil {
			fileError(w, http.StatusBadRequest)
			return
		}
		mode = os.FileMode(v)
	}
	res, err := t.resolve(p, true)
	if err != nil {
		fsError(w, err)
		return
	}
	if err := mkdirAll(res.fs, res.rel, mode); err != nil {
		fsError(w, err)
		return
	}
	w.WriteHeader(http.StatusCreated)
}

// mkdirAll is os.MkdirAll through a tree's handle. os.Root reports a file in
// the way as "file exists"; the daemon's os.MkdirAll says "not a directory"
// (a 400, not a 409).
func mkdirAll(fsys *os.Root, rel string, mode os.FileMode) error {
	err := fsys.MkdirAll(rel, mode)
	if errors.Is(err, fs.ErrExist) {
		return &os.PathError{Op: "mkdir", Path: rel, Err: syscall.ENOTDIR}
	}
	return err
}

func (s *Server) handleHomeDir(w http.ResponseWriter, r *http.Request, _ *tbSandbox) {
	writeJSON(w, http.StatusOK, map[string]string{"dir": homeDir})
}

// walk visits every entry under a sandbox directory in the sandbox's view
// (entering mounted volumes, never following symlinks).
func (t *tbSandbox) walk(dir string, fn func(sandboxPath string, entry resolved, d fs.DirEntry) error) error {
	res, err := t.resolve(dir, true)
	if err != nil {
		return err
	}
	entries, err := readDir(res)
	if err != nil {
		return err
	}
	for _, e := range entries {
		sp := path.Join(dir, e.Name())
		fsys, rel := t.locate(path.Join(res.sandbox, e.Name()))
		if err := fn(sp, resolved{sandbox: path.Join(res.sandbox, e.Name()), fs: fsys, rel: rel}, e); err != nil {
			return err
		}
		if e.IsDir() {
			if err := t.walk(sp, fn); err != nil && !errors.Is(err, fs.ErrPermission) {
				return err
			}
		}
	}
	return nil
}

func (s *Server) handleSearchFiles(w http.ResponseWriter, r *http.Request, t *tbSandbox) {
	q := r.URL.Query()
	dir, pattern := q.Get("path"), q.Get("pattern")
	if dir == "" || pattern == "" {
		fileError(w, http.StatusBadRequest)
		return
	}
	if _, err := path.Match(pattern, ""); err != nil {
		fileError(w, http.StatusBadRequest)
		return
	}
	files := []string{}
	if ok, _ := path.Match(pattern, path.Base(dir)); ok {
		files = append(files, dir)
	}
	err := t.walk(dir, func(sp string, _ resolved, d fs.DirEntry) error {
		if ok, _ := path.Match(pattern, d.Name()); ok {
			files = append(files, sp)
		}
		return nil
	})
	if err != nil {
		fsError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string][]string{"files": files})
}

type matchDTO struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Content string `json:"content"`
}

func (s *Server) handleFindInFiles(w http.ResponseWriter, r *http.Request, t *tbSandbox) {
	q := r.URL.Query()
	dir, pattern := q.Get("path"), q.Get("pattern")
	if dir == "" || pattern == "" {
		fileError(w, http.StatusBadRequest)
		return
	}
	matches := []matchDTO{}
	err := t.walk(dir, func(sp string, entry resolved, d fs.DirEntry) error {
		if !d.Type().IsRegular() {
			return nil
		}
		f, err := entry.open()
		if err != nil {
			return nil
		}
		defer f.Close()
		br := bufio.NewReader(f)
		head, _ := br.Peek(512)
		if bytes.IndexByte(head, 0) >= 0 {
			return nil
		}
		sc := bufio.NewScanner(br)
		sc.Buffer(make([]byte, 64*1024), 16<<20)
		for line := 1; sc.Scan(); line++ {
			if strings.Contains(sc.Text(), pattern) {
				matches = append(matches, matchDTO{File: sp, Line: line, Content: sc.Text()})
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, io.EOF) {
		fsError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, matches)
}
