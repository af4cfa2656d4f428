package daytona

import (
	"net/http"
	"time"
)

// maxIdleConnsPerHost is how many idle connections the gateway keeps to one
// host (the control plane, a toolbox proxy). net/http's default is 2: with
// more concurrent callers than that, every call past the second closes its
// connection after use and the next one dials again (a TCP handshake, a TLS
// one against real Daytona), which is what made 32 concurrent execs cost
// more than 32 callers should.
const maxIdleConnsPerHost = 128

// transferBufferSize is the transport's read and write buffer: toolbox
// downloads and uploads are relayed in large chunks, so a 4 KiB buffer
// (the default) would cut every relay into many small syscalls.
const transferBufferSize = 256 << 10

// NewTransport returns the HTTP transport the gateway uses by default (and
// serve and worker wrap with InstrumentTransport): http.DefaultTransport's
// proxy, dial and TLS settings with keep-alives sized for concurrent
// callers, large buffers for transfers and no transparent gzip (the
// toolbox's files are relayed byte for byte; decompressing and
// recompressing them would only cost CPU).
func NewTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 4 * maxIdleConnsPerHost
	t.MaxIdleConnsPerHost = maxIdleConnsPerHost
	t.IdleConnTimeout = 90 * time.Second
	t.ReadBufferSize = transferBufferSize
	t.WriteBufferSize = transferBufferSize
	t.DisableCompression = true
	return t
}
