package e2e_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/config"
	"github.com/threadbox/threadbox/internal/testenv"
)

// volumeUsage measures a user's volume from one of their threads: the
// files the quota counts (the hidden files of writes in flight excluded),
// and whether any hidden file is left.
func volumeUsage(t *testing.T, env *testenv.Env, key, thread string) (used int64, hidden bool) {
	t.Helper()
	out := execIn(t, env, key, thread, `cd /home/daytona/volume && find . -type f ! -name '.tbpart-*' ! -name '.tbold-*' -printf '%s\n' | awk '{s+=$1} END {printf "used=%d\n", s}'; find . -name '.tb*' | wc -l | sed 's/^/hidden=/'`)
	var r struct{ Output string }
	require.NoError(t, json.Unmarshal([]byte(out), &r))
	for _, line := range strings.Fields(r.Output) {
		if v, ok := strings.CutPrefix(line, "used="); ok {
			used, _ = strconv.ParseInt(v, 10, 64)
		}
		if v, ok := strings.CutPrefix(line, "hidden="); ok {
			hidden = v != "0"
		}
	}
	return used, hidden
}

// fillVolume makes a fresh user whose volume has room bytes left (a sparse
// file written by an agent: writes by agents never pass threadbox, so the
// first quota decision measures them). It returns the user's key.
func fillVolume(t *testing.T, env *testenv.Env, name, thread string, room int64) string {
	t.Helper()
	key := env.Key(name+"-"+env.UserID, false)
	resp, body := fdo(t, env, key, http.MethodPost, "/v1/threads", strings.NewReader(`{"thread_id":"`+thread+`"}`), map[string]string{"Content-Type": "application/json"})
	require.Contains(t, []int{200, 201}, resp.StatusCode, body)
	limit := env.Config.VolumeQuotaBytes()
	execIn(t, env, key, thread, "mkdir -p /home/daytona/volume && truncate -s "+strconv.FormatInt(limit-room, 10)+" /home/daytona/volume/filler")
	return key
}

// chunked hides a reader's length, so the request goes out without a
// Content-Length.
func chunked(b []byte) io.Reader { return io.MultiReader(bytes.NewReader(b)) }

