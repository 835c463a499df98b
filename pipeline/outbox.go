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

// MaxEventBytes bounds an event's JSON. Kafka refuses messages above the
// broker's message.max.bytes (1 MB by default), and one the relay cannot
// publish would hold up every event behind it.
const MaxEventBytes = 512 << 10

// EmitEvents inserts events into the outbox using tx, the transaction that
// makes the change they describe: an event exists exactly when its change
// commits. The relay publishes them to TopicEvents keyed by ticket, in the
// order given here. One statement whatever the number of events.
func EmitEvents(ctx context.Context, tx *gorm.DB, events ...Event) error {
	if len(events) == 0 {
		return nil
	}
	type row struct {
		N         int             `json:"n"`
		EventID   uuid.UUID       `json:"event_id"`
		Topic     string          `json:"topic"`
		Key       string          `json:"key"`
		EventType string          `json:"event_type"`
		Payload   json.RawMessage `json:"payload"`
	}
	rows := make([]row, len(events))
	for i, ev := range events {
		payload, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("pipeline: marshal event %s: %w", ev.Type, err)
		}
		if len(payload) > MaxEventBytes {
			return fmt.Errorf("pipeline: event %s is %d bytes, more than %d: put a reference in it, not the content", ev.Type, len(payload), MaxEventBytes)
		}
		rows[i] = row{N: i, EventID: ev.ID, Topic: TopicEvents, Key: ev.TicketID.String(), EventType: ev.Type, Payload: payload}
	}
	param, err := jsonParam(rows)
	if err != nil {
		return err
	}
	// ORDER BY n: the identity follows the order given, which is the order
	// the relay publishes in.
	err = tx.WithContext(ctx).Exec(`INSERT INTO outbox (event_id, topic, key, event_type, payload)
		SELECT event_id, topic, key, event_type, payload
		FROM jsonb_to_recordset(?::jsonb) AS x(n int, event_id uuid, topic text, key text, event_type text, payload jsonb)
		ORDER BY n`, param).Error
	if err != nil {
		return fmt.Errorf("pipeline: outbox insert of %d event(s): %w", len(events), err)
	}
	return nil
}
