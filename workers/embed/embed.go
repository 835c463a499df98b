// Package embed is the embed stage: on ticket.created it computes the
// ticket's vector with the organisation's AI provider (the built-in one
// when that fails), stores it in ticket_embeddings (not an update of the
// ticket row), adds it to this process's similar-ticket index and emits
// ticket.embedded so every other process's index picks it up.
package embed

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/internal/ai"
	"github.com/atumdesk/atumdesk/pipeline"
)

// Consumer is the stage's name in processed_events.
const Consumer = "embed"

// Handler is the asynq handler of pipeline.TaskEmbed.
type Handler struct {
	db  *gorm.DB
	ai  *ai.Service
	log *slog.Logger
}

// New returns the handler. A nil svc gets a built-in-only AI service on db.
func New(db *gorm.DB, svc *ai.Service, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if svc == nil && db != nil {
		svc, _ = ai.New(ai.Config{DB: db, Logger: log})
	}
	return &Handler{db: db, ai: svc, log: log}
}

// ProcessTask implements asynq.Handler.
func (h *Handler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	p, err := pipeline.ParseTaskPayload(t.Payload())
	if err != nil {
		return fmt.Errorf("embed: %w: %w", err, asynq.SkipRetry)
	}
	_, err = h.Process(ctx, p)
	return err
}

// Result is what Process did.
type Result struct {
	AlreadyProcessed bool
	Model            string
	Dims             int
}

// Process embeds the ticket of p. The vector is computed outside the
// transaction; the stored row, the inbox entry and the event commit
// together.
func (h *Handler) Process(ctx context.Context, p pipeline.TaskPayload) (Result, error) {
	var res Result
	var done bool
	if err := h.db.WithContext(ctx).Raw(`SELECT EXISTS (SELECT 1 FROM processed_events WHERE consumer = ? AND event_id = ?)`,
		Consumer, p.EventID).Scan(&done).Error; err != nil {
		return res, fmt.Errorf("embed: inbox: %w", err)
	}
	if done {
		return Result{AlreadyProcessed: true}, nil
	}
	var t struct {
		ID          uuid.UUID
		Number      int64
		Subject     string
		Description string
		RequesterID uuid.UUID
	}
	if err := h.db.WithContext(ctx).Raw(`SELECT id, number, subject, description, requester_id FROM tickets WHERE org_id = ? AND id = ?`,
		p.OrgID, p.TicketID).Scan(&t).Error; err != nil {
		return res, fmt.Errorf("embed: load ticket %s: %w", p.TicketID, err)
	}
	if t.ID == uuid.Nil {
		h.log.WarnContext(ctx, "embed: ticket not found; nothing to do", "ticket_id", p.TicketID, "org_id", p.OrgID)
		return res, nil
	}
	vec, model, err := h.ai.Embed(ctx, ai.Ticket{ID: t.ID, OrgID: p.OrgID, Subject: t.Subject, Body: t.Description})
	if err != nil {
		return res, err
	}
	err = h.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res = Result{Model: model, Dims: len(vec)}
		ins := tx.Exec(`INSERT INTO processed_events (consumer, event_id) VALUES (?, ?) ON CONFLICT DO NOTHING`, Consumer, p.EventID)
		if ins.Error != nil {
			return fmt.Errorf("embed: inbox: %w", ins.Error)
		}
		if ins.RowsAffected == 0 {
			res.AlreadyProcessed = true
			return nil
		}
		if _, err := ai.StoreVector(ctx, tx, p.OrgID, t.ID, model, vec); err != nil {
			return fmt.Errorf("embed: %w", err)
		}
		ev, err := pipeline.NewEvent(ai.EventEmbedded, pipeline.TicketRef{OrgID: p.OrgID, TicketID: t.ID, RequesterID: t.RequesterID},
			nil, pipeline.AudienceStaff, map[string]any{"number": t.Number, "embedding_model": model, "dims": len(vec)})
		if err != nil {
			return err
		}
		return pipeline.EmitEvents(ctx, tx, ev)
	})
	if err != nil || res.AlreadyProcessed {
		return res, err
	}
	h.ai.IndexTicket(ctx, p.OrgID, t.ID, model, vec)
	return res, nil
}
