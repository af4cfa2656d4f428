// Package files holds the benchmarks of the files area (WebDAV, tus) against
// a whole threadbox on loopback (internal/testenv: emulator, Temporal,
// PostgreSQL, worker, API). They are Go benchmarks, so the normal test run
// never executes them:
//
//	go test ./tests/bench/files -run '^$' -bench . -benchtime 3x -timeout 30m
//
// Results and the machine they ran on are recorded in docs/BENCHMARKS.md
// ("Files").
package files
