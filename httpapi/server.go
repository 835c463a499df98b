// Package httpapi is the thin HTTP layer: it authenticates, authorises via
// the route table, validates, calls services and writes JSON or
// problem+json.
package httpapi

import (
	"context"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime/debug"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/ingest"
	"github.com/atumdesk/atumdesk/internal/ai"
	"github.com/atumdesk/atumdesk/internal/auth"
	"github.com/atumdesk/atumdesk/internal/kb"
	"github.com/atumdesk/atumdesk/internal/metrics"
	"github.com/atumdesk/atumdesk/internal/netguard"
	"github.com/atumdesk/atumdesk/internal/secretbox"
	"github.com/atumdesk/atumdesk/internal/session"
	"github.com/atumdesk/atumdesk/internal/storage"
	"github.com/atumdesk/atumdesk/internal/stream"
	"github.com/atumdesk/atumdesk/internal/tickets"
)

// Config is the part of the process configuration the HTTP layer needs.
type Config struct {
	CookieSecure   bool
	TrustedProxies []netip.Prefix
	LoginMaxFails  int
	LoginWindow    time.Duration
	RefreshTTL     time.Duration
	// ReopenWindow: a customer reply this long after resolution reopens the
	// ticket (an organisation's settings.reopen_window_hours overrides it).
	ReopenWindow time.Duration
	// AttachmentMaxBytes is the upload limit (storage.DefaultMaxBytes when 0).
	AttachmentMaxBytes int64
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
	// Tasks inspects the asynq queues (admin task endpoints); nil: 503.
	Tasks  *asynq.Inspector
	Intake *ingest.Service
	// Stream is the SSE hub (stream.NewHub, fed by its Run); nil: the
	// stream route answers 503.
	Stream *stream.Hub
	// Files stores attachment bytes (storage.NewLocal); nil: attachment
	// uploads and downloads answer 503.
	Files storage.Store
	// Secrets seals mailbox passwords (secretbox.FromBase64 of
	// ATUMDESK_SECRET_KEY); nil: saving a mailbox password answers 503.
	Secrets *secretbox.Box
	// IMAPGuard decides which IMAP servers a mailbox may name
	// (ATUMDESK_IMAP_ALLOW_HOSTS); nil: no internal address at all.
	IMAPGuard *netguard.Guard
	// Web is the built web app (frontend.Dist()), served for GET/HEAD of
	// every non-API path no route matches (httpapi/spa.go); nil: a notice.
	Web fs.FS
	// AI serves the /api/v1/ai endpoints (ai.New); nil: a built-in-only
	// service on DB and Redis (httpapi/ai.go).
	AI *ai.Service
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
	tickets  *tickets.Service
	tasks    *asynq.Inspector
	intake   *ingest.Service
	stream   *stream.Hub
	csrf     *http.CrossOriginProtection
	// principals caches the last database read of each caller (see
	// loadPrincipal: used only while the database is unreachable).
	principals sync.Map
	secrets    *secretbox.Box
	imapGuard  *netguard.Guard

	attachments *storage.Attachments
	web         fs.FS
	ai          *ai.Service
	kb          *kb.Store
}

