// Package archtest holds the tests that keep threadbox's shape: imports
// flow one way through the layers named in docs/ARCHITECTURE.md, and the
// entity vocabulary (workflow ids, message names, search attributes, sandbox
// paths) is spelled only in package entity.
package archtest
