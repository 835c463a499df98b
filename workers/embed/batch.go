package embed

import (
	"context"
	"fmt"
	"slices"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/internal/ai"
	"github.com/atumdesk/atumdesk/internal/database"
	"github.com/atumdesk/atumdesk/pipeline"
)

// ProcessBatch implements workers.BatchProcessor: the events (of one
// organisation) with a handful of statements whatever their number, the
// vectors computed before one transaction stores them all. If the batch
// fails, its events run one by one and failed holds those that failed; err
// is set only when the database cannot be reached (the batch is retried
// whole; what it did is a no-op then).
func (h *Handler) ProcessBatch(ctx context.Context, events []pipeline.TaskPayload) (failed map[int]error, err error) {
	if len(events) == 0 {
		return nil, nil
	}
	if slices.ContainsFunc(events, func(p pipeline.TaskPayload) bool { return p.OrgID != events[0].OrgID }) {
		return h.oneByOne(ctx, events) // not a batch the dispatcher makes
	}
	_, err = h.run(ctx, events)
	if err == nil {
		return nil, nil
	}
	if ctx.Err() != nil || database.Unavailable(err) {
		return nil, fmt.Errorf("embed: batch: %w", err)
	}
	h.log.WarnContext(ctx, "embed: batch failed; running its events one by one", "events", len(events), "err", err)
	return h.oneByOne(ctx, events)
}

// oneByOne runs each event through Process, returning the failures by index.
func (h *Handler) oneByOne(ctx context.Context, events []pipeline.TaskPayload) (map[int]error, error) {
	return pipeline.OneByOne(ctx, "embed", events, func(ctx context.Context, p pipeline.TaskPayload) error {
		_, err := h.Process(ctx, p)
		return err
	})
}

// ticketRow is what the stage reads of a ticket.
type ticketRow struct {
	ID          uuid.UUID
	Number      int64
	Subject     string
	Description string
	RequesterID uuid.UUID
}

// run embeds the tickets of events (one organisation): which events are
// new and their tickets are read in one query, the vectors are computed
// outside the transaction, and one transaction records the events
// (processed_events), stores the vectors and emits ticket.embedded. The
// vectors then go into this process's index. An event already processed is
// a no-op; one whose ticket is gone is done (nothing to do). It returns
// each event's Result.
func (h *Handler) run(ctx context.Context, events []pipeline.TaskPayload) ([]Result, error) {
	results := make([]Result, len(events))
	orgID := events[0].OrgID
	pre, err := pending(ctx, h.db, orgID, events)
	if err != nil {
		return nil, err
	}
	var todo []int
	var texts []ai.Ticket
	text := map[uuid.UUID]int{} // ticket → its index in texts
	for i, p := range events {
		switch r := pre[i].Ticket; {
		case pre[i].Done:
			results[i].AlreadyProcessed = true
		case r.ID == uuid.Nil:
			h.log.WarnContext(ctx, "embed: ticket not found; nothing to do", "ticket_id", p.TicketID, "org_id", p.OrgID)
		default:
			todo = append(todo, i)
			if _, ok := text[r.ID]; !ok {
				text[r.ID] = len(texts)
				texts = append(texts, ai.Ticket{ID: r.ID, OrgID: orgID, Subject: r.Subject, Body: r.Description})
			}
		}
	}
	if len(todo) == 0 {
		return results, nil
	}
	vecs, err := h.ai.EmbedAll(ctx, texts)
	if err != nil {
		return nil, err
	}
	var stored []ai.TicketVector
	err = h.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		stored = stored[:0]
		ids := make([]uuid.UUID, len(todo))
		for k, i := range todo {
			ids[k] = events[i].EventID
		}
		fresh, err := pipeline.MarkProcessed(ctx, tx, Consumer, ids)
		if err != nil {
			return err
		}
		var evs []pipeline.Event
		for _, i := range todo {
			id := events[i].EventID
			if !fresh[id] { // done meanwhile, or given twice in the batch
				results[i] = Result{AlreadyProcessed: true}
				continue
			}
			delete(fresh, id)
			t, v := pre[i].Ticket, vecs[text[pre[i].Ticket.ID]]
			results[i] = Result{Model: v.Model, Dims: len(v.Vec)}
			stored = append(stored, v)
			ev, err := pipeline.NewEvent(ai.EventEmbedded, pipeline.TicketRef{OrgID: orgID, TicketID: t.ID, RequesterID: t.RequesterID},
				nil, pipeline.AudienceStaff, map[string]any{"number": t.Number, "embedding_model": v.Model, "dims": len(v.Vec)})
			if err != nil {
				return err
			}
			evs = append(evs, ev)
		}
		// A ticket deleted since it was read gets no vector (and no error).
		if _, err := ai.StoreVectors(ctx, tx, orgID, stored); err != nil {
			return fmt.Errorf("embed: %w", err)
		}
		return pipeline.EmitEvents(ctx, tx, evs...)
	})
	if err != nil {
		return nil, err
	}
	for _, v := range stored {
		h.ai.IndexTicket(ctx, orgID, v.TicketID, v.Model, v.Vec)
	}
	return results, nil
}

// pendingRow is an event of the batch: already processed, or the ticket
// it is about (ID nil when there is none).
type pendingRow struct {
	N      int
	Done   bool
	Ticket ticketRow `gorm:"embedded"`
}

// pending reads, in one query, whether each event was processed and the
// tickets of those that were not. The rows are in the order of events.
func pending(ctx context.Context, db *gorm.DB, orgID uuid.UUID, events []pipeline.TaskPayload) ([]pendingRow, error) {
	eventIDs, ticketIDs := make([]uuid.UUID, len(events)), make([]uuid.UUID, len(events))
	for i, p := range events {
		eventIDs[i], ticketIDs[i] = p.EventID, p.TicketID
	}
	var rows []pendingRow
	// Arrays, not JSON: the planner sees how many rows unnest gives (a
	// function over JSON counts as 100, and small tables get scanned whole).
	err := db.WithContext(ctx).Raw(`SELECT e.n, p.event_id IS NOT NULL AS done,
			t.id, t.number, t.subject, t.description, t.requester_id
		FROM unnest(?::uuid[], ?::uuid[]) WITH ORDINALITY AS e(event_id, ticket_id, n)
		LEFT JOIN processed_events p ON p.consumer = ? AND p.event_id = e.event_id
		LEFT JOIN tickets t ON t.org_id = ? AND t.id = e.ticket_id AND p.event_id IS NULL
		ORDER BY e.n`, database.UUIDArray(eventIDs), database.UUIDArray(ticketIDs), Consumer, orgID).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("embed: load %d ticket(s): %w", len(events), err)
	}
	if len(rows) != len(events) {
		return nil, fmt.Errorf("embed: load tickets: %d rows for %d events", len(rows), len(events))
	}
	return rows, nil
}
