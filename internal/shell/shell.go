// Package shell quotes words for a POSIX shell: every command threadbox,
// its gateway and the emulator build for a sandbox's shell quotes its
// arguments the same way.
package shell

import "strings"

// Quote quotes s as one word for a POSIX shell (single quotes; a single
// quote inside becomes '\”), so nothing in it is expanded or split.
func Quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
