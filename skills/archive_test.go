package skills_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/threadbox/threadbox/skills"
	st "github.com/threadbox/threadbox/skills/skilltest"
)

var goodMD = st.SkillMD("name: pdf-tools\ndescription: Work with PDFs")

type builder func(...st.Entry) []byte

var formats = map[string]builder{"zip": st.Zip, "tar.gz": st.TarGz}

func TestParseValidSkill(t *testing.T) {
	for fname, build := range formats {
		t.Run(fname, func(t *testing.T) {
			data := build(
				st.File("SKILL.md", goodMD),
				st.Entry{Name: "scripts/", Kind: st.Dir},
				st.Entry{Name: "scripts/run.sh", Body: "#!/bin/sh\n", Mode: 0o755},
				st.File("requirements.txt", "requests\n"),
			)
			b, err := skills.Parse(data, skills.DefaultLimits())
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if string(b.Format) != fname {
				t.Errorf("format = %q, want %q", b.Format, fname)
			}
			if b.Manifest.Name != "pdf-tools" || b.Manifest.Description != "Work with PDFs" {
				t.Errorf("manifest = %+v", b.Manifest)
			}
			if !b.Manifest.PythonRequirements || b.Manifest.NodePackage {
				t.Errorf("dependency detection wrong: %+v", b.Manifest)
			}
			var paths []string
			for _, f := range b.Files {
				paths = append(paths, f.Path)
				if f.Path == "scripts/run.sh" && !f.Executable {
					t.Error("run.sh lost its executable bit")
				}
				if f.Path == "SKILL.md" && f.Executable {
					t.Error("SKILL.md became executable")
				}
			}
			if got := strings.Join(paths, ","); got != "SKILL.md,requirements.txt,scripts/run.sh" {
				t.Errorf("files = %s", got)
			}
		})
	}
}

func TestParseStripsWrapperFolder(t *testing.T) {
	for fname, build := range formats {
		t.Run(fname, func(t *testing.T) {
			data := build(
				st.Entry{Name: "pdf-tools/", Kind: st.Dir},
				st.File("pdf-tools/SKILL.md", goodMD),
				st.File("pdf-tools/a/b.txt", "x"),
				st.Entry{Name: "__MACOSX/._SKILL.md", Body: "junk"},
			)
			b, err := skills.Parse(data, skills.DefaultLimits())
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if len(b.Files) != 2 || b.Files[0].Path != "SKILL.md" || b.Files[1].Path != "a/b.txt" {
				t.Errorf("files = %+v", b.Files)
			}
		})
	}
}

func TestParseMaterialisesInternalLinks(t *testing.T) {
	data := st.TarGz(
		st.File("SKILL.md", goodMD),
		st.File("lib/real.py", "print(1)"),
		st.Entry{Name: "alias.py", Kind: st.Symlink, Link: "lib/real.py"},
		st.Entry{Name: "lib/hard.py", Kind: st.Hardlink, Link: "lib/real.py"},
		st.Entry{Name: "lib/chain.py", Kind: st.Symlink, Link: "../alias.py"},
	)
	b, err := skills.Parse(data, skills.DefaultLimits())
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	got := map[string]string{}
	for _, f := range b.Files {
		got[f.Path] = string(f.Data)
	}
	for _, p := range []string{"alias.py", "lib/hard.py", "lib/chain.py"} {
		if got[p] != "print(1)" {
			t.Errorf("%s = %q, want a copy of lib/real.py", p, got[p])
		}
	}
}

