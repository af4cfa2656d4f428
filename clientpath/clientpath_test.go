package clientpath_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/threadbox/threadbox/clientpath"
)

func TestUnder(t *testing.T) {
	ok := []struct{ in, root, want string }{
		{"a/b", "/home/daytona/volume", "/home/daytona/volume/a/b"},
		{"/a/b", "/home/daytona/volume", "/home/daytona/volume/a/b"},
		{"a/../b/./c/", "/home/daytona/volume/", "/home/daytona/volume/b/c"},
		{"/", "/home/daytona/volume", "/home/daytona/volume"},
		{".", "/", "/"},
		{"/etc/passwd", "/", "/etc/passwd"},
	}
	for _, c := range ok {
		got, err := clientpath.Under(c.root, c.in)
		if err != nil || got != c.want {
			t.Errorf("Under(%q, %q) = %q, %v; want %q", c.root, c.in, got, err, c.want)
		}
	}
	bad := []struct{ in, root string }{
		{"", "/"},
		{"..", "/home/daytona/volume"},
		{"a/../../b", "/home/daytona/volume"},
		{"/../etc", "/"},
		{"a\x00b", "/"},
		{strings.Repeat("x", 256), "/"},
		{strings.Repeat("/ab", 1400), "/"},
	}
	for _, c := range bad {
		got, err := clientpath.Under(c.root, c.in)
		var pe *clientpath.Error
		if err == nil || !errors.As(err, &pe) || !errors.Is(err, clientpath.ErrInvalid) {
			t.Errorf("Under(%q, %q) = %q, %v; want a refusal", c.root, c.in, got, err)
		}
	}
}

func TestThread(t *testing.T) {
	for in, want := range map[string]string{
		"x":            "/home/daytona/x",
		"volume/../y":  "/home/daytona/y",
		"/tmp/a":       "/tmp/a",
		"/home/a/../b": "/home/b",
	} {
		if got, err := clientpath.Thread(in); err != nil || got != want {
			t.Errorf("Thread(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"../../etc/passwd", "../x", "a/../../x"} {
		if _, err := clientpath.Thread(in); err == nil {
			t.Errorf("Thread(%q) accepted a traversal", in)
		}
	}
}

func TestVolume(t *testing.T) {
	for in, want := range map[string]string{"": "", "/": "/", "a/b": "/a/b", "/a/./b/": "/a/b", "a/%2e%2e/b": "/a/%2e%2e/b"} {
		if in == "" {
			continue
		}
		if got, err := clientpath.Volume(in); err != nil || got != want {
			t.Errorf("Volume(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "..", "../x", "a/../../x", "%2e%2e/x", "..%2fx", "a/%2E%2E/%2e%2e/x", "x\x00"} {
		if got, err := clientpath.Volume(in); err == nil {
			t.Errorf("Volume(%q) = %q, want a refusal", in, got)
		}
	}
}

// Protected covers the volume mount, every ancestor of it (the sandbox's
// home, /home, /) — deleting any of them inside a Daytona sandbox would wipe
// the user's whole volume — and nothing else.
func TestProtected(t *testing.T) {
	for _, p := range []string{"/", "/home", "/home/daytona", "/home/daytona/volume"} {
		if !clientpath.Protected(p) {
			t.Errorf("Protected(%q) = false", p)
		}
	}
	for _, p := range []string{"/home/daytona/volume/a", "/home/daytona/x", "/tmp", "/home/other", "/home/daytona/volumes"} {
		if clientpath.Protected(p) {
			t.Errorf("Protected(%q) = true", p)
		}
	}
}

// The volume's hidden names (a write's spool, the file it replaces while it
// commits) cannot be named by a client: in a volume route anywhere, in a
// thread route under the volume mount.
func TestReservedNames(t *testing.T) {
	for _, in := range []string{".tbpart-x", "a/.tbpart-1-b", ".tbold-y", "d/.tbold-/e"} {
		if got, err := clientpath.Volume(in); err == nil {
			t.Errorf("Volume(%q) = %q, want a refusal", in, got)
		}
		if got, err := clientpath.Thread("/home/daytona/volume/" + in); err == nil {
			t.Errorf("Thread(volume/%q) = %q, want a refusal", in, got)
		}
		if got, err := clientpath.Thread("volume/" + in); err == nil {
			t.Errorf("Thread(relative volume/%q) = %q, want a refusal", in, got)
		}
	}
	for _, in := range []string{"tbpart-x", "a.tbpart-x", "x/.tbpar"} {
		if _, err := clientpath.Volume(in); err != nil {
			t.Errorf("Volume(%q) refused an ordinary name: %v", in, err)
		}
	}
	if _, err := clientpath.Thread("/tmp/.tbpart-x"); err != nil {
		t.Errorf("outside the volume a thread's names are its own: %v", err)
	}
}

func TestInVolume(t *testing.T) {
	for in, want := range map[string]string{"/home/daytona/volume/a": "/a", "/home/daytona/volume/a/b": "/a/b"} {
		if got, ok := clientpath.InVolume(in); !ok || got != want {
			t.Errorf("InVolume(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"/home/daytona/volume", "/home/daytona/volumes/a", "/home/daytona", "/tmp/a"} {
		if got, ok := clientpath.InVolume(in); ok {
			t.Errorf("InVolume(%q) = %q, want outside", in, got)
		}
	}
}
