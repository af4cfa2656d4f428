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
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/threadbox/threadbox/db"
)

// keyPrefix marks threadbox keys so that secret scanners and people can
// recognise them.
const keyPrefix = "tb_"

// ErrInvalidKey is returned for a key that is malformed, unknown, revoked or
// expired; callers answer 401 without saying which.
var ErrInvalidKey = errors.New("invalid api key")

// ErrKeyNotFound is returned by Get and Revoke for an id no key has.
var ErrKeyNotFound = errors.New("api key not found")

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

// Spec describes a key to issue.
type Spec struct {
	UserID string
	Admin  bool
	// ExpiresAt, when not zero, is the moment the key stops verifying.
	ExpiresAt time.Time
}

// Create is Issue for a key that never expires.
func (s *Store) Create(ctx context.Context, userID string, admin bool) (string, db.ApiKey, error) {
	return s.Issue(ctx, Spec{UserID: userID, Admin: admin})
}

// Issue makes a new key and returns it in clear; this is the only time the
// clear key exists outside the caller.
func (s *Store) Issue(ctx context.Context, spec Spec) (string, db.ApiKey, error) {
	if err := ValidUserID(spec.UserID); err != nil {
		return "", db.ApiKey{}, err
	}
	var expires *time.Time
	if !spec.ExpiresAt.IsZero() {
		t := spec.ExpiresAt.UTC()
		expires = &t
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", db.ApiKey{}, fmt.Errorf("generating key: %w", err)
	}
	key := keyPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	row, err := s.q.CreateAPIKey(ctx, db.CreateAPIKeyParams{
		ID:        uuid.New(),
		UserID:    spec.UserID,
		KeyHash:   Hash(key),
		KeyPrefix: key[:len(keyPrefix)+6],
		IsAdmin:   spec.Admin,
		ExpiresAt: expires,
	})
	if err != nil {
		return "", db.ApiKey{}, fmt.Errorf("storing key: %w", err)
	}
	return key, row, nil
}

// Verify returns the principal of a live key, or ErrInvalidKey. It asks
// PostgreSQL every time; the API verifies through a Cache.
func (s *Store) Verify(ctx context.Context, key string) (Principal, error) {
	p, _, err := s.verify(ctx, key)
	return p, err
}

// verify is Verify that also returns the key's expiry (zero: none).
func (s *Store) verify(ctx context.Context, key string) (Principal, time.Time, error) {
	if !strings.HasPrefix(key, keyPrefix) || len(key) > 128 {
		return Principal{}, time.Time{}, ErrInvalidKey
	}
	// Every request's first query: retried once on a fresh connection when
	// PostgreSQL dropped the first (a restart, a failover, a terminated
	// backend), so a blip does not fail the request.
	h := Hash(key)
	row, err := db.RetryRead(ctx, func(ctx context.Context) (db.ApiKey, error) {
		return s.q.GetActiveAPIKeyByHash(ctx, h)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return Principal{}, time.Time{}, ErrInvalidKey
	}
	if err != nil {
		return Principal{}, time.Time{}, fmt.Errorf("looking up key: %w", err)
	}
	var expires time.Time
	if row.ExpiresAt != nil {
		expires = *row.ExpiresAt
	}
	return Principal{UserID: row.UserID, Admin: row.IsAdmin, KeyID: row.ID}, expires, nil
}

// Get returns the key with that id (ErrKeyNotFound when there is none).
func (s *Store) Get(ctx context.Context, id uuid.UUID) (KeyInfo, error) {
	row, err := s.q.GetAPIKey(ctx, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return KeyInfo{}, ErrKeyNotFound
	}
	if err != nil {
		return KeyInfo{}, fmt.Errorf("reading key: %w", err)
	}
	return infoOf(row, time.Now()), nil
}

// List returns the keys of userID (every user's when empty), oldest first;
// revoked and expired keys only with includeInactive.
func (s *Store) List(ctx context.Context, userID string, includeInactive bool) ([]KeyInfo, error) {
	var user *string
	if userID != "" {
		user = &userID
	}
	rows, err := s.q.ListAPIKeys(ctx, db.ListAPIKeysParams{UserID: user, IncludeInactive: includeInactive})
	if err != nil {
		return nil, fmt.Errorf("listing keys: %w", err)
	}
	now := time.Now()
	out := make([]KeyInfo, 0, len(rows))
	for _, r := range rows {
		out = append(out, infoOf(r, now))
	}
	return out, nil
}

// Revoke disables a key. It reports whether this call revoked it (false:
// it was revoked before); ErrKeyNotFound when no key has that id. Every API
// replica refuses the key within CacheTTL.
func (s *Store) Revoke(ctx context.Context, id uuid.UUID) (bool, error) {
	n, err := s.q.RevokeAPIKey(ctx, id)
	if err != nil {
		return false, fmt.Errorf("revoking key: %w", err)
	}
	if n == 1 {
		return true, nil
	}
	if _, err := s.Get(ctx, id); err != nil {
		return false, err
	}
	return false, nil
}

// KeyInfo is a key as admins see it (CLI and admin routes): never its
// secret, only the short prefix that identifies it.
type KeyInfo struct {
	ID         uuid.UUID  `json:"id"`
	UserID     string     `json:"user_id"`
	Prefix     string     `json:"prefix"`
	Admin      bool       `json:"admin"`
	State      string     `json:"state"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
}

// Key states in KeyInfo.State.
const (
	KeyActive  = "active"
	KeyRevoked = "revoked"
	KeyExpired = "expired"
)

func infoOf(r db.ApiKey, now time.Time) KeyInfo {
	state := KeyActive
	switch {
	case r.RevokedAt != nil:
		state = KeyRevoked
	case r.ExpiresAt != nil && !r.ExpiresAt.After(now):
		state = KeyExpired
	}
	return KeyInfo{
		ID: r.ID, UserID: r.UserID, Prefix: r.KeyPrefix, Admin: r.IsAdmin, State: state,
		CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt, RevokedAt: r.RevokedAt, LastUsedAt: r.LastUsedAt,
	}
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
