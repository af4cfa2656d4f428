package dav

import (
	"sync"

	"github.com/threadbox/threadbox/daytona"
)

// statCache remembers, for one request, what the sandbox said about paths:
// listings fill it for every child, so the engine's re-Stat and re-open of
// each PROPFIND entry cost nothing. Missing paths are remembered too (LOCK
// and MOVE stat their target first). Any change through the FileSystem
// clears it; it dies with the request, so other writers are seen next time.
type statCache struct {
	mu      sync.Mutex
	entries map[string]statEntry
}

type statEntry struct {
	fi      daytona.FileInfo
	missing bool
}

func (c *statCache) get(name string) (statEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[name]
	return e, ok
}

func (c *statCache) put(name string, e statEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[string]statEntry{}
	}
	c.entries[name] = e
}

func (c *statCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries = nil
}
