package emulator

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// routes builds the mux. Every /api and /toolbox route goes through auth and
// fault injection, like Daytona's guards and proxy.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	// Daytona's liveness route sits under the global /api prefix and needs no
	// token (HealthController.live); the gateway's Health uses it.
	mux.HandleFunc("GET /api/health", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
	})

	api := http.NewServeMux()
	// Sandboxes.
	api.HandleFunc("GET /api/sandbox", s.handleListSandboxes)
	api.HandleFunc("POST /api/sandbox", s.handleCreateSandbox)
	api.HandleFunc("GET /api/sandbox/{id}", s.handleGetSandbox)
	api.HandleFunc("DELETE /api/sandbox/{id}", s.handleDeleteSandbox)
	api.HandleFunc("POST /api/sandbox/{id}/start", s.handleStartSandbox)
	api.HandleFunc("POST /api/sandbox/{id}/stop", s.handleStopSandbox)
	api.HandleFunc("POST /api/sandbox/{id}/archive", s.handleArchiveSandbox)
	api.HandleFunc("POST /api/sandbox/{id}/recover", s.handleRecoverSandbox)
	api.HandleFunc("PUT /api/sandbox/{id}/labels", s.handleReplaceLabels)
	api.HandleFunc("POST /api/sandbox/{id}/autostop/{interval}", s.handleSetInterval(intervalAutoStop))
	api.HandleFunc("POST /api/sandbox/{id}/autoarchive/{interval}", s.handleSetInterval(intervalAutoArchive))
	api.HandleFunc("POST /api/sandbox/{id}/autodelete/{interval}", s.handleSetInterval(intervalAutoDelete))
	api.HandleFunc("POST /api/sandbox/{id}/last-activity", s.handleLastActivity)
	api.HandleFunc("GET /api/sandbox/{id}/toolbox-proxy-url", s.handleToolboxProxyURL)
	api.HandleFunc("POST /api/sandbox/{id}/snapshot", s.handleSandboxSnapshot)
	// Volumes.
	api.HandleFunc("GET /api/volumes", s.handleListVolumes)
	api.HandleFunc("POST /api/volumes", s.handleCreateVolume)
	api.HandleFunc("GET /api/volumes/{id}", s.handleGetVolume)
	api.HandleFunc("DELETE /api/volumes/{id}", s.handleDeleteVolume)
	api.HandleFunc("GET /api/volumes/by-name/{name}", s.handleGetVolumeByName)
	// Snapshots.
	api.HandleFunc("GET /api/snapshots", s.handleListSnapshots)
	api.HandleFunc("POST /api/snapshots", s.handleCreateSnapshot)
	api.HandleFunc("GET /api/snapshots/{id}", s.handleGetSnapshot)
	api.HandleFunc("DELETE /api/snapshots/{id}", s.handleRemoveSnapshot)
	api.HandleFunc("POST /api/snapshots/{id}/activate", s.handleActivateSnapshot)
	api.HandleFunc("POST /api/snapshots/{id}/deactivate", s.handleDeactivateSnapshot)
	api.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeAPIError(w, r, http.StatusNotFound, "Cannot "+r.Method+" "+r.URL.Path)
	})

	tb := s.toolboxRoutes()

	mux.Handle("/api/", s.withAuth(s.withFaults(api), false))
	mux.Handle("/toolbox/", s.withAuth(s.withFaults(tb), true))
	return mux
}

// withAuth enforces Options.APIKey when set.
func (s *Server) withAuth(next http.Handler, toolbox bool) http.Handler {
	if s.opts.APIKey == "" {
		return next
	}
	want := "Bearer " + s.opts.APIKey
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != want {
			if toolbox {
				writeToolboxError(w, r, http.StatusUnauthorized, "authentication failed: invalid API key")
			} else {
				writeAPIError(w, r, http.StatusUnauthorized, "Invalid credentials")
			}
			return
		}
		next.ServeHTTP(w, r)
	})
}

// writeJSON writes v as JSON with the given status (no trailing newline,
// like gin's c.JSON and Nest).
func writeJSON(w http.ResponseWriter, status int, v any) {
	writeJSONType(w, status, "application/json; charset=utf-8", v)
}

func writeJSONType(w http.ResponseWriter, status int, contentType string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encode response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// apiErrorBody is Daytona's API error body (all-exceptions.filter.ts).
type apiErrorBody struct {
	Path       string `json:"path"`
	Timestamp  string `json:"timestamp"`
	StatusCode int    `json:"statusCode"`
	Error      string `json:"error"`
	Message    string `json:"message"`
}

// writeAPIError writes Daytona's control-plane error body.
func writeAPIError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	writeJSON(w, status, apiErrorBody{
		Path:       r.URL.Path,
		Timestamp:  time.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
		StatusCode: status,
		Error:      http.StatusText(status),
		Message:    msg,
	})
}

// toolboxErrorBody is common-go's ErrorResponse used by the daemon and proxy.
type toolboxErrorBody struct {
	StatusCode int    `json:"statusCode"`
	Message    string `json:"message"`
	Code       string `json:"code"`
	Timestamp  string `json:"timestamp"`
	Path       string `json:"path"`
	Method     string `json:"method"`
}

// toolboxErrorCode maps a status to common-go's error code names.
func toolboxErrorCode(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "BAD_REQUEST"
	case http.StatusUnauthorized:
		return "UNAUTHORIZED"
	case http.StatusForbidden:
		return "FORBIDDEN"
	case http.StatusNotFound:
		return "NOT_FOUND"
	case http.StatusConflict:
		return "CONFLICT"
	case http.StatusRequestTimeout:
		return "REQUEST_TIMEOUT"
	case http.StatusGone:
		return "GONE"
	case http.StatusTooManyRequests:
		return "TOO_MANY_REQUESTS"
	case http.StatusServiceUnavailable:
		return "SERVICE_UNAVAILABLE"
	default:
		return strings.ToUpper(strings.ReplaceAll(http.StatusText(status), " ", "_"))
	}
}

// writeToolboxError writes common-go's ErrorResponse (content type
// application/json without a charset, as the daemon sends it).
func writeToolboxError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	writeJSONType(w, status, "application/json", toolboxErrorBody{
		StatusCode: status,
		Message:    msg,
		Code:       toolboxErrorCode(status),
		Timestamp:  time.Now().UTC().Format(time.RFC3339Nano),
		Path:       r.URL.Path,
		Method:     r.Method,
	})
}

// httpError is an error carrying the HTTP status Daytona would answer with.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func errf(status int, msg string) *httpError { return &httpError{status: status, msg: msg} }
