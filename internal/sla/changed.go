package sla

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/internal/database"
	"github.com/atumdesk/atumdesk/models"
	"github.com/atumdesk/atumdesk/pipeline"
)

// ChangedEvents reads the Data of ticket.sla_changed events from the
// outbox, in one query (published rows are kept for days; the stage's task
// runs within seconds). An event gone has no entry, one that cannot be
// decoded a nil one.
func ChangedEvents(ctx context.Context, db *gorm.DB, eventIDs []uuid.UUID) (map[uuid.UUID]*ChangedData, error) {
	var rows []struct {
		EventID uuid.UUID
		Payload models.JSONB
	}
	err := db.WithContext(ctx).Raw(`SELECT event_id, payload FROM outbox WHERE event_id = ANY(?::uuid[])`, database.UUIDArray(eventIDs)).
		Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("sla: read %d event(s): %w", len(eventIDs), err)
	}
	out := make(map[uuid.UUID]*ChangedData, len(rows))
	for _, r := range rows {
		var ev pipeline.Event
		var data ChangedData
		if json.Unmarshal(r.Payload, &ev) != nil || json.Unmarshal(ev.Data, &data) != nil {
			out[r.EventID] = nil
			continue
		}
		out[r.EventID] = &data
	}
	return out, nil
}