// testQuotaEdge: ten writers through every write path into the volume
// (REST, WebDAV, thread file PUT and batch upload under the volume mount,
// tus), with and without a Content-Length, at once, at the quota's edge:
// together they never take the volume past its quota. Then each path on
// its own is refused with 507 quota_exceeded when the volume has no room,
// while a thread write outside the volume is not limited.
func testQuotaEdge(t *testing.T, env *testenv.Env) {
	const room, size = 1 << 20, 300_000
	key := fillVolume(t, env, "edge", "edge", room)
	limit := env.Config.VolumeQuotaBytes()
	body := make([]byte, size)
	_, _ = rand.Read(body)
	resp, b := fdo(t, env, key, "MKCOL", "/dav/edge/", nil, nil) // WebDAV writes need their collection
	require.Equal(t, 201, resp.StatusCode, b)

	// Each writer answers whether it stored its file, or else whether it was
	// refused for want of room (507 quota_exceeded; in a batch upload, the
	// entry's error), with what it got for the failure message.
	type outcome struct {
		stored, noRoom bool
		answer         string
	}
	status := func(resp *http.Response, b string, ok int) outcome {
		return outcome{resp.StatusCode == ok, resp.StatusCode == 507 && strings.Contains(b, "quota_exceeded"), strconv.Itoa(resp.StatusCode) + " " + b}
	}
	put := func(url string, r io.Reader) outcome {
		resp, b := fdo(t, env, key, http.MethodPut, url, r, nil)
		return status(resp, b, 201)
	}
	writers := []func(i int) outcome{
		func(i int) outcome { return put(fmt.Sprintf("/v1/files?path=edge/%d", i), bytes.NewReader(body)) },
		func(i int) outcome { return put(fmt.Sprintf("/v1/files?path=edge/%d", i), chunked(body)) },
		func(i int) outcome { return put(fmt.Sprintf("/dav/edge/%d", i), bytes.NewReader(body)) },
		func(i int) outcome { return put(fmt.Sprintf("/dav/edge/%d", i), chunked(body)) },
		func(i int) outcome {
			return put(fmt.Sprintf("/v1/threads/edge/files?path=volume/edge/%d", i), bytes.NewReader(body))
		},
		func(i int) outcome {
			return put(fmt.Sprintf("/v1/threads/edge/files?path=/home/daytona/volume/edge/%d", i), chunked(body))
		},
		func(i int) outcome { // thread batch upload into the volume
			ct, mp := multipartBody(t, fmt.Sprintf("volume/edge/%d", i), string(body))
			resp, b := fdo(t, env, key, http.MethodPost, "/v1/threads/edge/files/upload", mp, map[string]string{"Content-Type": ct})
			var up struct {
				Files []struct{ Path, Code, Error string } `json:"files"`
			}
			_ = json.Unmarshal([]byte(b), &up)
			if resp.StatusCode != 200 || len(up.Files) != 1 {
				return outcome{answer: b}
			}
			return outcome{up.Files[0].Code == "", up.Files[0].Code == "quota_exceeded", b}
		},
		func(i int) outcome { // tus
			resp, b := fdo(t, env, key, http.MethodPost, "/v1/uploads/", nil, tusHeaders(map[string]string{
				"Upload-Length": strconv.Itoa(size), "Upload-Metadata": tusMeta(fmt.Sprintf("edge/%d", i))}))
			if resp.StatusCode != 201 {
				return status(resp, b, 201)
			}
			loc := strings.TrimPrefix(resp.Header.Get("Location"), env.URL)
			resp, b = fdo(t, env, key, http.MethodPatch, loc, bytes.NewReader(body), tusHeaders(map[string]string{
				"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}))
			return status(resp, b, 204)
		},
	}
	// A gate in front of the emulator holds every write that got as far as
	// sending its bytes until all ten are there (or none came for 3 s), so
	// they overlap for sure: each has made its quota decision before any
	// lands.
	gate := make(chan struct{})
	var (
		gateMu  sync.Mutex
		arrived int
		idle    *time.Timer
		open    sync.Once
	)
	openGate := func() { open.Do(func() { close(gate) }) }
	env.Calls.Intercept(func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
		if testenv.Route(r.URL.Path) != "files/upload" || !strings.Contains(r.URL.Query().Get("path"), "/volume/edge/") {
			return false
		}
		gateMu.Lock()
		arrived++
		if idle == nil {
			idle = time.AfterFunc(3*time.Second, openGate)
		} else {
			idle.Reset(3 * time.Second)
		}
		if arrived == 10 {
			openGate()
		}
		gateMu.Unlock()
		<-gate
		return false
	})
	var wg sync.WaitGroup
	outcomes := make([]outcome, 10)
	for i := range outcomes {
		wg.Go(func() { outcomes[i] = writers[i%len(writers)](i) })
	}
	wg.Wait()
	env.Calls.Intercept(nil)
	n := 0
	for i, o := range outcomes {
		if o.stored {
			n++
		} else {
			require.True(t, o.noRoom, "writer %d: refused for want of room, nothing else: %s", i, o.answer)
		}
	}
	answers := fmt.Sprint(outcomes)
	require.GreaterOrEqual(t, n, 1, "what fits is written: %v", answers)
	used, hidden := volumeUsage(t, env, key, "edge")
	require.LessOrEqual(t, used, limit, "ten concurrent writers never exceed the quota: %v", answers)
	require.Equal(t, limit-room+int64(n)*size, used, "every write reported stored is there")
	require.False(t, hidden, "no spool left behind")

	// Each path alone, with no room left (filled up by a counted write: an
	// agent's own writes are only seen at the next measurement).
	resp, b = fdo(t, env, key, http.MethodPut, "/v1/files?path=rest-of-room", bytes.NewReader(make([]byte, limit-used-100)), nil)
	require.Equal(t, 201, resp.StatusCode, b)
	for i, w := range writers {
		o := w(100 + i)
		require.True(t, o.noRoom, "writer %d with no room: %s", i, o.answer)
	}
	resp, b = fdo(t, env, key, http.MethodPut, "/v1/threads/edge/files?path=/tmp/outside.bin", bytes.NewReader(body), nil)
	require.Equal(t, 201, resp.StatusCode, "a thread's own disk is not the volume: %s", b)
	_, hidden = volumeUsage(t, env, key, "edge")
	require.False(t, hidden)
}

// testDeleteDuringWrite: a write's spool sits next to its target from the
// end of its upload until its commit (Daytona's toolbox makes a file appear
// only once complete); each check below holds a write there.
//   - A non-recursive DELETE of a directory whose only content is such a
//     spool is refused (409), and the write lands.
//   - A WebDAV DELETE of the collection (recursive, RFC 4918) while a WebDAV
//     write is in flight inside it is 423: the write holds a lock on its
//     resource for its whole request (davlock), and the write lands.
//   - A WebDAV DELETE of the collection while a REST write is in flight
//     inside it (no WebDAV lock) removes its spool with everything else, and
//     the write then fails.
//
// A write is never reported stored and then missing, and nothing hidden or
// reserved is left.
func testDeleteDuringWrite(t *testing.T, env *testenv.Env) {
	user := "inflight-" + env.UserID
	key := env.Key(user, false)
	resp, b := fdo(t, env, key, http.MethodPost, "/v1/threads", strings.NewReader(`{"thread_id":"inflight"}`), map[string]string{"Content-Type": "application/json"})
	require.Contains(t, []int{200, 201}, resp.StatusCode, b)
	data := make([]byte, 400_000)
	_, _ = rand.Read(data)

	// holdCommit writes data with PUT url and holds its commit (the move of
	// its spool into dir) until the returned release is called.
	holdCommit := func(url, dir string) (release func() (int, string)) {
		spooled, proceed := make(chan struct{}), make(chan struct{})
		var spoolOnce, proceedOnce sync.Once
		let := func() { proceedOnce.Do(func() { close(proceed) }) }
		t.Cleanup(let)
		env.Calls.Intercept(func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
			q := r.URL.Query()
			if testenv.Route(r.URL.Path) == "files/move" && strings.Contains(q.Get("source"), "/"+dir+"/.tbpart-") {
				spoolOnce.Do(func() { close(spooled) })
				<-proceed
			}
			return false
		})
		type answer struct {
			status int
			body   string
		}
		done := make(chan answer, 1)
		go func() {
			req, err := http.NewRequest(http.MethodPut, env.URL+url, bytes.NewReader(data))
			if err != nil {
				done <- answer{0, err.Error()}
				return
			}
			req.Header.Set("Authorization", "Bearer "+key)
			resp, err := env.HTTP.Do(req)
			if err != nil {
				done <- answer{0, err.Error()}
				return
			}
			defer resp.Body.Close()
			rb, _ := io.ReadAll(resp.Body)
			done <- answer{resp.StatusCode, string(rb)}
		}()
		select {
		case <-spooled:
		case <-time.After(30 * time.Second):
			t.Fatal("the write never reached its commit")
		}
		require.Contains(t, execIn(t, env, key, "inflight", "ls -a /home/daytona/volume/"+dir), ".tbpart-", "the spool is there")
		return func() (int, string) {
			let()
			a := <-done
			env.Calls.Intercept(nil)
			return a.status, a.body
		}
	}

	release := holdCommit("/v1/files?path=inflight/f.bin", "inflight")
	resp, b = fdo(t, env, key, http.MethodDelete, "/v1/files?path=inflight", nil, nil)
	require.Equal(t, http.StatusConflict, resp.StatusCode, b)
	require.Contains(t, b, "directory_not_empty")
	status, answer := release()
	require.Equal(t, 201, status, answer)
	resp, b = fdo(t, env, key, http.MethodGet, "/v1/files?path=inflight/f.bin", nil, nil)
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, data, []byte(b), "the write in flight was not touched by the refused delete")

	resp, b = fdo(t, env, key, "MKCOL", "/dav/locked/", nil, nil)
	require.Equal(t, 201, resp.StatusCode, b)
	release = holdCommit("/dav/locked/f.bin", "locked")
	resp, b = fdo(t, env, key, http.MethodDelete, "/dav/locked/", nil, nil)
	require.Equal(t, http.StatusLocked, resp.StatusCode, "a WebDAV write in flight locks its resource: %s", b)
	status, answer = release()
	require.Equal(t, 201, status, answer)
	resp, b = fdo(t, env, key, http.MethodGet, "/v1/files?path=locked/f.bin", nil, nil)
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, data, []byte(b))

	resp, b = fdo(t, env, key, "MKCOL", "/dav/gone/", nil, nil)
	require.Equal(t, 201, resp.StatusCode, b)
	release = holdCommit("/v1/files?path=gone/f.bin", "gone")
	resp, b = fdo(t, env, key, http.MethodDelete, "/dav/gone/", nil, nil)
	require.Equal(t, http.StatusNoContent, resp.StatusCode, b)
	status, answer = release()
	require.GreaterOrEqual(t, status, 400, "the write whose directory was deleted under it failed: %s", answer)
	resp, _ = fdo(t, env, key, http.MethodGet, "/v1/files?path=gone/f.bin", nil, nil)
	require.Equal(t, 404, resp.StatusCode, "a failed write leaves nothing")
	require.NotContains(t, execIn(t, env, key, "inflight", "ls -aR /home/daytona/volume"), ".tb", "nothing hidden left behind")
	var reserved int
	require.NoError(t, env.Pool.QueryRow(context.Background(), `SELECT count(*) FROM volume_reservations WHERE user_id = $1`, user).Scan(&reserved))
	require.Zero(t, reserved, "every write's reservation ended")
}

