package uploads

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/threadbox/threadbox/api/apierr"
)

// jsonErrors rewrites the plain-text error responses of an embedded handler
// (tusd answers "ERR_CODE: message") into the API's JSON error body, so every
// error a client sees has the contract's shape. Successful responses pass
// through untouched and unbuffered.
func jsonErrors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ew := &errorRewriter{ResponseWriter: w}
		next.ServeHTTP(ew, r)
		ew.finish(r.Method)
	})
}

// maxRewrittenBody bounds how much of an error body is kept for rewriting.
const maxRewrittenBody = 4 << 10

type errorRewriter struct {
	http.ResponseWriter
	status  int // an error status held back until finish
	wrote   bool
	errBody bytes.Buffer
}

func (w *errorRewriter) WriteHeader(code int) {
	if w.wrote || w.status != 0 {
		return
	}
	if code >= 400 {
		w.status = code
		return
	}
	w.wrote = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *errorRewriter) Write(p []byte) (int, error) {
	if w.status != 0 {
		if room := maxRewrittenBody - w.errBody.Len(); room > 0 {
			w.errBody.Write(p[:min(len(p), room)])
		}
		return len(p), nil
	}
	w.wrote = true
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController (used by tusd) reach the connection.
func (w *errorRewriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *errorRewriter) finish(method string) {
	if w.status == 0 {
		return
	}
	code, msg := splitErrorText(w.errBody.String(), w.status)
	h := w.ResponseWriter.Header()
	h.Del("Content-Length")
	var body apierr.Body
	body.Error.Code, body.Error.Message = code, msg
	b, _ := json.Marshal(body)
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.ResponseWriter.WriteHeader(w.status)
	if method != http.MethodHead {
		_, _ = w.ResponseWriter.Write(b)
	}
}

// contractCodes renames tusd's own codes where the contract has one for the
// same condition: a body over a fixed limit is too_large on every route.
var contractCodes = map[string]string{
	"max_size_exceeded":    "too_large",
	"upload_size_exceeded": "too_large",
}

// splitErrorText reads "ERR_SOME_CODE: message" or "some_code: message" into
// a snake_case code and the message; other text keeps a code from the status.
func splitErrorText(text string, status int) (code, msg string) {
	text = strings.TrimSpace(text)
	if c, m, ok := strings.Cut(text, ": "); ok && c != "" && !strings.ContainsAny(c, " \t") {
		code = strings.ToLower(strings.TrimPrefix(c, "ERR_"))
		if renamed, ok := contractCodes[code]; ok {
			code = renamed
		}
		return code, strings.TrimSpace(m)
	}
	code = strings.ReplaceAll(strings.ToLower(http.StatusText(status)), " ", "_")
	if text == "" {
		text = http.StatusText(status)
	}
	return code, text
}
