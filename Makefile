# threadbox: the two commands of the README are `make run` and `make test`.
GO      ?= go
BIN     := $(CURDIR)/.bin
TEMPORAL_VERSION := v1.5.1
SQLC_VERSION     := v1.31.1
VERSITYGW_VERSION := v1.8.0

.PHONY: run test fault tools versitygw bwrap sqlc sqlc-check vet build bench api-docs bench-emulator bench-daytona \
	bench-threads-exec bench-threads-create bench-threads-idle bench-threads-history bench-files-get \
	bench-files-get-curl bench-files-other

## run: the whole system on this machine (emulator, Temporal dev server + UI, API, worker)
run: tools bwrap
	$(GO) run ./cmd/threadbox dev

## test: the full test suite (unit, PostgreSQL, Temporal dev server, emulator, WebDAV/tus
## clients, an S3 gateway)
test: tools versitygw bwrap sqlc-check vet
	$(GO) test -race -count=1 -timeout 25m ./...

## fault: the long fault suite (tests/fault: worker and serve SIGKILLs, emulator outages and
## faults, PostgreSQL restarts under a lifecycle load; 11–13 min), whose figures are in
## docs/RELIABILITY.md; `make test` runs its small version
fault: tools versitygw bwrap
	THREADBOX_FAULT_LONG=1 THREADBOX_FAULT_REPORT=$(CURDIR)/fault-report.txt \
	  $(GO) test -count=1 -v -timeout 45m -run TestFaultSuite ./tests/fault/

## bwrap: install bubblewrap when missing, as .ci/run does: the emulator runs every
## sandbox's commands in bubblewrap namespaces and refuses to start without it
bwrap:
	@command -v bwrap >/dev/null 2>&1 || { \
	  echo "make: installing bubblewrap (the emulator's sandbox isolation)"; \
	  sudo=; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  $$sudo apt-get update -q && $$sudo apt-get install -y -q --no-install-recommends bubblewrap; }

## tools: install the Temporal CLI and sqlc into .bin/ when missing (`make test` also
## builds versitygw, the S3-compatible gateway the upload tests spool into; Apache-2.0)
tools: $(BIN)/temporal $(BIN)/sqlc

$(BIN)/temporal:
	GOBIN=$(BIN) $(GO) install github.com/temporalio/cli/cmd/temporal@$(TEMPORAL_VERSION)

$(BIN)/sqlc:
	GOBIN=$(BIN) $(GO) install github.com/sqlc-dev/sqlc/cmd/sqlc@$(SQLC_VERSION)

## versitygw: the S3 gateway the upload tests start (internal/testenv.S3)
versitygw: $(BIN)/versitygw

$(BIN)/versitygw:
	GOBIN=$(BIN) $(GO) install github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION)

## sqlc: regenerate db/*.gen.go from db/queries and db/migrations
sqlc: $(BIN)/sqlc
	$(BIN)/sqlc generate

## sqlc-check: fail when the committed generated code drifts from the queries
sqlc-check: $(BIN)/sqlc
	$(BIN)/sqlc diff

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || (gofmt -l . && echo "gofmt needed" && exit 1)

## api-docs: regenerate docs/API.md from api/openapi/openapi.yaml (a test fails when it is stale)
api-docs:
	$(GO) generate ./api/openapi

build:
	$(GO) build -o threadbox ./cmd/threadbox

## bench: every table of docs/BENCHMARKS.md, each with the command recorded under it
## (one target per table; ≈ 25 min on 2 cores, the busy-thread history 10 of them)
BENCH = $(GO) test -run '^$$' -timeout 60m
bench: tools bench-emulator bench-daytona bench-threads-exec bench-threads-create bench-threads-idle \
	bench-threads-history bench-files-get bench-files-get-curl bench-files-other

bench-emulator:
	$(BENCH) -bench . -benchtime 5x ./emulator/
bench-daytona:
	$(BENCH) -bench . -benchtime 10x ./daytona/
bench-threads-exec:
	$(BENCH) -bench 'Threads/Exec' -benchtime 1x ./tests/bench/threads
bench-threads-create:
	THREADBOX_BENCH_TRACE=1 $(BENCH) -bench 'Threads/Create' -benchtime 1x ./tests/bench/threads
bench-threads-idle:
	$(BENCH) -bench 'Threads/Idle' -benchtime 1x ./tests/bench/threads
bench-threads-history:
	THREADBOX_BENCH_BUSY_SECONDS=600 $(BENCH) -bench BusyThreadHistory -benchtime 1x ./tests/bench/threads
bench-files-get:
	$(BENCH) -bench 'Files/(Get100MB|GetSmall)$$' -benchtime 10x -count 8 ./tests/bench/files
bench-files-get-curl:
	$(BENCH) -bench 'Files/Get100MBCurl' -benchtime 1x ./tests/bench/files
bench-files-other:
	$(BENCH) -bench 'Files/(Propfind|Tus|Put)' -benchtime 3x ./tests/bench/files
