package emulator

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"time"
)

// The user sandbox commands run as, like Daytona's default image (USER
// daytona). Inside the namespace it is uid/gid 1000 without capabilities;
// outside it is the uid running the emulator, so the files it writes belong
// to the emulator and the emulator's own files (home, volumes) are its own.
const (
	sandboxUser = "daytona"
	sandboxUID  = 1000
	sandboxGID  = 1000
	// foreignOwner owns, on the host, the sandbox directories the user must
	// not write ("/", /home, /run) when the emulator runs as root. No account
	// has this uid, and inside the namespace it is unmapped (shown as
	// nobody), so the daytona user can neither write there nor chmod them,
	// like root-owned directories in a Daytona sandbox.
	foreignOwner = 2147483646
)

// errNoBwrap explains how to get sandboxed commands, or how to run without.
var errNoBwrap = errors.New("emulator: bubblewrap (bwrap) is required to run sandbox commands " +
	"in their own namespaces; install it (Debian/Ubuntu: sudo apt-get install -y bubblewrap), " +
	"or set EMULATOR_UNSAFE_HOST_EXEC=1 to run agent commands directly on this host, unconfined, as you")

// UnsafeHostExecFromEnv reads EMULATOR_UNSAFE_HOST_EXEC (1/true opts in to
// running sandbox commands on the host without isolation).
func UnsafeHostExecFromEnv(getenv func(string) string) (bool, error) {
	v := getenv("EMULATOR_UNSAFE_HOST_EXEC")
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("EMULATOR_UNSAFE_HOST_EXEC=%q: %w", v, err)
	}
	return b, nil
}

// detectBwrap finds a bubblewrap that can build the namespaces sandboxes run
// in (bwrap may be installed yet unusable, e.g. without user namespaces in a
// container), so it is probed with the flags the runtimes use.
func detectBwrap(ctx context.Context) (string, error) {
	p, err := exec.LookPath("bwrap")
	if err != nil {
		return "", errNoBwrap
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	args := append(namespaceFlags("probe"), "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev",
		"--", "/bin/sh", "-c", `[ "$(id -u)" = 1000 ] && command -v setsid >/dev/null`)
	cmd := exec.CommandContext(pctx, p, args...)
	cmd.Env = []string{}
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%w (probe of %s failed: %v: %s)", errNoBwrap, p, err, out)
	}
	return p, nil
}

// namespaceFlags are the namespaces of a sandbox: its own user (uid 1000,
// no capabilities), processes, network (only its own loopback: host
// services on 127.0.0.1 are unreachable, and there is no outbound network),
// IPC and host name. The environment starts empty.
func namespaceFlags(hostname string) []string {
	return []string{
		"--die-with-parent", "--clearenv",
		"--unshare-user", "--uid", strconv.Itoa(sandboxUID), "--gid", strconv.Itoa(sandboxGID),
		"--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
		"--hostname", hostname,
	}
}

