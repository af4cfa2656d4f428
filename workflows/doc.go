// Package workflows holds threadbox's Temporal workflows: one long-lived entity
// workflow per thread and per files session (ids, messages and payloads are
// package entity's vocabulary), whose timers are the authority on when a
// sandbox stops and is deleted, plus the skill validation, snapshot build,
// snapshot activation and orphan reconcile workflows. It never imports db or
// daytona (activities do). Every change to the commands a workflow issues is
// versioned (versions.go) and checked by replaying recorded histories
// (testdata/).
package workflows
