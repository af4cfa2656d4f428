package dav

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/threadbox/threadbox/api/apierr"
	"github.com/threadbox/threadbox/davlock"
)

// LOCK is served here, not by the engine: the engine grants exclusive locks
// only (501 for shared ones, litmus lock_shared) and answers a lockroot
// without the mount prefix. Everything else about it is the engine's
// behaviour: an empty body refreshes the lock named by the If header, a
// LOCK on an unmapped URL creates an empty resource (201), Depth is 0 or
// infinity (the default).

// lockInfo is a LOCK request body (RFC 4918 §14.11).
type lockInfo struct {
	XMLName   xml.Name  `xml:"DAV: lockinfo"`
	LockScope lockScope `xml:"DAV: lockscope"`
	LockType  struct {
		Write *struct{} `xml:"DAV: write"`
	} `xml:"DAV: locktype"`
	Owner *struct {
		InnerXML string `xml:",innerxml"`
	} `xml:"DAV: owner"`
}

type lockScope struct {
	Exclusive *struct{} `xml:"DAV: exclusive"`
	Shared    *struct{} `xml:"DAV: shared"`
}

var errBadLockInfo = apierr.BadRequest("invalid_lock_info", "the LOCK body must be a DAV:lockinfo with one lock scope (exclusive or shared) and the write lock type")

// serveLock answers a LOCK on src (a volume path). It runs inside the
// volume's use: creating an unmapped resource needs the files sandbox.
func (h *Handler) serveLock(ctx context.Context, w http.ResponseWriter, r *http.Request, fs *FS, user, src string, body []byte, ifh ifHeader) error {
	timeout, err := lockTimeout(r.Header.Get("Timeout"))
	if err != nil {
		return err
	}
	now := time.Now()
	if len(bytes.TrimSpace(body)) == 0 {
		// A refresh: the If header names exactly one lock.
		if len(ifh) != 1 || len(ifh[0].conds) != 1 || ifh[0].conds[0].token == "" {
			return apierr.BadRequest("invalid_lock_token", "a LOCK refresh needs an If header naming one lock token")
		}
		l, err := h.Locks.Refresh(ctx, user, now, ifh[0].conds[0].token, src, timeout)
		switch {
		case errors.Is(err, davlock.ErrNoSuchLock):
			writeStatus(w, http.StatusPreconditionFailed)
			return nil
		case errors.Is(err, davlock.ErrHeld):
			writeStatus(w, http.StatusLocked)
			return nil
		case err != nil:
			return err
		}
		h.writeLockInfo(w, http.StatusOK, l, h.Prefix+l.Root)
		return nil
	}

	var li lockInfo
	if err := xml.Unmarshal(body, &li); err != nil {
		return errBadLockInfo
	}
	if (li.LockScope.Exclusive == nil) == (li.LockScope.Shared == nil) || li.LockType.Write == nil {
		return errBadLockInfo
	}
	zeroDepth := false
	switch r.Header.Get("Depth") {
	case "", "infinity":
	case "0":
		zeroDepth = true
	default:
		return apierr.BadRequest("invalid_depth", "Depth on a LOCK must be 0 or infinity")
	}
	owner := ""
	if li.Owner != nil {
		owner = li.Owner.InnerXML
	}
	l, err := h.Locks.Create(ctx, user, now, davlock.Lock{Root: src, ZeroDepth: zeroDepth, Shared: li.LockScope.Shared != nil, OwnerXML: owner, Timeout: timeout})
	switch {
	case errors.Is(err, davlock.ErrLocked):
		setRetryAfter(w.Header(), err)
		writeStatus(w, http.StatusLocked)
		return nil
	case errors.Is(err, davlock.ErrTooManyLocks):
		return ErrTooManyLocks
	case err != nil:
		return err
	}
	// A LOCK on an unmapped URL creates an empty resource (RFC 4918 §7.3).
	status := http.StatusOK
	if _, err := fs.Stat(ctx, src); err != nil {
		if !os.IsNotExist(err) {
			return errors.Join(err, h.Locks.Unlock(context.WithoutCancel(ctx), user, now, l.Token, src))
		}
		f, err := fs.OpenFile(ctx, src, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o666)
		if err == nil {
			err = f.Close()
		}
		if err != nil {
			uerr := h.Locks.Unlock(context.WithoutCancel(ctx), user, now, l.Token, src)
			if os.IsNotExist(err) {
				err = &apierr.Error{Status: http.StatusConflict, Code: "parent_not_found", Message: "the parent collection does not exist"}
			}
			return errors.Join(err, uerr)
		}
		status = http.StatusCreated
	}
	w.Header().Set("Lock-Token", "<"+l.Token+">")
	h.writeLockInfo(w, status, l, r.URL.Path)
	return nil
}

// lockTimeout reads the (already clamped) Timeout header.
func lockTimeout(hdr string) (time.Duration, error) {
	s, ok := strings.CutPrefix(hdr, "Second-")
	n, err := strconv.ParseInt(s, 10, 64)
	if !ok || err != nil || n <= 0 {
		return 0, apierr.BadRequest("invalid_timeout", "invalid LOCK Timeout")
	}
	return time.Duration(n) * time.Second, nil
}

// writeLockInfo writes the lockdiscovery answer of a LOCK. root is the
// lock's root as a client addresses it (with the mount prefix).
func (h *Handler) writeLockInfo(w http.ResponseWriter, status int, l davlock.Lock, root string) {
	depth, scope := "infinity", "exclusive"
	if l.ZeroDepth {
		depth = "0"
	}
	if l.Shared {
		scope = "shared"
	}
	w.Header().Set("Content-Type", `application/xml; charset="utf-8"`)
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="utf-8"?>`+"\n"+
		`<D:prop xmlns:D="DAV:"><D:lockdiscovery><D:activelock>`+
		`<D:locktype><D:write/></D:locktype>`+
		`<D:lockscope><D:%s/></D:lockscope>`+
		`<D:depth>%s</D:depth>`+
		`<D:owner>%s</D:owner>`+
		`<D:timeout>Second-%d</D:timeout>`+
		`<D:locktoken><D:href>%s</D:href></D:locktoken>`+
		`<D:lockroot><D:href>%s</D:href></D:lockroot>`+
		`</D:activelock></D:lockdiscovery></D:prop>`,
		scope, depth, l.OwnerXML, int64(l.Timeout/time.Second),
		html.EscapeString(l.Token), html.EscapeString((&url.URL{Path: root}).EscapedPath()))
}

// writeStatus writes a WebDAV protocol answer (412, 423) as the engine
// does: the status and its text.
func writeStatus(w http.ResponseWriter, status int) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(http.StatusText(status)))
}
