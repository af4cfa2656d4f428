// Package httpserve runs an http.Server until its context ends, then drains
// it: the one shutdown sequence of threadbox's listeners.
package httpserve

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"
)

// Until serves srv on ln until ctx is done, then stops accepting and waits up
// to drain for in-flight requests. It returns the server's error if it fails
// before that, and nil after a clean (or drain-bounded) shutdown.
func Until(ctx context.Context, srv *http.Server, ln net.Listener, drain time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drain)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		return nil
	}
}
