package daytona

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestErrorMapping drives the generated clients against canned responses: every status is
// mapped to its kind, Daytona's JSON message is kept and Retry-After is parsed.
func TestErrorMapping(t *testing.T) {
	var status int
	var retryAfter string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"path":%q,"timestamp":"2025-01-01T00:00:00Z","statusCode":%d,"error":"x","message":"msg %d"}`, r.URL.Path, status, status)
	}))
	defer srv.Close()
	g, err := New(Config{APIURL: srv.URL + "/api", APIKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cases := []struct {
		status    int
		lifecycle bool
		kind      error
		retryable bool
	}{
		{404, false, ErrNotFound, false},
		{409, false, ErrConflict, true},
		{400, false, ErrBadRequest, false},
		{400, true, ErrInvalidState, false},
		{401, false, ErrBadRequest, false},
		{429, false, ErrRateLimited, true},
		{500, false, ErrUnavailable, true},
		{503, true, ErrUnavailable, true},
	}
	for _, c := range cases {
		status = c.status
		retryAfter = ""
		if c.status == 429 {
			retryAfter = "7"
		}
		var err error
		if c.lifecycle {
			_, err = g.StartSandbox(ctx, "sb")
		} else {
			_, err = g.GetSandbox(ctx, "sb")
		}
		if !errors.Is(err, c.kind) {
			t.Errorf("status %d lifecycle=%v: got %v, want kind %v", c.status, c.lifecycle, err, c.kind)
			continue
		}
		var e *Error
		if !errors.As(err, &e) || e.Status != c.status || e.Message != fmt.Sprintf("msg %d", c.status) {
			t.Errorf("status %d: bad *Error %#v", c.status, e)
		}
		if Retryable(err) != c.retryable {
			t.Errorf("status %d: Retryable = %v", c.status, Retryable(err))
		}
		if c.status == 429 && RetryAfter(err) != 7*time.Second {
			t.Errorf("Retry-After: got %v", RetryAfter(err))
		}
	}
	// Connection refused → Unavailable.
	srv.Close()
	_, err = g.GetSandbox(ctx, "sb")
	if !errors.Is(err, ErrUnavailable) || !Retryable(err) {
		t.Fatalf("closed server: got %v", err)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	h := http.Header{}
	h.Set("Retry-After", now.Add(3*time.Second).Format(http.TimeFormat))
	if d := parseRetryAfter(h, now); d != 3*time.Second {
		t.Fatalf("date form: %v", d)
	}
	h.Set("Retry-After", "1.5")
	if d := parseRetryAfter(h, now); d != 1500*time.Millisecond {
		t.Fatalf("seconds form: %v", d)
	}
	h.Set("Retry-After", "soon")
	if d := parseRetryAfter(h, now); d != 0 {
		t.Fatalf("junk: %v", d)
	}
}

// TestKindFromMessage: the control-plane conditions that only Daytona's message tells
// apart (quoted from apps/api v0.190.0), on the statuses Daytona answers them with.
func TestKindFromMessage(t *testing.T) {
	const upgrade = "\nTo increase concurrency limits, upgrade your organization's Tier by visiting https://app.daytona.io/dashboard/limits."
	cases := []struct {
		status int
		msg    string
		kind   error
	}{
		{400, "Total CPU limit exceeded. Maximum allowed: 10." + upgrade, ErrOrgCapacity},
		{400, "Total memory limit exceeded. Maximum allowed: 10GiB." + upgrade, ErrOrgCapacity},
		{400, "Total disk limit exceeded. Maximum allowed: 30GiB.\nConsider archiving your unused Sandboxes to free up available storage." + upgrade, ErrOrgCapacity},
		{400, "Total GPU limit exceeded. Maximum allowed: 0.", ErrOrgCapacity},
		{403, "Total CPU limit exceeded. Maximum allowed: 10." + upgrade, ErrOrgCapacity}, // older servers: ForbiddenException
		{403, "Organization is suspended: Depleted credits", ErrOrgSuspended},
		{403, "Organization is suspended", ErrOrgSuspended},
		{400, "Volume quota exceeded. Maximum allowed: 100", ErrVolumeQuota},
		{400, "Snapshot deactivation is still in progress. Please try again in a few minutes.", ErrConflict},
		// Not capacity: a per-sandbox limit is a bad request that waiting will not fix.
		{400, "CPU request 8 exceeds maximum allowed per sandbox (4).", nil},
		{400, "Sandbox is in an errored state", nil},
		{500, "Total CPU limit exceeded. Maximum allowed: 10.", nil},
	}
	for _, c := range cases {
		if got := kindFromMessage(c.status, c.msg); got != c.kind {
			t.Errorf("%d %q: got %v, want %v", c.status, c.msg, got, c.kind)
		}
	}
	for _, k := range []error{ErrOrgCapacity, ErrOrgSuspended, ErrVolumeQuota} {
		if Retryable(&Error{Kind: k}) {
			t.Errorf("%v must not be retryable", k)
		}
	}
	if !volumeNameTaken(&Error{Status: 400, Message: "Volume with name tb-vol-u1 already exists"}) ||
		volumeNameTaken(&Error{Status: 400, Message: "Volume quota exceeded. Maximum allowed: 100"}) {
		t.Error("volumeNameTaken")
	}
	if !snapshotInactive(&Error{Status: 400, Message: "Snapshot tb-skills-v3 is inactive"}) ||
		snapshotInactive(&Error{Status: 400, Message: "Snapshot tb-skills-v3 is pending"}) {
		t.Error("snapshotInactive")
	}
}
