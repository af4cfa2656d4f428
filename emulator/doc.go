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
// # Lifecycle facts of Daytona's API server (v0.190.0)
//
// Read from apps/api/src (sandbox.service.ts, sandbox-activity.service.ts,
// volume.service.ts, snapshot.manager.ts, the DTOs) and kept here because a
// client can pass every test against a simpler emulator and still misbehave
// on Daytona:
//
//   - Errors: a running sandbox can go to state error (desiredState
//     unchanged), recoverable or not; recover (POST /sandbox/{id}/recover,
//     ?skipStart) repairs a recoverable one into stopped and starts it like
//     POST start. Start and stop of an errored sandbox answer 400; delete works.
//     BreakSandbox and Faults.SandboxErrorRate produce such errors.
//   - Archived: a start keeps the sandbox archived, desiredState started, for
//     Options.RestoreDelay (Daytona: a runner is picked and the backup
//     checked, minutes); a second start meanwhile is 409; the list shows it
//     restoring. An archiving (stopped, desired archived) may be interrupted by
//     a start or a delete. A deleted archived sandbox shows archived until gone.
//   - Limits (limits.go): the organisation's CPU, memory and disk totals are
//     checked on create, start and recover (400 "Total CPU limit exceeded.
//     Maximum allowed: N." with Daytona's tier hint); stopped sandboxes count
//     toward disk; suspension is 403 first; at most 100 volumes (400 "Volume
//     quota exceeded", checked before the name).
//   - Snapshots unused (no sandbox created from them) for SnapshotIdleLimit
//     become inactive at the next sweep (every 10 minutes of TimeUnit); a
//     create from one is 400 "Snapshot X is inactive"; activation does not
//     restart the idle clock.
//   - Activity (activity.go): keep-alives are throttled and flushed, toolbox
//     traffic counts at most once per 45 s, plain API calls never; GET, lists
//     and the auto-stop check see only the flushed value.
//   - GET /sandbox pages by cursor (default 100, at most 200), in
//     lastActivityAt order, newest first, unless sort/order say otherwise; a
//     cursor belongs to the order it was made for.
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