// TestParseRejectsMalicious is the table of archives an extractor is attacked
// with; every one must be refused with the expected code before anything
// runs.
func TestParseRejectsMalicious(t *testing.T) {
	md := st.File("SKILL.md", goodMD)
	small := skills.DefaultLimits()
	small.MaxFiles = 5
	small.MaxFileBytes = 1 << 10
	small.MaxTotalBytes = 3 << 10
	small.MaxArchiveBytes = 64 << 10
	zeros := strings.Repeat("\x00", 1<<20) // compresses to ~1 KiB
	cases := []struct {
		name    string
		formats []string // empty = both
		entries []st.Entry
		lim     *skills.Limits
		code    string
		tooBig  bool
	}{
		{name: "dotdot", entries: []st.Entry{md, st.File("../x", "evil")}, code: "path_traversal"},
		{name: "nested dotdot", entries: []st.Entry{md, st.File("a/../../x", "evil")}, code: "path_traversal"},
		{name: "absolute", entries: []st.Entry{md, st.File("/etc/cron.d/x", "evil")}, code: "absolute_path"},
		{name: "windows drive", entries: []st.Entry{md, st.File("C:/x", "evil")}, code: "absolute_path"},
		{name: "backslash traversal", entries: []st.Entry{md, st.File(`..\x`, "evil")}, code: "bad_path"},
		{name: "nul byte", entries: []st.Entry{md, st.File("a\x00b", "evil")}, formats: []string{"zip"}, code: "bad_path"},
		{name: "symlink out", entries: []st.Entry{md, {Name: "etc", Kind: st.Symlink, Link: "../../etc/passwd"}}, code: "link_outside"},
		{name: "symlink absolute", entries: []st.Entry{md, {Name: "pw", Kind: st.Symlink, Link: "/etc/passwd"}}, code: "link_outside"},
		{name: "symlink to dir", entries: []st.Entry{md, {Name: "d/", Kind: st.Dir}, {Name: "l", Kind: st.Symlink, Link: "d"}}, code: "unsupported_link"},
		{name: "dangling symlink", entries: []st.Entry{md, {Name: "l", Kind: st.Symlink, Link: "nothing"}}, code: "dangling_link"},
		{name: "symlink loop", entries: []st.Entry{md, {Name: "a", Kind: st.Symlink, Link: "b"}, {Name: "b", Kind: st.Symlink, Link: "a"}}, code: "link_loop"},
		{name: "hardlink out", formats: []string{"tar.gz"}, entries: []st.Entry{md, {Name: "h", Kind: st.Hardlink, Link: "../../etc/shadow"}}, code: "link_outside"},
		{name: "hardlink absolute", formats: []string{"tar.gz"}, entries: []st.Entry{md, {Name: "h", Kind: st.Hardlink, Link: "/etc/shadow"}}, code: "link_outside"},
		{name: "hardlink missing", formats: []string{"tar.gz"}, entries: []st.Entry{md, {Name: "h", Kind: st.Hardlink, Link: "etc/shadow"}}, code: "dangling_link"},
		{name: "char device", entries: []st.Entry{md, {Name: "null", Kind: st.CharDevice}}, code: "special_file"},
		{name: "fifo", entries: []st.Entry{md, {Name: "pipe", Kind: st.Fifo}}, code: "special_file"},
		{name: "duplicate", entries: []st.Entry{md, st.File("a", "1"), st.File("./a", "2")}, code: "duplicate_entry"},
		{name: "duplicate manifest", entries: []st.Entry{md, md}, code: "duplicate_entry"},
		{name: "file used as folder", entries: []st.Entry{md, st.File("a", "1"), st.File("a/b", "2")}, code: "path_conflict"},
		{name: "too many entries", lim: &small, entries: []st.Entry{md, st.File("1", ""), st.File("2", ""), st.File("3", ""), st.File("4", ""), st.File("5", "")}, code: "archive_too_large", tooBig: true},
		{name: "file bomb", lim: &small, entries: []st.Entry{md, st.File("bomb", zeros)}, code: "archive_too_large", tooBig: true},
		{name: "total bomb", lim: &small, entries: []st.Entry{md, st.File("1", zeros[:1000]), st.File("2", zeros[:1000]), st.File("3", zeros[:1000]), st.File("4", zeros[:1000])}, code: "archive_too_large", tooBig: true},
		{name: "link copies exceed total", formats: []string{"tar.gz"}, lim: &small, entries: []st.Entry{md, st.File("1", zeros[:1000]), {Name: "2", Kind: st.Hardlink, Link: "1"}, {Name: "3", Kind: st.Hardlink, Link: "1"}, {Name: "4", Kind: st.Symlink, Link: "1"}}, code: "archive_too_large", tooBig: true},
		{name: "no manifest", entries: []st.Entry{st.File("README.md", "hi")}, code: "missing_manifest"},
		{name: "manifest in subfolder only", entries: []st.Entry{st.File("a/SKILL.md", goodMD), st.File("b/x", "")}, code: "missing_manifest"},
		{name: "manifest without front matter", entries: []st.Entry{st.File("SKILL.md", "# just text")}, code: "bad_manifest"},
		{name: "unclosed front matter", entries: []st.Entry{st.File("SKILL.md", "---\nname: a\ndescription: b\n")}, code: "bad_manifest"},
		{name: "bad yaml", entries: []st.Entry{st.File("SKILL.md", st.SkillMD("name: [a\ndescription: b"))}, code: "bad_manifest"},
		{name: "no name", entries: []st.Entry{st.File("SKILL.md", st.SkillMD("description: b"))}, code: "bad_manifest"},
		{name: "no description", entries: []st.Entry{st.File("SKILL.md", st.SkillMD("name: ok"))}, code: "bad_manifest"},
		{name: "unsafe name", entries: []st.Entry{st.File("SKILL.md", st.SkillMD("name: ../etc\ndescription: b"))}, code: "bad_skill_name"},
		{name: "uppercase name", entries: []st.Entry{st.File("SKILL.md", st.SkillMD("name: PDF\ndescription: b"))}, code: "bad_skill_name"},
		{name: "bad timeout", entries: []st.Entry{st.File("SKILL.md", st.SkillMD("name: a\ndescription: b\ncheck_timeout: forever"))}, code: "bad_manifest"},
		{name: "timeout too long", entries: []st.Entry{st.File("SKILL.md", st.SkillMD("name: a\ndescription: b\ncheck_timeout: 2h"))}, code: "bad_manifest"},
	}
	for _, tc := range cases {
		fs := tc.formats
		if len(fs) == 0 {
			fs = []string{"zip", "tar.gz"}
		}
		for _, f := range fs {
			t.Run(tc.name+"/"+f, func(t *testing.T) {
				lim := skills.DefaultLimits()
				if tc.lim != nil {
					lim = *tc.lim
				}
				_, err := skills.Parse(formats[f](tc.entries...), lim)
				var se *skills.Error
				if !errors.As(err, &se) {
					t.Fatalf("Parse error = %v, want *skills.Error %s", err, tc.code)
				}
				if se.Code != tc.code {
					t.Errorf("code = %s (%s), want %s", se.Code, se.Message, tc.code)
				}
				if errors.Is(err, skills.ErrTooLarge) != tc.tooBig {
					t.Errorf("errors.Is(ErrTooLarge) = %v, want %v", !tc.tooBig, tc.tooBig)
				}
			})
		}
	}
}

