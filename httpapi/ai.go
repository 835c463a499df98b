package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/atumdesk/atumdesk/internal/ai"
	"github.com/atumdesk/atumdesk/internal/apperr"
	"github.com/atumdesk/atumdesk/models"
)

// defaultAI is d.AI, or a built-in-only service on the API's database and
// Redis when none was given.
func defaultAI(d Deps) *ai.Service {
	if d.AI != nil || d.DB == nil {
		return d.AI
	}
	cfg := ai.Config{DB: d.DB, Redis: d.Redis, Logger: d.Log}
	if d.Metrics != nil {
		cfg.Registerer = d.Metrics.Reg
	}
	svc, err := ai.New(cfg)
	if err != nil {
		if d.Log != nil {
			d.Log.Error("ai: the built-in service could not be built; AI endpoints answer 503", "err", err)
		}
		return nil
	}
	return svc
}

var errAIUnavailable = apperr.New(apperr.Unavailable, "AI suggestions are not available on this server.")

// aiLimit reads ?limit= (default def, at most hi).
func aiLimit(r *http.Request, def, hi int) (int, error) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > hi {
		return 0, apperr.Fields(map[string]string{"limit": "must be 1.." + strconv.Itoa(hi)})
	}
	return n, nil
}

// triageView is a ticket's AI triage: the stored suggestion when the
// triage stage has run, else one computed now (not stored).
type triageView struct {
	TicketID    uuid.UUID        `json:"ticket_id"`
	Source      string           `json:"source"` // "stored" or "computed"
	ServiceID   *uuid.UUID       `json:"service_id"`
	Category    *string          `json:"category"`
	Priority    *models.Priority `json:"priority"`
	Confidence  *float64         `json:"confidence"`
	SuggestedAt *time.Time       `json:"suggested_at"`
	// Details are the per-field confidences of a computed suggestion.
	Details *ai.Suggestion `json:"details,omitempty"`
}

func (s *Server) handleAITriage(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	id, err := ticketIDParam(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if s.ai == nil {
		s.writeError(w, r, errAIUnavailable)
		return
	}
	var row struct {
		ID                   uuid.UUID
		Subject              string
		Description          string
		AISuggestedServiceID *uuid.UUID
		AISuggestedCategory  *string
		AISuggestedPriority  *models.Priority
		AIConfidence         *float64
		AISuggestedAt        *time.Time
	}
	err = s.db.WithContext(r.Context()).Raw(`SELECT id, subject, description, ai_suggested_service_id, ai_suggested_category,
		ai_suggested_priority, ai_confidence, ai_suggested_at FROM tickets WHERE org_id = ? AND id = ?`, p.OrgID, id).Scan(&row).Error
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if row.ID == uuid.Nil {
		s.writeError(w, r, apperr.New(apperr.NotFound, "Ticket not found."))
		return
	}
	v := triageView{TicketID: id, Source: "stored", ServiceID: row.AISuggestedServiceID, Category: row.AISuggestedCategory,
		Priority: row.AISuggestedPriority, Confidence: row.AIConfidence, SuggestedAt: row.AISuggestedAt}
	if row.AISuggestedAt == nil {
		sug, err := s.ai.Triage(r.Context(), ai.Ticket{ID: id, OrgID: p.OrgID, Subject: row.Subject, Body: row.Description})
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		v = triageView{TicketID: id, Source: "computed", ServiceID: sug.ServiceID, Priority: &sug.Priority,
			Confidence: &sug.Confidence, Details: &sug}
		if sug.Category != "" {
			v.Category = &sug.Category
		}
	}
	writeJSON(w, http.StatusOK, v)
}

type suggestResponseRequest struct {
	TicketID uuid.UUID `json:"ticket_id"`
}

// draftView is a reply draft. IsAIGenerated says that a comment posted
// from it must carry is_ai_generated.
type draftView struct {
	TicketID uuid.UUID `json:"ticket_id"`
	ai.Draft
	IsAIGenerated bool `json:"is_ai_generated"`
}

func (s *Server) handleAISuggestResponse(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	var req suggestResponseRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.TicketID == uuid.Nil {
		s.writeError(w, r, apperr.Fields(map[string]string{"ticket_id": "must be the id of a ticket"}))
		return
	}
	if s.ai == nil {
		s.writeError(w, r, errAIUnavailable)
		return
	}
	d, err := s.ai.DraftFor(r.Context(), p.OrgID, req.TicketID, p.UserID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, draftView{TicketID: req.TicketID, Draft: d, IsAIGenerated: true})
}

type similarView struct {
	TicketID uuid.UUID          `json:"ticket_id"`
	Items    []ai.SimilarTicket `json:"items"`
}

func (s *Server) handleAISimilarTickets(w http.ResponseWriter, r *http.Request) {
	org, id, k, ok := s.aiTicketQuery(w, r, 50)
	if !ok {
		return
	}
	items, err := s.ai.Similar(r.Context(), org, id, k)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, similarView{TicketID: id, Items: items})
}

type kbSuggestView struct {
	TicketID uuid.UUID         `json:"ticket_id"`
	Items    []ai.KBSuggestion `json:"items"`
}

func (s *Server) handleAISuggestKB(w http.ResponseWriter, r *http.Request) {
	org, id, k, ok := s.aiTicketQuery(w, r, 20)
	if !ok {
		return
	}
	items, err := s.ai.SuggestKB(r.Context(), org, id, k)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, kbSuggestView{TicketID: id, Items: items})
}

// aiTicketQuery reads the caller's organisation, {ticketID} and ?limit=
// (default 5, at most hi); on failure it has answered and ok is false.
func (s *Server) aiTicketQuery(w http.ResponseWriter, r *http.Request, hi int) (org, id uuid.UUID, k int, ok bool) {
	id, err := ticketIDParam(r)
	if err == nil {
		k, err = aiLimit(r, 5, hi)
	}
	if err == nil && s.ai == nil {
		err = errAIUnavailable
	}
	if err != nil {
		s.writeError(w, r, err)
		return uuid.Nil, uuid.Nil, 0, false
	}
	return mustPrincipal(r).OrgID, id, k, true
}