// With the shared-volume strategy every user is a subpath of one Daytona
// volume, mounted alone at the volume path of their sandboxes: the quota is
// still per user, and measured over that user's subpath only.
func TestFilesSharedVolumeQuotaPerUser(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	env := testenv.New(t, testenv.Options{FilesAutoStop: time.Minute, AutoStop: time.Minute, AutoDelete: time.Minute,
		Configure: func(c *config.Config) { c.VolumeStrategy = config.VolumeShared }})
	const room = 1 << 20
	full := fillVolume(t, env, "full", "fill", room)
	other := env.Key("other-"+env.UserID, false)
	big := make([]byte, 2<<20)

	resp, b := fdo(t, env, full, http.MethodPut, "/v1/files?path=big.bin", bytes.NewReader(big), nil)
	require.Equal(t, http.StatusInsufficientStorage, resp.StatusCode, b)
	require.Contains(t, b, "quota_exceeded")
	resp, b = fdo(t, env, other, http.MethodPut, "/v1/files?path=big.bin", bytes.NewReader(big), nil)
	require.Equal(t, 201, resp.StatusCode, "another user of the same Daytona volume has their own quota: %s", b)

	var fullUsed, otherUsed int64
	ctx := context.Background()
	require.NoError(t, env.Pool.QueryRow(ctx, `SELECT used_bytes FROM volumes WHERE user_id = $1`, "full-"+env.UserID).Scan(&fullUsed))
	require.NoError(t, env.Pool.QueryRow(ctx, `SELECT used_bytes FROM volumes WHERE user_id = $1`, "other-"+env.UserID).Scan(&otherUsed))
	require.Equal(t, env.Config.VolumeQuotaBytes()-room, fullUsed, "measured over the user's own subpath")
	require.EqualValues(t, len(big), otherUsed, "the other user's usage holds only their file")
	out := execIn(t, env, full, "fill", "ls /home/daytona/volume")
	require.Contains(t, out, "filler")
	require.NotContains(t, out, "big.bin", "a user's sandbox sees only their subpath")
}
