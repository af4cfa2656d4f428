// Package workflows holds threadbox's Temporal workflows: one long-lived entity
// workflow per thread (`thread:<user>:<thread>`) and per files session
// (`files:<user>`), whose timers are the authority on when a sandbox stops and
// is deleted, plus the skill validation, snapshot build and rollback
// workflows. It also defines the ids, message names and payload types the API
// uses to talk to them; it never imports db or daytona (activities do).
package workflows
