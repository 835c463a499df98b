package httpapi

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/atumdesk/atumdesk/internal/apperr"
	"github.com/atumdesk/atumdesk/internal/tickets"
	"github.com/atumdesk/atumdesk/models"
)

// ticketView is a ticket as the API shows it to one caller. Staff also get
// the staff-only fields (AI suggestions, duplicate link).
type ticketView struct {
	ID                    uuid.UUID           `json:"id"`
	Number                int64               `json:"number"`
	OrgID                 uuid.UUID           `json:"org_id"`
	Subject               string              `json:"subject"`
	Description           string              `json:"description"`
	DescriptionHTML       *string             `json:"description_html"`
	Status                models.TicketStatus `json:"status"`
	Priority              models.Priority     `json:"priority"`
	ServiceID             *uuid.UUID          `json:"service_id"`
	Category              *string             `json:"category"`
	Tags                  models.StringArray  `json:"tags"`
	RequesterID           uuid.UUID           `json:"requester_id"`
	AssignedTo            *uuid.UUID          `json:"assigned_to"`
	AssignedAt            *time.Time          `json:"assigned_at"`
	AcceptedAt            *time.Time          `json:"accepted_at"`
	Channel               models.Channel      `json:"channel"`
	FirstResponseDueAt    *time.Time          `json:"first_response_due_at"`
	ResolutionDueAt       *time.Time          `json:"resolution_due_at"`
	FirstRespondedAt      *time.Time          `json:"first_responded_at"`
	ResolvedAt            *time.Time          `json:"resolved_at"`
	ClosedAt              *time.Time          `json:"closed_at"`
	FirstResponseBreached bool                `json:"first_response_breached"`
	ResolutionBreached    bool                `json:"resolution_breached"`
	CreatedAt             time.Time           `json:"created_at"`
	UpdatedAt             time.Time           `json:"updated_at"`
	// AllowedTransitions are the statuses the caller may move the ticket to.
	AllowedTransitions []models.TicketStatus `json:"allowed_transitions"`

	*staffTicketFields // nil for customers: the fields are left out entirely
}

type staffTicketFields struct {
	AcceptedBy           *uuid.UUID       `json:"accepted_by"`
	IsDuplicateOf        *uuid.UUID       `json:"is_duplicate_of"`
	SLAPolicyID          *uuid.UUID       `json:"sla_policy_id"`
	SLAPausedAt          *time.Time       `json:"sla_paused_at"`
	AISuggestedServiceID *uuid.UUID       `json:"ai_suggested_service_id"`
	AISuggestedPriority  *models.Priority `json:"ai_suggested_priority"`
	AISuggestedCategory  *string          `json:"ai_suggested_category"`
	AIConfidence         *float32         `json:"ai_confidence"`
	AISuggestedAt        *time.Time       `json:"ai_suggested_at"`
}

func newTicketView(t *models.Ticket, a tickets.Actor) ticketView {
	v := ticketView{
		ID: t.ID, Number: t.Number, OrgID: t.OrgID, Subject: t.Subject, Description: t.Description,
		DescriptionHTML: t.DescriptionHTML, Status: t.Status, Priority: t.Priority, ServiceID: t.ServiceID,
		Category: t.Category, Tags: t.Tags, RequesterID: t.RequesterID, AssignedTo: t.AssignedTo,
		AssignedAt: t.AssignedAt, AcceptedAt: t.AcceptedAt, Channel: t.Channel,
		FirstResponseDueAt: t.FirstResponseDueAt, ResolutionDueAt: t.ResolutionDueAt,
		FirstRespondedAt: t.FirstRespondedAt, ResolvedAt: t.ResolvedAt, ClosedAt: t.ClosedAt,
		FirstResponseBreached: t.FirstResponseBreached, ResolutionBreached: t.ResolutionBreached,
		CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt, AllowedTransitions: a.Allowed(t),
	}
	if a.Role.IsStaff() {
		v.staffTicketFields = &staffTicketFields{
			AcceptedBy: t.AcceptedBy, IsDuplicateOf: t.IsDuplicateOf, SLAPolicyID: t.SLAPolicyID, SLAPausedAt: t.SLAPausedAt,
			AISuggestedServiceID: t.AISuggestedServiceID, AISuggestedPriority: t.AISuggestedPriority,
			AISuggestedCategory: t.AISuggestedCategory, AIConfidence: t.AIConfidence, AISuggestedAt: t.AISuggestedAt,
		}
	}
	return v
}

// ticketActor is the caller as the ticket service sees them.
func ticketActor(r *http.Request) tickets.Actor {
	p := mustPrincipal(r)
	return tickets.Actor{UserID: p.UserID, OrgID: p.OrgID, Role: p.Role, IP: clientIPFrom(r.Context()),
		UserAgent: r.UserAgent(), RequestID: requestIDFrom(r.Context())}
}

// ticketIDParam reads {ticketID}; a malformed id names no ticket: 404.
func ticketIDParam(r *http.Request) (uuid.UUID, error) {
	id, err := uuid.Parse(chi.URLParam(r, "ticketID"))
	if err != nil {
		return uuid.Nil, apperr.New(apperr.NotFound, "Ticket not found.")
	}
	return id, nil
}

func (s *Server) writeTicket(w http.ResponseWriter, r *http.Request, a tickets.Actor, t *models.Ticket, err error) {
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, newTicketView(t, a))
}

