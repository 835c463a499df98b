package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/internal/database"
)

// MarkProcessed is a stage's inbox: it records, in one statement, that
// consumer has handled the events ids (processed_events) and returns those
// it had not handled before. Inside the stage's transaction, an event whose
// work rolls back is not recorded either, so asynq's redelivery runs it again
// and a second delivery of a done event finds it here and does nothing.
func MarkProcessed(ctx context.Context, tx *gorm.DB, consumer string, ids []uuid.UUID) (map[uuid.UUID]bool, error) {
	fresh := map[uuid.UUID]bool{}
	if len(ids) == 0 {
		return fresh, nil
	}
	// Sorted and unique: two overlapping batches (a redelivery cut
	// differently, a retry beside a handed-on event) take the unique
	// index's locks in the same order and cannot deadlock.
	ids = slices.Clone(ids)
	slices.SortFunc(ids, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
	ids = slices.Compact(ids)
	var rows []uuid.UUID
	err := tx.WithContext(ctx).Raw(`INSERT INTO processed_events (consumer, event_id) SELECT ?, unnest(?::uuid[])
		ON CONFLICT DO NOTHING RETURNING event_id`, consumer, database.UUIDArray(ids)).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("%s: inbox: %w", consumer, err)
	}
	for _, id := range rows {
		fresh[id] = true
	}
	return fresh, nil
}
