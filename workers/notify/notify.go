// Package notify is the notify stage: the e-mail the helpdesk sends when
// something happens to a ticket. One task type (pipeline.TaskNotify on
// queue "notify") handles every event of the stage graph that may call for
// mail, and decides here whether it does:
//
//   - ticket.dedup_passed (dedup found the new ticket repeats no open one):
//     the "ticket received" acknowledgement to the requester
//     (Auto-Submitted: auto-replied). Suppressed for a ticket opened by
//     automatic mail (tickets.auto_submitted), one marked duplicate since,
//     one already acknowledged, and beyond AckLimit acknowledgements to one
//     address per AckWindow (mail loops, SECURITY.md §2.4).
//   - comment.added: a public reply by staff to the requester, with its
//     text and its (already sanitised) HTML. The comment is read from the
//     database and an internal note is refused whatever the event says.
//   - ticket.status_changed: to the requester when staff moved the ticket
//     to waiting_customer, cancelled, or back to in_progress from resolved
//     (auto-generated). Resolved sends the CSAT invitation instead (the
//     survey is created then), or a plain status mail once the survey is
//     answered. Nothing when the requester made the change or it was the
//     automatic effect of their reply; suppressed when the ticket has
//     moved on since.
//   - sla.threshold, sla.breached: an SLA escalation to the staff the
//     policy's rule names (roles, "assignee", user ids), or to the
//     organisation's managers (admins when it has none) for a breach no
//     rule covers. No ticket token, no thread: a staff answer must never
//     become a public reply.
//
// # Never twice, never lost
//
// Each (event, recipient) is one notifications row (UNIQUE(event_id,
// recipient)), inserted 'pending' with its pre-generated Message-ID before
// any SMTP traffic, or straight away 'suppressed' with the reason (bounced
// address, rate limit, SMTP not configured, …). The send happens under the
// row's lock (FOR UPDATE NOWAIT: a second run of the task waits its turn
// through a retry) and the row becomes 'sent' in the same transaction. A
// retried task finds 'sent' and sends nothing; a crash between the SMTP
// transaction and the commit re-sends the same Message-ID, which receivers
// collapse. A transient SMTP error (connection, 4xx) fails the task, which
// asynq retries with backoff and archives after the last retry (the admin
// task endpoints show it); a permanent one (5xx, bad message) marks the row
// 'failed' with the reply, and a rejected recipient marks the user's
// address bounced (users.email_bounced_at), which suppresses further mail
// to it.
//
// # Batches
//
// A batch task (ProcessBatch) and a one-event task (Process) take the same
// path, run: the events are read from the outbox at once, what their plans
// need with one query per kind (the organisation and its mailbox, the
// tickets with their acknowledgements and survey, the requesters, the
// comments), and every row of every event is written in one INSERT, before
// any SMTP traffic. The plans see the batch's earlier events as one by one
// would (a second acknowledgement of a ticket, the rate limit, an address
// refused earlier in the batch), and the rows' created_at follow the
// batch's order so the thread of a mail holds those sent before it. Then
// each pending row is sent on its own under its lock, as above. A process
// that dies after the INSERT leaves pending rows that the batch's retry
// sends, each under its lock with its Message-ID: at most the one message
// in flight can go out twice, as with one event. After a transient SMTP
// failure the rest of the batch is not tried: those events are handed on
// and retried on their own, with backoff. Without a mailer a batch of
// acknowledgements is five statements (outbox, organisation, tickets,
// requesters, INSERT) instead of nine per event.
//
// # Threading
//
// Mail to the requester carries the signed ticket token in the subject
// (mailthread.Signer.Subject), Reply-To the organisation's mailbox
// plus-addressed with the token (Signer.ReplyTo), From that mailbox (or
// Config.From when the organisation has none), In-Reply-To the newest
// message of the ticket's thread and References its root (the e-mail
// that opened the ticket) and the newest others, at most MaxReferences:
// notifications sent before and e-mail comments. Every mail carries the
// loop header (internal/mailer).
//
// The event's data is read back from the outbox (kept for a week after
// publishing), since a task carries only the event's id.
package notify

import (
	"context"
	"fmt"
	"log/slog"
	"net/mail"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/internal/apperr"
	"github.com/atumdesk/atumdesk/internal/database"
	"github.com/atumdesk/atumdesk/internal/mailer"
	"github.com/atumdesk/atumdesk/internal/mailthread"
	"github.com/atumdesk/atumdesk/internal/metrics"
	"github.com/atumdesk/atumdesk/pipeline"
)

// Kinds of notification (notifications.kind).
const (
	KindTicketReceived = "ticket_received"
	KindAgentReply     = "agent_reply"
	KindStatusChanged  = "status_changed"
	KindCSATInvitation = "csat_invitation"
	KindSLAEscalation  = "sla_escalation"
)

// Statuses of a notification (notifications.status).
const (
	StatusPending    = "pending"
	StatusSent       = "sent"
	StatusSuppressed = "suppressed"
	StatusFailed     = "failed"
)

// Reasons a notification is suppressed (notifications.reason).
const (
	ReasonSMTPOff       = "smtp not configured"
	ReasonNoSender      = "no sender address"
	ReasonBounced       = "address bounced"
	ReasonInactive      = "recipient inactive"
	ReasonAutoSubmitted = "ticket opened by automatic mail"
	ReasonDuplicate     = "duplicate ticket"
	ReasonAcknowledged  = "ticket already acknowledged"
	ReasonRateLimited   = "rate limited"
	ReasonAcksOff       = "acknowledgements disabled"
	ReasonStatusMovedOn = "status changed again"
)

