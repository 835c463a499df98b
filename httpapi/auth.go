package httpapi

import (
	"net/http"
	"strings"

	"github.com/atumdesk/atumdesk/internal/apperr"
	"github.com/atumdesk/atumdesk/internal/session"
)

// refreshCookie holds the browser's refresh token: HttpOnly (no script can
// read it), SameSite=Strict and scoped to the auth endpoints.
const (
	refreshCookie     = "atumdesk_refresh"
	refreshCookiePath = "/api/v1/auth"
)

type loginRequest struct {
	Email        string `json:"email"`
	Password     string `json:"password"`
	Organization string `json:"organization,omitempty"`
}

func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	var req loginRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	fields := map[string]string{}
	if strings.TrimSpace(req.Email) == "" || len(req.Email) > 320 {
		fields["email"] = "is required"
	}
	if req.Password == "" || len(req.Password) > 1024 {
		fields["password"] = "is required"
	}
	if err := apperr.Fields(fields); err != nil {
		s.writeError(w, r, err)
		return
	}
	pair, err := s.sessions.Login(r.Context(), req.Email, req.Password, req.Organization, s.client(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeTokens(w, pair)
}

type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

// refreshTokenFrom takes the token from the JSON body (API clients) or the
// HttpOnly cookie (browsers).
func (s *Server) refreshTokenFrom(w http.ResponseWriter, r *http.Request) (string, error) {
	if r.ContentLength != 0 && r.Header.Get("Content-Type") != "" {
		var req refreshRequest
		if err := decodeJSON(w, r, &req); err != nil {
			return "", err
		}
		if req.RefreshToken != "" {
			return req.RefreshToken, nil
		}
	}
	if c, err := r.Cookie(refreshCookie); err == nil {
		return c.Value, nil
	}
	return "", nil
}

func (s *Server) handleRefresh(w http.ResponseWriter, r *http.Request) {
	raw, err := s.refreshTokenFrom(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	pair, err := s.sessions.Refresh(r.Context(), raw, s.client(r))
	if err != nil {
		if apperr.IsKind(err, apperr.Unauthorized) {
			s.clearRefreshCookie(w)
		}
		s.writeError(w, r, err)
		return
	}
	s.writeTokens(w, pair)
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	raw, err := s.refreshTokenFrom(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.sessions.Logout(r.Context(), raw); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.clearRefreshCookie(w)
	w.WriteHeader(http.StatusNoContent)
}

type passwordChangeRequest struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

func (s *Server) handlePasswordChange(w http.ResponseWriter, r *http.Request) {
	var req passwordChangeRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	p := mustPrincipal(r)
	if err := s.sessions.ChangePassword(r.Context(), p.UserID, req.CurrentPassword, req.NewPassword, s.client(r)); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.clearRefreshCookie(w)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) writeTokens(w http.ResponseWriter, pair *session.TokenPair) {
	http.SetCookie(w, &http.Cookie{
		Name: refreshCookie, Value: pair.RefreshToken, Path: refreshCookiePath,
		MaxAge: int(pair.RefreshTTL.Seconds()), HttpOnly: true, Secure: s.cfg.CookieSecure, SameSite: http.SameSiteStrictMode,
	})
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, pair)
}

func (s *Server) clearRefreshCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: refreshCookie, Value: "", Path: refreshCookiePath, MaxAge: -1,
		HttpOnly: true, Secure: s.cfg.CookieSecure, SameSite: http.SameSiteStrictMode})
}

func (s *Server) client(r *http.Request) session.Client {
	return session.Client{IP: clientIPFrom(r.Context()), UserAgent: r.UserAgent(), RequestID: requestIDFrom(r.Context())}
}
