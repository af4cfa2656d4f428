// Package emulator is a Daytona-compatible server (control plane under /api,
// toolbox under /toolbox/{sandboxId}) so that threadbox can be developed and
// tested without access to Daytona, which cannot run on our machines.
//
// It reproduces what threadbox relies on (see shared/notes/daytona-api.md):
// the sandbox state machine with derived DTO states (creating, starting,
// stopping, destroying), Daytona's JSON error bodies and status codes, the
// required keys of every generated model, volumes, snapshots, the
// auto-stop/auto-archive/auto-delete crons measured from lastActivityAt, and
// the toolbox file and process endpoints. Transitions take a short but real
// time so callers have to poll exactly like they do against Daytona.
//
// # Filesystem model
//
// Each sandbox is a directory (its root) containing /home/daytona and /tmp.
// Volumes are directories that outlive sandboxes; a sandbox sees a volume (or
// its subpath) at its mount path. Toolbox paths are mapped to host paths by
// longest-prefix match over the mounts, else under the sandbox root, and
// symlinks are resolved inside the sandbox's own namespace, so nothing ever
// resolves outside the sandbox tree or its volumes.
//
// # Commands and isolation
//
// process/execute pipes the command to a shell on stdin. When bubblewrap
// (bwrap) is usable, the shell runs in its own mount and PID namespace whose
// "/" is the sandbox root, with the host's /usr, /bin, /lib*, /sbin and /etc
// bound read-only on top and every volume bound at its mount path; another
// sandbox's root and the emulator's state directory are not visible. Without
// bwrap (or with IsolationNone) commands run on the host with their working
// directory mapped into the sandbox directory, and a warning is logged once.
// The host's /etc is what commands see even though the file API maps /etc
// into the sandbox root: a known difference, harmless for tests.
//
// # Range requests on downloads
//
// Daytona's daemon (apps/daemon/pkg/toolbox/fs/download_file.go) serves
// GET /files/download with gin's c.File(absPath), which is http.ServeFile
// and therefore http.ServeContent: HTTP Range requests (206, Content-Range,
// multi-range, If-Range) work on the daemon. The proxy in front of it is a
// reverse proxy that forwards request headers, so ranged reads are expected
// to work on real Daytona too, though this was only checked in the daemon
// source, not against a live deployment. The emulator serves downloads with
// http.ServeContent as well.
package emulator
