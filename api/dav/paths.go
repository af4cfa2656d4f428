package dav

import (
	"errors"
	"path"
	"strings"
)

// Limits on client paths; Linux's NAME_MAX and PATH_MAX.
const (
	maxNameLen = 255
	maxPathLen = 4096
)

// ErrBadPath marks a client path that would escape the volume or cannot be a
// file name. Callers answer 400 and touch nothing.
var ErrBadPath = errors.New("bad path")

// BadPathError says why a path was refused.
type BadPathError struct{ Reason string }

func (e *BadPathError) Error() string { return "bad path: " + e.Reason }

// Unwrap lets errors.Is(err, ErrBadPath) match.
func (e *BadPathError) Unwrap() error { return ErrBadPath }

// CleanPath turns a client path (relative to the volume root, with or without
// a leading slash, already URL-decoded) into the canonical volume path "/a/b"
// ("/" is the root). A ".." segment is refused rather than cleaned away, so
// "a/../../etc" is an error and not a silently different file; NUL bytes and
// over-long names are refused too.
func CleanPath(p string) (string, error) {
	if strings.ContainsRune(p, 0) {
		return "", &BadPathError{Reason: "NUL byte in path"}
	}
	if len(p) > maxPathLen {
		return "", &BadPathError{Reason: "path too long"}
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." {
			return "", &BadPathError{Reason: `".." is not allowed in paths`}
		}
		if len(seg) > maxNameLen {
			return "", &BadPathError{Reason: "path segment too long"}
		}
	}
	return path.Clean("/" + p), nil
}

// join maps a canonical volume path onto the sandbox path under root.
func join(root, name string) string {
	if name == "/" || name == "" {
		return root
	}
	return root + name
}

// isPartName reports whether a directory entry is one of our in-flight write
// spools (see Volume.Put), which listings hide.
func isPartName(name string) bool { return strings.HasPrefix(name, partPrefix) }
