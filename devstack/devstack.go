// Package devstack starts the dependencies `threadbox dev` needs on one
// machine: a PostgreSQL database (the configured one, or the local server,
// started if it is down) and a Temporal dev server from the Temporal CLI with
// its web UI and threadbox's search attributes. It exists so a new engineer
// gets the whole system with one command and no Docker.
package devstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/sdk/client"
)

// EnsureDatabase makes sure the database of url exists and answers. When the
// server is down and this machine has Debian's pg_ctlcluster, it starts the
// local cluster first.
func EnsureDatabase(ctx context.Context, url string, log *slog.Logger) error {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return fmt.Errorf("DATABASE_URL: %w", err)
	}
	if err := pingServer(ctx, cfg); err != nil {
		log.InfoContext(ctx, "PostgreSQL not reachable; trying to start the local cluster", "err", err)
		if serr := startLocalCluster(ctx); serr != nil {
			return fmt.Errorf("PostgreSQL at %s:%d is not reachable (%v) and could not be started: %w", cfg.Host, cfg.Port, err, serr)
		}
		if err := waitFor(ctx, 20*time.Second, func() error { return pingServer(ctx, cfg) }); err != nil {
			return fmt.Errorf("PostgreSQL did not come up: %w", err)
		}
	}
	return createDatabaseIfMissing(ctx, cfg)
}

func pingServer(ctx context.Context, cfg *pgx.ConnConfig) error {
	admin := cfg.Copy()
	admin.Database = "postgres"
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, admin)
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}

func createDatabaseIfMissing(ctx context.Context, cfg *pgx.ConnConfig) error {
	admin := cfg.Copy()
	admin.Database = "postgres"
	conn, err := pgx.ConnectConfig(ctx, admin)
	if err != nil {
		return fmt.Errorf("connecting to PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", cfg.Database).Scan(&exists); err != nil {
		return fmt.Errorf("checking database %q: %w", cfg.Database, err)
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{cfg.Database}.Sanitize()); err != nil {
		return fmt.Errorf("creating database %q: %w", cfg.Database, err)
	}
	return nil
}

func startLocalCluster(ctx context.Context) error {
	bin, err := exec.LookPath("pg_ctlcluster")
	if err != nil {
		return errors.New("pg_ctlcluster not found; install PostgreSQL or set DATABASE_URL")
	}
	versions, err := os.ReadDir("/etc/postgresql")
	if err != nil || len(versions) == 0 {
		return errors.New("no cluster under /etc/postgresql")
	}
	out, err := exec.CommandContext(ctx, bin, "--skip-systemctl-redirect", versions[0].Name(), "main", "start").CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctlcluster: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

func waitFor(ctx context.Context, timeout time.Duration, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// TemporalOptions configure the dev server.
type TemporalOptions struct {
	CLI              string   // path of the temporal binary; found when empty
	Address          string   // host:port of the frontend
	UIPort           int      // web UI port
	DBFile           string   // SQLite file so history survives restarts; empty = in memory
	SearchAttributes []string // Keyword attributes to register
	Namespace        string
}

// Temporal is a running dev server.
type Temporal struct {
	cmd   *exec.Cmd
	UIURL string
}

// FindTemporalCLI looks for the Temporal CLI in ./.bin (where `make tools`
// installs it), then on PATH.
func FindTemporalCLI() (string, error) {
	if p, err := filepath.Abs(filepath.Join(".bin", "temporal")); err == nil {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath("temporal"); err == nil {
		return p, nil
	}
	return "", errors.New("temporal CLI not found in .bin/ or on PATH: run `make tools`")
}

// TemporalDynamicConfig is the dev server's dynamic configuration that a
// production Temporal cluster for threadbox should share (deploy/ and
// docs/ARCHITECTURE.md "Hot path"): eager activity execution lets a
// workflow task that schedules an activity on its own task queue (the
// thread's create or start, on the path of POST /v1/threads and of an exec
// on a stopped thread) hand it to the same worker in its completion's
// answer, saving a matching round trip of the activity task.
func TemporalDynamicConfig() []string {
	return []string{"--dynamic-config-value", "system.enableActivityEagerExecution=true"}
}

// StartTemporal runs `temporal server start-dev` and waits until it answers.
func StartTemporal(ctx context.Context, o TemporalOptions, log *slog.Logger) (*Temporal, error) {
	if o.CLI == "" {
		p, err := FindTemporalCLI()
		if err != nil {
			return nil, err
		}
		o.CLI = p
	}
	host, port, err := net.SplitHostPort(o.Address)
	if err != nil {
		return nil, fmt.Errorf("TEMPORAL_ADDRESS: %w", err)
	}
	args := []string{"server", "start-dev", "--ip", host, "--port", port,
		"--ui-port", strconv.Itoa(o.UIPort), "--log-level", "error", "--namespace", o.Namespace}
	args = append(args, TemporalDynamicConfig()...)
	if o.DBFile != "" {
		if err := os.MkdirAll(filepath.Dir(o.DBFile), 0o755); err != nil {
			return nil, err
		}
		args = append(args, "--db-filename", o.DBFile)
	}
	for _, sa := range o.SearchAttributes {
		args = append(args, "--search-attribute", sa+"=Keyword")
	}
	cmd := exec.Command(o.CLI, args...)
	cmd.Stdout = os.Stderr
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting Temporal dev server: %w", err)
	}
	t := &Temporal{cmd: cmd, UIURL: fmt.Sprintf("http://%s:%d", host, o.UIPort)}
	err = waitFor(ctx, 60*time.Second, func() error {
		c, err := client.DialContext(ctx, client.Options{HostPort: o.Address, Namespace: o.Namespace, Logger: quietLogger()})
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.CheckHealth(ctx, nil)
		return err
	})
	if err != nil {
		t.Stop()
		return nil, fmt.Errorf("Temporal dev server did not become ready: %w", err)
	}
	log.InfoContext(ctx, "Temporal dev server ready", "address", o.Address, "ui", t.UIURL)
	return t, nil
}

// Stop ends the dev server.
func (t *Temporal) Stop() {
	if t.cmd.Process == nil {
		return
	}
	_ = t.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = t.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = t.cmd.Process.Kill()
		<-done
	}
}
