package db

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// suspectFor is how long after a lost connection every connection taken
// from the pool is pinged first: a restart or a failover ends all of them
// at once, and pgx only notices a dead idle connection when it is used, so
// without the ping each dead one would fail a request (and a read's one
// retry could meet the next dead one).
const suspectFor = 5 * time.Second

// losses records when the pool last lost a connection (unix nanoseconds).
type losses struct{ last atomic.Int64 }

func (l *losses) mark() { l.last.Store(time.Now().UnixNano()) }

func (l *losses) recent() bool {
	last := l.last.Load()
	return last != 0 && time.Since(time.Unix(0, last)) < suspectFor
}

// newPool builds a pool for url that recognises a lost connection at the
// source: a network failure on a connection (EOF, reset, refused) comes out
// of every query wrapped in ErrUnavailable, a session the server ends
// (57P01 and friends) is a PgError Unavailable recognises, and either makes
// the pool ping connections before use for a few seconds, so dead ones are
// replaced instead of handed out.
func newPool(ctx context.Context, url string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	l := &losses{}
	dial := cfg.ConnConfig.DialFunc
	cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			l.mark()
			return nil, err
		}
		return &watchedConn{Conn: c, losses: l}, nil
	}
	onPgError := cfg.ConnConfig.OnPgError
	cfg.ConnConfig.OnPgError = func(pc *pgconn.PgConn, pe *pgconn.PgError) bool {
		if serverEnded(pe.Code) {
			l.mark()
		}
		if onPgError != nil {
			return onPgError(pc, pe)
		}
		return !strings.EqualFold(pe.Severity, "FATAL")
	}
	cfg.ShouldPing = func(_ context.Context, p pgxpool.ShouldPingParams) bool {
		return p.IdleDuration > time.Second || l.recent()
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	return pool, nil
}

// serverEnded reports whether a SQLSTATE says the server ended the session.
func serverEnded(code string) bool {
	return code == sqlstateAdminShutdown || code == sqlstateCrashShutdown || code == sqlstateCannotConnectNow ||
		strings.HasPrefix(code, sqlstateClassConnection)
}

// watchedConn is a connection to PostgreSQL whose failures are typed: a
// read or write that fails for any reason but a deadline (pgx's own
// cancellation) or our own close is the connection lost, and says so
// (ErrUnavailable), whatever pgx wraps around it.
type watchedConn struct {
	net.Conn
	losses *losses
}

func (c *watchedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	return n, c.lost(err)
}

func (c *watchedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	return n, c.lost(err)
}

func (c *watchedConn) lost(err error) error {
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, net.ErrClosed) {
		return err
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return err
	}
	c.losses.mark()
	return &lostError{err: err}
}

// lostError is a network failure of a database connection: ErrUnavailable,
// and still the original error (a net.Error's Timeout, io.EOF) underneath.
type lostError struct{ err error }

func (e *lostError) Error() string   { return "database connection lost: " + e.err.Error() }
func (e *lostError) Unwrap() []error { return []error{ErrUnavailable, e.err} }
