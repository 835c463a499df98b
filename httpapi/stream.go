package httpapi

import (
	"net/http"
	"net/url"

	"github.com/atumdesk/atumdesk/internal/apperr"
	"github.com/atumdesk/atumdesk/internal/stream"
)

// streamPath is the server-sent-events endpoint (see internal/stream for
// the protocol: event ids, ready/reset, heartbeats).
const streamPath = "/api/v1/stream"

// handleStream streams the caller's events until they disconnect or their
// access token expires; the browser then reconnects with a fresh token and
// ?last_event_id=.
func (s *Server) handleStream(w http.ResponseWriter, r *http.Request) {
	if s.stream == nil {
		s.writeError(w, r, apperr.New(apperr.Unavailable, "The event stream is not enabled on this server."))
		return
	}
	p := mustPrincipal(r)
	v := stream.Viewer{UserID: p.UserID, OrgID: p.OrgID, Role: p.Role, IP: clientIPFrom(r.Context())}
	// authenticate verified this token already; its expiry ends the stream,
	// so a deactivated or demoted user keeps no stream beyond it.
	if c, err := s.tokens.Verify(bearerToken(r)); err == nil && c.ExpiresAt != nil {
		v.Expires = c.ExpiresAt.Time
	}
	if err := s.stream.Serve(w, r, v); err != nil {
		s.writeError(w, r, err)
	}
}

// streamTokenFromQuery lets a browser's EventSource, which cannot set
// headers, pass its access token as ?access_token= on the stream route
// only. The token moves into the Authorization header (a header token wins)
// and out of the URL, so nothing after this sees it in the query; the
// request log records the route pattern, never the URL. Proxies in front
// must not log the query string of this route either.
func streamTokenFromQuery(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != streamPath || r.Method != http.MethodGet || !r.URL.Query().Has("access_token") {
			next.ServeHTTP(w, r)
			return
		}
		q := r.URL.Query()
		tok := q.Get("access_token")
		q.Del("access_token")
		r2 := r.Clone(r.Context())
		u := *r.URL
		u.RawQuery = q.Encode()
		r2.URL = &u
		r2.RequestURI = (&url.URL{Path: u.Path, RawQuery: u.RawQuery}).RequestURI()
		if r2.Header.Get("Authorization") == "" && tok != "" {
			r2.Header.Set("Authorization", "Bearer "+tok)
		}
		next.ServeHTTP(w, r2)
	})
}
