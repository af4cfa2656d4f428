package httpio

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"
	"github.com/threadbox/threadbox/api/apierr"
)

func TestDecodeJSONRejectsBadInput(t *testing.T) {
	type body struct {
		Name string `json:"name"`
	}
	cases := []struct {
		name, contentType, body string
		status                  int
		code                    string
	}{
		{"malformed", "application/json", `{"name":`, 400, "malformed_json"},
		{"wrong type", "application/json", `{"name":5}`, 400, "malformed_json"},
		{"two values", "application/json", `{"name":"a"}{"name":"b"}`, 400, "malformed_json"},
		{"empty", "application/json", ``, 400, "missing_body"},
		{"text", "text/plain", `{"name":"a"}`, 415, "unsupported_media_type"},
		{"form", "application/x-www-form-urlencoded", `name=a`, 415, "unsupported_media_type"},
		{"oversized", "application/json", `{"name":"` + strings.Repeat("a", MaxJSONBody) + `"}`, 413, "too_large"},
	}
	e := echo.New()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tc.body))
			req.Header.Set("Content-Type", tc.contentType)
			c := e.NewContext(req, httptest.NewRecorder())
			var v body
			err := DecodeJSON(c, &v)
			var apiErr *apierr.Error
			require.True(t, errors.As(err, &apiErr), "%v", err)
			require.Equal(t, tc.status, apiErr.Status)
			require.Equal(t, tc.code, apiErr.Code)
		})
	}
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"name":"ok"}`))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	var v body
	require.NoError(t, DecodeJSON(e.NewContext(req, httptest.NewRecorder()), &v))
	require.Equal(t, "ok", v.Name)
}

func TestParseRange(t *testing.T) {
	cases := []struct {
		h                string
		size, start, end int64
		ok, satisfiable  bool
	}{
		{"bytes=0-4", 10, 0, 4, true, true},
		{"bytes=6-", 10, 6, 9, true, true},
		{"bytes=-3", 10, 7, 9, true, true},
		{"bytes=5-100", 10, 5, 9, true, true},
		{"bytes=10-", 10, 0, 0, true, false},
		{"bytes=4-2", 10, 0, 0, false, false},
		{"bytes=0-1,3-4", 10, 0, 0, false, false},
		{"items=0-1", 10, 0, 0, false, false},
	}
	for _, c := range cases {
		s, e, ok, sat := parseRange(c.h, c.size)
		if ok != c.ok || sat != c.satisfiable || (ok && sat && (s != c.start || e != c.end)) {
			t.Errorf("parseRange(%q, %d) = %d, %d, %v, %v", c.h, c.size, s, e, ok, sat)
		}
	}
}
