package api

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"
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
		{"oversized", "application/json", `{"name":"` + strings.Repeat("a", maxJSONBody) + `"}`, 413, "too_large"},
	}
	e := echo.New()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tc.body))
			req.Header.Set("Content-Type", tc.contentType)
			c := e.NewContext(req, httptest.NewRecorder())
			var v body
			err := decodeJSON(c, &v)
			var apiErr *Error
			require.True(t, errors.As(err, &apiErr), "%v", err)
			require.Equal(t, tc.status, apiErr.Status)
			require.Equal(t, tc.code, apiErr.Code)
		})
	}
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"name":"ok"}`))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	var v body
	require.NoError(t, decodeJSON(e.NewContext(req, httptest.NewRecorder()), &v))
	require.Equal(t, "ok", v.Name)
}

func TestClassifyHidesInternalErrors(t *testing.T) {
	e := classify(errors.New("pq: password authentication failed for user secret"))
	require.Equal(t, 500, e.Status)
	require.Equal(t, "internal", e.Code)
	require.NotContains(t, e.Message, "secret")
}
