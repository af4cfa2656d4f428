package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func lookupFrom(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestDefaults(t *testing.T) {
	cfg, err := Load("", lookupFrom(nil))
	require.NoError(t, err)
	require.Equal(t, 15*time.Minute, cfg.AutoStopInterval.Duration())
	require.Equal(t, 120*time.Minute, cfg.AutoDeleteInterval.Duration())
	require.Equal(t, 60*time.Minute, cfg.FilesAutoStopInterval.Duration())
	require.Equal(t, 7*24*time.Hour, cfg.FilesAutoArchive.Duration())
	require.EqualValues(t, 10, cfg.VolumeSizeGB)
	require.EqualValues(t, 10<<30, cfg.VolumeQuotaBytes())
	require.Equal(t, "127.0.0.1:7233", cfg.TemporalAddress)
	require.Equal(t, "default", cfg.TemporalNamespace)
	require.Equal(t, "127.0.0.1:8080", cfg.HTTPAddr)
	require.Equal(t, DefaultDatabaseURL, cfg.DatabaseURL)
	require.Equal(t, VolumePerUser, cfg.VolumeStrategy)
	require.Empty(t, cfg.DaytonaAPIURL)
	require.Empty(t, cfg.BaseSnapshot)
	require.Equal(t, 1000, cfg.MaxThreadsPerUser)
	require.Equal(t, 5, cfg.MaxRunningSandboxesPerUser)
	require.Equal(t, 10, cfg.MaxRunningSandboxes)
	require.InDelta(t, 50, cfg.RateLimit, 0)
	require.Equal(t, 100, cfg.RateBurst)
	require.Empty(t, cfg.CORSOrigins)
}

func TestEveryVariable(t *testing.T) {
	env := map[string]string{
		"DAYTONA_API_URL":                          "https://daytona.example/api",
		"DAYTONA_API_KEY":                          "dtn_key",
		"DAYTONA_TARGET":                           "eu",
		"DAYTONA_AUTO_STOP_INTERVAL":               "30s",
		"DAYTONA_AUTO_DELETE_INTERVAL":             "7",
		"DAYTONA_FILES_SANDBOX_AUTO_STOP":          "1h30m",
		"DAYTONA_FILES_SANDBOX_AUTO_ARCHIVE":       "1440",
		"DAYTONA_VOLUME_SIZE_GB":                   "3",
		"DAYTONA_BASE_SNAPSHOT":                    "base:1",
		"DAYTONA_VOLUME_STRATEGY":                  "shared",
		"DAYTONA_SHARED_VOLUME":                    "all-users",
		"DATABASE_URL":                             "postgres://u@db:5432/tb",
		"TEMPORAL_ADDRESS":                         "temporal:7233",
		"TEMPORAL_NAMESPACE":                       "prod",
		"TEMPORAL_TASK_QUEUE":                      "tq",
		"HTTP_ADDR":                                "0.0.0.0:9000",
		"THREADBOX_MAX_BODY_BYTES":                 "1024",
		"THREADBOX_EXEC_OUTPUT_LIMIT":              "2048",
		"THREADBOX_MAX_EXEC_TIMEOUT":               "10m",
		"THREADBOX_UPLOAD_DIR":                     "/var/spool/tb",
		"THREADBOX_UPLOAD_S3_BUCKET":               "uploads",
		"THREADBOX_UPLOAD_S3_ENDPOINT":             "http://minio:9000",
		"THREADBOX_UPLOAD_S3_REGION":               "eu-west-1",
		"THREADBOX_UPLOAD_S3_PREFIX":               "tb/",
		"THREADBOX_UPLOAD_S3_ACCESS_KEY":           "ak",
		"THREADBOX_UPLOAD_S3_SECRET_KEY":           "sk",
		"THREADBOX_RECONCILE_INTERVAL":             "5m",
		"THREADBOX_RECONCILE_GRACE":                "90s",
		"THREADBOX_WORKER_METRICS_ADDR":            "0.0.0.0:9090",
		"THREADBOX_SHUTDOWN_TIMEOUT":               "45s",
		"THREADBOX_MAX_THREADS_PER_USER":           "20",
		"THREADBOX_MAX_RUNNING_SANDBOXES_PER_USER": "3",
		"THREADBOX_MAX_RUNNING_SANDBOXES":          "40",
		"THREADBOX_RATE_LIMIT":                     "2.5",
		"THREADBOX_RATE_BURST":                     "7",
		"THREADBOX_CORS_ORIGINS":                   "https://ui.example.com,http://localhost:5173",
		"LOG_LEVEL":                                "debug",
		"LOG_FORMAT":                               "json",
	}
	require.ElementsMatch(t, Names(), keys(env), "the test must set every variable Names lists")
	cfg, err := Load("", lookupFrom(env))
	require.NoError(t, err)
	require.Equal(t, Config{
		DaytonaAPIURL:              "https://daytona.example/api",
		DaytonaAPIKey:              "dtn_key",
		DaytonaTarget:              "eu",
		AutoStopInterval:           Interval(30 * time.Second),
		AutoDeleteInterval:         Interval(7 * time.Minute),
		FilesAutoStopInterval:      Interval(90 * time.Minute),
		FilesAutoArchive:           Interval(24 * time.Hour),
		VolumeSizeGB:               3,
		BaseSnapshot:               "base:1",
		VolumeStrategy:             VolumeShared,
		SharedVolumeName:           "all-users",
		DatabaseURL:                "postgres://u@db:5432/tb",
		TemporalAddress:            "temporal:7233",
		TemporalNamespace:          "prod",
		TemporalTaskQueue:          "tq",
		HTTPAddr:                   "0.0.0.0:9000",
		MaxBodyBytes:               1024,
		ExecOutputLimit:            2048,
		MaxExecTimeout:             10 * time.Minute,
		UploadDir:                  "/var/spool/tb",
		UploadS3Bucket:             "uploads",
		UploadS3Endpoint:           "http://minio:9000",
		UploadS3Region:             "eu-west-1",
		UploadS3Prefix:             "tb/",
		UploadS3AccessKey:          "ak",
		UploadS3SecretKey:          "sk",
		ReconcileInterval:          Interval(5 * time.Minute),
		ReconcileGrace:             Interval(90 * time.Second),
		WorkerMetricsAddr:          "0.0.0.0:9090",
		ShutdownTimeout:            45 * time.Second,
		MaxThreadsPerUser:          20,
		MaxRunningSandboxesPerUser: 3,
		MaxRunningSandboxes:        40,
		RateLimit:                  2.5,
		RateBurst:                  7,
		CORSOrigins:                []string{"https://ui.example.com", "http://localhost:5173"},
		LogLevel:                   "debug",
		LogFormat:                  "json",
	}, cfg)
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestParseInterval(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"15": 15 * time.Minute, " 2 ": 2 * time.Minute, "30s": 30 * time.Second,
		"1h": time.Hour, "1500ms": 1500 * time.Millisecond,
	} {
		got, err := ParseInterval(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "0", "-5", "0s", "-1m", "abc", "15 minutes", "1.5", "99999999999"} {
		_, err := ParseInterval(in)
		require.Error(t, err, in)
	}
}

func TestBadValuesNameTheVariable(t *testing.T) {
	cases := map[string]string{
		"DAYTONA_AUTO_STOP_INTERVAL":               "soon",
		"DAYTONA_AUTO_DELETE_INTERVAL":             "-3",
		"DAYTONA_FILES_SANDBOX_AUTO_STOP":          "0",
		"DAYTONA_VOLUME_SIZE_GB":                   "ten",
		"DAYTONA_API_URL":                          "ftp://x",
		"DAYTONA_VOLUME_STRATEGY":                  "per-thread",
		"DATABASE_URL":                             "mysql://x",
		"TEMPORAL_ADDRESS":                         "nohostport",
		"HTTP_ADDR":                                "8080",
		"THREADBOX_MAX_BODY_BYTES":                 "0",
		"THREADBOX_EXEC_OUTPUT_LIMIT":              "-1",
		"THREADBOX_MAX_EXEC_TIMEOUT":               "forever",
		"THREADBOX_RECONCILE_INTERVAL":             "-1",
		"THREADBOX_MAX_THREADS_PER_USER":           "-1",
		"THREADBOX_MAX_RUNNING_SANDBOXES_PER_USER": "many",
		"THREADBOX_MAX_RUNNING_SANDBOXES":          "-2",
		"THREADBOX_RATE_LIMIT":                     "-1",
		"THREADBOX_CORS_ORIGINS":                   "https://ui.example.com/app",
		"LOG_LEVEL":                                "loud",
		"LOG_FORMAT":                               "xml",
		"THREADBOX_UPLOAD_S3_ENDPOINT":             "minio:9000",
	}
	for name, value := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Load("", lookupFrom(map[string]string{name: value}))
			require.Error(t, err)
			require.Contains(t, err.Error(), name)
		})
	}
	for _, origin := range []string{"*", "https://*.example.com", "ui.example.com", "ftp://x", "https://u@x", "https://x?y"} {
		_, err := Load("", lookupFrom(map[string]string{"THREADBOX_CORS_ORIGINS": origin}))
		require.ErrorContains(t, err, "THREADBOX_CORS_ORIGINS", origin)
	}
	_, err := Load("", lookupFrom(map[string]string{"THREADBOX_RATE_BURST": "0"}))
	require.ErrorContains(t, err, "THREADBOX_RATE_BURST")
	t.Run("a bucket without keys", func(t *testing.T) {
		_, err := Load("", lookupFrom(map[string]string{"THREADBOX_UPLOAD_S3_BUCKET": "b", "THREADBOX_UPLOAD_S3_ACCESS_KEY": "ak"}))
		require.ErrorContains(t, err, "THREADBOX_UPLOAD_S3_SECRET_KEY")
	})
	t.Run("zero volume size", func(t *testing.T) {
		_, err := Load("", lookupFrom(map[string]string{"DAYTONA_VOLUME_SIZE_GB": "0"}))
		require.ErrorContains(t, err, "DAYTONA_VOLUME_SIZE_GB")
	})
}

