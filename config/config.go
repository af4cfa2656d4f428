// Package config reads threadbox's configuration from the environment (and a
// .env file when present), so every process of the system (serve, worker, dev,
// emulator) agrees on the same names and defaults. Invalid values fail at start
// with an error that names the variable, instead of surfacing later as a
// confusing runtime failure.
package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/joho/godotenv"
)

// Interval is a duration written either as an integer number of minutes (the
// original design's unit, e.g. "15") or as a Go duration (e.g. "30s"), so
// production configs stay as they were while tests can use seconds.
type Interval time.Duration

// UnmarshalText implements encoding.TextUnmarshaler for env parsing.
func (i *Interval) UnmarshalText(text []byte) error {
	d, err := ParseInterval(string(text))
	if err != nil {
		return err
	}
	*i = Interval(d)
	return nil
}

// Duration returns the interval as a time.Duration.
func (i Interval) Duration() time.Duration { return time.Duration(i) }

// ParseInterval parses "15" as 15 minutes and "30s" as 30 seconds. Zero and
// negative intervals are refused: every interval in threadbox is a timer.
func ParseInterval(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty interval")
	}
	var d time.Duration
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n > int64(100*365*24*60) {
			return 0, fmt.Errorf("interval %q minutes is too large", s)
		}
		d = time.Duration(n) * time.Minute
	} else {
		pd, perr := time.ParseDuration(s)
		if perr != nil {
			return 0, fmt.Errorf("interval %q is neither whole minutes nor a Go duration like 30s", s)
		}
		d = pd
	}
	if d <= 0 {
		return 0, fmt.Errorf("interval %q must be positive", s)
	}
	return d, nil
}

// VolumeStrategy says how users map onto Daytona volumes.
type VolumeStrategy string

const (
	// VolumePerUser gives each user a volume of their own (the original design).
	VolumePerUser VolumeStrategy = "per-user"
	// VolumeShared puts every user in one volume under a per-user subpath, for
	// organisations that would hit Daytona's 100-volume limit.
	VolumeShared VolumeStrategy = "shared"
)