// hostSystemDirs are bound read-only into every sandbox namespace.
func hostSystemDirs() []string {
	return []string{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc"}
}

// hostSecrets are host files hidden behind an empty file: the namespace's
// uid maps to the emulator's, so when that is root they would be readable.
func hostSecrets() []string {
	return []string{"/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-", "/etc/sudoers"}
}

// identityFiles writes the passwd and group files bound over the host's in
// every namespace, so that uid 1000 is "daytona" with home /home/daytona.
func identityFiles(dir string) error {
	files := map[string]string{
		"passwd": "root:x:0:0:root:/root:/bin/bash\n" +
			sandboxUser + ":x:1000:1000:" + sandboxUser + ":" + homeDir + ":/bin/bash\n" +
			"nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
		"group": "root:x:0:\n" + sandboxUser + ":x:1000:\nnogroup:x:65534:\n",
		"empty": "",
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	return nil
}

// prepareRoot makes the sandbox root ready to be "/" of a namespace: the
// mount points exist as directories (bwrap cannot create them where the user
// may not write, and a symlink planted there is replaced), /bin, /lib... are
// the host's symlinks, and, when the emulator runs as root, "/", /home and
// /run belong to an unmapped uid so the daytona user cannot write there. Everything
// goes through the root's handle. It returns the binds for host system
// directories whose name the sandbox already uses for something else.
func prepareRoot(root *os.Root, mounts []string) ([]string, error) {
	dirs := append([]string{"/proc", "/dev", "/usr", "/etc", "/tmp", runMount, homeDir}, mounts...)
	for _, d := range dirs {
		rel := relPath(d)
		if fi, err := root.Lstat(rel); err == nil && fi.Mode()&os.ModeSymlink != 0 {
			if err := root.Remove(rel); err != nil {
				return nil, fmt.Errorf("remove link at mount point %s: %w", d, err)
			}
		}
		if err := root.MkdirAll(rel, 0o755); err != nil {
			return nil, fmt.Errorf("create mount point %s: %w", d, err)
		}
	}
	var binds []string
	for _, d := range hostSystemDirs() {
		fi, err := os.Lstat(d)
		if err != nil || fi.Mode()&os.ModeSymlink == 0 {
			continue // absent, or a directory bound by bwrapArgs
		}
		target, err := os.Readlink(d)
		if err != nil {
			return nil, fmt.Errorf("read host link %s: %w", d, err)
		}
		rel := relPath(d)
		cur, err := root.Lstat(rel)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := root.Symlink(target, rel); err != nil && !errors.Is(err, fs.ErrExist) {
				return nil, fmt.Errorf("link %s: %w", d, err)
			}
		case err != nil:
			return nil, fmt.Errorf("stat %s: %w", d, err)
		case cur.Mode()&os.ModeSymlink != 0:
			if have, _ := root.Readlink(rel); have != target {
				_ = root.Remove(rel)
				if err := root.Symlink(target, rel); err != nil {
					return nil, fmt.Errorf("link %s: %w", d, err)
				}
			}
		case cur.IsDir():
			// The sandbox has its own directory there: bind the host's over it.
			if real, err := filepath.EvalSymlinks(d); err == nil {
				binds = append(binds, "--ro-bind", real, d)
			}
		}
	}
	if os.Geteuid() == 0 {
		for _, d := range []string{".", "home", "run"} {
			if err := root.Lchown(d, foreignOwner, foreignOwner); err != nil {
				return nil, fmt.Errorf("chown %s: %w", d, err)
			}
		}
	}
	return binds, nil
}

// bwrapArgs builds the namespace of one sandbox: its root is "/", the
// host's system directories are read-only on top (with passwd/group naming
// the daytona user and the host's secrets hidden), each volume is bound at
// its mount path, the runtime directory at /run/emulator, with a private
// /proc and /dev. Nothing else of the host (other sandboxes, the state
// directory, host /tmp or /home) is visible.
func bwrapArgs(rootDir, id, identDir, runDir string, mounts []hostMount, extraBinds []string, command ...string) []string {
	args := append(namespaceFlags("sandbox-"+shortID(id)), "--bind", rootDir, "/")
	for _, d := range hostSystemDirs() {
		if fi, err := os.Lstat(d); err == nil && fi.IsDir() {
			args = append(args, "--ro-bind", d, d)
		}
	}
	args = append(args, extraBinds...)
	args = append(args,
		"--ro-bind", filepath.Join(identDir, "passwd"), "/etc/passwd",
		"--ro-bind", filepath.Join(identDir, "group"), "/etc/group")
	for _, f := range hostSecrets() {
		if fi, err := os.Stat(f); err == nil && fi.Mode().IsRegular() {
			args = append(args, "--ro-bind", filepath.Join(identDir, "empty"), f)
		}
	}
	args = append(args, "--proc", "/proc", "--dev", "/dev", "--bind", runDir, runMount)
	// Shorter mount paths first so nested mounts land on top.
	for i := len(mounts) - 1; i >= 0; i-- {
		args = append(args, "--bind", mounts[i].dir, mounts[i].path)
	}
	args = append(args, "--setenv", "PATH", defaultPath, "--chdir", "/", "--")
	return append(args, command...)
}

// mountPaths lists the sandbox paths of the mounts (for prepareRoot).
func mountPaths(mounts []hostMount) []string {
	out := make([]string, 0, len(mounts))
	for _, m := range mounts {
		out = append(out, path.Clean(m.path))
	}
	return out
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}