// New returns a server; call Handler for the http.Handler.
func New(d Deps) *Server {
	return &Server{cfg: d.Config, log: d.Log, db: d.DB, rdb: d.Redis, tokens: d.Tokens, sessions: d.Sessions,
		metrics: d.Metrics, ready: d.Ready, tasks: d.Tasks, intake: d.Intake, stream: d.Stream, csrf: http.NewCrossOriginProtection(), secrets: d.Secrets,
		imapGuard:   d.IMAPGuard,
		tickets:     tickets.New(d.DB, tickets.Config{ReopenWindow: d.Config.ReopenWindow}),
		attachments: storage.NewAttachments(d.Files, d.Config.AttachmentMaxBytes), web: d.Web, ai: defaultAI(d),
		kb: kb.New(d.DB)}
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
		{"GET", "/api/v1/openapi.yaml", auth.Public, s.handleOpenAPI},

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

		{"GET", streamPath, auth.StreamRead, s.handleStream},

		{"GET", "/api/v1/tickets", auth.TicketsRead, s.handleListTickets},
		{"GET", "/api/v1/tickets/{ticketID}", auth.TicketsRead, s.handleGetTicket},
		{"PATCH", "/api/v1/tickets/{ticketID}", auth.TicketsUpdate, s.handlePatchTicket},
		{"POST", "/api/v1/tickets/{ticketID}/accept", auth.TicketsAccept, s.handleAcceptTicket},
		{"POST", "/api/v1/tickets/{ticketID}/assign", auth.TicketsAssign, s.handleAssignTicket},
		{"POST", "/api/v1/tickets/{ticketID}/status", auth.TicketsTransition, s.handleTicketStatus},
		{"GET", "/api/v1/tickets/{ticketID}/comments", auth.TicketsRead, s.handleListComments},
		{"POST", "/api/v1/tickets/{ticketID}/comments", auth.CommentsCreate, s.handleCreateComment},
		{"GET", "/api/v1/tickets/{ticketID}/audit", auth.TicketsAudit, s.handleTicketAudit},
		{"GET", "/api/v1/tickets/{ticketID}/attachments", auth.TicketsRead, s.handleListTicketAttachments},
		{"POST", "/api/v1/tickets/{ticketID}/attachments", auth.CommentsCreate, s.handleAttachToTicket},
		{"GET", "/api/v1/tickets/{ticketID}/csat", auth.TicketsRead, s.handleGetCSAT},
		{"POST", "/api/v1/tickets/{ticketID}/csat", auth.CSATSubmit, s.handleSubmitCSAT},

		// Uploads are unattached until a ticket or comment lists them in
		// attachment_ids; downloads go through the ticket's visibility.
		{"POST", "/api/v1/attachments", auth.TicketsCreate, s.handleUploadAttachment},
		{"GET", "/api/v1/attachments/{attachmentID}", auth.TicketsRead, s.handleDownloadAttachment},

		{"GET", "/api/v1/audit", auth.AuditRead, s.handleListAudit},
		{"GET", "/api/v1/audit/export.csv", auth.AuditRead, s.handleExportAudit},
		{"GET", "/api/v1/csat/metrics", auth.CSATRead, s.handleCSATMetrics},

		{"GET", "/api/v1/sla/policies", auth.SLARead, s.handleListSLAPolicies},
		{"POST", "/api/v1/sla/policies", auth.SLAManage, s.handleCreateSLAPolicy},
		{"GET", "/api/v1/sla/policies/{policyID}", auth.SLARead, s.handleGetSLAPolicy},
		{"PATCH", "/api/v1/sla/policies/{policyID}", auth.SLAManage, s.handlePatchSLAPolicy},
		{"DELETE", "/api/v1/sla/policies/{policyID}", auth.SLAManage, s.handleDeleteSLAPolicy},
		{"GET", "/api/v1/sla/breaches", auth.SLARead, s.handleListSLABreaches},
		{"GET", "/api/v1/sla/metrics", auth.SLARead, s.handleSLAMetrics},

		// Services: customers see the active ones (they pick one when filing).
		{"GET", "/api/v1/services", auth.ServicesRead, s.handleListServices},
		{"POST", "/api/v1/services", auth.ServicesManage, s.handleCreateService},
		{"GET", "/api/v1/services/{serviceID}", auth.ServicesRead, s.handleGetService},
		{"PATCH", "/api/v1/services/{serviceID}", auth.ServicesManage, s.handlePatchService},
		{"DELETE", "/api/v1/services/{serviceID}", auth.ServicesManage, s.handleDeleteService},

		// Canned responses: one's own and the shared ones; who may change
		// or share one is checked per response (canned.go).
		{"GET", "/api/v1/canned-responses", auth.CannedUse, s.handleListCannedResponses},
		{"POST", "/api/v1/canned-responses", auth.CannedUse, s.handleCreateCannedResponse},
		{"GET", "/api/v1/canned-responses/{cannedID}", auth.CannedUse, s.handleGetCannedResponse},
		{"PATCH", "/api/v1/canned-responses/{cannedID}", auth.CannedUse, s.handlePatchCannedResponse},
		{"DELETE", "/api/v1/canned-responses/{cannedID}", auth.CannedUse, s.handleDeleteCannedResponse},
		{"GET", "/api/v1/canned-responses/{cannedID}/render", auth.CannedUse, s.handleRenderCannedResponse},

		// Knowledge base: customers read published public articles; agents
		// write drafts; publishers change published ones (kb.go).
		{"GET", "/api/v1/kb/categories", auth.KBRead, s.handleListKBCategories},
		{"POST", "/api/v1/kb/categories", auth.KBPublish, s.handleCreateKBCategory},
		{"GET", "/api/v1/kb/categories/{categoryID}", auth.KBRead, s.handleGetKBCategory},
		{"PATCH", "/api/v1/kb/categories/{categoryID}", auth.KBPublish, s.handlePatchKBCategory},
		{"DELETE", "/api/v1/kb/categories/{categoryID}", auth.KBPublish, s.handleDeleteKBCategory},
		{"GET", "/api/v1/kb/articles", auth.KBRead, s.handleListKBArticles},
		{"POST", "/api/v1/kb/articles", auth.KBWrite, s.handleCreateKBArticle},
		{"GET", "/api/v1/kb/articles/{articleID}", auth.KBRead, s.handleGetKBArticle},
		{"PATCH", "/api/v1/kb/articles/{articleID}", auth.KBWrite, s.handlePatchKBArticle},
		{"DELETE", "/api/v1/kb/articles/{articleID}", auth.KBWrite, s.handleDeleteKBArticle},
		{"POST", "/api/v1/kb/articles/{articleID}/publish", auth.KBPublish, s.handlePublishKBArticle},
		{"POST", "/api/v1/kb/articles/{articleID}/unpublish", auth.KBPublish, s.handleUnpublishKBArticle},

		{"GET", "/api/v1/ai/triage/{ticketID}", auth.AIUse, s.handleAITriage},
		{"POST", "/api/v1/ai/suggest-response", auth.AIUse, s.handleAISuggestResponse},
		{"GET", "/api/v1/ai/similar-tickets/{ticketID}", auth.AIUse, s.handleAISimilarTickets},
		{"GET", "/api/v1/ai/suggest-kb/{ticketID}", auth.AIUse, s.handleAISuggestKB},

		{"GET", "/api/v1/admin/tasks/{queue}/archived", auth.TasksAdmin, s.handleListArchivedTasks},
		{"POST", "/api/v1/admin/tasks/{queue}/archived/{taskID}/retry", auth.TasksAdmin, s.handleRetryArchivedTask},
		{"DELETE", "/api/v1/admin/tasks/{queue}/archived/{taskID}", auth.TasksAdmin, s.handleDeleteArchivedTask},

		{"GET", "/api/v1/admin/mailboxes", auth.MailboxesAdmin, s.handleListMailboxes},
		{"POST", "/api/v1/admin/mailboxes", auth.MailboxesAdmin, s.handleCreateMailbox},
		{"GET", "/api/v1/admin/mailboxes/{mailboxID}", auth.MailboxesAdmin, s.handleGetMailbox},
		{"PATCH", "/api/v1/admin/mailboxes/{mailboxID}", auth.MailboxesAdmin, s.handlePatchMailbox},
		{"DELETE", "/api/v1/admin/mailboxes/{mailboxID}", auth.MailboxesAdmin, s.handleDeleteMailbox},
		{"GET", "/api/v1/admin/mail-quarantine", auth.MailboxesAdmin, s.handleListQuarantine},
		{"POST", "/api/v1/admin/mail-quarantine/{quarantineID}/replay", auth.MailboxesAdmin, s.handleReplayQuarantine},
	}
}

// Handler builds the router from the route table.
func (s *Server) Handler() http.Handler {
	r := chi.NewRouter()
	r.Use(s.requestContext, s.observe, s.recoverer, securityHeaders, streamTokenFromQuery)
	app, err := newSPA(s.web)
	if err != nil {
		s.log.Error("web app: reading the embedded build failed; serving without it", "err", err)
		app, _ = newSPA(nil)
	}
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		if isSPAPath(r) {
			app.ServeHTTP(w, r)
			return
		}
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
