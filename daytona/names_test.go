package daytona

import (
	"regexp"
	"strings"
	"testing"
)

var safeRe = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

func TestSandboxName(t *testing.T) {
	if got := SandboxName("agent", "t1", 3); got != "tb-agent-t1-3" {
		t.Fatalf("plain name: got %q", got)
	}
	cases := []struct{ kind, id string }{
		{"agent", "Thread_1"},
		{"agent", "thread-1"},
		{"agent", "thread--1"},
		{"agent", "Ünïcode/../x"},
		{"agent", strings.Repeat("a", 200)},
		{"agent", strings.Repeat("a", 199) + "b"},
		{"Files", "u@example.com"},
		{"agent", ""},
		{"agent", "---"},
	}
	seen := map[string]string{}
	for _, c := range cases {
		n := SandboxName(c.kind, c.id, 12)
		if !safeRe.MatchString(n) || len(n) > maxNameLen {
			t.Errorf("SandboxName(%q,%q) = %q: not Daytona-safe", c.kind, c.id, n)
		}
		if !strings.HasPrefix(n, "tb-") || !strings.HasSuffix(n, "-12") {
			t.Errorf("SandboxName(%q,%q) = %q: lost tb-/gen shape", c.kind, c.id, n)
		}
		if n != SandboxName(c.kind, c.id, 12) {
			t.Errorf("not deterministic for %q", c.id)
		}
		key := c.kind + "\x00" + c.id
		if prev, ok := seen[n]; ok && prev != key {
			t.Errorf("collision: %q and %q both -> %q", prev, key, n)
		}
		seen[n] = key
	}
	// An id chosen to look like another id's hashed form gets a hash of its own.
	victim := SandboxName("agent", "john.smith", 1)
	forged := strings.TrimSuffix(strings.TrimPrefix(victim, "tb-agent-"), "-1")
	if got := SandboxName("agent", forged, 1); got == victim {
		t.Errorf("id %q collides with the hashed name of john.smith: %q", forged, got)
	}
	if SandboxName("agent", "t1", 1) == SandboxName("agent", "t1", 2) {
		t.Error("generations must differ")
	}
}

func TestVolumeFor(t *testing.T) {
	name, sub := VolumeFor(PerUser, "u1", "ignored")
	if name != "tb-vol-u1" || sub != "" {
		t.Fatalf("PerUser: %q %q", name, sub)
	}
	name, sub = VolumeFor(Shared, "u1", "tb-shared")
	if name != "tb-shared" || sub != "users/u1" {
		t.Fatalf("Shared: %q %q", name, sub)
	}
	a, _ := VolumeFor(PerUser, "Alice@X", "")
	b, _ := VolumeFor(PerUser, "alice-x", "")
	if a == b || !safeRe.MatchString(a) {
		t.Fatalf("sanitised user ids must stay distinct and safe: %q %q", a, b)
	}
	_, s1 := VolumeFor(Shared, "../etc", "v")
	if strings.Contains(s1, "..") || strings.Contains(s1, "//") || strings.HasPrefix(s1, "/") {
		t.Fatalf("subpath not safe: %q", s1)
	}
}
