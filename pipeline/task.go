package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"github.com/atumdesk/atumdesk/internal/database"
)

// TaskPayload is what a stage task carries for one event: enough to find
// the ticket and to dedupe on the event (processed_events), small enough
// for Redis. OrgID also scopes the admin task endpoints to the caller's
// organisation.
type TaskPayload struct {
	EventID     uuid.UUID `json:"event_id"`
	EventType   string    `json:"event_type"`
	OrgID       uuid.UUID `json:"org_id"`
	TicketID    uuid.UUID `json:"ticket_id"`
	RequesterID uuid.UUID `json:"requester_id"`
}

// BatchPayload is the payload of a stage task that covers several events of
// one organisation: the dispatcher turns what one Kafka fetch brought for a
// stage into one task, so a busy queue pays the Redis round trips of a task
// (enqueue, dequeue, completion) once per batch instead of once per ticket.
type BatchPayload struct {
	OrgID  uuid.UUID     `json:"org_id"`
	Events []TaskPayload `json:"events"`
}

// PayloadOf builds the task payload for ev.
func PayloadOf(ev Event) TaskPayload {
	return TaskPayload{EventID: ev.ID, EventType: ev.Type, OrgID: ev.OrgID, TicketID: ev.TicketID, RequesterID: ev.RequesterID}
}

func (p TaskPayload) check() error {
	if p.EventID == uuid.Nil || p.OrgID == uuid.Nil || p.TicketID == uuid.Nil {
		return errors.New("event_id, org_id and ticket_id are required")
	}
	return nil
}

// ParseTaskPayload decodes and checks the payload of a one-event task.
func ParseTaskPayload(b []byte) (TaskPayload, error) {
	var p TaskPayload
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("pipeline: task payload: %w", err)
	}
	if err := p.check(); err != nil {
		return p, fmt.Errorf("pipeline: task payload: %w", err)
	}
	return p, nil
}

// ParseTaskPayloads decodes either kind of stage task payload: one event,
// or a batch (every event of which must belong to the batch's organisation).
func ParseTaskPayloads(b []byte) ([]TaskPayload, error) {
	var v struct {
		TaskPayload
		Events []TaskPayload `json:"events"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("pipeline: task payload: %w", err)
	}
	if v.Events == nil {
		if err := v.check(); err != nil {
			return nil, fmt.Errorf("pipeline: task payload: %w", err)
		}
		return []TaskPayload{v.TaskPayload}, nil
	}
	if len(v.Events) == 0 || v.OrgID == uuid.Nil {
		return nil, errors.New("pipeline: batch payload: org_id and at least one event are required")
	}
	for i, p := range v.Events {
		if err := p.check(); err != nil {
			return nil, fmt.Errorf("pipeline: batch payload: event %d: %w", i, err)
		}
		if p.OrgID != v.OrgID {
			return nil, fmt.Errorf("pipeline: batch payload: event %d belongs to another organisation", i)
		}
	}
	return v.Events, nil
}

// IsBatchPayload reports whether b is a BatchPayload (it has "events"),
// without checking it.
func IsBatchPayload(b []byte) bool {
	var v struct {
		Events json.RawMessage `json:"events"`
	}
	return json.Unmarshal(b, &v) == nil && v.Events != nil
}

// BatchTaskID is the asynq task ID of a batch: the same events in the same
// order (a Kafka batch redelivered whole) conflict like a one-event task
// does. A batch cut differently gets another ID; the stages' inbox rows
// (processed_events) make the overlap change nothing.
func (s Stage) BatchTaskID(events []TaskPayload) string {
	h := sha256.New()
	for _, p := range events {
		h.Write(p.EventID[:])
	}
	return s.TaskType + ":batch:" + hex.EncodeToString(h.Sum(nil)[:16])
}

// TaskOptions are the asynq options every stage task is enqueued with.
type TaskOptions struct {
	// MaxRetry per task (default 12: with the workers' backoff of 2 s
	// doubling to 10 min, about 47 min of retrying before the task is
	// archived).
	MaxRetry int
	// Retention keeps a finished task, and so its TaskID, for this long
	// (default 24 h): an event redelivered within it enqueues nothing.
	Retention time.Duration
	// Timeout bounds one run of a task (default 2 min).
	Timeout time.Duration
}

func (o *TaskOptions) defaults() {
	if o.MaxRetry <= 0 {
		o.MaxRetry = 12
	}
	if o.Retention <= 0 {
		o.Retention = 24 * time.Hour
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Minute
	}
}

// EnqueueStageTask enqueues one stage task with ID id and payload (a
// TaskPayload or a BatchPayload). A task with that ID already queued, or
// finished within its retention, counts as enqueued.
func EnqueueStageTask(ctx context.Context, client *asynq.Client, s Stage, id string, payload any, o TaskOptions, extra ...asynq.Option) error {
	o.defaults()
	b, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	opts := append([]asynq.Option{
		asynq.Queue(s.Queue), asynq.TaskID(id), asynq.MaxRetry(o.MaxRetry),
		asynq.Retention(o.Retention), asynq.Timeout(o.Timeout),
	}, extra...)
	_, err = client.EnqueueContext(ctx, asynq.NewTask(s.TaskType, b), opts...)
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		return nil // already enqueued (or done, within retention)
	}
	if err != nil {
		return fmt.Errorf("enqueue %s task %s: %w", s.TaskType, id, err)
	}
	return nil
}

// OneByOne is a stage's fallback when a batch transaction failed: each
// event through process (the stage's one-event path), the failures by
// index. A database that cannot be reached, or ctx ending, fails the whole
// batch instead (it is retried later; what was done is a no-op then).
func OneByOne(ctx context.Context, stage string, events []TaskPayload, process func(context.Context, TaskPayload) error) (map[int]error, error) {
	failed := map[int]error{}
	for i, p := range events {
		err := process(ctx, p)
		switch {
		case err == nil:
		case ctx.Err() != nil || database.Unavailable(err):
			return nil, fmt.Errorf("%s: event %s: %w", stage, p.EventID, err)
		default:
			failed[i] = err
		}
	}
	return failed, nil
}
