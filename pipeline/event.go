package pipeline

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// EventVersion is the version of the Event envelope on TopicEvents.
const EventVersion = 1

// Domain event types.
const (
	EventTicketCreated   = "ticket.created"
	EventTicketUpdated   = "ticket.updated"
	EventStatusChanged   = "ticket.status_changed"
	EventTicketAssigned  = "ticket.assigned"
	EventCommentAdded    = "comment.added"
	EventDuplicateMarked = "ticket.duplicate_marked"
	// EventDedupPassed (staff): the dedup stage found that a new ticket
	// repeats no open ticket. The requester's acknowledgement follows it,
	// so a duplicate is never acknowledged a second time.
	EventDedupPassed = "ticket.dedup_passed"
	// SLA: a clock started, paused, resumed, was met or had its due times
	// recomputed (staff); a threshold or the due time was crossed (staff).
	EventSLAChanged   = "ticket.sla_changed"
	EventSLAThreshold = "sla.threshold"
	EventSLABreached  = "sla.breached"
)

// Audience says who may see an event (SSE filters on it).
const (
	AudiencePublic = "public" // staff of the org, the requester, and the org's customer_admins
	AudienceStaff  = "staff"  // staff of the org only (internal notes, AI, duplicates)
)

// Event is a domain event. It is written to the outbox in the same
// transaction as the change it describes and relayed to TopicEvents keyed by
// TicketID, so one ticket's events stay in order.
type Event struct {
	ID          uuid.UUID       `json:"id"`
	Type        string          `json:"type"`
	Version     int             `json:"version"`
	OrgID       uuid.UUID       `json:"org_id"`
	TicketID    uuid.UUID       `json:"ticket_id"`
	RequesterID uuid.UUID       `json:"requester_id"`
	ActorID     *uuid.UUID      `json:"actor_id,omitempty"`
	Audience    string          `json:"audience"`
	OccurredAt  time.Time       `json:"occurred_at"`
	Data        json.RawMessage `json:"data,omitempty"`
}
