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
//     create from one is 400 "Snapshot X is inactive"; an activation counts
//     as a use (Daytona's activateSnapshot sets lastUsedAt), so a re-activated
//     snapshot has the whole idle limit before the next deactivation.
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
// its subpath) at its mount path. Toolbox paths are mapped by longest-prefix
// match over the mounts, else under the sandbox root, and symlinks are
// resolved in the sandbox's own namespace (an absolute target means the
// sandbox's "/"). Every host-side operation then goes through an os.Root
// handle of the sandbox root or of the volume (openat2 RESOLVE_BENEATH, or an
// O_NOFOLLOW walk), moves through renameat2 on directory handles: a process
// in the sandbox that swaps a checked directory for a symlink cannot make the
// emulator read, write, list, move or delete anything outside.
//
// # The daemon: commands, sessions and isolation
//
// A started sandbox is one bubblewrap namespace (user, pid, network, IPC, UTS,
// mount), created on its first command and killed with everything in it when
// the sandbox stops or is deleted, like a container. "/" is the sandbox root;
// the host's /usr, /bin, /lib* and /etc are bound read-only on top (with a
// passwd naming uid 1000 "daytona" and the host's shadow files hidden), every
// volume at its mount path; other sandboxes, the state directory and the
// host's /tmp and /home are not there. Processes run as uid 1000 "daytona"
// (HOME=/home/daytona) without capabilities; outside the namespace that uid
// is the emulator's, so home, uploads and volumes stay writable for it, and
// when the emulator runs as root "/", /home and /run belong to an unmapped
// uid so the user cannot write there. The network namespace has only its own
// loopback: nothing listening on the host (the emulator, PostgreSQL,
// Temporal) is reachable, and there is no outbound network (Daytona allows
// it by default; no test of threadbox needs it, and a user-mode network such
// as slirp4netns would be the way to add it).
//
// The namespace's first process is a shell spawner (runtime.go) reading a
// control FIFO; every execute and every session shell is a job it starts in
// a session of its own, so processes of one sandbox see each other, and, as
// measured on the v0.190.0 daemon (shared/notes/daytona-daemon-facts.md),
// background jobs outlive the execute call, a client that hangs up does not
// stop the command, a background job that keeps stdout open keeps the call
// open, and only the execute timeout (408) kills the command's process group.
// Sessions (/process/session) follow the daemon's design: one bash per
// session fed command wrappers on its stdin, logs with per-line stream
// markers under ~/.daytona/sessions, follow=true streamed over a WebSocket;
// the daemon's format for the client's X-Daytona-SDK-Version (stdout and
// stderr apart and JSON logs for current SDKs).
//
// Without bubblewrap New fails with the command that installs it, unless
// Options.UnsafeHostExec (EMULATOR_UNSAFE_HOST_EXEC=1): then the spawner runs
// on the host, as the emulator's user, with working directory and HOME
// mapped into the sandbox directory, and nothing is confined.
//
// The toolbox's file operations run as the emulator's user, not as daytona
// (Daytona's daemon runs as the sandbox user): writing through the file API
// where daytona may not (e.g. "/") works here and is refused on Daytona.
//
// # Daemon answers
//
// The daemon's /files errors are the status alone (Content-Length 0, no
// content type, no message); HEAD, unknown routes and wrong methods are
// gin's "404 page not found" in text/plain; GET /files/ lists like /files;
// modifiedAt keeps nanoseconds; execute and session errors are common-go's
// ErrorResponse whose message starts with the status in words ("bad request:
// ...", "request timeout: ..."); a missing cwd is a 200 with exitCode -1 and
// exec's "fork/exec /usr/bin/bash: ..."; bulk-upload item errors name
// sandbox paths only.
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
