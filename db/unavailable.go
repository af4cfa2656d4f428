package db

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
)

// ErrUnavailable marks an error as PostgreSQL being out of reach (down,
// restarting, failing over, or its connection cut) rather than a fault of
// the query: the API answers it 503 database_unavailable with Retry-After,
// not 500. Use Unavailable to recognise one, wrapped or raw.
var ErrUnavailable = errors.New("database unavailable")

// SQLSTATEs PostgreSQL sends when it ends a session on its own initiative:
// a fast or immediate shutdown (57P01 admin_shutdown, which
// pg_terminate_backend also sends), a crash of another backend (57P02
// crash_shutdown) and a server still starting or recovering (57P03
// cannot_connect_now). Class 08 (connection exception) is the protocol's
// own family of connection failures.
const (
	sqlstateAdminShutdown    = "57P01"
	sqlstateCrashShutdown    = "57P02"
	sqlstateCannotConnectNow = "57P03"
	sqlstateClassConnection  = "08"
)

// Unavailable reports whether err says PostgreSQL could not be reached or
// dropped the connection, as opposed to refusing a query (a constraint, a
// syntax error, a missing row): a connect error, a session ended by the
// server (57P01/57P02/57P03, class 08), or the connection broken under the
// query (EOF, reset, refused). A cancelled or expired context is never
// Unavailable: the caller gave up, the database did not.
func Unavailable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if errors.Is(err, ErrUnavailable) {
		return true
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return serverEnded(pe.Code)
	}
	// A connection broken under a query (the server gone, a reset, a
	// proxy cut) comes wrapped in one of pgconn's own errors, which all
	// say whether the query may be retried: true means nothing reached the
	// server (a connection pgx had already found closed); otherwise it is
	// a network failure only when the cause is one. Network errors that did
	// not come through pgx (a client's body, Daytona) are not ours to call.
	var pgx interface{ SafeToRetry() bool }
	if !errors.As(err, &pgx) {
		return false
	}
	if pgx.SafeToRetry() {
		return true
	}
	var ne *net.OpError
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.As(err, &ne)
}

// RetryRead runs an idempotent read and, when it failed because the
// connection was lost (a restart, a failover, pg_terminate_backend), runs it
// once more: the pool has dropped the broken connection by then, so the
// second try gets a fresh one and a one-off blip costs the client nothing.
// Only reads may be retried this way: a write whose connection broke may
// have committed.
func RetryRead[T any](ctx context.Context, read func(context.Context) (T, error)) (T, error) {
	v, err := read(ctx)
	if err == nil || !Unavailable(err) || ctx.Err() != nil {
		return v, err
	}
	return read(ctx)
}
