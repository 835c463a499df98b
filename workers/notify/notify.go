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
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"

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
// recipient (the others are settled): retry the task.
func (h *Handler) Process(ctx context.Context, p pipeline.TaskPayload) (Result, error) {
	if h.db == nil {
		return Result{}, errors.New("notify: no database")
	}
	ev, err := h.loadEvent(ctx, p)
	if err != nil || ev == nil {
		return Result{}, err
	}
	pl, err := h.plan(ctx, ev)
	if err != nil || pl == nil {
		return Result{}, err
	}
	res := Result{Kind: pl.kind}
	var firstErr error
	for _, r := range pl.to {
		st, err := h.deliver(ctx, ev, pl, r)
		switch st {
		case StatusSent:
			res.Sent++
		case StatusSuppressed:
			res.Suppressed++
		case StatusFailed:
			res.Failed++
		case "":
			res.Done++
		}
		if err != nil {
			firstErr = cmp.Or(firstErr, err)
		}
	}
	return res, firstErr
}

// loadEvent reads the event of p back from the outbox; nil when it was
// swept (a task more than a week old: nothing sensible to send).
func (h *Handler) loadEvent(ctx context.Context, p pipeline.TaskPayload) (*pipeline.Event, error) {
	var rows []struct{ Payload []byte }
	err := h.db.WithContext(ctx).Raw(`SELECT payload FROM outbox WHERE event_id = ?`, p.EventID).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("notify: read event %s: %w", p.EventID, err)
	}
	if len(rows) == 0 {
		h.log.WarnContext(ctx, "notify: event no longer in the outbox; nothing sent", "event_id", p.EventID, "ticket_id", p.TicketID)
		return nil, nil
	}
	var ev pipeline.Event
	if err := json.Unmarshal(rows[0].Payload, &ev); err != nil {
		return nil, fmt.Errorf("notify: event %s: %w: %w", p.EventID, err, asynq.SkipRetry)
	}
	if ev.OrgID != p.OrgID || ev.TicketID != p.TicketID {
		return nil, fmt.Errorf("notify: event %s names another ticket than its task: %w", p.EventID, asynq.SkipRetry)
	}
	return &ev, nil
}

func (h *Handler) count(kind, status string) { h.total.WithLabelValues(kind, status).Inc() }
