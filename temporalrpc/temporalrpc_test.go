package temporalrpc_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"golang.org/x/net/http2"

	"github.com/threadbox/threadbox/api/apierr"
	"github.com/threadbox/threadbox/temporalrpc"
)

// resettingServer is an HTTP/2 server that resets every stream it is sent
// with code, as a Temporal frontend (or a proxy before it) that sheds
// streams does: the client sees "stream terminated by RST_STREAM".
func resettingServer(t *testing.T, code http2.ErrCode) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serveResets(c, code)
		}
	}()
	return ln.Addr().String()
}

func serveResets(c net.Conn, code http2.ErrCode) {
	defer c.Close()
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(c, preface); err != nil {
		return
	}
	fr := http2.NewFramer(c, c)
	if fr.WriteSettings() != nil {
		return
	}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				err = fr.WriteSettingsAck()
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				err = fr.WritePing(true, f.Data)
			}
		case *http2.HeadersFrame:
			err = fr.WriteRSTStream(f.StreamID, code)
		}
		if err != nil {
			return
		}
	}
}

// A Temporal call whose stream the server resets, while the caller's
// context is live, is a transport failure: Unavailable (503
// orchestrator_unavailable with Retry-After), not the Canceled or Internal
// gRPC reports, which reached apierr untyped as a 500 (fault suite at
// 9b7ac62: "delete thread: stream terminated by RST_STREAM with error code:
// CANCEL").
func TestResetStreamIsUnavailable(t *testing.T) {
	for _, code := range []http2.ErrCode{http2.ErrCodeCancel, http2.ErrCodeInternal} {
		t.Run(code.String(), func(t *testing.T) {
			c, err := client.NewLazyClient(client.Options{
				HostPort:          resettingServer(t, code),
				ConnectionOptions: client.ConnectionOptions{DialOptions: temporalrpc.DialOptions(temporalrpc.Grace)},
			})
			require.NoError(t, err)
			defer c.Close()
			ctx, cancel := context.WithTimeout(temporalrpc.FailFast(context.Background()), time.Minute)
			defer cancel()
			err = c.SignalWorkflow(ctx, "wf", "", "sig", nil)
			require.Error(t, err)
			var unavailable *serviceerror.Unavailable
			require.True(t, errors.As(err, &unavailable), "want Unavailable, got %T: %v", err, err)
			require.Contains(t, err.Error(), "RST_STREAM")
			require.NoError(t, ctx.Err(), "ended by the grace, not the caller's deadline")
			e := apierr.Classify(err)
			require.Equal(t, http.StatusServiceUnavailable, e.Status)
			require.Equal(t, "orchestrator_unavailable", e.Code)
			require.Positive(t, e.RetryAfter)
		})
	}
}

// The caller's own cancellation stays a cancellation.
func TestCallerCancelStaysCanceled(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never answers
	require.NoError(t, err)
	defer ln.Close()
	c, err := client.NewLazyClient(client.Options{
		HostPort:          ln.Addr().String(),
		ConnectionOptions: client.ConnectionOptions{DialOptions: temporalrpc.DialOptions(temporalrpc.Grace)},
	})
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithCancel(temporalrpc.FailFast(context.Background()))
	time.AfterFunc(200*time.Millisecond, cancel)
	err = c.SignalWorkflow(ctx, "wf", "", "sig", nil)
	require.Error(t, err)
	var unavailable *serviceerror.Unavailable
	require.False(t, errors.As(err, &unavailable), "a caller's cancel is not an outage: %v", err)
}
