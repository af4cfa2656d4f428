// Package dav serves a user's volume over WebDAV (golang.org/x/net/webdav is
// the protocol engine) and gives the REST files API and tus uploads the same
// primitives. Everything here works on a Toolbox: the narrow slice of the
// Daytona toolbox API that files need, so the files sandbox is the only thing
// that ever touches the volume, and unit tests can run the engine over a local
// directory.
//
// The pieces, one per file:
//   - paths.go: client paths → volume paths; traversal is rejected, never cleaned away.
//   - volume.go: Volume, the quota-aware, atomic write/delete/move primitives.
//   - fs.go, file*.go, statcache.go: webdav.FileSystem over a Volume with a
//     request-scoped stat cache, lazy ranged reads and streamed writes.
//   - props*.go: dead properties in PostgreSQL, plus RFC 4331 quota properties.
//   - lock.go, locks.go, ifheader.go: LOCK, the engine's lock system over
//     the lock table every replica shares (package davlock), the If header.
//   - handler.go: the wrapper that fixes the engine's known bugs.
//   - quota.go: volume usage accounting.
package dav
