package httpapi

import (
	"context"
	"net/http"
	"sync"
	"time"
)

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// handleReadyz probes every dependency in parallel; 503 if any fails.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	results := make(map[string]string, len(s.ready))
	var mu sync.Mutex
	var wg sync.WaitGroup
	ok := true
	for _, c := range s.ready {
		wg.Go(func() {
			status := "ok"
			if err := c.Check(ctx); err != nil {
				status = err.Error()
			}
			mu.Lock()
			defer mu.Unlock()
			results[c.Name] = status
			if status != "ok" {
				ok = false
			}
		})
	}
	wg.Wait()
	code := http.StatusOK
	overall := "ready"
	if !ok {
		code, overall = http.StatusServiceUnavailable, "not ready"
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, code, map[string]any{"status": overall, "checks": results})
}
