package httpio

import (
	"mime"
	"net/http"
	"path"
	"strings"
)

// UserContentHeaders sets the headers every response carrying a user's file
// gets (thread files, /v1/files and WebDAV GET/HEAD), so nothing an agent or
// a person wrote can run as script on the API's origin, where a browser that
// once opened /dav/ holds cached credentials that reach the whole API:
//
//   - Content-Type from the extension, and X-Content-Type-Options: nosniff,
//     so a browser never guesses HTML out of a .txt or an extension-less file;
//   - Content-Security-Policy: sandbox, which gives the document an opaque
//     origin with scripts, forms, popups and plugins disabled, whatever its
//     type (it covers the types a blocklist would forget);
//   - Content-Disposition: attachment (with the file's name) for every type
//     a browser could render actively: only plain text, JSON and passive
//     media (images other than SVG, audio, video) are shown inline.
//
// The alternative, a separate content origin, needs a second host name and
// credentials of its own in every deployment; these headers need nothing.
func UserContentHeaders(h http.Header, name string) {
	ct := ContentType(name)
	h.Set("Content-Type", ct)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "sandbox")
	if !inlineSafe(ct) {
		h.Set("Content-Disposition", attachment(path.Base(name)))
	}
}

// inlineSafe reports whether a browser can render a type only passively.
// Everything else (HTML, XHTML, SVG, XML with stylesheets, JavaScript, CSS,
// PDF, unknown types) is downloaded instead.
func inlineSafe(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	switch {
	case mt == "text/plain", mt == "application/json":
		return true
	case mt == "image/svg+xml":
		return false
	case strings.HasPrefix(mt, "image/"), strings.HasPrefix(mt, "audio/"), strings.HasPrefix(mt, "video/"):
		return true
	}
	return false
}

// attachment is a Content-Disposition value naming the file; non-ASCII
// names use RFC 2231's filename* (mime.FormatMediaType chooses).
func attachment(name string) string {
	if name == "" || name == "/" || name == "." {
		return "attachment"
	}
	if v := mime.FormatMediaType("attachment", map[string]string{"filename": name}); v != "" {
		return v
	}
	return "attachment"
}
