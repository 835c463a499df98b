package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
)

type ctxKey int

const (
	ctxRequestID ctxKey = iota
	ctxPrincipal
	ctxClientIP
)

func requestIDFrom(ctx context.Context) string {
	s, _ := ctx.Value(ctxRequestID).(string)
	return s
}

// clientIPFrom is the caller's address as decided by clientIP.
func clientIPFrom(ctx context.Context) string {
	a, _ := ctx.Value(ctxClientIP).(netip.Addr)
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// requestContext assigns the request ID and the client address. The client
// address is taken from X-Forwarded-For only when the direct peer is a
// configured trusted proxy (never blindly: an allow-list would be spoofable).
func (s *Server) requestContext(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if id == "" || len(id) > 64 || strings.ContainsAny(id, "\r\n") {
			var b [8]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set("X-Request-Id", id)
		ctx := context.WithValue(r.Context(), ctxRequestID, id)
		ctx = context.WithValue(ctx, ctxClientIP, s.clientIP(r))
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func (s *Server) clientIP(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	peer = peer.Unmap()
	if !s.trusted(peer) {
		return peer
	}
	// Walk X-Forwarded-For from the right, skipping our own proxies.
	hops := strings.Split(r.Header.Get("X-Forwarded-For"), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		a = a.Unmap()
		if !s.trusted(a) {
			return a
		}
		peer = a
	}
	return peer
}

func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// observe records request metrics by route pattern (bounded cardinality)
// and writes one structured log line per request.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		defer func() {
			status := ww.Status()
			if status == 0 {
				status = http.StatusOK
			}
			route := "unmatched"
			if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePattern() != "" {
				route = rc.RoutePattern()
			}
			elapsed := time.Since(start)
			s.metrics.HTTPRequests.WithLabelValues(route, r.Method, statusClass(status)).Inc()
			s.metrics.HTTPDuration.WithLabelValues(route, r.Method).Observe(elapsed.Seconds())
			if route == "/metrics" || route == "/healthz" || route == "/readyz" {
				return
			}
			attrs := []any{"method", r.Method, "route", route, "status", status,
				"duration_ms", elapsed.Milliseconds(), "request_id", requestIDFrom(r.Context()), "ip", clientIPFrom(r.Context())}
			if p := principalFrom(r.Context()); p != nil {
				attrs = append(attrs, "user_id", p.UserID, "org_id", p.OrgID)
			}
			s.log.InfoContext(r.Context(), "http request", attrs...)
		}()
		next.ServeHTTP(ww, r)
	})
}

// securityHeaders applies to every response; the SPA handler tightens CSP.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "strict-origin-when-cross-origin")
		h.Set("X-Frame-Options", "DENY")
		next.ServeHTTP(w, r)
	})
}

// recoverer turns a panic into a logged 500 problem instead of a dropped
// connection.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.ErrorContext(r.Context(), "panic", "value", v, "stack", string(debugStack()))
				writeProblem(w, Problem{Type: problemBase + "internal", Title: "Internal Server Error", Status: 500,
					RequestID: requestIDFrom(r.Context())})
			}
		}()
		next.ServeHTTP(w, r)
	})
}
