package emulator

import "net/http"

// toolboxRoutes is the daemon side: the routes of Daytona's toolbox daemon
// threadbox uses, under /toolbox/{sandboxId}. Like the daemon (gin with no
// automatic HEAD or 405), an unknown route, a wrong method and any HEAD
// answer 404 "404 page not found" in text/plain.
func (s *Server) toolboxRoutes() http.Handler {
	tb := http.NewServeMux()
	tb.HandleFunc("GET /toolbox/{sandboxId}/files", s.toolbox(s.handleListFiles))
	tb.HandleFunc("GET /toolbox/{sandboxId}/files/{$}", s.toolbox(s.handleListFiles))
	tb.HandleFunc("DELETE /toolbox/{sandboxId}/files", s.toolbox(s.handleDeleteFile))
	tb.HandleFunc("GET /toolbox/{sandboxId}/files/info", s.toolbox(s.handleFileInfo))
	tb.HandleFunc("GET /toolbox/{sandboxId}/files/download", s.toolbox(s.handleDownload))
	tb.HandleFunc("POST /toolbox/{sandboxId}/files/bulk-download", s.toolbox(s.handleBulkDownload))
	tb.HandleFunc("POST /toolbox/{sandboxId}/files/upload", s.toolbox(s.handleUpload))
	tb.HandleFunc("POST /toolbox/{sandboxId}/files/bulk-upload", s.toolbox(s.handleBulkUpload))
	tb.HandleFunc("POST /toolbox/{sandboxId}/files/move", s.toolbox(s.handleMove))
	tb.HandleFunc("POST /toolbox/{sandboxId}/files/folder", s.toolbox(s.handleCreateFolder))
	tb.HandleFunc("GET /toolbox/{sandboxId}/files/search", s.toolbox(s.handleSearchFiles))
	tb.HandleFunc("GET /toolbox/{sandboxId}/files/find", s.toolbox(s.handleFindInFiles))
	tb.HandleFunc("POST /toolbox/{sandboxId}/process/execute", s.toolbox(s.handleExecute))
	tb.HandleFunc("GET /toolbox/{sandboxId}/process/session", s.toolbox(s.handleListSessions))
	tb.HandleFunc("POST /toolbox/{sandboxId}/process/session", s.toolbox(s.handleCreateSession))
	tb.HandleFunc("GET /toolbox/{sandboxId}/process/session/{sessionId}", s.toolbox(s.handleGetSession))
	tb.HandleFunc("DELETE /toolbox/{sandboxId}/process/session/{sessionId}", s.toolbox(s.handleDeleteSession))
	tb.HandleFunc("POST /toolbox/{sandboxId}/process/session/{sessionId}/exec", s.toolbox(s.handleSessionExecute))
	tb.HandleFunc("GET /toolbox/{sandboxId}/process/session/{sessionId}/command/{commandId}", s.toolbox(s.handleGetSessionCommand))
	tb.HandleFunc("GET /toolbox/{sandboxId}/process/session/{sessionId}/command/{commandId}/logs", s.toolbox(s.handleSessionCommandLogs))
	tb.HandleFunc("POST /toolbox/{sandboxId}/process/session/{sessionId}/command/{commandId}/input", s.toolbox(s.handleSessionInput))
	tb.HandleFunc("GET /toolbox/{sandboxId}/user-home-dir", s.toolbox(s.handleHomeDir))
	tb.HandleFunc("GET /toolbox/{sandboxId}/work-dir", s.toolbox(s.handleHomeDir))
	tb.HandleFunc("/toolbox/", pageNotFound)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			pageNotFound(w, r)
			return
		}
		tb.ServeHTTP(w, r)
	})
}

// pageNotFound is gin's answer to a route it does not have.
func pageNotFound(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusNotFound)
	_, _ = w.Write([]byte("404 page not found"))
}
