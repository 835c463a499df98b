package httpapi

import (
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/atumdesk/atumdesk/internal/apperr"
	"github.com/atumdesk/atumdesk/internal/auth"
	"github.com/atumdesk/atumdesk/internal/tickets"
	"github.com/atumdesk/atumdesk/models"
)

// commentView is a comment as the API shows it. Customers never receive an
// internal note; the one per-role field is ThreadReason (staff only).
type commentView struct {
	ID            uuid.UUID      `json:"id"`
	TicketID      uuid.UUID      `json:"ticket_id"`
	AuthorID      *uuid.UUID     `json:"author_id"`
	AuthorName    *string        `json:"author_name"`
	AuthorIsStaff bool           `json:"author_is_staff"`
	Content       string         `json:"content"`
	ContentHTML   *string        `json:"content_html"`
	IsInternal    bool           `json:"is_internal"`
	IsAIGenerated bool           `json:"is_ai_generated"`
	Channel       models.Channel `json:"channel"`
	// ThreadReason: why an inbound e-mail was threaded onto this ticket
	// (in_reply_to, references, subject_token, plus_address); shown to
	// staff only, absent otherwise.
	ThreadReason *string   `json:"thread_reason,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

func newCommentView(c *tickets.Comment, role models.Role) commentView {
	v := commentView{ID: c.ID, TicketID: c.TicketID, AuthorID: c.AuthorID, AuthorName: c.AuthorName,
		AuthorIsStaff: c.AuthorIsStaff, Content: c.Content, ContentHTML: c.ContentHTML, IsInternal: c.IsInternal,
		IsAIGenerated: c.IsAIGenerated, Channel: c.Channel, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
	if role.IsStaff() {
		v.ThreadReason = c.ThreadReason
	}
	return v
}

type createCommentRequest struct {
	Content     string `json:"content"`
	ContentHTML string `json:"content_html"`
	IsInternal  bool   `json:"is_internal"`
	// IsAIGenerated: the agent used an AI draft (POST /api/v1/ai/suggest-response).
	IsAIGenerated bool `json:"is_ai_generated"`
}

func (s *Server) handleListComments(w http.ResponseWriter, r *http.Request) {
	a := ticketActor(r)
	id, err := ticketIDParam(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	pg, err := parsePage(r.URL.Query())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	rows, err := s.tickets.ListComments(r.Context(), a, id, pg.After, pg.Limit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	views := make([]commentView, len(rows))
	for i := range rows {
		views[i] = newCommentView(&rows[i], a.Role)
	}
	writeJSON(w, http.StatusOK, pageOf(views, pg.Limit, func(c commentView) uuid.UUID { return c.ID }))
}

func (s *Server) handleCreateComment(w http.ResponseWriter, r *http.Request) {
	a := ticketActor(r)
	id, err := ticketIDParam(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var req createCommentRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.IsInternal && !auth.Can(a.Role, auth.CommentsInternal) {
		s.writeError(w, r, apperr.New(apperr.Forbidden, "Only staff write internal notes."))
		return
	}
	if req.IsAIGenerated && !auth.Can(a.Role, auth.AIUse) {
		s.writeError(w, r, apperr.Fields(map[string]string{"is_ai_generated": "only staff send AI drafts"}))
		return
	}
	c, _, err := s.tickets.AddComment(r.Context(), a, id, tickets.NewComment{
		Content: req.Content, ContentHTML: req.ContentHTML, IsInternal: req.IsInternal, IsAIGenerated: req.IsAIGenerated})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/tickets/"+id.String()+"/comments")
	writeJSON(w, http.StatusCreated, newCommentView(c, a.Role))
}
