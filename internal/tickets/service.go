// Package tickets is the ticket workflow service: reading tickets within the
// caller's visibility, and every change to tickets and comments. Each change
// commits in one transaction together with its audit row(s) and its domain
// events (the outbox), so what the audit log and SSE show is exactly what
// happened.
package tickets

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/atumdesk/atumdesk/internal/apperr"
	"github.com/atumdesk/atumdesk/internal/audit"
	"github.com/atumdesk/atumdesk/internal/database"
	"github.com/atumdesk/atumdesk/internal/sla"
	"github.com/atumdesk/atumdesk/models"
	"github.com/atumdesk/atumdesk/pipeline"
)

// Config holds the workflow's settings.
type Config struct {
	// ReopenWindow is how long after resolution a customer reply reopens a
	// ticket; an organisation's settings.reopen_window_hours overrides it.
	// Zero means models.DefaultReopenWindow.
	ReopenWindow time.Duration
}

// Service reads and changes tickets and comments.
type Service struct {
	db   *gorm.DB
	cfg  Config
	html *Sanitizer
	now  func() time.Time
}

// New returns the service.
func New(db *gorm.DB, cfg Config) *Service {
	if cfg.ReopenWindow <= 0 {
		cfg.ReopenWindow = models.DefaultReopenWindow
	}
	return &Service{db: db, cfg: cfg, html: NewSanitizer(), now: func() time.Time { return time.Now().UTC() }}
}

// Actor is who makes a call, and from where (for the audit log).
type Actor struct {
	UserID    uuid.UUID
	OrgID     uuid.UUID
	Role      models.Role
	IP        string
	UserAgent string
	RequestID string
}

// IsRequester reports whether a is t's requester.
func (a Actor) IsRequester(t *models.Ticket) bool { return a.UserID == t.RequesterID }

// Allowed lists the statuses a may move t to.
func (a Actor) Allowed(t *models.Ticket) []models.TicketStatus {
	return models.Allowed(t.Status, a.Role, a.IsRequester(t))
}

// requesterSide reports whether a speaks for the customer on t: a customer,
// or a staff member who filed the ticket themself.
func (a Actor) requesterSide(t *models.Ticket) bool {
	return a.Role.IsCustomer() || a.IsRequester(t)
}

var errTicketNotFound = apperr.New(apperr.NotFound, "Ticket not found.")

// visible scopes a tickets query to what a may see: staff and
// customer_admins every ticket of their organisation, customer_users the
// tickets they requested or watch (a colleague in Cc, who may also reply
// by e-mail). Anything else is "not found".
func visible(q *gorm.DB, a Actor) *gorm.DB {
	q = q.Where("tickets.org_id = ?", a.OrgID)
	switch {
	case a.Role.IsStaff() || a.Role == models.RoleCustomerAdmin:
		return q
	case a.Role == models.RoleCustomerUser:
		return q.Where("(tickets.requester_id = ? OR tickets.id IN (SELECT w.ticket_id FROM ticket_watchers w WHERE w.user_id = ?))",
			a.UserID, a.UserID)
	}
	return q.Where("false")
}

// ticketQuery selects ticket rows by the model's column names (not *), so
// the search vector, which no caller of this package needs, is not read.
func ticketQuery(db *gorm.DB) *gorm.DB {
	return db.Session(&gorm.Session{QueryFields: true}).Model(&models.Ticket{})
}

// Get returns a ticket a may see.
func (s *Service) Get(ctx context.Context, a Actor, id uuid.UUID) (*models.Ticket, error) {
	var t models.Ticket
	err := visible(ticketQuery(s.db.WithContext(ctx)), a).Where("tickets.id = ?", id).Take(&t).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, errTicketNotFound
	}
	if err != nil {
		return nil, database.Classify(fmt.Errorf("tickets: get %s: %w", id, err))
	}
	return &t, nil
}

// change is one write transaction on one ticket, locked for its duration.
type change struct {
	s      *Service
	ctx    context.Context
	tx     *gorm.DB
	a      Actor
	t      *models.Ticket // as locked; updated in place by set
	now    time.Time
	events []pipeline.Event
}

// mutate locks ticket id (as visible to a), runs fn, emits the events fn
// queued and returns the ticket as committed, all in one transaction.
func (s *Service) mutate(ctx context.Context, a Actor, id uuid.UUID, fn func(c *change) error) (*models.Ticket, error) {
	var out models.Ticket
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var t models.Ticket
		err := visible(ticketQuery(tx), a).Clauses(clause.Locking{Strength: "UPDATE"}).
			Where("tickets.id = ?", id).Take(&t).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return errTicketNotFound
		}
		if err != nil {
			return fmt.Errorf("tickets: lock %s: %w", id, err)
		}
		c := &change{s: s, ctx: ctx, tx: tx, a: a, t: &t, now: s.now()}
		if err := fn(c); err != nil {
			return err
		}
		if err := pipeline.EmitEvents(ctx, tx, c.events...); err != nil {
			return err
		}
		// Re-read for the columns the database maintains (updated_at).
		if err := ticketQuery(tx).Where("id = ?", id).Take(&out).Error; err != nil {
			return fmt.Errorf("tickets: reload %s: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return nil, database.Classify(err)
	}
	return &out, nil
}

