package api

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"

	"github.com/labstack/echo/v4"
)

// maxJSONBody caps JSON request bodies; file bodies have their own limit.
const maxJSONBody = 1 << 20

// decodeJSON reads a JSON request body into v: the content type must be JSON,
// the body at most maxJSONBody bytes and a single well-formed value.
func decodeJSON(c echo.Context, v any) error {
	req := c.Request()
	ct := req.Header.Get(echo.HeaderContentType)
	if ct == "" && req.ContentLength == 0 {
		return errBadRequest("missing_body", "a JSON body is required")
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != echo.MIMEApplicationJSON {
		return newError(http.StatusUnsupportedMediaType, "unsupported_media_type", "the body must be application/json")
	}
	dec := json.NewDecoder(http.MaxBytesReader(c.Response(), req.Body, maxJSONBody))
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errTooLarge("JSON body exceeds 1 MiB")
		}
		if errors.Is(err, io.EOF) {
			return errBadRequest("missing_body", "a JSON body is required")
		}
		return errBadRequest("malformed_json", "the body is not valid JSON for this route: "+err.Error())
	}
	if dec.More() {
		return errBadRequest("malformed_json", "the body must hold a single JSON value")
	}
	return nil
}
