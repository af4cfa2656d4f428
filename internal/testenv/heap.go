package testenv

import (
	"runtime/metrics"
	"sync"
	"time"
)

// heapMetric is the Go heap held by objects (live or not yet swept).
const heapMetric = "/memory/classes/heap/objects:bytes"

// HeapBytes is the heap held by objects now.
func HeapBytes() uint64 {
	s := []metrics.Sample{{Name: heapMetric}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// SamplePeakHeap records the highest heap held by objects, every 5 ms,
// into peak until the returned stop is called: for memory figures of a
// whole in-process system under load (benchmarks, and tests that run in a
// package of their own so nothing else shares the heap).
func SamplePeakHeap(peak *uint64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			if v := HeapBytes(); v > *peak {
				*peak = v
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	return func() { close(done); wg.Wait() }
}
