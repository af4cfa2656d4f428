package davtest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// LitmusResult is one litmus test's outcome: "pass", "FAIL", "SKIPPED" or
// "WARNING" (a pass with a warning).
type LitmusResult struct {
	Suite  string
	Num    int
	Name   string
	Result string
}

// Key identifies a test across runs (names repeat inside a suite).
func (r LitmusResult) Key() string { return fmt.Sprintf("%s %02d %s", r.Suite, r.Num, r.Name) }

var (
	suiteRe = regexp.MustCompile("^-> running `([a-z]+)'")
	testRe  = regexp.MustCompile(`^\s*(\d+)\.\s+([A-Za-z0-9_]+)`)
	// resultRe finds a result at the end of a test line, or on the
	// continuation line litmus prints after a warning.
	resultRe = regexp.MustCompile(`\.*\s+(pass|FAIL|SKIPPED)( \(with \d+ warnings?\))?`)
)

// ParseLitmus reads litmus's per-test lines. litmus redraws each line with
// \r (name, then name and result); a test with warnings gets its result on
// a second line, reported here as "WARNING".
func ParseLitmus(out string) []LitmusResult {
	var res []LitmusResult
	suite := ""
	var pending *LitmusResult
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if i := strings.LastIndexByte(line, '\r'); i >= 0 {
			line = line[i+1:]
		}
		if m := suiteRe.FindStringSubmatch(line); m != nil {
			suite, pending = m[1], nil
			continue
		}
		if m := testRe.FindStringSubmatch(line); m != nil {
			var n int
			fmt.Sscan(m[1], &n)
			pending = &LitmusResult{Suite: suite, Num: n, Name: m[2]}
			line = line[len(m[0]):]
		}
		if pending == nil {
			continue
		}
		if strings.HasPrefix(strings.TrimSpace(line), "WARNING") {
			continue
		}
		if m := resultRe.FindStringSubmatch(line); m != nil {
			pending.Result = m[1]
			if m[1] == "pass" && m[2] != "" {
				pending.Result = "WARNING"
			}
			res = append(res, *pending)
			pending = nil
		}
	}
	return res
}

// RunLitmus runs every litmus suite against url (a writable collection) and
// returns the per-test results. It fails the test when litmus is missing.
func RunLitmus(t testing.TB, url, user, pass string) ([]LitmusResult, string) {
	t.Helper()
	bin, err := exec.LookPath("litmus")
	if err != nil {
		t.Fatalf("litmus is not installed (Debian: apt-get install -y litmus): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-k", url, user, pass)
	cmd.Dir = t.TempDir() // litmus writes debug.log and child.log into its cwd
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("litmus: %v\n%s", err, out)
	}
	res := ParseLitmus(string(out))
	if len(res) < 70 {
		t.Fatalf("litmus printed only %d test lines:\n%s", len(res), out)
	}
	return res, string(out)
}

// FormatResults renders results one per line, the baseline file format.
func FormatResults(res []LitmusResult) string {
	lines := make([]string, len(res))
	for i, r := range res {
		lines[i] = r.Key() + " " + r.Result
	}
	return strings.Join(lines, "\n") + "\n"
}

// LoadResults reads a baseline file (key → result).
func LoadResults(t testing.TB, file string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("reading litmus baseline: %v", err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		i := strings.LastIndexByte(line, ' ')
		out[line[:i]] = line[i+1:]
	}
	return out
}

// passed counts pass and pass-with-warning.
func passed(r string) bool { return r == "pass" || r == "WARNING" }

// CompareWithBaseline fails t for every test that passes in baseline and not
// in got, and for every test whose result differs from expected (the
// committed record of our own results), so improvements are recorded too.
func CompareWithBaseline(t testing.TB, got []LitmusResult, baseline, expected map[string]string) {
	t.Helper()
	seen := map[string]bool{}
	for _, r := range got {
		seen[r.Key()] = true
		if b, ok := baseline[r.Key()]; ok && passed(b) && !passed(r.Result) {
			t.Errorf("litmus regression vs webdav.Dir: %s: %s (baseline %s)", r.Key(), r.Result, b)
		}
		if e, ok := expected[r.Key()]; ok && e != r.Result {
			t.Errorf("litmus %s: got %s, expected %s", r.Key(), r.Result, e)
		} else if !ok && expected != nil {
			t.Errorf("litmus %s: %s, not in the expected results", r.Key(), r.Result)
		}
	}
	var missing []string
	for k := range expected {
		if !seen[k] {
			missing = append(missing, k)
		}
	}
	sort.Strings(missing)
	for _, k := range missing {
		t.Errorf("litmus test %s did not run", k)
	}
}

// WriteResults writes results to file (to create or refresh a baseline when
// UPDATE_LITMUS=1).
func WriteResults(t testing.TB, file string, res []LitmusResult) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte(FormatResults(res)), 0o644); err != nil {
		t.Fatal(err)
	}
}