// Config is the whole configuration of a threadbox process.
type Config struct {
	DaytonaAPIURL         string   `env:"DAYTONA_API_URL"`
	DaytonaAPIKey         string   `env:"DAYTONA_API_KEY"`
	DaytonaTarget         string   `env:"DAYTONA_TARGET"`
	AutoStopInterval      Interval `env:"DAYTONA_AUTO_STOP_INTERVAL" envDefault:"15"`
	AutoDeleteInterval    Interval `env:"DAYTONA_AUTO_DELETE_INTERVAL" envDefault:"120"`
	FilesAutoStopInterval Interval `env:"DAYTONA_FILES_SANDBOX_AUTO_STOP" envDefault:"60"`
	// FilesAutoArchive is how long a stopped files sandbox stays stopped
	// before Daytona archives it (files sandboxes are never deleted by a
	// timer). A stopped sandbox is billed for its disk and counts toward the
	// organisation's disk limit; an archived one costs nothing there but takes
	// minutes to restore on the next WebDAV request. A week keeps a user's
	// weekly return fast.
	FilesAutoArchive  Interval       `env:"DAYTONA_FILES_SANDBOX_AUTO_ARCHIVE" envDefault:"10080"`
	VolumeSizeGB      int64          `env:"DAYTONA_VOLUME_SIZE_GB" envDefault:"10"`
	BaseSnapshot      string         `env:"DAYTONA_BASE_SNAPSHOT"`
	VolumeStrategy    VolumeStrategy `env:"DAYTONA_VOLUME_STRATEGY" envDefault:"per-user"`
	SharedVolumeName  string         `env:"DAYTONA_SHARED_VOLUME" envDefault:"threadbox-users"`
	DatabaseURL       string         `env:"DATABASE_URL"`
	TemporalAddress   string         `env:"TEMPORAL_ADDRESS" envDefault:"127.0.0.1:7233"`
	TemporalNamespace string         `env:"TEMPORAL_NAMESPACE" envDefault:"default"`
	TemporalTaskQueue string         `env:"TEMPORAL_TASK_QUEUE" envDefault:"threadbox"`
	HTTPAddr          string         `env:"HTTP_ADDR" envDefault:"127.0.0.1:8080"`
	MaxBodyBytes      int64          `env:"THREADBOX_MAX_BODY_BYTES" envDefault:"1073741824"`
	ExecOutputLimit   int            `env:"THREADBOX_EXEC_OUTPUT_LIMIT" envDefault:"1048576"`
	MaxExecTimeout    time.Duration  `env:"THREADBOX_MAX_EXEC_TIMEOUT" envDefault:"1h"`
	UploadDir         string         `env:"THREADBOX_UPLOAD_DIR" envDefault:".threadbox/uploads"`
	// The tus spool in an S3-compatible bucket, shared by every serve
	// replica (uploadspool.S3); empty bucket: the local UploadDir.
	UploadS3Bucket    string   `env:"THREADBOX_UPLOAD_S3_BUCKET"`
	UploadS3Endpoint  string   `env:"THREADBOX_UPLOAD_S3_ENDPOINT"`
	UploadS3Region    string   `env:"THREADBOX_UPLOAD_S3_REGION" envDefault:"us-east-1"`
	UploadS3Prefix    string   `env:"THREADBOX_UPLOAD_S3_PREFIX" envDefault:"threadbox-uploads/"`
	UploadS3AccessKey string   `env:"THREADBOX_UPLOAD_S3_ACCESS_KEY"`
	UploadS3SecretKey string   `env:"THREADBOX_UPLOAD_S3_SECRET_KEY"`
	ReconcileInterval Interval `env:"THREADBOX_RECONCILE_INTERVAL" envDefault:"10"`
	// ReconcileGrace protects young sandboxes from the reconciler (a create
	// may still be reporting to its workflow); the fault suite shortens it so
	// one pass is enough to judge what is left behind.
	ReconcileGrace    Interval `env:"THREADBOX_RECONCILE_GRACE" envDefault:"10"`
	WorkerMetricsAddr string   `env:"THREADBOX_WORKER_METRICS_ADDR"`
	// ShutdownTimeout bounds a graceful stop after SIGTERM: how long serve
	// lets in-flight requests finish after it stops accepting, and how long
	// the worker lets running activities finish after it stops polling
	// (then they are cancelled and retried on another worker). The
	// orchestrator's grace period must exceed it.
	ShutdownTimeout time.Duration `env:"THREADBOX_SHUTDOWN_TIMEOUT" envDefault:"30s"`
	// Admission limits (package admission); 0 turns a limit off.
	MaxThreadsPerUser          int      `env:"THREADBOX_MAX_THREADS_PER_USER" envDefault:"1000"`
	MaxRunningSandboxesPerUser int      `env:"THREADBOX_MAX_RUNNING_SANDBOXES_PER_USER" envDefault:"5"`
	MaxRunningSandboxes        int      `env:"THREADBOX_MAX_RUNNING_SANDBOXES" envDefault:"10"`
	RateLimit                  float64  `env:"THREADBOX_RATE_LIMIT" envDefault:"50"`
	RateBurst                  int      `env:"THREADBOX_RATE_BURST" envDefault:"100"`
	CORSOrigins                []string `env:"THREADBOX_CORS_ORIGINS" envSeparator:","`
	LogLevel                   string   `env:"LOG_LEVEL" envDefault:"info"`
	LogFormat                  string   `env:"LOG_FORMAT" envDefault:"text"`
}

// DefaultDatabaseURL is used when DATABASE_URL is unset: the local PostgreSQL
// that threadbox dev and the test suite expect.
const DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/threadbox?sslmode=disable"

