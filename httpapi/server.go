// Package httpapi is the thin HTTP layer: it authenticates, authorises via
// the route table, validates, calls services and writes JSON or
// problem+json.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime/debug"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/ingest"
	"github.com/atumdesk/atumdesk/internal/auth"
	"github.com/atumdesk/atumdesk/internal/metrics"
	"github.com/atumdesk/atumdesk/internal/session"
)

// Config is the part of the process configuration the HTTP layer needs.
type Config struct {
	CookieSecure   bool
	TrustedProxies []netip.Prefix
	LoginMaxFails  int
	LoginWindow    time.Duration
	RefreshTTL     time.Duration
}

// ReadyCheck is one dependency probed by /readyz.
type ReadyCheck struct {
	Name  string
	Check func(context.Context) error
}

// Deps are the explicit dependencies of the HTTP layer.
type Deps struct {
	Config   Config
	Log      *slog.Logger
	DB       *gorm.DB
	Redis    *redis.Client
	Tokens   *auth.Tokens
	Sessions *session.Service
	Metrics  *metrics.Registry
	Ready    []ReadyCheck
	Intake   *ingest.Service
}

// Server holds the handlers' dependencies.
type Server struct {
	cfg      Config
	log      *slog.Logger
	db       *gorm.DB
	rdb      *redis.Client
	tokens   *auth.Tokens
	sessions *session.Service
	metrics  *metrics.Registry
	ready    []ReadyCheck
	intake   *ingest.Service
	csrf     *http.CrossOriginProtection
}

// New returns a server; call Handler for the http.Handler.
func New(d Deps) *Server {
	return &Server{cfg: d.Config, log: d.Log, db: d.DB, rdb: d.Redis, tokens: d.Tokens, sessions: d.Sessions,
		metrics: d.Metrics, ready: d.Ready, intake: d.Intake, csrf: http.NewCrossOriginProtection()}
}

// Route is one row of the route table: who may call what.
type Route struct {
	Method  string
	Pattern string
	Perm    auth.Permission // auth.Public for unauthenticated routes
	Handler http.HandlerFunc
}

// Routes is the route table: every route and the permission it requires.
// Reading this function tells who may do what.
func (s *Server) Routes() []Route {
	return []Route{
		{"GET", "/healthz", auth.Public, s.handleHealthz},
		{"GET", "/readyz", auth.Public, s.handleReadyz},
		{"GET", "/metrics", auth.Public, s.metrics.Handler().ServeHTTP},

		{"POST", "/api/v1/auth/login", auth.Public, s.handleLogin},
		{"POST", "/api/v1/auth/refresh", auth.Public, s.handleRefresh},
		{"POST", "/api/v1/auth/logout", auth.Public, s.handleLogout},
		{"POST", "/api/v1/auth/password/change", auth.Authenticated, s.handlePasswordChange},
		{"GET", "/api/v1/me", auth.Authenticated, s.handleGetMe},
		{"PUT", "/api/v1/me", auth.Authenticated, s.handlePutMe},

		{"POST", "/api/v1/tickets", auth.TicketsCreate, s.handleCreateTicket},
		{"GET", "/forms/{formKey}", auth.Public, s.handleFormPage},
		{"POST", "/forms/{formKey}", auth.Public, s.handleFormSubmit},

		{"GET", "/api/v1/organizations", auth.OrgsRead, s.handleListOrgs},
		{"GET", "/api/v1/organizations/{orgID}", auth.OrgsRead, s.handleGetOrg},
		{"PATCH", "/api/v1/organizations/{orgID}", auth.OrgsWrite, s.handlePatchOrg},

		{"GET", "/api/v1/users", auth.UsersRead, s.handleListUsers},
		{"POST", "/api/v1/users", auth.UsersWrite, s.handleCreateUser},
		{"GET", "/api/v1/users/{userID}", auth.UsersRead, s.handleGetUser},
		{"PATCH", "/api/v1/users/{userID}", auth.UsersWrite, s.handlePatchUser},
		{"DELETE", "/api/v1/users/{userID}", auth.UsersWrite, s.handleDeleteUser},
	}
}

// Handler builds the router from the route table.
func (s *Server) Handler() http.Handler {
	r := chi.NewRouter()
	r.Use(s.requestContext, s.observe, s.recoverer, securityHeaders)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, Problem{Type: problemBase + "not-found", Title: "Not Found", Status: 404, Detail: "No such route.", Instance: r.URL.Path})
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, Problem{Type: problemBase + "method-not-allowed", Title: "Method Not Allowed", Status: 405, Instance: r.URL.Path})
	})
	for _, rt := range s.Routes() {
		if rt.Perm == auth.Public {
			r.Method(rt.Method, rt.Pattern, rt.Handler)
			continue
		}
		r.With(s.authenticate, s.require(rt.Perm)).Method(rt.Method, rt.Pattern, rt.Handler)
	}
	return r
}

func debugStack() []byte { return debug.Stack() }

func statusClass(code int) string { return metrics.StatusClass(code) }
