package workers

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"

	"github.com/atumdesk/atumdesk/pipeline"
)

// splitter runs batch tasks (pipeline.BatchPayload) with handlers written
// for one event: each event of the batch goes through the handler in turn,
// and an event that fails is handed on as a one-event task of its own (its
// usual ID, first run after a backoff), which retries and is archived alone.
// So one bad ticket neither holds up nor re-runs the rest of its batch, and
// the archived-task endpoints see it like any other task.
type splitter struct {
	client *asynq.Client
	opts   pipeline.TaskOptions
	delay  time.Duration // before the split task's first run
	log    *slog.Logger
}

// BatchProcessor is implemented by a stage handler that runs several events
// at once (one transaction, set-based queries) rather than one by one.
// err means the batch as a whole could not run (the database is down): the
// batch task is retried and events already done are no-ops then. Otherwise
// failed maps the index of each event that failed to its error; those are
// handed on as one-event tasks and everything else must be done.
type BatchProcessor interface {
	ProcessBatch(ctx context.Context, events []pipeline.TaskPayload) (failed map[int]error, err error)
}

func (s *splitter) wrap(queue string, h asynq.Handler) asynq.Handler {
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		if !pipeline.IsBatchPayload(t.Payload()) {
			return h.ProcessTask(ctx, t) // a one-event task (or a timer, a retraining) as it is
		}
		events, err := pipeline.ParseTaskPayloads(t.Payload())
		if err != nil {
			return fmt.Errorf("%s: %w: %w", t.Type(), err, asynq.SkipRetry)
		}
		stage := pipeline.Stage{Queue: queue, TaskType: t.Type()}
		if bp, ok := h.(BatchProcessor); ok {
			failed, err := bp.ProcessBatch(ctx, events)
			if err != nil {
				return fmt.Errorf("%s: batch of %d: %w", t.Type(), len(events), err)
			}
			for i, perr := range failed {
				if err := s.handOn(ctx, stage, events[i], perr); err != nil {
					return err
				}
			}
			return nil
		}
		for _, p := range events {
			if err := ctx.Err(); err != nil {
				return err // shutdown or timeout: the batch runs again; done events are no-ops
			}
			b, err := json.Marshal(p)
			if err != nil {
				return err
			}
			perr := h.ProcessTask(ctx, asynq.NewTask(t.Type(), b))
			if perr == nil {
				continue
			}
			if err := s.handOn(ctx, stage, p, perr); err != nil {
				return err
			}
		}
		return nil
	})
}

// handOn enqueues the failed event p of a batch as a one-event task.
func (s *splitter) handOn(ctx context.Context, stage pipeline.Stage, p pipeline.TaskPayload, perr error) error {
	s.log.WarnContext(ctx, "workers: event of a batch failed; retrying it as its own task",
		"queue", stage.Queue, "task_type", stage.TaskType, "event_id", p.EventID, "ticket_id", p.TicketID, "err", perr)
	if err := pipeline.EnqueueStageTask(ctx, s.client, stage, stage.TaskID(p.EventID), p, s.opts,
		asynq.ProcessIn(s.delay)); err != nil {
		return fmt.Errorf("%s: hand on failed event %s: %w (it failed with: %w)", stage.TaskType, p.EventID, err, perr)
	}
	return nil
}
