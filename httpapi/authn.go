package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/internal/apperr"
	"github.com/atumdesk/atumdesk/internal/auth"
	"github.com/atumdesk/atumdesk/internal/database"
	"github.com/atumdesk/atumdesk/models"
)

// Principal is the authenticated caller, re-read from the database on each
// request so that deactivation and role changes take effect at once.
type Principal struct {
	UserID uuid.UUID
	OrgID  uuid.UUID
	Role   models.Role
	Email  string
}

// IsStaff reports whether the caller works tickets.
func (p *Principal) IsStaff() bool { return p.Role.IsStaff() }

func principalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(ctxPrincipal).(*Principal)
	return p
}

// mustPrincipal is for handlers behind authenticate.
func mustPrincipal(r *http.Request) *Principal {
	p := principalFrom(r.Context())
	if p == nil {
		panic("httpapi: handler without authenticate middleware")
	}
	return p
}

var errUnauthenticated = apperr.New(apperr.Unauthorized, "Authentication required: send a valid bearer access token.")

// authenticate resolves the bearer access token to a Principal.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw := bearerToken(r)
		if raw == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="atumdesk"`)
			s.writeError(w, r, errUnauthenticated)
			return
		}
		claims, err := s.tokens.Verify(raw)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="atumdesk", error="invalid_token"`)
			s.writeError(w, r, apperr.Wrap(apperr.Unauthorized, "The access token is invalid or expired.", err))
			return
		}
		p, err := s.loadPrincipal(r.Context(), claims.Subject)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		ctx := context.WithValue(r.Context(), ctxPrincipal, p)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func bearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// principalStaleFor is how long a principal last read from the database
// may stand in while the database is unreachable, so that intake keeps
// accepting tickets (they wait on the topic) through a short outage.
const principalStaleFor = 10 * time.Minute

// principalFreshFor is how long a principal read from the database is
// reused without reading it again: the user row is read at most once per
// this interval per process rather than on every request (the hot path of
// intake). A deactivated account or changed role takes effect within it on
// other api replicas; this process forgets the entry at once (forgetPrincipal).
const principalFreshFor = 2 * time.Second

type cachedPrincipal struct {
	row     principalRecord
	fetched time.Time
}

type principalRecord struct {
	ID         uuid.UUID
	OrgID      uuid.UUID
	Role       models.Role
	Email      string
	AllowedIPs string
}

func (s *Server) loadPrincipal(ctx context.Context, subject string) (*Principal, error) {
	if c, ok := s.principals.Load(subject); ok && time.Since(c.(cachedPrincipal).fetched) < principalFreshFor {
		return s.principalFrom(ctx, c.(cachedPrincipal).row)
	}
	var row principalRecord
	err := s.db.WithContext(ctx).Raw(`
		SELECT u.id, u.org_id, u.role, u.email, coalesce(array_to_json(o.allowed_ips)::text, '[]') AS allowed_ips
		FROM users u JOIN organizations o ON o.id = u.org_id
		WHERE u.id = ? AND u.is_active AND o.is_active`, subject).Scan(&row).Error
	if err != nil {
		err = database.Classify(err)
		c, ok := s.principals.Load(subject)
		if !ok || !apperr.IsKind(err, apperr.Unavailable) || time.Since(c.(cachedPrincipal).fetched) > principalStaleFor {
			return nil, err
		}
		row = c.(cachedPrincipal).row
	} else if row.ID != uuid.Nil {
		s.principals.Store(subject, cachedPrincipal{row: row, fetched: time.Now()})
	} else {
		s.principals.Delete(subject)
	}
	return s.principalFrom(ctx, row)
}

// forgetPrincipal drops the cached principal of a user whose account was
// changed here, so the change applies to this process's next request.
func (s *Server) forgetPrincipal(userID uuid.UUID) { s.principals.Delete(userID.String()) }

func (s *Server) principalFrom(ctx context.Context, row principalRecord) (*Principal, error) {
	if row.ID == uuid.Nil {
		return nil, apperr.New(apperr.Unauthorized, "The account is disabled or no longer exists.")
	}
	if !ipAllowed(row.AllowedIPs, clientIPFrom(ctx)) {
		return nil, apperr.New(apperr.Forbidden, "Your network address is not allowed for this organisation.")
	}
	return &Principal{UserID: row.ID, OrgID: row.OrgID, Role: row.Role, Email: row.Email}, nil
}

// ipAllowed checks the organisation's allow-list (a JSON array of CIDRs);
// an empty list allows every address.
func ipAllowed(listJSON string, ip string) bool {
	var list []string
	_ = json.Unmarshal([]byte(listJSON), &list)
	if len(list) == 0 {
		return true
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	for _, c := range list {
		if p, err := netip.ParsePrefix(c); err == nil && p.Contains(a) {
			return true
		}
		if b, err := netip.ParseAddr(c); err == nil && b == a {
			return true
		}
	}
	return false
}

// require rejects callers whose role lacks perm.
func (s *Server) require(perm auth.Permission) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p := principalFrom(r.Context())
			if p == nil || !auth.Can(p.Role, perm) {
				s.writeError(w, r, apperr.New(apperr.Forbidden, "Your role may not do this."))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// notFoundIfMissing maps gorm's not-found to the API's 404 and classifies
// other database errors.
func notFoundIfMissing(err error, what string) error {
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return apperr.New(apperr.NotFound, what+" not found.")
	}
	return database.Classify(err)
}