func TestParseRejectsNonArchivesAndOversize(t *testing.T) {
	for name, data := range map[string][]byte{
		"text":          []byte("hello"),
		"empty":         nil,
		"truncated zip": st.Zip(st.File("SKILL.md", goodMD))[:30],
		"truncated gz":  st.TarGz(st.File("SKILL.md", goodMD))[:20],
		"gzip not tar":  gzipOf("just text, not a tar stream at all, long enough to be read........"),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := skills.Parse(data, skills.DefaultLimits())
			var se *skills.Error
			if !errors.As(err, &se) || errors.Is(err, skills.ErrTooLarge) {
				t.Fatalf("err = %v, want a 400-kind *skills.Error", err)
			}
		})
	}
	lim := skills.DefaultLimits()
	lim.MaxArchiveBytes = 10
	_, err := skills.Parse(st.Zip(st.File("SKILL.md", goodMD)), lim)
	if !errors.Is(err, skills.ErrTooLarge) {
		t.Fatalf("oversized archive: err = %v, want ErrTooLarge", err)
	}
}

func TestParseManifestFields(t *testing.T) {
	m, err := skills.ParseManifest([]byte("\xef\xbb\xbf---\r\nname: lint\r\ndescription: >\r\n  Lints code\r\ncheck: ./check.sh\r\ncheck_timeout: 90s\r\nlicense: MIT\r\n---\r\nbody"))
	if err != nil {
		t.Fatalf("ParseManifest: %v", err)
	}
	if m.Name != "lint" || m.Description != "Lints code" || m.Check != "./check.sh" || m.CheckTimeout != 90*time.Second {
		t.Errorf("manifest = %+v", m)
	}
	m, err = skills.ParseManifest([]byte(st.SkillMD("name: a\ndescription: b\ncheck_timeout: 5")))
	if err != nil || m.CheckTimeout != 5*time.Second {
		t.Errorf("integer seconds: %+v, %v", m, err)
	}
	m, err = skills.ParseManifest([]byte(st.SkillMD("name: a\ndescription: b")))
	if err != nil || m.CheckTimeout != skills.DefaultCheckTimeout || m.Check != "" {
		t.Errorf("defaults: %+v, %v", m, err)
	}
}

func TestValidName(t *testing.T) {
	for name, want := range map[string]bool{
		"a": true, "pdf-tools": true, "x1-2": true, strings.Repeat("a", 64): true,
		"": false, "-a": false, "a-": false, "a--b": false, "A": false, "a_b": false, "a.b": false,
		"a/b": false, "..": false, strings.Repeat("a", 65): false, "a b": false,
	} {
		if got := skills.ValidName(name); got != want {
			t.Errorf("ValidName(%q) = %v, want %v", name, got, want)
		}
	}
}

func gzipOf(s string) []byte {
	var b bytes.Buffer
	w := newGzip(&b)
	_, _ = w.Write([]byte(s))
	_ = w.Close()
	return b.Bytes()
}
