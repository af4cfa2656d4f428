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
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
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
		Name:        name,
		Size:        fi.Size(),
		Mode:        fi.Mode().String(),
		ModTime:     fi.ModTime().String(),
		ModifiedAt:  isoTime(fi.ModTime()),
		IsDir:       fi.IsDir(),
		Owner:       owner,
		Group:       group,
		Permissions: fmt.Sprintf("%04o", fi.Mode().Perm()),
	}
}

// fsError answers a filesystem error with the daemon's status. The daemon
// sends these with an empty body; a JSON ErrorResponse is allowed too and
// more helpful.
func fsError(w http.ResponseWriter, r *http.Request, err error) {
	writeToolboxError(w, r, pathErrStatus(err), err.Error())
}

func (s *Server) handleListFiles(w http.ResponseWriter, r *http.Request, t *tbSandbox) {
	res, err := t.resolve(r.URL.Query().Get("path"), true)
	if err != nil {
		fsError(w, r, err)
		return
	}
	fi, err := os.Stat(res.host)
	if err != nil {
		fsError(w, r, err)
		return
	}
	if !fi.IsDir() {
		writeToolboxError(w, r, http.StatusBadRequest, "not a directory")
		return
	}
	entries, err := os.ReadDir(res.host)
	if err != nil {
		fsError(w, r, err)
		return
	}
	out := make([]fileInfoDTO, 0, len(entries))
	for _, e := range entries {
		child, err := t.resolve(path.Join(res.sandbox, e.Name()), true)
		if err != nil {
			continue
		}
		cfi, err := os.Stat(child.host)
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
	fi, err := os.Stat(res.host)
	if err != nil {
		fsError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toFileInfo(path.Base(res.sandbox), fi))
}

func (s *Server) handleDeleteFile(w http.ResponseWriter, r *http.Request, t *tbSandbox) {
	q := r.URL.Query()
	res, ok := t.pathParam(w, r, false)
	if !ok {
		return
	}
	fi, err := os.Lstat(res.host)
	if err != nil {
		fsError(w, r, err)
		return
	}
	if fi.IsDir() {
		if q.Get("recursive") != "true" {
			writeToolboxError(w, r, http.StatusBadRequest, "cannot delete directory without recursive flag")
			return
		}
		if t.isBase(res.host) {
			// The sandbox root or a mount point: empty it, keep the directory.
			err = removeContents(res.host)
		} else {
			err = os.RemoveAll(res.host)
		}
	} else {
		err = os.Remove(res.host)
	}
	if err != nil {
		fsError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleMove(w http.ResponseWriter, r *http.Request, t *tbSandbox) {
	q := r.URL.Query()
	src, dst := q.Get("source"), q.Get("destination")
	if src == "" || dst == "" {
		writeToolboxError(w, r, http.StatusBadRequest, "source and destination paths are required")
		return
	}
	rs, err := t.resolve(src, false)
	if err != nil {
		fsError(w, r, err)
		return
	}
	rd, err := t.resolve(dst, false)
	if err != nil {
		fsError(w, r, err)
		return
	}
	if _, err := os.Lstat(rs.host); err != nil {
		fsError(w, r, err)
		return
	}
	if t.isBase(rs.host) {
		writeToolboxError(w, r, http.StatusBadRequest, "cannot move the sandbox root or a mount point")
		return
	}
	if _, err := os.Stat(filepath.Dir(rd.host)); err != nil {
		fsError(w, r, err)
		return
	}
	if _, err := os.Lstat(rd.host); err == nil {
		writeToolboxError(w, r, http.StatusConflict, "destination already exists")
		return
	}
	if err := os.Rename(rs.host, rd.host); err != nil {
		// Across filesystems (or a FUSE volume): copy, then remove, like the daemon.
		if cerr := copyTree(rs.host, rd.host); cerr != nil {
			fsError(w, r, fmt.Errorf("move: %w", errors.Join(err, cerr)))
			return
		}
		if rerr := os.RemoveAll(rs.host); rerr != nil {
			writeJSON(w, http.StatusOK, map[string]string{
				"message": "file copied successfully but source could not be deleted",
				"error":   rerr.Error(),
			})
			return
		}
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Server) handleCreateFolder(w http.ResponseWriter, r *http.Request, t *tbSandbox) {
	q := r.URL.Query()
	p := q.Get("path")
	if p == "" {
		writeToolboxError(w, r, http.StatusBadRequest, "path is required")
		return
	}
	mode := os.FileMode(0o755)
	if m := q.Get("mode"); m != "" {
		v, err := strconv.ParseUint(m, 8, 32)
		if err != nil {
			writeToolboxError(w, r, http.StatusBadRequest, "invalid mode format")
			return
		}
		mode = os.FileMode(v)
	}
	res, err := t.resolve(p, true)
	if err != nil {
		fsError(w, r, err)
		return
	}
	if err := os.MkdirAll(res.host, mode); err != nil {
		fsError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusCreated)
}

func (s *Server) handleHomeDir(w http.ResponseWriter, r *http.Request, _ *tbSandbox) {
	writeJSON(w, http.StatusOK, map[string]string{"dir": homeDir})
}

// walk visits every entry under a sandbox directory in the sandbox's view
// (entering mounted volumes, never following symlinks).
func (t *tbSandbox) walk(dir string, fn func(sandboxPath, hostPath string, d fs.DirEntry) error) error {
	res, err := t.resolve(dir, true)
	if err != nil {
		return err
	}
	entries, err := os.ReadDir(res.host)
	if err != nil {
		return err
	}
	for _, e := range entries {
		sp := path.Join(dir, e.Name())
		hp := t.mapPath(path.Join(res.sandbox, e.Name()))
		if err := fn(sp, hp, e); err != nil {
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
		writeToolboxError(w, r, http.StatusBadRequest, "path and pattern are required")
		return
	}
	if _, err := path.Match(pattern, ""); err != nil {
		writeToolboxError(w, r, http.StatusBadRequest, "invalid pattern")
		return
	}
	files := []string{}
	if ok, _ := path.Match(pattern, path.Base(dir)); ok {
		files = append(files, dir)
	}
	err := t.walk(dir, func(sp, _ string, d fs.DirEntry) error {
		if ok, _ := path.Match(pattern, d.Name()); ok {
			files = append(files, sp)
		}
		return nil
	})
	if err != nil {
		fsError(w, r, err)
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
		writeToolboxError(w, r, http.StatusBadRequest, "path and pattern are required")
		return
	}
	matches := []matchDTO{}
	err := t.walk(dir, func(sp, hp string, d fs.DirEntry) error {
		if !d.Type().IsRegular() {
			return nil
		}
		f, err := os.Open(hp)
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
		fsError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, matches)
}
