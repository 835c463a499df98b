package tickets

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/atumdesk/atumdesk/internal/database"
	"github.com/atumdesk/atumdesk/models"
)

// Queue is a named ticket list of the desk.
type Queue string

const (
	QueueAll        Queue = "all"
	QueueNew        Queue = "new"        // the manager's inbox: tickets waiting to be accepted
	QueueMine       Queue = "mine"       // assigned to the caller
	QueueUnassigned Queue = "unassigned" // still being worked on, and nobody's
)

// Queues lists every queue.
var Queues = []Queue{QueueAll, QueueNew, QueueMine, QueueUnassigned}

// Valid reports whether q is a known queue.
func (q Queue) Valid() bool { return slices.Contains(Queues, q) }

// Filter selects and pages tickets. Zero values select everything.
type Filter struct {
	Queue         Queue
	Statuses      []models.TicketStatus
	Priorities    []models.Priority
	ServiceID     *uuid.UUID
	AssignedTo    *uuid.UUID
	RequesterID   *uuid.UUID
	CreatedAfter  *time.Time // inclusive
	CreatedBefore *time.Time // exclusive
	Text          string     // web search syntax over subject and description

	Oldest bool      // oldest first; newest first by default
	After  uuid.UUID // keyset cursor: the last ticket of the previous page
	Limit  int
}

// List returns the tickets a may see that match f, newest first (or oldest
// first), at most f.Limit+1 of them so the caller can tell whether there is
// a next page.
func (s *Service) List(ctx context.Context, a Actor, f Filter) ([]models.Ticket, error) {
	q := visible(ticketQuery(s.db.WithContext(ctx)), a)
	switch f.Queue {
	case QueueNew:
		q = q.Where("tickets.status = ?", models.StatusNew)
	case QueueMine:
		q = q.Where("tickets.assigned_to = ?", a.UserID)
	case QueueUnassigned:
		q = q.Where("tickets.assigned_to IS NULL AND tickets.status IN ?", openStatuses())
	}
	if len(f.Statuses) > 0 {
		q = q.Where("tickets.status IN ?", f.Statuses)
	}
	if len(f.Priorities) > 0 {
		q = q.Where("tickets.priority IN ?", f.Priorities)
	}
	if f.ServiceID != nil {
		q = q.Where("tickets.service_id = ?", *f.ServiceID)
	}
	if f.AssignedTo != nil {
		q = q.Where("tickets.assigned_to = ?", *f.AssignedTo)
	}
	if f.RequesterID != nil {
		q = q.Where("tickets.requester_id = ?", *f.RequesterID)
	}
	if f.CreatedAfter != nil {
		q = q.Where("tickets.created_at >= ?", *f.CreatedAfter)
	}
	if f.CreatedBefore != nil {
		q = q.Where("tickets.created_at < ?", *f.CreatedBefore)
	}
	if f.Text != "" {
		q = q.Where("tickets.search @@ websearch_to_tsquery('simple', ?)", f.Text)
	}
	cmp, dir := "<", "DESC"
	if f.Oldest {
		cmp, dir = ">", "ASC"
	}
	if f.After != uuid.Nil {
		// A cursor that names no ticket of the organisation yields nothing.
		q = q.Where("(tickets.created_at, tickets.id) "+cmp+
			" (SELECT k.created_at, k.id FROM tickets k WHERE k.id = ? AND k.org_id = ?)", f.After, a.OrgID)
	}
	var out []models.Ticket
	err := q.Order("tickets.created_at " + dir + ", tickets.id " + dir).Limit(f.Limit + 1).Find(&out).Error
	if err != nil {
		return nil, database.Classify(fmt.Errorf("tickets: list: %w", err))
	}
	return out, nil
}

func openStatuses() []models.TicketStatus {
	var out []models.TicketStatus
	for _, s := range models.TicketStatuses {
		if s.IsOpen() {
			out = append(out, s)
		}
	}
	return out
}
