package dav

import (
	"context"
	"net/url"
	"strings"
	"time"

	"github.com/threadbox/threadbox/davlock"
)

// The If header (RFC 4918 §10.4) is evaluated here, whole, before the engine
// runs: the engine's lock system sees one list at a time and ignores entity
// tags and "Not" (golang/go#44493), which made a PUT conditional on a wrong
// ETag succeed (litmus fail_complex_cond_put) and a corrupt token answer 412
// where the resource is simply locked (423, litmus cond_put_corrupt_token).
//
// The header is a disjunction of lists, each a conjunction of conditions
// about a resource (the request's, or the one its tag names): a state token
// matches when it names a live lock covering that resource, an entity tag
// when it is the resource's current ETag. When no list holds, the request
// fails with 412. When one holds, the lock tokens the header names are what
// the request presents to the locks on the resources it changes (423 when a
// lock there was not presented), checked by the lock system the engine calls.

// ifHeader is a parsed If header.
type ifHeader []ifList

type ifList struct {
	tag   string // resource tag (a URL), "" for the request's resource
	conds []ifCond
}

type ifCond struct {
	not   bool
	token string // a state token, or
	etag  string // an entity tag, quotes included
}

// parseIf parses an If header value; false when it is malformed.
func parseIf(s string) (ifHeader, bool) {
	var h ifHeader
	tag := ""
	tagged, sinceTag := false, 0
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			return h, len(h) > 0 && (!tagged || sinceTag > 0)
		}
		switch s[0] {
		case '<': // a resource tag: every list is tagged, each tag has lists
			end := strings.IndexByte(s, '>')
			if end < 0 || (tagged && sinceTag == 0) || (!tagged && len(h) > 0) {
				return nil, false
			}
			tag, tagged, sinceTag, s = s[1:end], true, 0, s[end+1:]
		case '(':
			l, rest, ok := parseIfList(s[1:])
			if !ok {
				return nil, false
			}
			l.tag = tag
			h, s, sinceTag = append(h, l), rest, sinceTag+1
		default:
			return nil, false
		}
	}
}

// parseIfList parses the conditions of one list, after its "(".
func parseIfList(s string) (ifList, string, bool) {
	var l ifList
	for {
		s = strings.TrimLeft(s, " \t")
		var c ifCond
		if rest, ok := strings.CutPrefix(s, "Not"); ok {
			c.not, s = true, strings.TrimLeft(rest, " \t")
		}
		if s == "" {
			return ifList{}, "", false
		}
		switch s[0] {
		case ')':
			if c.not || len(l.conds) == 0 {
				return ifList{}, "", false
			}
			return l, s[1:], true
		case '<':
			end := strings.IndexByte(s, '>')
			if end < 0 {
				return ifList{}, "", false
			}
			c.token, s = s[1:end], s[end+1:]
		case '[':
			end := strings.IndexByte(s, ']')
			if end < 0 {
				return ifList{}, "", false
			}
			c.etag, s = s[1:end], s[end+1:]
		default:
			return ifList{}, "", false
		}
		l.conds = append(l.conds, c)
	}
}

// tokens are the state tokens the header names outside "Not": the locks the
// request presents.
func (h ifHeader) tokens() []string {
	var out []string
	for _, l := range h {
		for _, c := range l.conds {
			if c.token != "" && !c.not {
				out = append(out, c.token)
			}
		}
	}
	return out
}

// ifState answers the facts conditions are evaluated against.
type ifState struct {
	locks func(ctx context.Context, p string) ([]davlock.Lock, error)
	etag  func(ctx context.Context, p string) (string, bool, error)
}

// holds evaluates the header for a request on src: true when some list
// holds. Tags are reduced to their path (as Destination is: proxies rewrite
// the host); a tag outside the served tree makes its list false.
func (h ifHeader) holds(ctx context.Context, src string, resolve func(string) (string, error), st ifState) (bool, error) {
	for _, l := range h {
		p := src
		if l.tag != "" {
			u, err := url.Parse(l.tag)
			if err != nil {
				continue
			}
			if p, err = resolve(u.Path); err != nil {
				continue
			}
		}
		ok, err := l.holds(ctx, p, st)
		if ok || err != nil {
			return ok, err
		}
	}
	return false, nil
}

func (l ifList) holds(ctx context.Context, p string, st ifState) (bool, error) {
	for _, c := range l.conds {
		var match bool
		if c.token != "" {
			locks, err := st.locks(ctx, p)
			if err != nil {
				return false, err
			}
			for _, lk := range locks {
				match = match || lk.Token == c.token
			}
		} else {
			etag, exists, err := st.etag(ctx, p)
			if err != nil {
				return false, err
			}
			match = exists && etag == c.etag
		}
		if match == c.not {
			return false, nil
		}
	}
	return true, nil
}

// lockCache asks the store once per resource during one evaluation.
func lockCache(store *davlock.Store, user string, now time.Time) func(context.Context, string) ([]davlock.Lock, error) {
	seen := map[string][]davlock.Lock{}
	return func(ctx context.Context, p string) ([]davlock.Lock, error) {
		if l, ok := seen[p]; ok {
			return l, nil
		}
		l, err := store.Covering(ctx, user, now, p)
		if err != nil {
			return nil, err
		}
		seen[p] = l
		return l, nil
	}
}
