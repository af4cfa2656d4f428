package daytona

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
)

// maxNameLen caps generated Daytona names. Daytona does not document a sandbox-name limit;
// 63 keeps names valid as DNS labels and volume bucket-name components everywhere.
const maxNameLen = 63

// sanitize lowercases s and keeps [a-z0-9-], collapsing every other run into one '-'. It
// reports whether anything was changed so callers can add a hash suffix (two different ids
// must never sanitise to the same name).
func sanitize(s string) (string, bool) {
	var b strings.Builder
	changed := false
	lastDash := false
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
			lastDash = false
		case r >= 'A' && r <= 'Z':
			b.WriteRune(r + ('a' - 'A'))
			lastDash = false
			changed = true
		case r == '-':
			if lastDash {
				changed = true
				continue
			}
			b.WriteRune(r)
			lastDash = true
		default:
			changed = true
			if !lastDash {
				b.WriteByte('-')
				lastDash = true
			}
		}
	}
	return strings.Trim(b.String(), "-"), changed
}

// shortHash is 16 hex characters (64 bits) of SHA-256. Ids are partly client-chosen (thread
// ids), so the suffix must resist a deliberate search for an id whose name collides with
// someone else's: 32 bits would fall to minutes of brute force, 64 bits do not.
func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:8])
}

// endsInHash reports whether s ends like a hashed name part: "-" and 16 hex digits.
func endsInHash(s string) bool {
	const n = 16
	if len(s) < n+1 || s[len(s)-n-1] != '-' {
		return false
	}
	for _, r := range s[len(s)-n:] {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}

// safeName builds prefix + part + suffix where part is the sanitised id. If the id had to be
// changed or shortened, part gets a hash of the original id so the mapping stays injective
// and deterministic (retried activities compute the same name).
func safeName(prefix, id, suffix string) string {
	part, changed := sanitize(id)
	if part == "" || endsInHash(part) {
		// An id kept as it is must never look like another id's hashed form.
		changed = true
	}
	budget := maxNameLen - len(prefix) - len(suffix)
	if changed || len(part) > budget {
		h := shortHash(id)
		keep := budget - len(h) - 1
		if keep < 0 {
			keep = 0
		}
		if len(part) > keep {
			part = strings.TrimRight(part[:keep], "-")
		}
		if part == "" {
			part = h
		} else {
			part = part + "-" + h
		}
	}
	return prefix + part + suffix
}

// SandboxName is the deterministic Daytona name of a sandbox: tb-<kind>-<id>-<gen>. Find-or-
// create keys on it, so a retried create never makes a second sandbox, and a new generation
// (after an auto-delete) gets a fresh name. The result is lowercase [a-z0-9-], at most 63
// characters; when kind or id had to be changed a hash of the original is included.
func SandboxName(kind, id string, gen int) string {
	k, kChanged := sanitize(kind)
	if kChanged || k == "" || len(k) > 16 {
		k = safeName("", kind, "")
		if len(k) > 16 {
			k = shortHash(kind)
		}
	}
	return safeName("tb-"+k+"-", id, "-"+strconv.Itoa(gen))
}

// VolumeStrategy selects how user files map onto Daytona volumes.
type VolumeStrategy int

const (
	// PerUser gives every user a volume "tb-vol-<user>" (simple isolation; Daytona allows
	// at most 100 volumes per organisation).
	PerUser VolumeStrategy = iota
	// Shared puts all users in one volume, each under the subpath "users/<user>" (Daytona's
	// recommendation past 100 users); isolation comes from mounting only the subpath.
	Shared
)

// VolumeFor returns the volume name and subpath for a user under the given strategy.
// sharedName is the single volume's name for Shared (ignored for PerUser). User ids are
// sanitised deterministically (hash suffix when changed), so the result is a valid volume
// name / S3 prefix and never collides for distinct user ids.
func VolumeFor(strategy VolumeStrategy, userID string, sharedName string) (volumeName, subpath string) {
	if strategy == Shared {
		return sharedName, "users/" + safeName("", userID, "")
	}
	return safeName("tb-vol-", userID, ""), ""
}

// Labels returns the standard threadbox labels for a sandbox of the given kind; user and
// thread are omitted when empty.
func Labels(kind, user, thread string) map[string]string {
	m := map[string]string{LabelManagedBy: LabelManagedByValue, LabelKind: kind}
	if user != "" {
		m[LabelUser] = user
	}
	if thread != "" {
		m[LabelThread] = thread
	}
	return m
}
