package skills_test

import (
	"path"
	"strings"
	"testing"

	"github.com/threadbox/threadbox/skills"
	st "github.com/threadbox/threadbox/skills/skilltest"
)

// FuzzParse checks the invariants of Parse on arbitrary bytes: no panic, and
// whatever it accepts stays inside the skill folder and within the caps.
// `go test` runs the seeds; `go test -fuzz=FuzzParse ./skills` explores.
func FuzzParse(f *testing.F) {
	f.Add(st.Zip(st.File("SKILL.md", goodMD), st.File("a/b", "c")))
	f.Add(st.TarGz(st.File("SKILL.md", goodMD), st.Entry{Name: "l", Kind: st.Symlink, Link: "SKILL.md"}))
	f.Add(st.TarGz(st.File("SKILL.md", goodMD), st.File("../x", "")))
	f.Add([]byte("PK\x03\x04garbage"))
	lim := skills.DefaultLimits()
	lim.MaxTotalBytes = 1 << 20
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := skills.Parse(data, lim)
		if err != nil {
			return
		}
		var total int64
		for _, file := range b.Files {
			p := file.Path
			if p == "" || strings.HasPrefix(p, "/") || path.Clean(p) != p || p == ".." || strings.HasPrefix(p, "../") {
				t.Fatalf("accepted unsafe path %q", p)
			}
			total += int64(len(file.Data))
		}
		if total > lim.MaxTotalBytes || !skills.ValidName(b.Manifest.Name) {
			t.Fatalf("accepted bundle breaks caps or name rule: %d bytes, name %q", total, b.Manifest.Name)
		}
	})
}
