package httpapi

import (
	_ "embed"
	"net/http"
	"strconv"
)

// openAPIDocument is httpapi/openapi.yaml, the API's description; the
// frontend generates its types from the same file, and openapi_test.go
// keeps it in step with Routes().
//
//go:embed openapi.yaml
var openAPIDocument []byte

// handleOpenAPI serves the document (public: it describes routes, not data).
func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/yaml") // RFC 9512
	h.Set("Content-Length", strconv.Itoa(len(openAPIDocument)))
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(openAPIDocument)
	}
}
