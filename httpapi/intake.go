package httpapi

import (
	"context"
	"encoding/json"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/atumdesk/atumdesk/ingest"
	"github.com/atumdesk/atumdesk/internal/apperr"
	"github.com/atumdesk/atumdesk/pipeline"
)

// createTicketRequest is the JSON (or form) body of POST /api/v1/tickets.
type createTicketRequest struct {
	Subject         string                     `json:"subject"`
	Description     string                     `json:"description"`
	DescriptionHTML string                     `json:"description_html,omitempty"`
	ServiceID       *uuid.UUID                 `json:"service_id,omitempty"`
	Priority        string                     `json:"priority,omitempty"`
	CustomFields    map[string]json.RawMessage `json:"custom_fields,omitempty"`
	AttachmentIDs   []uuid.UUID                `json:"attachment_ids,omitempty"`
	// Staff may file on behalf of a customer of their organisation.
	RequesterEmail string `json:"requester_email,omitempty"`
	RequesterName  string `json:"requester_name,omitempty"`
}

// intakeReceipt is the 202 answer: the ticket id is final; the ticket at
// status_url answers 404 until the pipeline has stored it (typically within
// milliseconds; send Prefer: wait=N to get 201 with the ticket instead).
type intakeReceipt struct {
	TicketID  uuid.UUID `json:"ticket_id"`
	Status    string    `json:"status"`
	StatusURL string    `json:"status_url"`
	Replayed  bool      `json:"replayed,omitempty"`
}

// handleCreateTicket accepts JSON from API clients and form posts from the
// portal's plain HTML form (CSRF-checked by crossOrigin). The ticket is on
// the inbound topic before the answer.
func (s *Server) handleCreateTicket(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	var req createTicketRequest
	channel := pipeline.ChannelAPI
	if isForm(r) {
		if err := s.checkSameOrigin(r); err != nil {
			s.writeError(w, r, err)
			return
		}
		if err := decodeForm(w, r, &req); err != nil {
			s.writeError(w, r, err)
			return
		}
		channel = pipeline.ChannelWeb
	} else if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	requester := pipeline.Requester{UserID: &p.UserID, Email: p.Email}
	if req.RequesterEmail != "" || req.RequesterName != "" {
		if !p.IsStaff() {
			s.writeError(w, r, apperr.Fields(map[string]string{"requester_email": "only staff may file on behalf of someone"}))
			return
		}
		requester = pipeline.Requester{Email: req.RequesterEmail, Name: req.RequesterName}
	}
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		key = uuid.NewString() // no key: every request is a new submission
	}
	rec, err := s.intake.Submit(r.Context(), ingest.Submission{
		Channel: channel, OrgID: p.OrgID, Requester: requester,
		Subject: req.Subject, Description: req.Description, DescriptionHTML: req.DescriptionHTML,
		ServiceID: req.ServiceID, Priority: req.Priority, CustomFields: req.CustomFields, AttachmentIDs: req.AttachmentIDs,
		IdempotencyKey: key, IdempotencyScope: p.UserID.String(),
		ClientIP: clientIPFrom(r.Context()), UserAgent: r.UserAgent(), RequestID: requestIDFrom(r.Context()),
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.answerIntake(w, r, p.OrgID, rec)
}

// answerIntake answers 202 with the receipt, or, when the client asked to
// wait (Prefer: wait=N, RFC 7240) and the ticket was stored in time, 201
// with the ticket.
func (s *Server) answerIntake(w http.ResponseWriter, r *http.Request, orgID uuid.UUID, rec *ingest.Receipt) {
	ticketURL := "/api/v1/tickets/" + rec.TicketID.String()
	if wait := preferWait(r.Header.Get("Prefer")); wait > 0 {
		ctx, cancel := context.WithTimeout(r.Context(), wait)
		stored, err := s.intake.WaitStored(ctx, orgID, rec.TicketID)
		cancel()
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		w.Header().Set("Preference-Applied", "wait="+strconv.Itoa(int(wait.Seconds())))
		if stored {
			t, err := s.ticketForIntake(r, rec.TicketID)
			if err != nil {
				s.writeError(w, r, err)
				return
			}
			w.Header().Set("Location", ticketURL)
			writeJSON(w, http.StatusCreated, t)
			return
		}
	}
	w.Header().Set("Location", ticketURL)
	writeJSON(w, http.StatusAccepted, intakeReceipt{TicketID: rec.TicketID, Status: "queued", StatusURL: ticketURL, Replayed: rec.Replayed})
}

// preferWait parses "Prefer: wait=N" (capped at 30 s).
func preferWait(h string) time.Duration {
	for _, part := range strings.Split(h, ",") {
		for _, kv := range strings.Split(part, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
			if ok && strings.EqualFold(k, "wait") {
				n, err := strconv.Atoi(strings.Trim(v, `"`))
				if err == nil && n > 0 {
					return time.Duration(min(n, 30)) * time.Second
				}
			}
		}
	}
	return 0
}

func isForm(r *http.Request) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mt == "application/x-www-form-urlencoded" || mt == "multipart/form-data"
}

// checkSameOrigin is the CSRF check for form posts made with the user's
// credentials (Go's CrossOriginProtection: Sec-Fetch-Site / Origin).
func (s *Server) checkSameOrigin(r *http.Request) error {
	if err := s.csrf.Check(r); err != nil {
		return apperr.Wrap(apperr.Forbidden, "Cross-origin form submissions are not allowed.", err)
	}
	return nil
}

// decodeForm reads a url-encoded or multipart form (without files) into req.
func decodeForm(w http.ResponseWriter, r *http.Request, req *createTicketRequest) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxJSONBody)
	if err := r.ParseMultipartForm(maxJSONBody); err != nil && err != http.ErrNotMultipart {
		return apperr.Wrap(apperr.BadRequest, "Malformed form.", err)
	}
	f := r.PostForm
	allowed := map[string]bool{"subject": true, "description": true, "service_id": true, "priority": true, "attachment_ids": true}
	for k := range f {
		if !allowed[k] {
			return &apperr.Error{Kind: apperr.BadRequest, Msg: "Unknown field.", Fields: map[string]string{k: "is not accepted here"}}
		}
	}
	req.Subject, req.Description, req.Priority = f.Get("subject"), f.Get("description"), f.Get("priority")
	fields := map[string]string{}
	if v := f.Get("service_id"); v != "" {
		id, err := uuid.Parse(v)
		if err != nil {
			fields["service_id"] = "must be a service id"
		}
		req.ServiceID = &id
	}
	for _, v := range f["attachment_ids"] {
		id, err := uuid.Parse(v)
		if err != nil {
			fields["attachment_ids"] = "must be upload ids"
		}
		req.AttachmentIDs = append(req.AttachmentIDs, id)
	}
	return apperr.Fields(fields)
}

// ticketForIntake loads a stored ticket as its submitter may see it.
func (s *Server) ticketForIntake(r *http.Request, id uuid.UUID) (any, error) {
	a := ticketActor(r)
	t, err := s.tickets.Get(r.Context(), a, id)
	if err != nil {
		return nil, err
	}
	return newTicketView(t, a), nil
}
