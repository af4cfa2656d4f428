package activities_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/threadbox/threadbox/activities"
	"github.com/threadbox/threadbox/config"
	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/emulator"
	"github.com/threadbox/threadbox/skills"
)

// skillEnv is a real PostgreSQL database and an in-process Daytona emulator
// behind the activities (no Temporal: the activities are called directly).
type skillEnv struct {
	acts *activities.Activities
	q    *db.Queries
	gw   *daytona.Gateway
	pool *pgxpool.Pool
}

func adminURL() string {
	if u := os.Getenv("THREADBOX_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

func newDB(t *testing.T) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, adminURL())
	if err != nil {
		t.Fatalf("PostgreSQL: %v", err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "tb_skills_" + hex.EncodeToString(b)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	_ = admin.Close(ctx)
	i := strings.LastIndex(adminURL(), "/")
	url := adminURL()[:i+1] + name + "?sslmode=disable"
	pool, err := db.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pool.Close()
		if a, err := pgx.Connect(context.Background(), adminURL()); err == nil {
			_, _ = a.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			_ = a.Close(context.Background())
		}
	})
	if _, err := db.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	return pool
}

func newSkillEnv(t *testing.T, withDaytona bool) *skillEnv {
	t.Helper()
	pool := newDB(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var cfg config.Config
	var gw *daytona.Gateway
	if withDaytona {
		emu, err := emulator.New(context.Background(), emulator.Options{CronInterval: 100 * time.Millisecond, TransitionDelay: 50 * time.Millisecond, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(emu.Handler())
		t.Cleanup(func() { srv.Close(); _ = emu.Close() })
		gw, err = daytona.New(daytona.Config{APIURL: srv.URL + "/api", APIKey: "k", Logger: log})
		if err != nil {
			t.Fatal(err)
		}
	}
	a := activities.New(cfg, pool, gw, log)
	return &skillEnv{acts: a, q: a.Queries, gw: gw, pool: pool}
}

// addSkill stores an archive as a skill version with the given status, as
// the API and the validation workflow would.
func (e *skillEnv) addSkill(t *testing.T, archive []byte, status string) uuid.UUID {
	t.Helper()
	ctx := context.Background()
	b, err := skills.Parse(archive, skills.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	v, err := e.q.NextSkillVersion(ctx, b.Manifest.Name)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := json.Marshal(b.Manifest)
	row, err := e.q.CreateSkill(ctx, db.CreateSkillParams{
		ID: uuid.New(), Name: b.Manifest.Name, Version: v, Description: b.Manifest.Description,
		Archive: archive, ArchiveFormat: string(b.Format), Manifest: m, WorkflowID: "skill:" + b.Manifest.Name, CreatedBy: "admin",
	})
	if err != nil {
		t.Fatal(err)
	}
	if status != "validating" {
		if _, err := e.q.FinishSkillValidation(ctx, db.FinishSkillValidationParams{ID: row.ID, Status: status}); err != nil {
			t.Fatal(err)
		}
	}
	return row.ID
}

// scratchLeft lists scratch sandboxes Daytona still has (destroyed ones excluded).
func (e *skillEnv) scratchLeft(t *testing.T) []daytona.Sandbox {
	t.Helper()
	list, err := e.gw.ListSandboxes(context.Background(), map[string]string{daytona.LabelKind: activities.SandboxTypeScratch})
	if err != nil {
		t.Fatal(err)
	}
	var out []daytona.Sandbox
	for _, s := range list {
		if s.State != daytona.StateDestroyed && s.State != daytona.StateDestroying {
			out = append(out, s)
		}
	}
	return out
}