// set updates columns of the locked ticket.
func (c *change) set(cols map[string]any) error {
	if err := c.tx.Table("tickets").Where("id = ?", c.t.ID).Updates(cols).Error; err != nil {
		return fmt.Errorf("tickets: update %s: %w", c.t.ID, err)
	}
	return nil
}

// audit writes one audit row about the ticket (or one of its comments).
func (c *change) audit(action, entity string, entityID uuid.UUID, before, after any) error {
	return audit.Write(c.ctx, c.tx, audit.Entry{
		OrgID: &c.t.OrgID, TicketID: &c.t.ID, UserID: &c.a.UserID, Action: action,
		EntityType: entity, EntityID: &entityID, Before: before, After: after,
		IP: c.a.IP, UserAgent: c.a.UserAgent, RequestID: c.a.RequestID,
	})
}

// emit queues a domain event; mutate writes them to the outbox.
func (c *change) emit(typ, audience string, data any) error {
	ev, err := pipeline.NewEvent(typ, pipeline.TicketRef{OrgID: c.t.OrgID, TicketID: c.t.ID, RequesterID: c.t.RequesterID},
		&c.a.UserID, audience, data)
	if err != nil {
		return err
	}
	c.events = append(c.events, ev)
	return nil
}

// writable refuses any change to a closed or cancelled ticket.
func (c *change) writable() error {
	if c.t.Status.ReadOnly() {
		return &apperr.Error{Kind: apperr.InvalidState,
			Msg:   fmt.Sprintf("The ticket is %s and read-only.", c.t.Status),
			Extra: map[string]any{"current_status": c.t.Status, "allowed_transitions": []models.TicketStatus{}}}
	}
	return nil
}

// invalidTransition is the 409 for a move the caller may not make, listing
// the moves they may.
func (c *change) invalidTransition(to models.TicketStatus) error {
	if err := c.writable(); err != nil {
		return err
	}
	return &apperr.Error{Kind: apperr.InvalidState,
		Msg:   fmt.Sprintf("A %s ticket cannot be moved to %s by you.", c.t.Status, to),
		Extra: map[string]any{"current_status": c.t.Status, "allowed_transitions": c.a.Allowed(c.t)}}
}

// moveTo changes the status and keeps the lifecycle timestamps in step,
// with its audit row and status_changed event. cause says why ("" for an
// explicit change, "customer_reply" for the automatic ones). It is the one
// place a status changes.
func (c *change) moveTo(to models.TicketStatus, reason, cause string, extra map[string]any) error {
	from := c.t.Status
	cols := map[string]any{"status": to}
	for k, v := range extra {
		cols[k] = v
	}
	switch {
	case to == models.StatusResolved:
		cols["resolved_at"] = c.now
	case to == models.StatusClosed:
		cols["closed_at"] = c.now
	case from == models.StatusResolved:
		cols["resolved_at"] = nil // reopened
	}
	if err := c.set(cols); err != nil {
		return err
	}
	c.t.Status = to
	after := map[string]any{"status": to}
	data := map[string]any{"from": from, "to": to}
	if reason != "" {
		after["reason"], data["reason"] = reason, reason
	}
	if cause != "" {
		after["cause"], data["cause"] = cause, cause
	}
	action := "ticket.status_changed"
	if to == models.StatusAccepted {
		action = "ticket.accepted"
		after["accepted_by"] = c.a.UserID
	}
	if err := c.audit(action, "ticket", c.t.ID, map[string]any{"status": from}, after); err != nil {
		return err
	}
	if err := c.emit(pipeline.EventStatusChanged, pipeline.AudiencePublic, data); err != nil {
		return err
	}
	return c.syncSLA(sla.StatusReason(to))
}

// syncSLA brings the ticket's SLA clock in step with this change (start,
// pause, resume, met, recompute), in the same transaction, and queues its
// ticket.sla_changed event: the sla stage schedules the timers from it
// once the change is committed.
func (c *change) syncSLA(reason sla.Reason) error {
	evs, err := sla.Sync(c.ctx, c.tx, c.t.OrgID, c.t.ID, c.now, reason)
	if err != nil {
		return err
	}
	c.events = append(c.events, evs...)
	return nil
}

// reopenWindow is the organisation's reopen window, or the configured one.
func (c *change) reopenWindow() (time.Duration, error) {
	var raw *string
	err := c.tx.Raw(`SELECT settings->>'reopen_window_hours' FROM organizations WHERE id = ?`, c.t.OrgID).Row().Scan(&raw)
	if err != nil {
		return 0, fmt.Errorf("tickets: org settings: %w", err)
	}
	if raw != nil {
		if h, err := strconv.ParseFloat(*raw, 64); err == nil && h >= 0 && h <= 24*366 {
			return time.Duration(h * float64(time.Hour)), nil
		}
	}
	return c.s.cfg.ReopenWindow, nil
}
