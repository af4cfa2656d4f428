// Package auth issues and checks threadbox API keys. Keys are random, shown
// once, and stored only as SHA-256 digests: a database leak does not leak
// usable credentials, and lookups stay a single indexed equality match (a slow
// password hash is unnecessary for 256-bit random secrets).
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/threadbox/threadbox/db"
)

// keyPrefix marks threadbox keys so that secret scanners and people can
// recognise them.
const keyPrefix = "tb_"

// ErrInvalidKey is returned for a key that is malformed, unknown or revoked;
// callers answer 401 without saying which.
var ErrInvalidKey = errors.New("invalid api key")

// Principal is who a request acts for.
type Principal struct {
	UserID string
	Admin  bool
	KeyID  uuid.UUID
}

// Hash is the stored form of a key.
func Hash(key string) []byte {
	sum := sha256.Sum256([]byte(key))
	return sum[:]
}

// Store creates and verifies keys in PostgreSQL.
type Store struct {
	q *db.Queries
}

// NewStore returns a Store over q.
func NewStore(q *db.Queries) *Store { return &Store{q: q} }

// Create makes a new key for userID and returns it in clear; this is the only
// time the clear key exists outside the caller.
func (s *Store) Create(ctx context.Context, userID string, admin bool) (string, db.ApiKey, error) {
	if err := ValidUserID(userID); err != nil {
		return "", db.ApiKey{}, err
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", db.ApiKey{}, fmt.Errorf("generating key: %w", err)
	}
	key := keyPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	row, err := s.q.CreateAPIKey(ctx, db.CreateAPIKeyParams{
		ID:        uuid.New(),
		UserID:    userID,
		KeyHash:   Hash(key),
		KeyPrefix: key[:len(keyPrefix)+6],
		IsAdmin:   admin,
	})
	if err != nil {
		return "", db.ApiKey{}, fmt.Errorf("storing key: %w", err)
	}
	return key, row, nil
}

// Verify returns the principal of a live key, or ErrInvalidKey.
func (s *Store) Verify(ctx context.Context, key string) (Principal, error) {
	if !strings.HasPrefix(key, keyPrefix) || len(key) > 128 {
		return Principal{}, ErrInvalidKey
	}
	row, err := s.q.GetActiveAPIKeyByHash(ctx, Hash(key))
	if errors.Is(err, pgx.ErrNoRows) {
		return Principal{}, ErrInvalidKey
	}
	if err != nil {
		return Principal{}, fmt.Errorf("looking up key: %w", err)
	}
	return Principal{UserID: row.UserID, Admin: row.IsAdmin, KeyID: row.ID}, nil
}

// Revoke disables a key; it reports whether a live key was revoked.
func (s *Store) Revoke(ctx context.Context, id uuid.UUID) (bool, error) {
	n, err := s.q.RevokeAPIKey(ctx, id)
	if err != nil {
		return false, fmt.Errorf("revoking key: %w", err)
	}
	return n == 1, nil
}

// ValidUserID accepts the user ids threadbox can carry safely into workflow
// ids, sandbox labels and volume names: 1 to 64 of [A-Za-z0-9._-], not
// starting with a dot.
func ValidUserID(id string) error {
	if id == "" || len(id) > 64 || id[0] == '.' || id[0] == '-' {
		return fmt.Errorf("user id %q: must be 1-64 characters of letters, digits, '.', '_' or '-'", id)
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("user id %q: must be 1-64 characters of letters, digits, '.', '_' or '-'", id)
		}
	}
	return nil
}
