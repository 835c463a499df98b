// Package triage is the triage stage: on ticket.created it asks the
// organisation's AI provider for a service, category and priority, stores
// them beside the ticket's own fields (tickets.ai_suggested_*,
// ai_confidence, ai_suggested_at) and tells staff with a ticket.ai_triaged
// event. An organisation that opted in (settings.ai.auto_apply) also gets
// the suggestions at or above its threshold applied, audited as the AI's
// change, but never over a field a human chose.
//
// The stage also keeps the organisations' classifiers fresh: a resolution
// (ticket.status_changed) schedules one retraining per organisation and
// window, which RetrainHandler runs when due.
package triage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/internal/ai"
	"github.com/atumdesk/atumdesk/internal/audit"
	"github.com/atumdesk/atumdesk/internal/sla"
	"github.com/atumdesk/atumdesk/models"
	"github.com/atumdesk/atumdesk/pipeline"
)

// Consumer is the stage's name in processed_events.
const Consumer = "triage"

// Handler is the asynq handler of pipeline.TaskTriage.
type Handler struct {
	db  *gorm.DB
	ai  *ai.Service
	log *slog.Logger
	now func() time.Time
}

// New returns the handler. A nil svc gets a built-in-only AI service on
// db (models kept in this process).
func New(db *gorm.DB, svc *ai.Service, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if svc == nil && db != nil {
		svc, _ = ai.New(ai.Config{DB: db, Logger: log})
	}
	return &Handler{db: db, ai: svc, log: log, now: time.Now}
}

// ProcessTask implements asynq.Handler.
func (h *Handler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	p, err := pipeline.ParseTaskPayload(t.Payload())
	if err != nil {
		return fmt.Errorf("triage: %w: %w", err, asynq.SkipRetry)
	}
	res, err := h.Process(ctx, p)
	if err != nil {
		return err
	}
	if !res.AlreadyProcessed && res.Found {
		h.log.InfoContext(ctx, "ticket triaged", "ticket_id", p.TicketID, "provider", res.Suggestion.Provider,
			"priority", res.Suggestion.Priority, "confidence", res.Suggestion.Confidence, "applied", res.Applied)
	}
	return nil
}

// Result is what Process did.
type Result struct {
	AlreadyProcessed bool
	Found            bool
	Suggestion       ai.Suggestion
	Applied          []string // fields auto-applied
}

type ticketRow struct {
	ID          uuid.UUID
	OrgID       uuid.UUID
	Number      int64
	Subject     string
	Description string
	Status      models.TicketStatus
	Priority    models.Priority
	ServiceID   *uuid.UUID
	Category    *string
	RequesterID uuid.UUID
}

const selectTicket = `SELECT id, org_id, number, subject, description, status, priority, service_id, category, requester_id
	FROM tickets WHERE org_id = ? AND id = ?`

// Process triages the ticket of p. The provider is asked outside the
// transaction (it may take seconds); the row lock is held only to write.
func (h *Handler) Process(ctx context.Context, p pipeline.TaskPayload) (Result, error) {
	var res Result
	if done, err := processed(ctx, h.db, Consumer, p.EventID); err != nil || done {
		res.AlreadyProcessed = done
		return res, err
	}
	var t ticketRow
	if err := h.db.WithContext(ctx).Raw(selectTicket, p.OrgID, p.TicketID).Scan(&t).Error; err != nil {
		return res, fmt.Errorf("triage: load ticket %s: %w", p.TicketID, err)
	}
	if t.ID == uuid.Nil {
		h.log.WarnContext(ctx, "triage: ticket not found; nothing to do", "ticket_id", p.TicketID, "org_id", p.OrgID)
		return res, nil
	}
	sug, err := h.ai.Triage(ctx, ai.Ticket{ID: t.ID, OrgID: t.OrgID, Subject: t.Subject, Body: t.Description})
	if err != nil {
		return res, err
	}
	settings, _, err := h.ai.Org(ctx, t.OrgID)
	if err != nil {
		return res, err
	}
	err = h.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res = Result{Suggestion: sug}
		ins := tx.Exec(`INSERT INTO processed_events (consumer, event_id) VALUES (?, ?) ON CONFLICT DO NOTHING`, Consumer, p.EventID)
		if ins.Error != nil {
			return fmt.Errorf("triage: inbox: %w", ins.Error)
		}
		if ins.RowsAffected == 0 {
			res.AlreadyProcessed = true
			return nil
		}
		var cur ticketRow
		if err := tx.Raw(selectTicket+` FOR UPDATE`, p.OrgID, p.TicketID).Scan(&cur).Error; err != nil {
			return fmt.Errorf("triage: lock ticket %s: %w", p.TicketID, err)
		}
		if cur.ID == uuid.Nil {
			return nil
		}
		res.Found = true
		return h.write(ctx, tx, &cur, sug, settings, &res)
	})
	return res, err
}

