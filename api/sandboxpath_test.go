package api

import (
	"strings"
	"testing"
)

func TestCleanSandboxPath(t *testing.T) {
	ok := []struct{ in, root, want string }{
		{"a/b", "/home/daytona/volume", "/home/daytona/volume/a/b"},
		{"/a/b", "/home/daytona/volume", "/home/daytona/volume/a/b"},
		{"a/../b/./c/", "/home/daytona/volume/", "/home/daytona/volume/b/c"},
		{"/", "/home/daytona/volume", "/home/daytona/volume"},
		{".", "/", "/"},
		{"/etc/passwd", "/", "/etc/passwd"},
	}
	for _, c := range ok {
		got, err := cleanSandboxPath(c.in, c.root)
		if err != nil || got != c.want {
			t.Errorf("cleanSandboxPath(%q, %q) = %q, %v; want %q", c.in, c.root, got, err, c.want)
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
		if got, err := cleanSandboxPath(c.in, c.root); err == nil {
			t.Errorf("cleanSandboxPath(%q, %q) = %q, want invalid_path", c.in, c.root, got)
		} else if e, ok := err.(*Error); !ok || e.Code != "invalid_path" || e.Status != 400 {
			t.Errorf("cleanSandboxPath(%q): error %v is not a 400 invalid_path", c.in, err)
		}
	}
}

func TestThreadPath(t *testing.T) {
	for in, want := range map[string]string{
		"x":            "/home/daytona/x",
		"volume/../y":  "/home/daytona/y",
		"/tmp/a":       "/tmp/a",
		"/home/a/../b": "/home/b",
	} {
		if got, err := threadPath(in); err != nil || got != want {
			t.Errorf("threadPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"../../etc/passwd", "../x", "a/../../x"} {
		if _, err := threadPath(in); err == nil {
			t.Errorf("threadPath(%q) accepted a traversal", in)
		}
	}
}

func TestParseRange(t *testing.T) {
	cases := []struct {
		h                string
		size, start, end int64
		ok, satisfiable  bool
	}{
		{"bytes=0-4", 10, 0, 4, true, true},
		{"bytes=6-", 10, 6, 9, true, true},
		{"bytes=-3", 10, 7, 9, true, true},
		{"bytes=5-100", 10, 5, 9, true, true},
		{"bytes=10-", 10, 0, 0, true, false},
		{"bytes=4-2", 10, 0, 0, false, false},
		{"bytes=0-1,3-4", 10, 0, 0, false, false},
		{"items=0-1", 10, 0, 0, false, false},
	}
	for _, c := range cases {
		s, e, ok, sat := parseRange(c.h, c.size)
		if ok != c.ok || sat != c.satisfiable || (ok && sat && (s != c.start || e != c.end)) {
			t.Errorf("parseRange(%q, %d) = %d, %d, %v, %v", c.h, c.size, s, e, ok, sat)
		}
	}
}
