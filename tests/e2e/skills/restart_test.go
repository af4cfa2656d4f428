package e2e_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/threadbox/threadbox/emulator"
	"github.com/threadbox/threadbox/internal/testenv"
	st "github.com/threadbox/threadbox/skills/skilltest"
)

// TestWorkerRestartDuringBuildResumesSameBuild: the worker dies while a
// snapshot build runs; the next worker resumes the same build (same version,
// same Daytona snapshot name, found by name), which completes and is
// promoted; no second snapshot and no scratch sandbox are left behind.
func TestWorkerRestartDuringBuildResumesSameBuild(t *testing.T) {
	env := testenv.New(t, testenv.Options{Faults: emulator.Faults{Latency: 150 * time.Millisecond}})
	admin := saClient{t: t, env: env, key: env.AdminKey}
	s, b := admin.upload(st.Zip(st.Valid("resilient", "")...))
	if s != http.StatusAccepted {
		t.Fatalf("upload = %d %s", s, b)
	}
	var up saUpload
	mustJSON(t, b, &up)

	testenv.Eventually(t, flowTimeout, "the build to start", func() bool {
		for _, s := range admin.snapshots() {
			if !s.Base && s.State == "building" {
				return true
			}
		}
		return false
	})
	// Stop the worker only once BuildSnapshotImage really runs, so the restart
	// interrupts it (stopping earlier would prove nothing).
	testenv.Eventually(t, flowTimeout, "BuildSnapshotImage to be running", func() bool {
		d, err := env.Temporal.DescribeWorkflowExecution(context.Background(), "snapshot-build:1", "")
		if err != nil {
			return false
		}
		for _, a := range d.GetPendingActivities() {
			if a.GetActivityType().GetName() == "BuildSnapshotImage" && a.GetState() == enumspb.PENDING_ACTIVITY_STATE_STARTED {
				return true
			}
		}
		return false
	})
	env.StopWorker()
	building := admin.snapshots()[0]
	time.Sleep(500 * time.Millisecond)
	env.StartWorker()

	sk := admin.waitSkill(up.SkillID, 2*flowTimeout, "published", "invalid")
	if sk.Status != "published" {
		t.Fatalf("skill = %+v", sk)
	}
	snaps := admin.snapshots()
	if len(snaps) != 2 {
		t.Fatalf("want one built version plus the base, got %+v", snaps)
	}
	if v := snaps[0]; v.ID != building.ID || v.DaytonaName != building.DaytonaName || !v.Active || v.State != "ready" {
		t.Errorf("the resumed build is %+v, the interrupted one was %+v", v, building)
	}
	if n := buildAttempts(t, env, "snapshot-build:1"); n < 2 {
		t.Errorf("BuildSnapshotImage ran %d time(s); the restart did not interrupt it, so this test proved nothing", n)
	}
	snap, err := env.Gateway.GetSnapshot(context.Background(), building.DaytonaName)
	if err != nil || snap.State != "active" {
		t.Errorf("daytona snapshot %s: %+v %v", building.DaytonaName, snap, err)
	}
	testenv.Eventually(t, 30*time.Second, "scratch sandboxes deleted", func() bool {
		return len(liveScratch(t, env)) == 0
	})
	if !strings.HasPrefix(building.DaytonaName, "threadbox-skills-v1-") {
		t.Errorf("name = %s", building.DaytonaName)
	}
}

// buildAttempts is the attempt number of BuildSnapshotImage's final attempt
// in a build's history.
func buildAttempts(t *testing.T, env *testenv.Env, workflowID string) int32 {
	t.Helper()
	it := env.Temporal.GetWorkflowHistory(context.Background(), workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	scheduled := map[int64]string{}
	var attempts int32
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			scheduled[ev.GetEventId()] = a.GetActivityType().GetName()
		}
		if a := ev.GetActivityTaskStartedEventAttributes(); a != nil && scheduled[a.GetScheduledEventId()] == "BuildSnapshotImage" {
			attempts = a.GetAttempt()
		}
	}
	return attempts
}