// Load reads .env (when present; real environment variables win) and then the
// environment through lookup. lookup is os.LookupEnv in production and a map in
// tests, so tests never mutate the process environment.
func Load(dotenvPath string, lookup func(string) (string, bool)) (Config, error) {
	vars := map[string]string{}
	if dotenvPath != "" {
		fileVars, err := godotenv.Read(dotenvPath)
		switch {
		case err == nil:
			for k, v := range fileVars {
				vars[k] = v
			}
		case errors.Is(err, os.ErrNotExist):
		default:
			return Config{}, fmt.Errorf("reading %s: %w", dotenvPath, err)
		}
	}
	for _, name := range Names() {
		if v, ok := lookup(name); ok {
			vars[name] = v
		}
	}
	var cfg Config
	if err := env.ParseWithOptions(&cfg, env.Options{Environment: vars}); err != nil {
		return Config{}, namedParseErrors(err)
	}
	if cfg.DatabaseURL == "" {
		cfg.DatabaseURL = DefaultDatabaseURL
	}
	return cfg, cfg.validate()
}

// FromEnvironment is Load(".env", os.LookupEnv).
func FromEnvironment() (Config, error) { return Load(".env", os.LookupEnv) }

// Names lists every variable threadbox reads, in the order of the Config struct.
func Names() []string {
	return []string{
		"DAYTONA_API_URL", "DAYTONA_API_KEY", "DAYTONA_TARGET",
		"DAYTONA_AUTO_STOP_INTERVAL", "DAYTONA_AUTO_DELETE_INTERVAL", "DAYTONA_FILES_SANDBOX_AUTO_STOP",
		"DAYTONA_FILES_SANDBOX_AUTO_ARCHIVE",
		"DAYTONA_VOLUME_SIZE_GB", "DAYTONA_BASE_SNAPSHOT", "DAYTONA_VOLUME_STRATEGY", "DAYTONA_SHARED_VOLUME",
		"DATABASE_URL", "TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_TASK_QUEUE", "HTTP_ADDR",
		"THREADBOX_MAX_BODY_BYTES", "THREADBOX_EXEC_OUTPUT_LIMIT", "THREADBOX_MAX_EXEC_TIMEOUT",
		"THREADBOX_UPLOAD_DIR", "THREADBOX_UPLOAD_S3_BUCKET", "THREADBOX_UPLOAD_S3_ENDPOINT", "THREADBOX_UPLOAD_S3_REGION",
		"THREADBOX_UPLOAD_S3_PREFIX", "THREADBOX_UPLOAD_S3_ACCESS_KEY", "THREADBOX_UPLOAD_S3_SECRET_KEY",
		"THREADBOX_RECONCILE_INTERVAL", "THREADBOX_RECONCILE_GRACE", "THREADBOX_WORKER_METRICS_ADDR", "THREADBOX_SHUTDOWN_TIMEOUT",
		"THREADBOX_MAX_THREADS_PER_USER", "THREADBOX_MAX_RUNNING_SANDBOXES_PER_USER", "THREADBOX_MAX_RUNNING_SANDBOXES",
		"THREADBOX_RATE_LIMIT", "THREADBOX_RATE_BURST", "THREADBOX_CORS_ORIGINS",
		"LOG_LEVEL", "LOG_FORMAT",
	}
}