// Defaults of Config.
const (
	DefaultAckLimit  = 5
	DefaultAckWindow = time.Hour
	// MaxReferences bounds the References header.
	MaxReferences = 10
	// MaxRecipients bounds the staff one escalation is mailed to.
	MaxRecipients = 100
)

// Sender sends mail; *mailer.Sender is the real one.
type Sender interface {
	Send(ctx context.Context, msgs ...*mailer.Message) error
}

// Config configures the stage. Zero values get the defaults noted.
type Config struct {
	// Mailer sends the mail; nil means SMTP is not configured and every
	// notification is recorded as suppressed (ReasonSMTPOff).
	Mailer Sender
	// Signer signs the ticket token of subjects and Reply-To addresses
	// (the deployment's JWT secret); required for mail to requesters.
	Signer *mailthread.Signer
	// From ("Name <addr>" or addr) sends for organisations without an
	// active mailbox, and the SLA escalations to staff.
	From string
	// PublicURL is the base of links to the portal and the desk.
	PublicURL string
	// AckLimit is how many acknowledgements one address gets per
	// AckWindow (0: DefaultAckLimit; negative: none at all).
	AckLimit  int
	AckWindow time.Duration // 0: DefaultAckWindow
	// LoopToken is the value of the loop header (default: internal/mailer's).
	LoopToken  string
	Logger     *slog.Logger          // nil: discarded
	Registerer prometheus.Registerer // nil: metrics not exported
}

// Handler is the asynq handler of pipeline.TaskNotify.
type Handler struct {
	db    *gorm.DB
	cfg   Config
	from  *mail.Address // parsed Config.From, nil when unset or invalid
	log   *slog.Logger
	tmpl  *templates
	total *prometheus.CounterVec // atumdesk_notifications_total{kind,status}
}

// New returns the handler. A bad Config.From or a metrics registration
// error is logged; the handler then works without them.
func New(db *gorm.DB, cfg Config) *Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.AckLimit == 0 {
		cfg.AckLimit = DefaultAckLimit
	}
	if cfg.AckWindow <= 0 {
		cfg.AckWindow = DefaultAckWindow
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	h := &Handler{db: db, cfg: cfg, log: cfg.Logger, tmpl: mustParseTemplates()}
	if cfg.From != "" {
		a, err := mail.ParseAddress(cfg.From)
		if err != nil {
			cfg.Logger.Error("notify: the default sender is not an address; organisations without a mailbox get no mail", "from", cfg.From, "err", err)
		} else {
			h.from = a
		}
	}
	h.total = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metrics.Namespace, Subsystem: "notifications", Name: "total",
		Help: "Notifications by kind and outcome: sent, suppressed, failed (permanent SMTP error), retry (transient error, the task is retried).",
	}, []string{"kind", "status"})
	if cfg.Registerer != nil {
		c, err := metrics.Register(cfg.Registerer, h.total)
		if err != nil {
			cfg.Logger.Error("notify: metrics not registered", "err", err)
		} else {
			h.total = c
		}
	}
	return h
}

// ProcessTask implements asynq.Handler. A payload that cannot be read is
// archived at once (retrying cannot fix it).
func (h *Handler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	p, err := pipeline.ParseTaskPayload(t.Payload())
	if err != nil {
		return fmt.Errorf("notify: %w: %w", err, asynq.SkipRetry)
	}
	_, err = h.Process(ctx, p)
	return err
}

// Result is what Process did, per recipient.
type Result struct {
	Kind string // "" when the event called for no mail
	// Sent, Suppressed and Failed count the recipients whose notification
	// reached that state in this run; Done those settled before it.
	Sent, Suppressed, Failed, Done int
}

// Process handles the event of p: plans the notification and delivers it
// to each recipient. An error means a transient failure for at least one
// recipient (the others are settled): retry the task. It is a run of one
// event (run).
func (h *Handler) Process(ctx context.Context, p pipeline.TaskPayload) (Result, error) {
	out, err := h.run(ctx, []pipeline.TaskPayload{p})
	if err != nil {
		return Result{}, err
	}
	return out[0].res, out[0].err
}

// ProcessBatch implements workers.BatchProcessor: the events (all of one
// organisation) are loaded, planned and claimed together (run), then sent
// one by one. An event that fails is in failed and is retried on its own.
// When loading or claiming fails for the batch (the database refused one
// row, say), each event is run on its own instead, so only the bad one
// fails; a database that is unavailable, or ctx ending, fails the batch.
func (h *Handler) ProcessBatch(ctx context.Context, events []pipeline.TaskPayload) (map[int]error, error) {
	out, err := h.run(ctx, events)
	if err == nil {
		failed := map[int]error{}
		for i, o := range out {
			if o.err != nil {
				failed[i] = o.err
			}
		}
		return failed, nil
	}
	if ctx.Err() != nil || apperr.IsKind(database.Classify(err), apperr.Unavailable) {
		return nil, err
	}
	h.log.WarnContext(ctx, "notify: batch failed; running its events one by one", "events", len(events), "err", err)
	failed := map[int]error{}
	for i, p := range events {
		if err := ctx.Err(); err != nil {
			return nil, err // the batch runs again; events done are no-ops then
		}
		if _, err := h.Process(ctx, p); err != nil {
			failed[i] = err
		}
	}
	return failed, nil
}

func (h *Handler) count(kind, status string) { h.total.WithLabelValues(kind, status).Inc() }
