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
	h.logResult(ctx, p, res)
	return nil
}

func (h *Handler) logResult(ctx context.Context, p pipeline.TaskPayload, res Result) {
	if !res.AlreadyProcessed && res.Found {
		h.log.InfoContext(ctx, "ticket triaged", "ticket_id", p.TicketID, "provider", res.Suggestion.Provider,
			"priority", res.Suggestion.Priority, "confidence", res.Suggestion.Confidence, "applied", res.Applied)
	}
}

// Result is what Process did.
type Result struct {
	AlreadyProcessed bool
	Found            bool
	Suggestion       ai.Suggestion
	Applied          []string // fields auto-applied
}

// Process triages the ticket of p: a batch of one (see run).
func (h *Handler) Process(ctx context.Context, p pipeline.TaskPayload) (Result, error) {
	res, err := h.run(ctx, []pipeline.TaskPayload{p})
	if err != nil {
		return Result{}, err
	}
	return res[0], nil
}

func isOpen(s models.TicketStatus) bool {
	return !slices.Contains([]models.TicketStatus{models.StatusResolved, models.StatusClosed, models.StatusCancelled}, s)
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
