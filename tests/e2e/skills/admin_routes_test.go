package e2e_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/threadbox/threadbox/internal/testenv"
	st "github.com/threadbox/threadbox/skills/skilltest"
)

// TestAdminRouteFailures covers the refusals of every admin route: no key
// 401, a non-admin key 403, unknown ids 404, malformed archives 400,
// oversized archives 413, bad JSON 400, impossible activations 409. None of
// them may create a skill, a snapshot or a workflow.
func TestAdminRouteFailures(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	admin := saClient{t: t, env: env, key: env.AdminKey}
	user := saClient{t: t, env: env, key: env.UserKey}
	anon := saClient{t: t, env: env}
	valid := st.Zip(st.Valid("ok-skill", "")...)

	routes := []struct{ method, path string }{
		{http.MethodPost, "/v1/admin/skills"},
		{http.MethodGet, "/v1/admin/skills"},
		{http.MethodGet, "/v1/admin/skills/00000000-0000-0000-0000-000000000000"},
		{http.MethodGet, "/v1/admin/snapshots"},
		{http.MethodGet, "/v1/admin/snapshots/0"},
		{http.MethodGet, "/v1/admin/snapshots/activations"},
		{http.MethodPost, "/v1/admin/snapshots/0/activate"},
		{http.MethodPost, "/v1/admin/snapshots/rollback"},
	}
	for _, r := range routes {
		if s, b := user.do(r.method, r.path, "application/json", strings.NewReader("{}")); s != http.StatusForbidden {
			t.Errorf("user %s %s = %d %s, want 403", r.method, r.path, s, b)
		}
		if s, _ := anon.do(r.method, r.path, "", nil); s != http.StatusUnauthorized {
			t.Errorf("anonymous %s %s = %d, want 401", r.method, r.path, s)
		}
	}
	if s, _ := user.upload(valid); s != http.StatusForbidden {
		t.Errorf("user upload = %d, want 403", s)
	}

	expectErr := func(what string, status int, code string, gotStatus int, body []byte) {
		t.Helper()
		var e saErr
		_ = json.Unmarshal(body, &e)
		if gotStatus != status || (code != "" && e.Error.Code != code) {
			t.Errorf("%s: got %d %s, want %d %s", what, gotStatus, body, status, code)
		}
		if gotStatus >= 400 && e.Error.Message == "" {
			t.Errorf("%s: error without a message: %s", what, body)
		}
	}
	md := st.File("SKILL.md", st.SkillMD("name: evil\ndescription: x"))
	many := []st.Entry{md}
	for i := 0; i < 1001; i++ {
		many = append(many, st.File(fmt.Sprintf("f%d", i), ""))
	}
	big := make([]byte, 17<<20)
	_, _ = rand.Read(big)
	copy(big, "PK\x03\x04")
	for _, c := range []struct {
		name    string
		archive []byte
		status  int
		code    string
	}{
		{"traversal zip", st.Zip(md, st.File("../../etc/cron.d/x", "evil")), 400, "path_traversal"},
		{"traversal tar", st.TarGz(md, st.File("../x", "evil")), 400, "path_traversal"},
		{"absolute path", st.TarGz(md, st.File("/etc/passwd", "evil")), 400, "absolute_path"},
		{"symlink out", st.TarGz(md, st.Entry{Name: "l", Kind: st.Symlink, Link: "../../etc/passwd"}), 400, "link_outside"},
		{"hardlink out", st.TarGz(md, st.Entry{Name: "h", Kind: st.Hardlink, Link: "/etc/shadow"}), 400, "link_outside"},
		{"device", st.TarGz(md, st.Entry{Name: "null", Kind: st.CharDevice}), 400, "special_file"},
		{"duplicate", st.Zip(md, md), 400, "duplicate_entry"},
		{"no SKILL.md", st.Zip(st.File("README.md", "hi")), 400, "missing_manifest"},
		{"bad front matter", st.Zip(st.File("SKILL.md", "---\nname: [x\n---\n")), 400, "bad_manifest"},
		{"unsafe name", st.Zip(st.File("SKILL.md", st.SkillMD("name: ../../root\ndescription: x"))), 400, "bad_skill_name"},
		{"not an archive", []byte("hello world"), 400, "unsupported_archive"},
		{"too many files", st.Zip(many...), 413, "archive_too_large"},
		{"oversized upload", big, 413, ""},
	} {
		s, b := admin.upload(c.archive)
		expectErr(c.name, c.status, c.code, s, b)
	}
	s, b := admin.do(http.MethodPost, "/v1/admin/skills", "application/json", strings.NewReader("{}"))
	expectErr("not multipart", 400, "multipart_required", s, b)
	var buf bytes.Buffer
	buf.WriteString("--X\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nv\r\n--X--\r\n")
	s, b = admin.do(http.MethodPost, "/v1/admin/skills", "multipart/form-data; boundary=X", &buf)
	expectErr("no file field", 400, "missing_file", s, b)

	s, b = admin.do(http.MethodGet, "/v1/admin/skills/00000000-0000-0000-0000-000000000000", "", nil)
	expectErr("unknown skill", 404, "not_found", s, b)
	s, b = admin.do(http.MethodGet, "/v1/admin/skills/not-a-uuid", "", nil)
	expectErr("malformed skill id", 404, "not_found", s, b)
	s, b = admin.do(http.MethodGet, "/v1/admin/snapshots/999", "", nil)
	expectErr("unknown snapshot", 404, "not_found", s, b)
	s, b = admin.do(http.MethodGet, "/v1/admin/snapshots/abc", "", nil)
	expectErr("malformed snapshot id", 404, "not_found", s, b)
	s, b = admin.do(http.MethodPost, "/v1/admin/snapshots/999/activate", "", nil)
	expectErr("activate unknown", 404, "not_found", s, b)
	s, b = admin.do(http.MethodPost, "/v1/admin/snapshots/0/activate", "", nil)
	expectErr("activate the active base", 409, "already_active", s, b)
	s, b = admin.do(http.MethodPost, "/v1/admin/snapshots/rollback", "application/json", strings.NewReader(`{"to": `))
	expectErr("rollback bad JSON", 400, "malformed_json", s, b)
	s, b = admin.do(http.MethodPost, "/v1/admin/snapshots/rollback", "application/json", strings.NewReader(`{"to": "x"}`))
	expectErr("rollback wrong type", 400, "malformed_json", s, b)
	s, b = admin.do(http.MethodPost, "/v1/admin/snapshots/rollback", "", nil)
	expectErr("rollback with no history", 409, "nothing_to_roll_back", s, b)
	s, b = admin.do(http.MethodPost, "/v1/admin/snapshots/rollback", "application/json", strings.NewReader(`{"to": 42}`))
	expectErr("rollback to unknown", 404, "not_found", s, b)
	s, b = admin.do(http.MethodPost, "/v1/admin/snapshots/0/activate", "application/json", strings.NewReader(`{"reason":`))
	expectErr("activate bad JSON", 400, "malformed_json", s, b)

	// Nothing was stored: no skill, and only the implicit base version, active.
	var list struct {
		Skills []saSkill `json:"skills"`
	}
	if s := admin.json(http.MethodGet, "/v1/admin/skills", nil, &list); s != 200 || len(list.Skills) != 0 {
		t.Errorf("skills after refusals: %d %+v", s, list.Skills)
	}
	snaps := admin.snapshots()
	if len(snaps) != 1 || !snaps[0].Base || !snaps[0].Active || snaps[0].ID != 0 {
		t.Errorf("snapshots after refusals: %+v", snaps)
	}
	if base := admin.snapshot(0); !base.Active || !base.Base {
		t.Errorf("GET snapshot 0 = %+v", base)
	}
}