func (c Config) validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config: %s: %s", name, fmt.Sprintf(format, args...)))
	}
	if c.DaytonaAPIURL != "" && !strings.HasPrefix(c.DaytonaAPIURL, "http://") && !strings.HasPrefix(c.DaytonaAPIURL, "https://") {
		bad("DAYTONA_API_URL", "%q is not an http(s) URL", c.DaytonaAPIURL)
	}
	if c.VolumeSizeGB <= 0 {
		bad("DAYTONA_VOLUME_SIZE_GB", "must be a positive number of GB, got %d", c.VolumeSizeGB)
	}
	if c.VolumeStrategy != VolumePerUser && c.VolumeStrategy != VolumeShared {
		bad("DAYTONA_VOLUME_STRATEGY", "must be %q or %q, got %q", VolumePerUser, VolumeShared, c.VolumeStrategy)
	}
	if !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		bad("DATABASE_URL", "must be a postgres:// URL")
	}
	if c.TemporalAddress == "" || !strings.Contains(c.TemporalAddress, ":") {
		bad("TEMPORAL_ADDRESS", "must be host:port, got %q", c.TemporalAddress)
	}
	if c.TemporalNamespace == "" {
		bad("TEMPORAL_NAMESPACE", "must not be empty")
	}
	if c.HTTPAddr == "" || !strings.Contains(c.HTTPAddr, ":") {
		bad("HTTP_ADDR", "must be host:port, got %q", c.HTTPAddr)
	}
	if c.MaxBodyBytes <= 0 {
		bad("THREADBOX_MAX_BODY_BYTES", "must be positive")
	}
	if c.ExecOutputLimit <= 0 {
		bad("THREADBOX_EXEC_OUTPUT_LIMIT", "must be positive")
	}
	if c.MaxExecTimeout <= 0 {
		bad("THREADBOX_MAX_EXEC_TIMEOUT", "must be positive")
	}
	for name, v := range map[string]int{
		"THREADBOX_MAX_THREADS_PER_USER":           c.MaxThreadsPerUser,
		"THREADBOX_MAX_RUNNING_SANDBOXES_PER_USER": c.MaxRunningSandboxesPerUser,
		"THREADBOX_MAX_RUNNING_SANDBOXES":          c.MaxRunningSandboxes,
	} {
		if v < 0 {
			bad(name, "must be 0 (no limit) or positive, got %d", v)
		}
	}
	if c.RateLimit < 0 {
		bad("THREADBOX_RATE_LIMIT", "must be 0 (no limit) or a positive number of requests per second, got %g", c.RateLimit)
	}
	if c.RateLimit > 0 && c.RateBurst < 1 {
		bad("THREADBOX_RATE_BURST", "must be at least 1 when THREADBOX_RATE_LIMIT is set, got %d", c.RateBurst)
	}
	for _, o := range c.CORSOrigins {
		if err := validOrigin(o); err != nil {
			bad("THREADBOX_CORS_ORIGINS", "%v", err)
		}
	}
	if c.UploadS3Bucket != "" && (c.UploadS3AccessKey == "" || c.UploadS3SecretKey == "") {
		bad("THREADBOX_UPLOAD_S3_ACCESS_KEY", "and THREADBOX_UPLOAD_S3_SECRET_KEY are required with THREADBOX_UPLOAD_S3_BUCKET")
	}
	if c.UploadS3Endpoint != "" && !strings.HasPrefix(c.UploadS3Endpoint, "http://") && !strings.HasPrefix(c.UploadS3Endpoint, "https://") {
		bad("THREADBOX_UPLOAD_S3_ENDPOINT", "%q is not an http(s) URL", c.UploadS3Endpoint)
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		bad("LOG_LEVEL", "must be debug, info, warn or error, got %q", c.LogLevel)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("LOG_FORMAT", "must be text or json, got %q", c.LogFormat)
	}
	return errors.Join(errs...)
}

// validOrigin accepts a browser origin as the Origin header carries it:
// http(s)://host[:port], nothing after it. Wildcards are refused: every
// origin a deployment trusts is written out.
func validOrigin(o string) error {
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || strings.Contains(u.Host, "*") {
		return fmt.Errorf("%q is not an origin like https://ui.example.com[:port]", o)
	}
	return nil
}

// VolumeQuotaBytes is the per-user quota in bytes.
func (c Config) VolumeQuotaBytes() int64 { return c.VolumeSizeGB << 30 }

// namedParseErrors rewrites the env library's per-field errors so they name the
// environment variable an operator has to fix rather than a Go field.
func namedParseErrors(err error) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return fmt.Errorf("config: %w", err)
	}
	t := reflect.TypeFor[Config]()
	var out []error
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			if f, ok := t.FieldByName(pe.Name); ok {
				out = append(out, fmt.Errorf("config: %s: %w", f.Tag.Get("env"), pe.Err))
				continue
			}
		}
		out = append(out, fmt.Errorf("config: %w", e))
	}
	return errors.Join(out...)
}
