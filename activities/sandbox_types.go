package activities

import (
	"time"

	"github.com/threadbox/threadbox/entity"
)

// EnsureSandboxInput asks for the entity's sandbox of a given generation.
type EnsureSandboxInput struct {
	Kind     entity.Kind `json:"Kind"`
	UserID   string      `json:"UserID"`
	ThreadID string      `json:"ThreadID"` // empty for files sessions
	// Generation is the generation the workflow wants; the activity may pick a
	// higher one when that name already belonged to a destroyed sandbox.
	Generation int `json:"Generation"`
	// AutoStop and AutoDelete are the workflow's intervals; Daytona's backstops
	// are derived from them. AutoDelete 0 means "never" (files sessions).
	AutoStop   time.Duration `json:"AutoStop"`
	AutoDelete time.Duration `json:"AutoDelete"`
}

// SandboxRef names an existing sandbox of an entity.
type SandboxRef struct {
	Kind       entity.Kind `json:"Kind"`
	UserID     string      `json:"UserID"`
	ThreadID   string      `json:"ThreadID"`
	SandboxID  string      `json:"SandboxID"`
	Generation int         `json:"Generation"`
}

// SandboxInfo is what the workflow keeps about a running sandbox.
type SandboxInfo struct {
	SandboxID  string `json:"SandboxID"`
	Name       string `json:"Name"`
	ToolboxURL string `json:"ToolboxURL"`
	Snapshot   string `json:"Snapshot"`
	Generation int    `json:"Generation"`
}

// StopResult reports how a stop ended.
type StopResult struct {
	// Gone is true when Daytona no longer has the sandbox (its own backstop
	// deleted it): the entity has no sandbox any more.
	Gone bool `json:"Gone"`
}
