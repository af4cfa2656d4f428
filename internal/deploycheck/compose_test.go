package deploycheck

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/joho/godotenv"

	"github.com/threadbox/threadbox/internal/testenv"
)

func composeFile(t *testing.T, rel string) string {
	return filepath.Join(testenv.RepoRoot(t), rel)
}

// TestComposeLoaderIsStrict: an unknown key fails, so the checks below mean
// something.
func TestComposeLoaderIsStrict(t *testing.T) {
	p := filepath.Join(t.TempDir(), "docker-compose.yaml")
	if err := os.WriteFile(p, []byte("services:\n  a:\n    image: busybox\n    helthcheck: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Compose(context.Background(), p, nil); err == nil || !strings.Contains(err.Error(), "helthcheck") {
		t.Fatalf("an unknown key loaded: %v", err)
	}
}

// TestThreadboxCompose: the root compose file runs PostgreSQL, Temporal with
// its UI, migrations, serve and worker from deploy/Dockerfile, every
// threadbox variable is one config.Config reads, and the health checks probe
// the paths threadbox serves.
func TestThreadboxCompose(t *testing.T) {
	p, err := Compose(context.Background(), composeFile(t, "docker-compose.yaml"), map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"postgres", "temporal", "temporal-ui", "temporal-setup", "migrate", "serve", "worker", "emulator"} {
		if _, ok := p.Services[name]; !ok {
			t.Errorf("service %s missing", name)
		}
	}
	known := ConfigNames()
	for _, name := range []string{"migrate", "serve", "worker", "emulator"} {
		s := p.Services[name]
		if s.Build == nil || s.Build.Dockerfile != "deploy/Dockerfile" || s.Build.Context != testenv.RepoRoot(t) {
			t.Errorf("%s is not built from deploy/Dockerfile at the repository root: %+v", name, s.Build)
		}
		for k := range s.Environment {
			if !slices.Contains(known, k) {
				t.Errorf("%s: variable %s is not one config.Config reads", name, k)
			}
		}
	}
	for _, name := range []string{"serve", "worker"} {
		s := p.Services[name]
		if dep, ok := s.DependsOn["migrate"]; !ok || dep.Condition != types.ServiceConditionCompletedSuccessfully {
			t.Errorf("%s does not wait for the migrations", name)
		}
		for _, v := range []string{"DATABASE_URL", "TEMPORAL_ADDRESS", "DAYTONA_API_URL", "DAYTONA_API_KEY"} {
			if s.Environment[v] == nil {
				t.Errorf("%s: %s is not set", name, v)
			}
		}
	}
	checkHealth := func(service, addrVar, path string) {
		t.Helper()
		s := p.Services[service]
		addr := s.Environment[addrVar]
		if addr == nil {
			t.Fatalf("%s: %s unset", service, addrVar)
		}
		_, port, err := net.SplitHostPort(*addr)
		if err != nil {
			t.Fatal(err)
		}
		if s.HealthCheck == nil || !slices.Contains(s.HealthCheck.Test, "http://127.0.0.1:"+port+path) {
			t.Errorf("%s health check %v does not GET %s on port %s", service, s.HealthCheck, path, port)
		}
		n, err := strconv.ParseUint(port, 10, 32)
		if err != nil {
			t.Fatal(err)
		}
		if !publishes(s, uint32(n)) {
			t.Errorf("%s: port %s is not published", service, port)
		}
	}
	checkHealth("serve", "HTTP_ADDR", ServeReadinessPath)
	checkHealth("worker", "THREADBOX_WORKER_METRICS_ADDR", WorkerLivenessPath)
	for _, name := range []string{"postgres", "temporal"} {
		if p.Services[name].HealthCheck == nil {
			t.Errorf("%s has no health check", name)
		}
	}
}

// daytonaEnv is deploy/daytona/.env.example with every empty secret filled,
// as an operator's .env would be.
func daytonaEnv(t *testing.T) map[string]string {
	env, err := godotenv.Read(composeFile(t, "deploy/daytona/.env.example"))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range env {
		if v == "" {
			env[k] = "secret-for-" + strings.ToLower(k)
		}
	}
	return env
}

// TestDaytonaCompose: the self-hosted Daytona stack loads, pins Daytona's
// images to the release threadbox's clients are built from, checks the API's
// health on :3986 and serves the MinIO console on :9001. (It is not run here:
// no Docker engine.)
func TestDaytonaCompose(t *testing.T) {
	path := composeFile(t, "deploy/daytona/docker-compose.yaml")
	if _, err := Compose(context.Background(), path, map[string]string{}); err == nil {
		t.Error("the stack loads without its secrets; it must refuse to start with empty ones")
	}
	p, err := Compose(context.Background(), path, daytonaEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"api", "proxy", "runner", "db", "redis", "minio", "dex", "registry"} {
		if _, ok := p.Services[name]; !ok {
			t.Errorf("service %s missing", name)
		}
	}
	for name, s := range p.Services {
		img, tag, ok := strings.Cut(s.Image, ":")
		if !ok || tag == "" || tag == "latest" {
			t.Errorf("%s: image %q is not pinned", name, s.Image)
		}
		if strings.HasPrefix(img, "daytonaio/daytona-") && tag != DaytonaRelease {
			t.Errorf("%s: image %q, want Daytona %s", name, s.Image, DaytonaRelease)
		}
	}
	api := p.Services["api"]
	if api.Environment["PORT"] == nil || *api.Environment["PORT"] != "3986" {
		t.Errorf("the Daytona API must listen on 3986")
	}
	if api.HealthCheck == nil || !strings.Contains(strings.Join(api.HealthCheck.Test, " "), "http://127.0.0.1:3986/api/health") {
		t.Errorf("api health check %v does not GET :3986/api/health", api.HealthCheck)
	}
	if !publishes(api, 3986) {
		t.Errorf("api does not publish 3986")
	}
	for _, name := range []string{"proxy", "runner"} {
		if u := p.Services[name].Environment["DAYTONA_API_URL"]; u == nil || *u != "http://api:3986/api" {
			t.Errorf("%s does not reach the API at http://api:3986/api", name)
		}
	}
	minio := p.Services["minio"]
	if !publishes(minio, 9001) || !slices.Contains(minio.Command, ":9001") {
		t.Errorf("minio console is not on :9001 (command %v)", minio.Command)
	}
	for _, name := range []string{"api", "db", "redis", "minio"} {
		if p.Services[name].HealthCheck == nil {
			t.Errorf("%s has no health check", name)
		}
	}
	if dep, ok := p.Services["proxy"].DependsOn["api"]; !ok || dep.Condition != types.ServiceConditionHealthy {
		t.Errorf("proxy does not wait for a healthy API")
	}
}

// DaytonaRelease is the Daytona release of the client modules in go.mod.
const DaytonaRelease = "v0.190.0"

// TestDaytonaReleaseMatchesTheClients keeps the stack's images and the Go
// clients on one release.
func TestDaytonaReleaseMatchesTheClients(t *testing.T) {
	b, err := os.ReadFile(composeFile(t, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for _, mod := range []string{"libs/api-client-go", "libs/toolbox-api-client-go"} {
		if !strings.Contains(string(b), "github.com/daytonaio/daytona/"+mod+" "+DaytonaRelease) {
			t.Errorf("go.mod does not require %s %s", mod, DaytonaRelease)
		}
	}
}

func publishes(s types.ServiceConfig, port uint32) bool {
	return slices.ContainsFunc(s.Ports, func(pc types.ServicePortConfig) bool { return pc.Target == port && pc.Published != "" })
}
