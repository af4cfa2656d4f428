package api

import (
	"strings"

	"github.com/threadbox/threadbox/entity"
)

// Limits on client-given sandbox paths. They match Linux's NAME_MAX and
// PATH_MAX so a path we accept is one the sandbox can represent; anything
// longer is refused before it reaches Daytona.
const (
	maxPathBytes      = 4096
	maxComponentBytes = 255
)

// errInvalidPath is the 400 every path check returns.
func errInvalidPath(msg string) *Error { return errBadRequest("invalid_path", msg) }

// cleanSandboxPath confines the client path p to root, chroot style: p,
// absolute or relative, is read as a path inside root ("/a/b" and "a/b" both
// mean root+"/a/b"), and the cleaned absolute sandbox path is returned. A
// ".." that would climb above root, a NUL byte, an empty path, a component
// over 255 bytes or a path over 4096 bytes is an invalid_path error: the
// request must be refused before anything is touched. "." and "" components
// are dropped; the result never ends in "/" (root itself is returned for "/"
// and ".").
//
// The volume-rooted routes (/v1/files, WebDAV) call it with the volume's
// mount path as root; thread routes use threadPath, which maps absolute and
// relative paths differently.
func cleanSandboxPath(p, root string) (string, error) {
	if p == "" {
		return "", errInvalidPath("path is required")
	}
	if strings.IndexByte(p, 0) >= 0 {
		return "", errInvalidPath("path contains a NUL byte")
	}
	if len(p) > maxPathBytes {
		return "", errInvalidPath("path is longer than 4096 bytes")
	}
	root = "/" + strings.Trim(root, "/")
	var stack []string
	for seg := range strings.SplitSeq(p, "/") {
		switch seg {
		case "", ".":
			continue
		case "..":
			if len(stack) == 0 {
				return "", errInvalidPath("path escapes " + root)
			}
			stack = stack[:len(stack)-1]
			continue
		}
		if len(seg) > maxComponentBytes {
			return "", errInvalidPath("a path component is longer than 255 bytes")
		}
		stack = append(stack, seg)
	}
	out := root
	if len(stack) > 0 {
		if root == "/" {
			out = "/" + strings.Join(stack, "/")
		} else {
			out = root + "/" + strings.Join(stack, "/")
		}
	}
	if len(out) > maxPathBytes {
		return "", errInvalidPath("path is longer than 4096 bytes")
	}
	return out, nil
}

// threadPath resolves a path given to a thread route. The thread's sandbox is
// the caller's own, so an absolute path may name any file in it; a relative
// path is relative to /home/daytona and may not climb out of it with "..",
// which is what a traversal such as "../../etc/passwd" tries to do.
func threadPath(p string) (string, error) {
	if strings.HasPrefix(p, "/") {
		return cleanSandboxPath(p, "/")
	}
	return cleanSandboxPath(p, entity.HomeDir)
}
