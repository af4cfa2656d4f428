package emulator

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path"
	"sort"
	"strings"
	"time"
)

// homeDir is the daemon's home and working directory in every sandbox.
const homeDir = "/home/daytona"

// hostMount is a volume mount of the sandbox being served.
type hostMount struct {
	path string   // sandbox path, cleaned
	dir  string   // host directory (volume dir plus subpath)
	fs   *os.Root // dir, opened for the request
}

// tbSandbox is a request-scoped view of a started sandbox for toolbox handlers.
//
// Every host-side file operation goes through fs or a mount's fs (os.Root:
// openat2 RESOLVE_BENEATH, or an O_NOFOLLOW walk where that is missing), so a
// sandbox that swaps a directory for a symlink between the emulator's check
// and its use still cannot make the emulator read or write outside the
// sandbox root or its volumes.
type tbSandbox struct {
	id      string
	rootDir string      // host root directory
	fs      *os.Root    // rootDir, opened for the request
	mounts  []hostMount // longest mount path first
	env     map[string]string
}

// close releases the directory handles opened for one request.
func (t *tbSandbox) close() {
	if t.fs != nil {
		_ = t.fs.Close()
	}
	for _, m := range t.mounts {
		if m.fs != nil {
			_ = m.fs.Close()
		}
	}
}

// toolbox wraps a toolbox handler: the sandbox must exist (404) and run
// (400, like the runner's "no IP address found"), and the request counts as
// activity (as the proxy counts it, see proxyActivityLocked) unless
// X-Daytona-Skip-Last-Activity-Update is true. These answers come from
// Daytona's proxy, which writes JSON errors; the daemon's own file errors are
// empty (see fileError).
func (s *Server) toolbox(h func(http.ResponseWriter, *http.Request, *tbSandbox)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("sandboxId")
		s.mu.Lock()
		sb, ok := s.sandboxes[id]
		if !ok || sb.State == stDestroyed {
			s.mu.Unlock()
			writeToolboxError(w, r, http.StatusNotFound, "sandbox not found: "+id)
			return
		}
		if !running(sb) || sb.DesiredState == stDestroyed {
			s.mu.Unlock()
			writeToolboxError(w, r, http.StatusBadRequest, "bad request: failed to get runner info: no IP address found. Is the Sandbox started?")
			return
		}
		if !strings.EqualFold(r.Header.Get("X-Daytona-Skip-Last-Activity-Update"), "true") {
			s.proxyActivityLocked(sb.ID, time.Now().UTC())
		}
		t := &tbSandbox{id: id, rootDir: s.sandboxRoot(id), env: copyMap(sb.Env)}
		for _, m := range sb.Volumes {
			t.mounts = append(t.mounts, hostMount{path: path.Clean(m.MountPath), dir: s.volumeHostDir(m)})
		}
		s.mu.Unlock()

		defer t.close()
		if err := t.open(); err != nil {
			s.log.Error("open sandbox directories", "sandbox", id, "err", err)
			writeToolboxError(w, r, http.StatusInternalServerError, "sandbox filesystem unavailable")
			return
		}
		h(w, r, t)
	}
}

// open opens the sandbox root and every mounted volume directory.
func (t *tbSandbox) open() error {
	var err error
	if t.fs, err = os.OpenRoot(t.rootDir); err != nil {
		return fmt.Errorf("open sandbox root: %w", err)
	}
	for i := range t.mounts {
		if err := os.MkdirAll(t.mounts[i].dir, 0o777); err != nil {
			return fmt.Errorf("create volume directory: %w", err)
		}
		if t.mounts[i].fs, err = os.OpenRoot(t.mounts[i].dir); err != nil {
			return fmt.Errorf("open volume directory: %w", err)
		}
	}
	sort.Slice(t.mounts, func(i, j int) bool { return len(t.mounts[i].path) > len(t.mounts[j].path) })
	return nil
}

// locate maps a clean absolute sandbox path to the directory tree holding it
// (longest mount prefix, else the sandbox root) and the path inside it.
func (t *tbSandbox) locate(p string) (*os.Root, string) {
	for _, m := range t.mounts {
		if p == m.path || strings.HasPrefix(p, m.path+"/") {
			return m.fs, relPath(strings.TrimPrefix(p, m.path))
		}
	}
	return t.fs, relPath(p)
}

