// Package clientpath is the one place where paths sent by clients become
// sandbox paths. Every route that takes a path (thread files, /v1/files,
// WebDAV request and Destination paths, tus metadata) goes through Thread or
// Volume, and anything that would leave the area the route serves — ".."
// climbing above it (also percent-encoded), NUL bytes, over-long names — is
// refused with an *Error before anything is touched.
package clientpath

import (
	"errors"
	"net/url"
	"strings"

	"github.com/threadbox/threadbox/entity"
)

// Limits on client paths. They match Linux's NAME_MAX and PATH_MAX, so a path
// we accept is one the sandbox can represent.
const (
	MaxPathBytes = 4096
	MaxNameBytes = 255
)

// ErrInvalid marks every refusal (errors.Is); *Error says why.
var ErrInvalid = errors.New("invalid path")

// Error is a refused client path. Its Reason is safe to show the client.
type Error struct{ Reason string }

func (e *Error) Error() string { return "invalid path: " + e.Reason }

// Unwrap lets errors.Is(err, ErrInvalid) match.
func (e *Error) Unwrap() error { return ErrInvalid }

func invalid(reason string) *Error { return &Error{Reason: reason} }

// Under confines p to root, chroot style: p, absolute or relative, is read as
// a path inside root ("/a/b" and "a/b" both mean root+"/a/b"), and the
// cleaned absolute path is returned ("." and empty components dropped, never
// a trailing slash; root itself for "/" and "."). A ".." is resolved only
// while it stays inside root.
func Under(root, p string) (string, error) {
	if p == "" {
		return "", invalid("path is required")
	}
	if strings.IndexByte(p, 0) >= 0 {
		return "", invalid("path contains a NUL byte")
	}
	if len(p) > MaxPathBytes {
		return "", invalid("path is longer than 4096 bytes")
	}
	root = "/" + strings.Trim(root, "/")
	var stack []string
	for seg := range strings.SplitSeq(p, "/") {
		switch seg {
		case "", ".":
			continue
		case "..":
			if len(stack) == 0 {
				return "", invalid("path escapes " + root)
			}
			stack = stack[:len(stack)-1]
			continue
		}
		if len(seg) > MaxNameBytes {
			return "", invalid("a path component is longer than 255 bytes")
		}
		stack = append(stack, seg)
	}
	out := root
	if len(stack) > 0 {
		out = strings.TrimSuffix(root, "/") + "/" + strings.Join(stack, "/")
	}
	if len(out) > MaxPathBytes {
		return "", invalid("path is longer than 4096 bytes")
	}
	return out, nil
}

// Hidden names in a volume: the spool of a write in flight, and the file it
// replaces while its commit moves it aside. Listings hide them, the quota
// does not count them and sweeps remove them, so no client path may name
// them (in a volume route, or under the volume mount in a thread route).
const (
	SpoolPrefix = ".tbpart-"
	AsidePrefix = ".tbold-"
)

// Reserved reports whether a file name is one of the hidden names.
func Reserved(name string) bool {
	return strings.HasPrefix(name, SpoolPrefix) || strings.HasPrefix(name, AsidePrefix)
}

// refuseReserved refuses a clean absolute path with a hidden name in it.
func refuseReserved(p string) (string, error) {
	for seg := range strings.SplitSeq(p, "/") {
		if Reserved(seg) {
			return "", invalid("names starting with " + SpoolPrefix + " or " + AsidePrefix + " are reserved")
		}
	}
	return p, nil
}

// Thread resolves a path given to a thread route. The thread's sandbox is the
// caller's own, so an absolute path may name any file in it; a relative path
// is relative to the sandbox's home and may not climb out of it, which is
// what a traversal such as "../../etc/passwd" tries to do. Under the volume
// mount the volume's reserved names are refused.
func Thread(p string) (string, error) {
	root := entity.HomeDir
	if strings.HasPrefix(p, "/") {
		root = "/"
	}
	out, err := Under(root, p)
	if err != nil {
		return "", err
	}
	if rel, ok := InVolume(out); ok {
		if _, err := refuseReserved(rel); err != nil {
			return "", err
		}
	}
	return out, nil
}

// InVolume reports whether the thread sandbox path p is inside the volume
// mount (not the mount itself), and returns it as a volume path.
func InVolume(p string) (string, bool) {
	rel, ok := strings.CutPrefix(p, entity.VolumeMountPath+"/")
	if !ok {
		return "", false
	}
	return "/" + rel, true
}

// Volume resolves a path given to a volume route (/v1/files, WebDAV, tus)
// into the canonical volume path: "/" is the volume root, "/a/b" a path in
// it. A path that still spells ".." once percent-decoded ("%2e%2e",
// "..%2f") is refused when that ".." would climb out: nothing decodes it
// later, but a client sending it is attempting traversal through some layer
// that might.
//
// The volume's reserved names (SpoolPrefix, AsidePrefix) are refused.
func Volume(p string) (string, error) {
	if u, err := url.PathUnescape(p); err == nil && u != p {
		if _, err := Under("/", u); err != nil {
			return "", invalid("encoded traversal in path")
		}
	}
	out, err := Under("/", p)
	if err != nil {
		return "", err
	}
	return refuseReserved(out)
}

// Protected reports whether a thread sandbox path may not be deleted, moved
// or replaced: the root, an ancestor of the sandbox's home, the home itself,
// and the volume mount and its ancestors. On Daytona a recursive delete runs
// inside the sandbox, where the user's volume (shared by all their threads)
// is mounted, so removing any of these would wipe the whole volume.
func Protected(p string) bool {
	return p == entity.VolumeMountPath || IsAncestor(p, entity.VolumeMountPath) || p == entity.HomeDir
}

// IsAncestor reports whether dir is a proper ancestor of p (both clean and
// absolute).
func IsAncestor(dir, p string) bool {
	if dir == "/" {
		return p != "/"
	}
	return strings.HasPrefix(p, dir+"/")
}
