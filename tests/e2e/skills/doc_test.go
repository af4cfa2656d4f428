// Package e2e_test is the skill_admin suite: every admin route of the skills
// and snapshots API, end to end on the real parts (PostgreSQL, the Daytona
// emulator, a Temporal dev server, the worker and the API server, through
// internal/testenv), including the failures (401/403, 404, 400, 409, 413).
package e2e_test
