package shell_test

import (
	"os/exec"
	"testing"

	"github.com/threadbox/threadbox/internal/shell"
)

// A quoted word reaches the command as itself, whatever it holds.
func TestQuoteSurvivesTheShell(t *testing.T) {
	for _, s := range []string{"", "plain", "it's", `$HOME $(id) ; rm -rf / "x" \n *`, "'", "a'b'c", "new\nline"} {
		out, err := exec.Command("sh", "-c", "printf %s "+shell.Quote(s)).Output()
		if err != nil {
			t.Fatalf("sh: %v", err)
		}
		if string(out) != s {
			t.Errorf("Quote(%q) came back as %q", s, out)
		}
	}
}
