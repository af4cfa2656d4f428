package emulator

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// detectIsolation finds a working bubblewrap for IsolationAuto/IsolationBwrap.
// bwrap may be installed yet unusable (no user namespaces in a container),
// so it is probed with a trivial command.
func detectIsolation(ctx context.Context, mode Isolation) (string, error) {
	switch mode {
	case IsolationNone:
		return "", nil
	case IsolationAuto, IsolationBwrap:
	default:
		return "", fmt.Errorf("emulator: unknown isolation mode %q (want auto, bwrap or none)", mode)
	}
	p, err := exec.LookPath("bwrap")
	if err == nil {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		out, perr := exec.CommandContext(pctx, p, "--die-with-parent", "--unshare-pid",
			"--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "true").CombinedOutput()
		if perr != nil {
			err = fmt.Errorf("bwrap probe: %w: %s", perr, out)
		}
	}
	if err != nil {
		if mode == IsolationBwrap {
			return "", fmt.Errorf("emulator: bubblewrap isolation unavailable: %w", err)
		}
		return "", nil
	}
	return p, nil
}

// hostSystemDirs are bound read-only into every command namespace.
func hostSystemDirs() []string {
	return []string{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc"}
}

// bwrapArgs builds the namespace for one command: the sandbox root is "/",
// the host's system directories are read-only on top, each volume is bound
// at its mount path, with a private /proc, /dev and PID namespace. Nothing
// else of the host (other sandboxes, the state directory, host /tmp or
// /home) is visible.
func bwrapArgs(t *tbSandbox, cwd string, shell string) []string {
	args := []string{
		"--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
		"--hostname", "sandbox-" + shortID(t.id),
		"--bind", t.root, "/",
	}
	for _, d := range hostSystemDirs() {
		fi, err := os.Lstat(d)
		if err != nil {
			continue
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			target, err := os.Readlink(d)
			if err != nil {
				continue
			}
			// Make the link in the sandbox root on the host before bwrap runs
			// (bwrap's --symlink fails when it exists, and concurrent commands
			// on a fresh sandbox would race to create it). The root is
			// persistent, so this happens once per sandbox.
			inRoot := filepath.Join(t.root, d)
			if err := os.Symlink(target, inRoot); err != nil && !errors.Is(err, fs.ErrExist) {
				continue
			}
			if cur, err := os.Readlink(inRoot); err == nil && cur == target {
				continue
			}
			// Something else occupies the name: bind the real directory over it.
			if real, err := filepath.EvalSymlinks(d); err == nil {
				args = append(args, "--ro-bind", real, d)
			}
			continue
		}
		if fi.IsDir() {
			args = append(args, "--ro-bind", d, d)
		}
	}
	args = append(args, "--proc", "/proc", "--dev", "/dev")
	// Shorter mount paths first so nested mounts land on top.
	for i := len(t.mounts) - 1; i >= 0; i-- {
		args = append(args, "--bind", t.mounts[i].dir, t.mounts[i].path)
	}
	return append(args, "--chdir", cwd, "--", shell, "-s")
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// pickShell prefers bash, then sh, like the daemon's /etc/shells lookup.
func pickShell() string {
	for _, sh := range []string{"/bin/bash", "/usr/bin/bash", "/bin/sh"} {
		if fi, err := os.Stat(sh); err == nil && !fi.IsDir() {
			return sh
		}
	}
	return "/bin/sh"
}

// hostHome maps /home/daytona for the non-isolated fallback.
func hostHome(t *tbSandbox) string { return filepath.Join(t.root, "home", "daytona") }