func (h *Handler) write(ctx context.Context, tx *gorm.DB, t *ticketRow, sug ai.Suggestion, st ai.Settings, res *Result) error {
	now := h.now().UTC()
	var category *string
	if sug.Category != "" {
		category = &sug.Category
	}
	err := tx.Exec(`UPDATE tickets SET ai_suggested_service_id = ?, ai_suggested_priority = ?, ai_suggested_category = ?,
		ai_confidence = ?, ai_suggested_at = ? WHERE org_id = ? AND id = ?`,
		sug.ServiceID, sug.Priority, category, sug.Confidence, now, t.OrgID, t.ID).Error
	if err != nil {
		return fmt.Errorf("triage: store suggestion: %w", err)
	}
	ref := pipeline.TicketRef{OrgID: t.OrgID, TicketID: t.ID, RequesterID: t.RequesterID}
	ev, err := pipeline.NewEvent(ai.EventTriaged, ref, nil, pipeline.AudienceStaff,
		map[string]any{"number": t.Number, "suggestion": sug, "suggested_at": now})
	if err != nil {
		return err
	}
	events := []pipeline.Event{ev}
	if st.AutoApply && isOpen(t.Status) {
		applied, evs, err := autoApply(ctx, tx, t, sug, st.AutoApplyThreshold, now)
		if err != nil {
			return err
		}
		res.Applied = applied
		events = append(events, evs...)
	}
	return pipeline.EmitEvents(ctx, tx, events...)
}

func isOpen(s models.TicketStatus) bool {
	return !slices.Contains([]models.TicketStatus{models.StatusResolved, models.StatusClosed, models.StatusCancelled}, s)
}

// autoApply sets the confident suggestions on fields no human chose, with
// an audit row (actor ai) and a ticket.updated event, and brings the SLA
// clock in step when priority or service changed.
func autoApply(ctx context.Context, tx *gorm.DB, t *ticketRow, sug ai.Suggestion, threshold float64, now time.Time) ([]string, []pipeline.Event, error) {
	cols, before, after := map[string]any{}, map[string]any{}, map[string]any{}
	if sug.ServiceID != nil && t.ServiceID == nil && sug.ServiceConfidence >= threshold {
		cols["service_id"], before["service_id"], after["service_id"] = *sug.ServiceID, nil, *sug.ServiceID
	}
	if sug.Category != "" && (t.Category == nil || *t.Category == "") && sug.CategoryConfidence >= threshold {
		cols["category"], before["category"], after["category"] = sug.Category, nil, sug.Category
	}
	if sug.Priority.Valid() && sug.Priority != t.Priority && sug.PriorityConfidence >= threshold {
		chosen, err := PriorityChosen(ctx, tx, t.OrgID, t.ID, t.Priority, t.ServiceID)
		if err != nil {
			return nil, nil, err
		}
		if !chosen {
			cols["priority"], before["priority"], after["priority"] = sug.Priority, t.Priority, sug.Priority
		}
	}
	if len(cols) == 0 {
		return nil, nil, nil
	}
	if err := tx.Table("tickets").Where("org_id = ? AND id = ?", t.OrgID, t.ID).Updates(cols).Error; err != nil {
		return nil, nil, fmt.Errorf("triage: auto-apply: %w", err)
	}
	applied := make([]string, 0, len(cols))
	diff := map[string]any{}
	for k := range cols {
		applied = append(applied, k)
		diff[k] = map[string]any{"from": before[k], "to": after[k]}
	}
	slices.Sort(applied)
	after["confidence"] = sug.Confidence
	after["provider"] = sug.Provider
	if err := audit.Write(ctx, tx, audit.Entry{OrgID: &t.OrgID, TicketID: &t.ID, ActorKind: audit.ActorAI,
		Action: "ticket.ai_applied", EntityType: "ticket", EntityID: &t.ID, Before: before, After: after}); err != nil {
		return nil, nil, err
	}
	ev, err := pipeline.NewEvent(pipeline.EventTicketUpdated,
		pipeline.TicketRef{OrgID: t.OrgID, TicketID: t.ID, RequesterID: t.RequesterID}, nil, pipeline.AudiencePublic,
		map[string]any{"changes": diff, "by": audit.ActorAI})
	if err != nil {
		return nil, nil, err
	}
	events := []pipeline.Event{ev}
	if _, ok := cols["priority"]; ok || cols["service_id"] != nil {
		evs, err := sla.Sync(ctx, tx, t.OrgID, t.ID, now, sla.ReasonScope)
		if err != nil {
			return nil, nil, fmt.Errorf("triage: sla: %w", err)
		}
		events = append(events, evs...)
	}
	return applied, events, nil
}

