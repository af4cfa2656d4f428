// Package temporalrpc bounds how long an API request waits for a Temporal
// server that cannot be reached.
//
// The Temporal SDK retries a call that fails with gRPC Unavailable (a refused
// or reset connection) until the call's context ends. That rides out a blip,
// but while the server is down an API request that needs it (a thread's
// create or delete) hangs until its own deadline — a minute for an
// ensure-running — and then fails with a context error, which is neither
// typed as an outage nor quick. Requests marked with FailFast instead end
// with the Unavailable error (503 orchestrator_unavailable, Retry-After) once
// every attempt for Grace has failed Unavailable. Other calls (the worker's
// polls and completions, background signals) keep the SDK's behaviour.
//
// It is also where transport failures are typed: a stream the server side
// reset (RST_STREAM, which gRPC reports as Canceled or Internal) is
// Unavailable, for every call, so it is retried and, for an API request,
// answered 503 orchestrator_unavailable by api/apierr.
package temporalrpc

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"go.temporal.io/api/serviceerror"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Grace is how long a marked call keeps retrying while every attempt fails
// Unavailable: long enough for a frontend that restarts or a connection
// that is re-dialled, short beside the 5 s Retry-After the client is told.
const Grace = 3 * time.Second

type failFastKey struct{}

// FailFast marks ctx: a Temporal call made with it (or a context derived
// from it, context.WithoutCancel included) gives up once the server has been
// unreachable for Grace, with *serviceerror.Unavailable.
func FailFast(ctx context.Context) context.Context {
	return context.WithValue(ctx, failFastKey{}, true)
}

// DialOptions are the gRPC dial options (client.ConnectionOptions.DialOptions)
// of a Temporal client that honours FailFast: an outermost interceptor
// around the SDK's retries, which ends a marked call the inner one found
// unreachable for grace, and an innermost one that sees each attempt.
func DialOptions(grace time.Duration) []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithUnaryInterceptor(outer),
		grpc.WithChainUnaryInterceptor(inner(grace)),
	}
}

// errUnreachable is the cause with which a marked call's context is
// cancelled when its attempts failed Unavailable for the grace.
var errUnreachable = errors.New("temporal unreachable")

type callKey struct{}

// call is one marked call across the SDK's attempts.
type call struct {
	cancel context.CancelCauseFunc
	mu     sync.Mutex
	since  time.Time // the first of the current run of Unavailable attempts
	last   error     // the latest Unavailable attempt's error
}

// outer runs outside the SDK's interceptors (retry and error conversion), so
// what it returns reaches the SDK's caller as is: a *serviceerror, as the
// SDK's own error interceptor would have made it.
func outer(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if ctx.Value(failFastKey{}) == nil {
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	c := &call{cancel: cancel}
	err := invoker(context.WithValue(ctx, callKey{}, c), method, req, reply, cc, opts...)
	if err != nil && errors.Is(context.Cause(ctx), errUnreachable) {
		c.mu.Lock()
		last := c.last
		c.mu.Unlock()
		return serviceerror.FromStatus(status.Convert(last))
	}
	return err
}

// inner sees each attempt: a run of Unavailable attempts longer than grace
// cancels the call, which stops the SDK's retry loop at its next wait.
func inner(grace time.Duration) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		err := invoker(ctx, method, req, reply, cc, opts...)
		err = transportUnavailable(ctx, err)
		c, ok := ctx.Value(callKey{}).(*call)
		if !ok {
			return err
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if status.Code(err) != codes.Unavailable {
			c.since, c.last = time.Time{}, nil
			return err
		}
		now := time.Now()
		if c.since.IsZero() {
			c.since = now
		}
		c.last = err
		if now.Sub(c.since) >= grace {
			c.cancel(errUnreachable)
		}
		return err
	}
}

// transportUnavailable types a transport failure of an attempt as the
// Unavailable it is, so the SDK retries it as it retries a refused
// connection and the API answers 503 orchestrator_unavailable, not 500.
// A stream the server side reset (RST_STREAM: a frontend or proxy that went
// away or shed the stream mid-call) arrives as Canceled (CANCEL) or
// Internal (INTERNAL_ERROR) although the caller cancelled nothing. The
// caller's own cancellation (ctx done) stays Canceled, and an Internal the
// server answered (its own failure, with no stream reset) stays Internal.
func transportUnavailable(ctx context.Context, err error) error {
	if err == nil || ctx.Err() != nil {
		return err
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	switch st.Code() {
	case codes.Canceled:
	case codes.Internal:
		if !strings.Contains(st.Message(), "RST_STREAM") {
			return err
		}
	default:
		return err
	}
	return status.Error(codes.Unavailable, "transport: "+st.Message())
}
