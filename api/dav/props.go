package dav

import (
	"context"
	"encoding/xml"
	"net/http"
	"strconv"

	"github.com/threadbox/threadbox/volume"
	"golang.org/x/net/webdav"
)

// propMap is the dead properties of one resource.
type propMap map[xml.Name]webdav.Property

// toPropMap is the engine's view of a resource's stored properties.
func toPropMap(props []volume.Prop) propMap {
	if props == nil {
		return nil
	}
	m := make(propMap, len(props))
	for _, p := range props {
		m[p.Name] = webdav.Property{XMLName: p.Name, InnerXML: p.InnerXML}
	}
	return m
}

// patch applies PROPPATCH instructions to name, all or nothing: protected
// (live or quota) properties make the whole request fail with 403 for them
// and 424 for the rest, as RFC 4918 §9.2 asks.
func patch(ctx context.Context, store *volume.Props, name string, patches []webdav.Proppatch) ([]webdav.Propstat, error) {
	var forbidden, others []webdav.Property
	var changes []volume.PropChange
	for _, p := range patches {
		for _, prop := range p.Props {
			if protectedProp(prop.XMLName) {
				forbidden = append(forbidden, webdav.Property{XMLName: prop.XMLName})
				continue
			}
			others = append(others, webdav.Property{XMLName: prop.XMLName})
			changes = append(changes, volume.PropChange{Prop: volume.Prop{Name: prop.XMLName, InnerXML: prop.InnerXML}, Remove: p.Remove})
		}
	}
	if len(forbidden) > 0 {
		out := []webdav.Propstat{{Status: http.StatusForbidden, Props: forbidden}}
		if len(others) > 0 {
			out = append(out, webdav.Propstat{Status: http.StatusFailedDependency, Props: others})
		}
		return out, nil
	}
	if err := store.Apply(ctx, name, changes); err != nil {
		return nil, err
	}
	return []webdav.Propstat{{Status: http.StatusOK, Props: others}}, nil
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