func TestDotEnvIsReadAndEnvironmentWins(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ".env")
	require.NoError(t, os.WriteFile(path, []byte("DAYTONA_AUTO_STOP_INTERVAL=5\nDAYTONA_TARGET=from-file\nHTTP_ADDR=127.0.0.1:1\n"), 0o600))
	cfg, err := Load(path, lookupFrom(map[string]string{"HTTP_ADDR": "127.0.0.1:2"}))
	require.NoError(t, err)
	require.Equal(t, 5*time.Minute, cfg.AutoStopInterval.Duration())
	require.Equal(t, "from-file", cfg.DaytonaTarget)
	require.Equal(t, "127.0.0.1:2", cfg.HTTPAddr)

	_, err = Load(filepath.Join(dir, "missing.env"), lookupFrom(nil))
	require.NoError(t, err, "a missing .env is not an error")

	require.NoError(t, os.WriteFile(path, []byte("DAYTONA_VOLUME_SIZE_GB=big\n"), 0o600))
	_, err = Load(path, lookupFrom(nil))
	require.ErrorContains(t, err, "DAYTONA_VOLUME_SIZE_GB")
}

func TestEnvExampleDocumentsEveryVariable(t *testing.T) {
	b, err := os.ReadFile("../.env.example")
	require.NoError(t, err)
	for _, name := range Names() {
		require.True(t, strings.Contains(string(b), name+"="), ".env.example lacks %s", name)
	}
}
