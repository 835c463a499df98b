package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
)

// TicketRef names the ticket an event is about and who may see it.
type TicketRef struct {
	OrgID       uuid.UUID
	TicketID    uuid.UUID
	RequesterID uuid.UUID
}

// NewEvent builds an event with a fresh UUIDv7 id.
func NewEvent(typ string, t TicketRef, actor *uuid.UUID, audience string, data any) (Event, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return Event{}, fmt.Errorf("pipeline: event %s: %w", typ, err)
	}
	return Event{
		ID: uuid.Must(uuid.NewV7()), Type: typ, Version: EventVersion,
		OrgID: t.OrgID, TicketID: t.TicketID, RequesterID: t.RequesterID,
		ActorID: actor, Audience: audience, OccurredAt: time.Now().UTC(), Data: raw,
	}, nil
}

// EmitEvents inserts events into the outbox using tx, the transaction that
// makes the change they describe: an event exists exactly when its change
// commits. The relay publishes them to TopicEvents keyed by ticket.
func EmitEvents(ctx context.Context, tx *gorm.DB, events ...Event) error {
	for _, ev := range events {
		payload, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("pipeline: marshal event: %w", err)
		}
		if err := tx.WithContext(ctx).Exec(`INSERT INTO outbox (event_id, topic, key, event_type, payload) VALUES (?, ?, ?, ?, ?)`,
			ev.ID, TopicEvents, ev.TicketID.String(), ev.Type, string(payload)).Error; err != nil {
			return fmt.Errorf("pipeline: outbox insert %s: %w", ev.Type, err)
		}
	}
	return nil
}