// relPath turns "/a/b" (or "") into the os.Root name "a/b" (or ".").
func relPath(p string) string {
	p = strings.TrimPrefix(p, "/")
	if p == "" {
		return "."
	}
	return p
}

var (
	errBadPath     = errors.New("invalid path")
	errSymlinkLoop = errors.New("too many levels of symbolic links")
)

// resolved is a toolbox path resolved in the sandbox's namespace.
type resolved struct {
	sandbox string   // absolute, clean sandbox path after symlink resolution
	fs      *os.Root // the sandbox root or the volume holding it
	rel     string   // the path inside fs ("." is fs itself)
}

// isBase reports whether the path is the sandbox root or a mount point.
func (r resolved) isBase() bool { return r.rel == "." }

func (r resolved) stat() (os.FileInfo, error)  { return r.fs.Stat(r.rel) }
func (r resolved) lstat() (os.FileInfo, error) { return r.fs.Lstat(r.rel) }
func (r resolved) open() (*os.File, error)     { return r.fs.Open(r.rel) }

// resolve maps a sandbox path (absolute, or relative to /home/daytona) to the
// tree holding it. Symlinks are resolved in the sandbox's namespace (an
// absolute target means the sandbox's "/", and ".." stops at its root), like
// the daemon sees them from inside the container. With followFinal false the
// last component is not followed (delete and move act on the link). The
// result names no symlink; should one appear before it is used, os.Root
// still keeps the operation inside the tree.
func (t *tbSandbox) resolve(p string, followFinal bool) (resolved, error) {
	if strings.ContainsRune(p, 0) {
		return resolved{}, errBadPath
	}
	if p == "" {
		p = "."
	}
	if !path.IsAbs(p) {
		p = path.Join(homeDir, p)
	}
	comps := splitPath(path.Clean(p))
	cur := "/"
	hops := 0
	for i := 0; i < len(comps); i++ {
		next := path.Join(cur, comps[i])
		if i == len(comps)-1 && !followFinal {
			cur = next
			break
		}
		fsys, rel := t.locate(next)
		fi, err := fsys.Lstat(rel)
		if err != nil {
			cur = path.Join(append([]string{next}, comps[i+1:]...)...)
			break
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			cur = next
			continue
		}
		if hops++; hops > 40 {
			return resolved{}, errSymlinkLoop
		}
		target, err := fsys.Readlink(rel)
		if err != nil {
			return resolved{}, errBadPath
		}
		if !path.IsAbs(target) {
			target = path.Join(cur, target)
		}
		comps = splitPath(path.Clean(path.Join(append([]string{target}, comps[i+1:]...)...)))
		cur = "/"
		i = -1
	}
	fsys, rel := t.locate(cur)
	return resolved{sandbox: cur, fs: fsys, rel: rel}, nil
}

func splitPath(p string) []string {
	var out []string
	for _, c := range strings.Split(p, "/") {
		if c != "" {
			out = append(out, c)
		}
	}
	return out
}

// pathErrStatus maps a resolution or filesystem error to the daemon's status.
func pathErrStatus(err error) int {
	switch {
	case errors.Is(err, errBadPath), errors.Is(err, errSymlinkLoop):
		return http.StatusBadRequest
	case errors.Is(err, os.ErrNotExist):
		return http.StatusNotFound
	case errors.Is(err, os.ErrPermission):
		return http.StatusForbidden
	case errors.Is(err, os.ErrExist):
		return http.StatusConflict
	}
	return http.StatusBadRequest
}

// pathParam resolves a files request's required `path` query parameter,
// answering the error itself (400 when missing, the file-system status when
// it cannot be resolved); ok is false when it did.
func (t *tbSandbox) pathParam(w http.ResponseWriter, r *http.Request, followFinal bool) (res resolved, ok bool) {
	p := r.URL.Query().Get("path")
	if p == "" {
		fileError(w, http.StatusBadRequest)
		return resolved{}, false
	}
	res, err := t.resolve(p, followFinal)
	if err != nil {
		fileError(w, pathErrStatus(err))
		return resolved{}, false
	}
	return res, true
}
