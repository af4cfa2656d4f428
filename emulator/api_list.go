package emulator

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// This file is GET /sandbox: Daytona's cursor-paged, filtered and sorted list
// (sandbox.service.ts search). Without sort/order it lists by lastActivityAt,
// newest first, so pages can shift while a client walks them; sort=createdAt
// gives an order that new activity does not change.

// listOrder is the order of a list: a field and a direction, then createdAt
// (newest first) and the id as tie-breakers, so every sandbox has its own
// place and a cursor can name it.
type listOrder struct {
	Field string `json:"f"`
	Desc  bool   `json:"d"`
}

// listKey is a sandbox's place in a listOrder; a cursor carries the last one.
type listKey struct {
	Name    string `json:"n,omitempty"`
	Num     int    `json:"v,omitempty"` // cpu, memoryGib or diskGib
	At      int64  `json:"a,omitempty"` // lastActivityAt, Unix ns
	Created int64  `json:"c"`
	ID      string `json:"i"`
}

// listCursor is the opaque nextCursor: the order it belongs to and the key of
// the last item returned.
type listCursor struct {
	Order listOrder `json:"o"`
	After listKey   `json:"k"`
}

const sortFieldsText = "name, cpu, memoryGib, diskGib, lastActivityAt, createdAt"

// parseListOrder reads sort and order, answering 400 like Nest's ValidationPipe.
func parseListOrder(q url.Values) (listOrder, *httpError) {
	o := listOrder{Field: "lastActivityAt", Desc: true}
	if v := q.Get("sort"); v != "" {
		if !slices.Contains(strings.Split(sortFieldsText, ", "), v) {
			return o, errf(http.StatusBadRequest, "sort must be one of the following values: "+sortFieldsText)
		}
		o.Field = v
	}
	switch q.Get("order") {
	case "":
	case "asc":
		o.Desc = false
	case "desc":
		o.Desc = true
	default:
		return o, errf(http.StatusBadRequest, "order must be one of the following values: asc, desc")
	}
	return o, nil
}

func (o listOrder) keyOf(sb *sandboxRec) listKey {
	k := listKey{Created: sb.CreatedAt.UnixNano(), ID: sb.ID}
	switch o.Field {
	case "name":
		k.Name = sb.Name
	case "cpu":
		k.Num = sb.CPU
	case "memoryGib":
		k.Num = sb.Memory
	case "diskGib":
		k.Num = sb.Disk
	case "lastActivityAt":
		k.At = sb.LastActivityAt.UnixNano()
	}
	return k
}

// compare orders a before b (negative), after b (positive) or equal (0).
func (o listOrder) compare(a, b listKey) int {
	c := cmp.Compare(a.Name, b.Name)
	if c == 0 {
		c = cmp.Compare(a.Num, b.Num)
	}
	if c == 0 {
		c = cmp.Compare(a.At, b.At)
	}
	if c == 0 && o.Field == "createdAt" {
		c = cmp.Compare(a.Created, b.Created)
	}
	if o.Desc {
		c = -c
	}
	if c == 0 {
		c = -cmp.Compare(a.Created, b.Created)
	}
	if c == 0 {
		c = -cmp.Compare(a.ID, b.ID)
	}
	return c
}

func encodeCursor(c listCursor) string {
	raw, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(raw)
}

// decodeCursor reads a cursor, which must belong to the requested order.
func decodeCursor(s string, o listOrder) (listKey, *httpError) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	var c listCursor
	if err == nil {
		err = json.Unmarshal(raw, &c)
	}
	if err != nil || c.Order != o {
		return listKey{}, errf(http.StatusBadRequest, "Invalid cursor")
	}
	return c.After, nil
}

// listFilter is the filtering part of the query.
type listFilter struct {
	labels        map[string]string
	states        map[string]bool
	idPrefix      string
	namePrefix    string
	includeErrDel bool
}

func parseListFilter(q url.Values) (listFilter, *httpError) {
	f := listFilter{
		states:        map[string]bool{},
		idPrefix:      strings.ToLower(q.Get("id")),
		namePrefix:    strings.ToLower(q.Get("name")),
		includeErrDel: q.Get("includeErroredDeleted") == "true",
	}
	if l := q.Get("labels"); l != "" {
		if err := json.Unmarshal([]byte(l), &f.labels); err != nil {
			return f, errf(http.StatusBadRequest, "Invalid labels JSON format")
		}
	}
	for _, st := range q["states"] {
		for _, part := range strings.Split(st, ",") {
			if part != "" {
				f.states[part] = true
			}
		}
	}
	return f, nil
}

func (f listFilter) match(sb *sandboxRec) bool {
	switch {
	case sb.State == stDestroyed:
		return false
	case !f.includeErrDel && isErrorState(sb.State) && sb.DesiredState == stDestroyed:
		return false
	case len(f.states) > 0 && !f.states[listItemState(sb)]:
		return false
	case f.idPrefix != "" && !strings.HasPrefix(strings.ToLower(sb.ID), f.idPrefix):
		return false
	case f.namePrefix != "" && !strings.HasPrefix(strings.ToLower(sb.Name), f.namePrefix):
		return false
	}
	return labelsContain(sb.Labels, f.labels)
}

// labelsContain is Postgres "labels @> filter": every filter pair must match.
func labelsContain(have, want map[string]string) bool {
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}

func parseListLimit(q url.Values) (int, *httpError) {
	l := q.Get("limit")
	if l == "" {
		return 100, nil
	}
	n, err := strconv.Atoi(l)
	if err != nil || n < 1 || n > 200 {
		return 0, errf(http.StatusBadRequest, "limit must not be less than 1, limit must not be greater than 200")
	}
	return n, nil
}

func (s *Server) handleListSandboxes(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	filter, herr := parseListFilter(q)
	var (
		order listOrder
		limit int
		after *listKey
	)
	if herr == nil {
		limit, herr = parseListLimit(q)
	}
	if herr == nil {
		order, herr = parseListOrder(q)
	}
	if c := q.Get("cursor"); herr == nil && c != "" {
		var k listKey
		k, herr = decodeCursor(c, order)
		after = &k
	}
	if herr != nil {
		writeAPIError(w, r, herr.status, herr.msg)
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	type entry struct {
		sb  *sandboxRec
		key listKey
	}
	var matched []entry
	for _, sb := range s.sandboxes {
		if filter.match(sb) {
			matched = append(matched, entry{sb, order.keyOf(sb)})
		}
	}
	slices.SortFunc(matched, func(a, b entry) int { return order.compare(a.key, b.key) })
	if after != nil {
		i, _ := slices.BinarySearchFunc(matched, *after, func(e entry, k listKey) int {
			if order.compare(e.key, k) <= 0 {
				return -1
			}
			return 1
		})
		matched = matched[i:]
	}
	var next *string
	if len(matched) > limit {
		c := encodeCursor(listCursor{Order: order, After: matched[limit-1].key})
		next = &c
		matched = matched[:limit]
	}
	items := make([]sandboxListItemDTO, 0, len(matched))
	for _, e := range matched {
		items = append(items, s.sandboxToListItem(r, e.sb))
	}
	writeJSON(w, http.StatusOK, struct {
		Items      []sandboxListItemDTO `json:"items"`
		NextCursor *string              `json:"nextCursor"`
	}{items, next})
}
