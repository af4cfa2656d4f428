package emulator

import (
	"errors"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// homeDir is the daemon's home and working directory in every sandbox.
const homeDir = "/home/daytona"

// hostMount is a volume mount as seen from the host.
type hostMount struct {
	path string // sandbox path, cleaned
	dir  string // host directory (volume dir plus subpath), symlink-free
}

// tbSandbox is a request-scoped view of a started sandbox for toolbox handlers.
type tbSandbox struct {
	id     string
	root   string      // host root directory, symlink-free
	mounts []hostMount // longest mount path first
	env    map[string]string
}

// toolbox wraps a toolbox handler: the sandbox must exist (404) and run
// (400, like the runner's "no IP address found"), and the request counts as
// activity (as the proxy counts it, see proxyActivityLocked) unless
// X-Daytona-Skip-Last-Activity-Update is true.
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
		t := &tbSandbox{id: id, root: s.sandboxRoot(id), env: copyMap(sb.Env)}
		for _, m := range sb.Volumes {
			t.mounts = append(t.mounts, hostMount{path: path.Clean(m.MountPath), dir: s.volumeHostDir(m)})
		}
		s.mu.Unlock()

		var err error
		if t.root, err = filepath.EvalSymlinks(t.root); err != nil {
			writeToolboxError(w, r, http.StatusInternalServerError, "sandbox root unavailable")
			return
		}
		for i := range t.mounts {
			if err := os.MkdirAll(t.mounts[i].dir, 0o777); err != nil {
				writeToolboxError(w, r, http.StatusInternalServerError, "volume unavailable")
				return
			}
			if t.mounts[i].dir, err = filepath.EvalSymlinks(t.mounts[i].dir); err != nil {
				writeToolboxError(w, r, http.StatusInternalServerError, "volume unavailable")
				return
			}
		}
		sort.Slice(t.mounts, func(i, j int) bool { return len(t.mounts[i].path) > len(t.mounts[j].path) })
		h(w, r, t)
	}
}

// mapPath maps a clean absolute sandbox path to its host path by longest
// prefix over the mounts, else under the root. No symlinks are followed.
func (t *tbSandbox) mapPath(p string) string {
	for _, m := range t.mounts {
		if p == m.path || strings.HasPrefix(p, m.path+"/") {
			return filepath.Join(m.dir, filepath.FromSlash(strings.TrimPrefix(p, m.path)))
		}
	}
	return filepath.Join(t.root, filepath.FromSlash(p))
}

// isBase reports whether host is the sandbox root or a mount's directory.
func (t *tbSandbox) isBase(host string) bool {
	if host == t.root {
		return true
	}
	for _, m := range t.mounts {
		if host == m.dir {
			return true
		}
	}
	return false
}

// contained reports whether host lies inside the root or a mounted volume.
func (t *tbSandbox) contained(host string) bool {
	within := func(base string) bool {
		return host == base || strings.HasPrefix(host, base+string(filepath.Separator))
	}
	if within(t.root) {
		return true
	}
	for _, m := range t.mounts {
		if within(m.dir) {
			return true
		}
	}
	return false
}

var (
	errBadPath     = errors.New("invalid path")
	errOutsideTree = errors.New("path resolves outside the sandbox")
	errSymlinkLoop = errors.New("too many levels of symbolic links")
)

// resolved is a toolbox path mapped to the host.
type resolved struct {
	sandbox string // absolute, clean sandbox path after symlink resolution
	host    string
}

// resolve maps a sandbox path (absolute, or relative to /home/daytona) to a
// host path. Symlinks are resolved in the sandbox's namespace (an absolute
// target means the sandbox's "/", and ".." stops at its root), so a link can
// never lead outside the sandbox tree or its volumes. With followFinal false
// the last component is not followed (delete and move act on the link).
// As a last line of defence the resulting host path is re-checked with the
// host's own symlink resolution.
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
		fi, err := os.Lstat(t.mapPath(next))
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
		target, err := os.Readlink(t.mapPath(next))
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
	host := t.mapPath(cur)
	if !t.contained(host) {
		return resolved{}, errOutsideTree
	}
	// Defence in depth: what the host kernel would open must stay inside too.
	check := host
	if !followFinal {
		check = filepath.Dir(host)
	}
	if real, err := evalExisting(check); err == nil && !t.contained(real) {
		return resolved{}, errOutsideTree
	}
	return resolved{sandbox: cur, host: host}, nil
}

// evalExisting resolves symlinks of the longest existing prefix of p.
func evalExisting(p string) (string, error) {
	rest := ""
	for {
		real, err := filepath.EvalSymlinks(p)
		if err == nil {
			return filepath.Join(real, rest), nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(p)
		if parent == p {
			return "", err
		}
		rest = filepath.Join(filepath.Base(p), rest)
		p = parent
	}
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
	case errors.Is(err, errOutsideTree):
		return http.StatusForbidden
	case errors.Is(err, errBadPath), errors.Is(err, errSymlinkLoop):
		return http.StatusBadRequest
	case errors.Is(err, os.ErrNotExist):
		return http.StatusNotFound
	case errors.Is(err, os.ErrPermission):
		return http.StatusForbidden
	}
	return http.StatusBadRequest
}

// pathParam resolves a toolbox request's required `path` query parameter,
// answering the error itself (400 when missing, the file-system status when
// it cannot be resolved); ok is false when it did.
func (t *tbSandbox) pathParam(w http.ResponseWriter, r *http.Request, followFinal bool) (res resolved, ok bool) {
	p := r.URL.Query().Get("path")
	if p == "" {
		writeToolboxError(w, r, http.StatusBadRequest, "path is required")
		return resolved{}, false
	}
	res, err := t.resolve(p, followFinal)
	if err != nil {
		fsError(w, r, err)
		return resolved{}, false
	}
	return res, true
}
