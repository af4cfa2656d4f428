package devstack

import (
	"io"
	"log/slog"

	tlog "go.temporal.io/sdk/log"
)

// quietLogger silences the SDK while polling a server that is still starting.
func quietLogger() tlog.Logger {
	return tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
}
