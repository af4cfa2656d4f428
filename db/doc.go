// Package db owns threadbox's PostgreSQL schema and queries. The schema lives in
// goose migrations embedded in the binary (applied by every process at start,
// so a fresh database never needs a manual step) and the queries are compiled
// by sqlc into the *.gen.go files here, which are generated and never edited:
// run `make sqlc` after changing db/queries or db/migrations.
package db
