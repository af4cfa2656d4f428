package volume

import (
	"context"
	"encoding/xml"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/threadbox/threadbox/db"
)

// Prop is one dead property of a resource: its name and inner XML (xml:lang
// is not kept).
type Prop struct {
	Name     xml.Name
	InnerXML []byte
}

// Props keeps a user's dead properties (set by WebDAV PROPPATCH) in
// PostgreSQL, keyed by volume path. They follow their resources: Volume.Move
// moves them and Volume.Remove deletes them.
type Props struct {
	Pool   *pgxpool.Pool
	UserID string
}

func (s *Props) q() *db.Queries { return db.New(s.Pool) }

// Load returns the dead properties of each path (paths without any are
// absent), in one query, so a listing costs one round trip however long it
// is.
func (s *Props) Load(ctx context.Context, paths []string) (map[string][]Prop, error) {
	rows, err := s.q().DeadProps(ctx, db.DeadPropsParams{UserID: s.UserID, Paths: paths})
	if err != nil {
		return nil, fmt.Errorf("loading dead properties: %w", err)
	}
	out := make(map[string][]Prop, len(paths))
	for _, r := range rows {
		out[r.Path] = append(out[r.Path], Prop{Name: xml.Name{Space: r.Namespace, Local: r.Local}, InnerXML: []byte(r.Xml)})
	}
	return out, nil
}

// PropChange sets a property, or removes it (Remove, InnerXML unused).
type PropChange struct {
	Prop
	Remove bool
}

// Apply makes the changes to name's properties in their order (a set then a
// remove of one property removes it), in one transaction: all or nothing,
// as PROPPATCH requires.
func (s *Props) Apply(ctx context.Context, name string, changes []PropChange) error {
	tx, err := s.Pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("patching dead properties of %s: %w", name, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // no-op after Commit
	q := db.New(tx)
	for _, c := range changes {
		var err error
		if c.Remove {
			err = q.DeleteDeadProp(ctx, db.DeleteDeadPropParams{UserID: s.UserID, Path: name, Namespace: c.Name.Space, Local: c.Name.Local})
		} else {
			err = q.UpsertDeadProp(ctx, db.UpsertDeadPropParams{UserID: s.UserID, Path: name, Namespace: c.Name.Space, Local: c.Name.Local, Xml: string(c.InnerXML)})
		}
		if err != nil {
			return fmt.Errorf("patching dead properties of %s: %w", name, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("patching dead properties of %s: %w", name, err)
	}
	return nil
}

// DeleteTree drops the properties of name and everything under it.
func (s *Props) DeleteTree(ctx context.Context, name string) error {
	if err := s.q().DeleteDeadPropsTree(ctx, db.DeleteDeadPropsTreeParams{UserID: s.UserID, Path: name}); err != nil {
		return fmt.Errorf("deleting dead properties of %s: %w", name, err)
	}
	return nil
}

// MoveTree re-keys the properties of from and everything under it to to.
func (s *Props) MoveTree(ctx context.Context, from, to string) error {
	if err := s.q().MoveDeadPropsTree(ctx, db.MoveDeadPropsTreeParams{UserID: s.UserID, FromPath: from, ToPath: to}); err != nil {
		return fmt.Errorf("moving dead properties of %s: %w", from, err)
	}
	return nil
}
