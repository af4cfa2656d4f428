package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/internal/testenv"
)

// TestDevBringsUpTheWholeStack runs `threadbox dev` in-process on free ports
// and checks what the README promises: health and readiness answer 200, the
// Temporal UI answers, and the printed keys authenticate (the user key is
// refused on an admin route).
func TestDevBringsUpTheWholeStack(t *testing.T) {
	// An empty database, as on a first `threadbox dev`: the migrations run
	// in the background, and the banner's keys must wait for them.
	_, dbURL := testenv.EmptyDatabase(t)
	httpPort, temporalPort, uiPort, emuPort := testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)
	t.Setenv("DATABASE_URL", dbURL)
	t.Setenv("HTTP_ADDR", fmt.Sprintf("127.0.0.1:%d", httpPort))
	t.Setenv("TEMPORAL_ADDRESS", fmt.Sprintf("127.0.0.1:%d", temporalPort))
	t.Setenv("DAYTONA_API_URL", "")
	t.Setenv("LOG_LEVEL", "warn")

	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	cmd := newRootCommand()
	cmd.SetOut(pw)
	cmd.SetArgs([]string{"dev", "--state-dir", t.TempDir(),
		"--emulator-addr", fmt.Sprintf("127.0.0.1:%d", emuPort),
		"--temporal-ui-port", fmt.Sprint(uiPort),
		"--temporal-cli", testenv.TemporalCLI(t)})
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx); pw.Close() }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err, "dev stops cleanly on cancel")
		case <-time.After(30 * time.Second):
			t.Error("dev did not stop within 30s")
		}
	})

	keyRE := regexp.MustCompile(`(user|admin) key\s+(tb_\S+)`)
	keys := map[string]string{}
	sc := bufio.NewScanner(pr)
	lines := make(chan string)
	go func() {
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	timeout := time.After(90 * time.Second)
	for len(keys) < 2 {
		select {
		case line, ok := <-lines:
			require.True(t, ok, "dev exited before printing its keys")
			if m := keyRE.FindStringSubmatch(line); m != nil {
				keys[m[1]] = m[2]
			}
		case err := <-done:
			t.Fatalf("dev exited: %v", err)
		case <-timeout:
			t.Fatal("dev did not print its keys within 90s")
		}
	}
	go func() {
		for range lines {
		}
	}()

	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	api := testenv.APIClient(t) // the API's answers are checked against the OpenAPI document
	get := func(url, key string) (int, string) {
		req, _ := http.NewRequest("GET", url, nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		c := http.DefaultClient
		if strings.HasPrefix(url, base+"/") {
			c = api
		}
		resp, err := c.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	testenv.Eventually(t, 30*time.Second, "/healthz", func() bool { s, _ := get(base+"/healthz", ""); return s == 200 })
	testenv.Eventually(t, 30*time.Second, "/readyz", func() bool { s, _ := get(base+"/readyz", ""); return s == 200 })
	_, body := get(base+"/readyz", "")
	for _, dep := range []string{"database", "temporal", "daytona"} {
		require.Contains(t, body, `"`+dep+`":"ok"`)
	}
	testenv.Eventually(t, 30*time.Second, "Temporal UI", func() bool {
		s, _ := get(fmt.Sprintf("http://127.0.0.1:%d/", uiPort), "")
		return s == 200
	})

	status, body := get(base+"/v1/whoami", keys["user"])
	require.Equal(t, 200, status)
	require.JSONEq(t, `{"user_id":"dev-user","admin":false}`, body)
	status, body = get(base+"/v1/whoami", keys["admin"])
	require.Equal(t, 200, status)
	require.True(t, strings.Contains(body, `"admin":true`))
	status, _ = get(base+"/v1/admin/snapshots", keys["user"])
	require.Equal(t, 403, status)
	status, _ = get(base+"/v1/admin/snapshots", keys["admin"])
	require.Equal(t, 200, status)
	status, _ = get(base+"/v1/whoami", "tb_wrong")
	require.Equal(t, 401, status)

	// The emulator has a key of its own, generated for this run (readyz
	// above shows the gateway has it): no other key, and no key, gets in.
	emu := fmt.Sprintf("http://127.0.0.1:%d", emuPort)
	for _, key := range []string{"", "wrong", keys["user"]} {
		status, _ = get(emu+"/api/sandbox", key)
		require.Equal(t, 401, status, "emulator API with key %q", key)
		status, _ = get(emu+"/toolbox/x/files", key)
		require.Equal(t, 401, status, "emulator toolbox with key %q", key)
	}
}
