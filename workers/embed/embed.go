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

// Process embeds the ticket of p: a batch of one (see run).
func (h *Handler) Process(ctx context.Context, p pipeline.TaskPayload) (Result, error) {
	res, err := h.run(ctx, []pipeline.TaskPayload{p})
	if err != nil {
		return Result{}, err
	}
	return res[0], nil
}
