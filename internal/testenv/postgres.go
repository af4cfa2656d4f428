package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresServer is a PostgreSQL server of a test's own (initdb + pg_ctl in
// a temporary directory, on a free loopback port), for tests that stop and
// restart it: the machine's shared server on 5432 must never be restarted,
// other tests use it. When the test runs as root it runs as the postgres
// user (initdb refuses root).
type PostgresServer struct {
	// URL reaches the database "threadbox" on it as the superuser postgres.
	URL  string
	Port int

	t       testing.TB
	bin     string // the directory of initdb, pg_ctl, postgres
	dataDir string
	logFile string
	// cred runs the server's tools as the postgres user when the test is
	// root (nil otherwise).
	cred *syscall.Credential
}

// Postgres initialises and starts a PostgreSQL server for t, with an empty
// database "threadbox"; t.Cleanup stops it and removes its files. Tests fail
// (not skip) when PostgreSQL's server binaries are not installed.
func Postgres(t testing.TB) *PostgresServer {
	t.Helper()
	bin, err := postgresBinDir()
	if err != nil {
		t.Fatal(err)
	}
	p := &PostgresServer{t: t, bin: bin, Port: FreePort(t)}
	// Not t.TempDir: its parents are root's (0700), which the postgres user
	// cannot traverse.
	dir, err := os.MkdirTemp("", "threadbox-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root, PostgreSQL needs the postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		p.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	p.dataDir, p.logFile = filepath.Join(dir, "data"), filepath.Join(dir, "server.log")
	if out, err := p.run("initdb", "-D", p.dataDir, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	// The socket lives in the data directory (not /var/run/postgresql, the
	// shared server's); fsync is off: the tests kill the server, never the
	// machine.
	conf := fmt.Sprintf("port = %d\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\nfsync = off\nmax_connections = 200\n", p.Port, p.dataDir)
	f, err := os.OpenFile(filepath.Join(p.dataDir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString(conf)
	_ = f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = p.run("pg_ctl", "-D", p.dataDir, "-m", "immediate", "-w", "stop") })
	admin := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.Port)
	conn, err := pgx.Connect(context.Background(), admin)
	if err != nil {
		t.Fatalf("connect to the test's PostgreSQL: %v", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), "CREATE DATABASE threadbox"); err != nil {
		t.Fatalf("create database: %v", err)
	}
	p.URL = replaceDatabase(admin, "threadbox")
	return p
}

// Start starts the (stopped) server and waits until it accepts connections.
// Errors are returned, not fatal, so a test's fault injector may call it
// from its own goroutine.
func (p *PostgresServer) Start() error {
	if out, err := p.run("pg_ctl", "-D", p.dataDir, "-l", p.logFile, "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(p.logFile)
		return fmt.Errorf("pg_ctl start: %w\n%s\n%s", err, out, log)
	}
	return nil
}

// Stop stops the server; mode is pg_ctl's: "fast" (disconnects clients,
// clean shutdown) or "immediate" (as a crash: recovery at the next start).
func (p *PostgresServer) Stop(mode string) error {
	if out, err := p.run("pg_ctl", "-D", p.dataDir, "-m", mode, "-w", "-t", "60", "stop"); err != nil {
		return fmt.Errorf("pg_ctl stop -m %s: %w\n%s", mode, err, out)
	}
	return nil
}

// Restart stops the server in mode, leaves it down for the given time and
// starts it again.
func (p *PostgresServer) Restart(mode string, down time.Duration) error {
	if err := p.Stop(mode); err != nil {
		return err
	}
	time.Sleep(down)
	return p.Start()
}

func (p *PostgresServer) run(tool string, args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(p.bin, tool), args...)
	cmd.Dir = os.TempDir()
	if p.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	}
	// pg_ctl's server outlives this command: its output goes to the log
	// file, and CombinedOutput must not wait for the server's pipes.
	return cmd.CombinedOutput()
}

// postgresBinDir finds the newest installed PostgreSQL's server binaries
// (Debian: /usr/lib/postgresql/<version>/bin).
func postgresBinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	var found []string
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
			found = append(found, d)
		}
	}
	if len(found) == 0 {
		return "", fmt.Errorf("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin (apt-get install postgresql)")
	}
	sort.Slice(found, func(i, j int) bool {
		vi, _ := strconv.Atoi(strings.Split(found[i], "/")[4])
		vj, _ := strconv.Atoi(strings.Split(found[j], "/")[4])
		return vi < vj
	})
	return found[len(found)-1], nil
}
