package e2e_test

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/threadbox/threadbox/internal/testenv"
)

// saClient is a skill-admin test client (one API key against one Env).
type saClient struct {
	t   *testing.T
	env *testenv.Env
	key string
}

// do sends a request through env.HTTP, which checks it against the OpenAPI
// document.
func (c saClient) do(method, path, contentType string, body io.Reader) (int, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.env.URL+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.env.HTTP.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp.StatusCode, b
}

func (c saClient) json(method, path string, in any, out any) int {
	c.t.Helper()
	var body io.Reader
	ct := ""
	if in != nil {
		b, _ := json.Marshal(in)
		body, ct = bytes.NewReader(b), "application/json"
	}
	status, b := c.do(method, path, ct, body)
	if out != nil && status < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: decoding %s: %v", method, path, b, err)
		}
	}
	return status
}

// upload posts archive as multipart field "file".
func (c saClient) upload(archive []byte) (int, []byte) {
	c.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormFile("file", "skill.zip")
	_, _ = fw.Write(archive)
	_ = mw.Close()
	return c.do(http.MethodPost, "/v1/admin/skills", mw.FormDataContentType(), &buf)
}

type saUpload struct {
	SkillID    string `json:"skill_id"`
	Status     string `json:"status"`
	WorkflowID string `json:"workflow_id"`
	Version    int    `json:"version"`
}

type saSkill struct {
	SkillID       string `json:"skill_id"`
	Name          string `json:"name"`
	Version       int    `json:"version"`
	Status        string `json:"status"`
	ValidationLog string `json:"validation_log"`
	SnapshotID    *int64 `json:"snapshot_id"`
	WorkflowID    string `json:"workflow_id"`
}

type saSnapshot struct {
	ID          int64    `json:"id"`
	Version     int      `json:"version"`
	DaytonaName string   `json:"daytona_name"`
	State       string   `json:"state"`
	Active      bool     `json:"active"`
	Base        bool     `json:"base"`
	SkillIDs    []string `json:"skill_ids"`
	Skills      []struct {
		Name string `json:"name"`
	} `json:"skills"`
	ReadyAt   *time.Time `json:"ready_at"`
	CreatedAt *time.Time `json:"created_at"`
	Audit     []saAudit  `json:"audit"`
}

type saAudit struct {
	FromID     int64  `json:"from_snapshot_id"`
	ToID       int64  `json:"to_snapshot_id"`
	Actor      string `json:"actor"`
	Reason     string `json:"reason"`
	Outcome    string `json:"outcome"`
	WorkflowID string `json:"workflow_id"`
}

type saErr struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func (c saClient) skill(id string) saSkill {
	c.t.Helper()
	var s saSkill
	if st := c.json(http.MethodGet, "/v1/admin/skills/"+id, nil, &s); st != http.StatusOK {
		c.t.Fatalf("GET skill %s: %d", id, st)
	}
	return s
}

func (c saClient) snapshots() []saSnapshot {
	c.t.Helper()
	var out struct {
		Snapshots []saSnapshot `json:"snapshots"`
	}
	if st := c.json(http.MethodGet, "/v1/admin/snapshots", nil, &out); st != http.StatusOK {
		c.t.Fatalf("GET snapshots: %d", st)
	}
	return out.Snapshots
}

func (c saClient) snapshot(id int64) saSnapshot {
	c.t.Helper()
	var s saSnapshot
	if st := c.json(http.MethodGet, "/v1/admin/snapshots/"+strconv.FormatInt(id, 10), nil, &s); st != http.StatusOK {
		c.t.Fatalf("GET snapshot %d: %d", id, st)
	}
	return s
}

func activeOf(t *testing.T, snaps []saSnapshot) saSnapshot {
	t.Helper()
	var act []saSnapshot
	for _, s := range snaps {
		if s.Active {
			act = append(act, s)
		}
	}
	if len(act) != 1 {
		t.Fatalf("want exactly one active snapshot, got %d in %+v", len(act), snaps)
	}
	return act[0]
}

// waitSkill waits until the skill reaches one of the final statuses.
func (c saClient) waitSkill(id string, timeout time.Duration, want ...string) saSkill {
	c.t.Helper()
	var s saSkill
	testenv.Eventually(c.t, timeout, "skill "+id+" to become "+want[0], func() bool {
		s = c.skill(id)
		for _, w := range want {
			if s.Status == w {
				return true
			}
		}
		return false
	})
	return s
}

// exec runs a command in a thread (created if needed) as the env's user.
func (c saClient) exec(thread, cmd string) (int, string) {
	c.t.Helper()
	st := c.json(http.MethodPost, "/v1/threads", map[string]string{"thread_id": thread}, nil)
	if st != http.StatusCreated && st != http.StatusOK {
		c.t.Fatalf("create thread %s: %d", thread, st)
	}
	var res struct {
		ExitCode int    `json:"exit_code"`
		Output   string `json:"output"`
	}
	if st := c.json(http.MethodPost, "/v1/threads/"+thread+"/exec", map[string]any{"command": cmd}, &res); st != http.StatusOK {
		c.t.Fatalf("exec in %s: %d", thread, st)
	}
	return res.ExitCode, res.Output
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
