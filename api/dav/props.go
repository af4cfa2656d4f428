package dav

import (
	"context"
	"encoding/xml"
	"fmt"
	"net/http"
	"strconv"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/net/webdav"

	"github.com/threadbox/threadbox/db"
)

// PropStore keeps a user's WebDAV dead properties in PostgreSQL, keyed by
// volume path. They follow their resources: Volume.Move moves them,
// Volume.Remove deletes them, and the engine's COPY copies them through
// DeadPropsHolder.Patch. Values are stored as the property's inner XML;
// xml:lang is not kept.
type PropStore struct {
	Pool   *pgxpool.Pool
	UserID string
}

func (s *PropStore) q() *db.Queries { return db.New(s.Pool) }

// propMap is the dead properties of one resource.
type propMap map[xml.Name]webdav.Property

// Load returns the dead properties of each path (missing paths map to nil),
// in one query, so a listing costs one round trip however long it is.
func (s *PropStore) Load(ctx context.Context, paths []string) (map[string]propMap, error) {
	rows, err := s.q().DeadProps(ctx, db.DeadPropsParams{UserID: s.UserID, Paths: paths})
	if err != nil {
		return nil, fmt.Errorf("loading dead properties: %w", err)
	}
	out := make(map[string]propMap, len(paths))
	for _, r := range rows {
		m := out[r.Path]
		if m == nil {
			m = propMap{}
			out[r.Path] = m
		}
		n := xml.Name{Space: r.Namespace, Local: r.Local}
		m[n] = webdav.Property{XMLName: n, InnerXML: []byte(r.Xml)}
	}
	return out, nil
}

// Patch applies PROPPATCH instructions to name, all or nothing: protected
// (live or quota) properties make the whole request fail with 403 for them
// and 424 for the rest, as RFC 4918 §9.2 asks.
func (s *PropStore) Patch(ctx context.Context, name string, patches []webdav.Proppatch) ([]webdav.Propstat, error) {
	var forbidden, others []webdav.Property
	for _, p := range patches {
		for _, prop := range p.Props {
			if protectedProp(prop.XMLName) {
				forbidden = append(forbidden, webdav.Property{XMLName: prop.XMLName})
			} else {
				others = append(others, webdav.Property{XMLName: prop.XMLName})
			}
		}
	}
	if len(forbidden) > 0 {
		out := []webdav.Propstat{{Status: http.StatusForbidden, Props: forbidden}}
		if len(others) > 0 {
			out = append(out, webdav.Propstat{Status: http.StatusFailedDependency, Props: others})
		}
		return out, nil
	}
	tx, err := s.Pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // no-op after Commit
	q := db.New(tx)
	for _, p := range patches {
		for _, prop := range p.Props {
			var err error
			if p.Remove {
				err = q.DeleteDeadProp(ctx, db.DeleteDeadPropParams{UserID: s.UserID, Path: name, Namespace: prop.XMLName.Space, Local: prop.XMLName.Local})
			} else {
				err = q.UpsertDeadProp(ctx, db.UpsertDeadPropParams{UserID: s.UserID, Path: name, Namespace: prop.XMLName.Space, Local: prop.XMLName.Local, Xml: string(prop.InnerXML)})
			}
			if err != nil {
				return nil, fmt.Errorf("patching dead properties of %s: %w", name, err)
			}
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("patching dead properties of %s: %w", name, err)
	}
	return []webdav.Propstat{{Status: http.StatusOK, Props: others}}, nil
}

// DeleteTree drops the properties of name and everything under it.
func (s *PropStore) DeleteTree(ctx context.Context, name string) error {
	if err := s.q().DeleteDeadPropsTree(ctx, db.DeleteDeadPropsTreeParams{UserID: s.UserID, Path: name}); err != nil {
		return fmt.Errorf("deleting dead properties of %s: %w", name, err)
	}
	return nil
}

// MoveTree re-keys the properties of from and everything under it to to.
func (s *PropStore) MoveTree(ctx context.Context, from, to string) error {
	if err := s.q().MoveDeadPropsTree(ctx, db.MoveDeadPropsTreeParams{UserID: s.UserID, FromPath: from, ToPath: to}); err != nil {
		return fmt.Errorf("moving dead properties of %s: %w", from, err)
	}
	return nil
}

// DAV: names the quota properties of RFC 4331.
var (
	quotaAvailableName = xml.Name{Space: "DAV:", Local: "quota-available-bytes"}
	quotaUsedName      = xml.Name{Space: "DAV:", Local: "quota-used-bytes"}
)

// protectedProp reports properties a client may not set: the engine's live
// properties and the computed quota properties.
func protectedProp(n xml.Name) bool {
	if n.Space != "DAV:" {
		return false
	}
	switch n.Local {
	case "resourcetype", "displayname", "getcontentlength", "getlastmodified", "creationdate",
		"getcontentlanguage", "getcontenttype", "getetag", "lockdiscovery", "supportedlock",
		quotaAvailableName.Local, quotaUsedName.Local:
		return true
	}
	return false
}

// quotaProps renders the RFC 4331 properties.
func quotaProps(used, limit int64) propMap {
	return propMap{
		quotaUsedName:      {XMLName: quotaUsedName, InnerXML: []byte(strconv.FormatInt(used, 10))},
		quotaAvailableName: {XMLName: quotaAvailableName, InnerXML: []byte(strconv.FormatInt(max(limit-used, 0), 10))},
	}
}