// PriorityChosen reports whether a human chose the ticket's priority: staff
// changed it (an audited ticket.updated by a user), the submitter chose it
// (the ticket.created audit row says priority_explicit), or, when the
// creation record does not say, the priority differs from the default the
// ticket would have had (its service's default priority, else medium).
func PriorityChosen(ctx context.Context, tx *gorm.DB, orgID, ticketID uuid.UUID, current models.Priority, serviceID *uuid.UUID) (bool, error) {
	var r struct {
		StaffChanged bool
		Explicit     *bool
		Default      *string
	}
	err := tx.WithContext(ctx).Raw(`SELECT
		EXISTS (SELECT 1 FROM audit_log WHERE ticket_id = ? AND org_id = ? AND actor_kind = 'user'
			AND action = 'ticket.updated' AND after->'priority' IS NOT NULL) AS staff_changed,
		(SELECT (after->>'priority_explicit')::boolean FROM audit_log WHERE ticket_id = ? AND org_id = ?
			AND action = 'ticket.created' ORDER BY created_at LIMIT 1) AS explicit,
		(SELECT default_priority FROM services WHERE org_id = ? AND id = ?) AS default`,
		ticketID, orgID, ticketID, orgID, orgID, serviceID).Scan(&r).Error
	if err != nil {
		return false, fmt.Errorf("triage: priority origin: %w", err)
	}
	if r.StaffChanged {
		return true, nil
	}
	if r.Explicit != nil {
		return *r.Explicit, nil
	}
	def := models.PriorityMedium
	if r.Default != nil {
		def = models.Priority(*r.Default)
	}
	return current != def, nil
}

func processed(ctx context.Context, db *gorm.DB, consumer string, eventID uuid.UUID) (bool, error) {
	var done bool
	err := db.WithContext(ctx).Raw(`SELECT EXISTS (SELECT 1 FROM processed_events WHERE consumer = ? AND event_id = ?)`,
		consumer, eventID).Scan(&done).Error
	if err != nil {
		return false, fmt.Errorf("triage: inbox: %w", err)
	}
	return done, nil
}

// RetrainHandler is the asynq handler of pipeline.TaskAIRetrain: for a
// ticket.status_changed task it schedules the organisation's retraining
// when the ticket is now resolved or closed; for the scheduled task
// (ai.RetrainPayload with Train) it trains.
type RetrainHandler struct {
	db  *gorm.DB
	ai  *ai.Service
	log *slog.Logger
}

// NewRetrain returns the handler (svc as for New).
func NewRetrain(db *gorm.DB, svc *ai.Service, log *slog.Logger) *RetrainHandler {
	h := New(db, svc, log)
	return &RetrainHandler{db: db, ai: h.ai, log: h.log}
}

// ProcessTask implements asynq.Handler.
func (h *RetrainHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var rp ai.RetrainPayload
	if err := json.Unmarshal(t.Payload(), &rp); err == nil && rp.Train {
		if rp.OrgID == uuid.Nil {
			return fmt.Errorf("triage: retrain without org_id: %w", asynq.SkipRetry)
		}
		_, err := h.ai.Retrain(ctx, rp.OrgID)
		return err
	}
	p, err := pipeline.ParseTaskPayload(t.Payload())
	if err != nil {
		return fmt.Errorf("triage: retrain: %w: %w", err, asynq.SkipRetry)
	}
	var status models.TicketStatus
	err = h.db.WithContext(ctx).Raw(`SELECT status FROM tickets WHERE org_id = ? AND id = ?`, p.OrgID, p.TicketID).Scan(&status).Error
	if err != nil {
		return fmt.Errorf("triage: retrain: ticket status: %w", err)
	}
	if status != models.StatusResolved && status != models.StatusClosed {
		return nil
	}
	if err := h.ai.ScheduleRetrain(ctx, p.OrgID, false); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