func (s *Server) handleListTickets(w http.ResponseWriter, r *http.Request) {
	a := ticketActor(r)
	f, err := parseTicketFilter(r.URL.Query())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	rows, err := s.tickets.List(r.Context(), a, f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	views := make([]ticketView, len(rows))
	for i := range rows {
		views[i] = newTicketView(&rows[i], a)
	}
	writeJSON(w, http.StatusOK, pageOf(views, f.Limit, func(v ticketView) uuid.UUID { return v.ID }))
}

// parseTicketFilter reads the list's query parameters; status and priority
// take comma-separated lists.
func parseTicketFilter(v url.Values) (tickets.Filter, error) {
	pg, err := parsePage(v)
	if err != nil {
		return tickets.Filter{}, err
	}
	f := tickets.Filter{After: pg.After, Limit: pg.Limit, Queue: tickets.QueueAll}
	fields := map[string]string{}
	if q := v.Get("queue"); q != "" {
		f.Queue = tickets.Queue(q)
		if !f.Queue.Valid() {
			fields["queue"] = "must be one of all, new, mine, unassigned"
		}
	}
	for _, s := range splitList(v["status"]) {
		if !models.TicketStatus(s).Valid() {
			fields["status"] = "unknown status " + quoteShort(s)
		}
		f.Statuses = append(f.Statuses, models.TicketStatus(s))
	}
	for _, s := range splitList(v["priority"]) {
		if !models.Priority(s).Valid() {
			fields["priority"] = "unknown priority " + quoteShort(s)
		}
		f.Priorities = append(f.Priorities, models.Priority(s))
	}
	f.ServiceID = uuidParam(v, "service_id", fields)
	f.AssignedTo = uuidParam(v, "assigned_to", fields)
	f.RequesterID = uuidParam(v, "requester_id", fields)
	f.CreatedAfter = timeParam(v, "created_after", fields)
	f.CreatedBefore = timeParam(v, "created_before", fields)
	f.Text = strings.TrimSpace(v.Get("q"))
	if len(f.Text) > 500 {
		fields["q"] = "must be at most 500 bytes"
	}
	switch v.Get("order") {
	case "", "newest":
	case "oldest":
		f.Oldest = true
	default:
		fields["order"] = "must be newest or oldest"
	}
	return f, apperr.Fields(fields)
}

func splitList(vals []string) []string {
	var out []string
	for _, v := range vals {
		for s := range strings.SplitSeq(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

func quoteShort(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	b, _ := json.Marshal(s)
	return string(b)
}

func uuidParam(v url.Values, name string, fields map[string]string) *uuid.UUID {
	s := v.Get(name)
	if s == "" {
		return nil
	}
	id, err := uuid.Parse(s)
	if err != nil {
		fields[name] = "must be a UUID"
		return nil
	}
	return &id
}

func timeParam(v url.Values, name string, fields map[string]string) *time.Time {
	s := v.Get(name)
	if s == "" {
		return nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		fields[name] = "must be an RFC 3339 time such as 2026-01-31T09:00:00Z"
		return nil
	}
	return &t
}

func (s *Server) handleGetTicket(w http.ResponseWriter, r *http.Request) {
	a := ticketActor(r)
	id, err := ticketIDParam(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	t, err := s.tickets.Get(r.Context(), a, id)
	s.writeTicket(w, r, a, t, err)
}

// patchTicketRequest: service_id may be null to clear the service, so its
// presence is tracked apart from its value.
type patchTicketRequest struct {
	Priority  *models.Priority    `json:"priority"`
	ServiceID optional[uuid.UUID] `json:"service_id"`
}

// optional is a JSON field that may be absent, null or a value.
type optional[T any] struct {
	Set   bool
	Value *T
}

func (o *optional[T]) UnmarshalJSON(b []byte) error {
	o.Set = true
	if string(b) == "null" {
		o.Value = nil
		return nil
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	o.Value = &v
	return nil
}

func (s *Server) handlePatchTicket(w http.ResponseWriter, r *http.Request) {
	a := ticketActor(r)
	id, err := ticketIDParam(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var req patchTicketRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	t, err := s.tickets.Update(r.Context(), a, id, tickets.Changes{
		Priority: req.Priority, SetService: req.ServiceID.Set, ServiceID: req.ServiceID.Value})
	s.writeTicket(w, r, a, t, err)
}

func (s *Server) handleAcceptTicket(w http.ResponseWriter, r *http.Request) {
	a := ticketActor(r)
	id, err := ticketIDParam(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	t, err := s.tickets.Accept(r.Context(), a, id)
	s.writeTicket(w, r, a, t, err)
}

type assignRequest struct {
	AssignedTo *uuid.UUID `json:"assigned_to"`
}

func (s *Server) handleAssignTicket(w http.ResponseWriter, r *http.Request) {
	a := ticketActor(r)
	id, err := ticketIDParam(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var req assignRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.AssignedTo == nil {
		s.writeError(w, r, apperr.Fields(map[string]string{"assigned_to": "is required"}))
		return
	}
	t, err := s.tickets.Assign(r.Context(), a, id, *req.AssignedTo)
	s.writeTicket(w, r, a, t, err)
}

type statusRequest struct {
	Status models.TicketStatus `json:"status"`
	Reason string              `json:"reason"`
}

func (s *Server) handleTicketStatus(w http.ResponseWriter, r *http.Request) {
	a := ticketActor(r)
	id, err := ticketIDParam(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var req statusRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	t, err := s.tickets.ChangeStatus(r.Context(), a, id, req.Status, strings.TrimSpace(req.Reason))
	s.writeTicket(w, r, a, t, err)
}
