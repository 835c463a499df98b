package httpapi

import (
	"net/http"

	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/internal/apperr"
	"github.com/atumdesk/atumdesk/internal/csat"
	"github.com/atumdesk/atumdesk/internal/database"
	"github.com/atumdesk/atumdesk/models"
)

// CSAT states of a ticket as the API reports them.
const (
	csatNotAvailable = "not_available" // the ticket is not resolved or closed
	csatPending      = "pending"       // invited, not answered
	csatResponded    = "responded"
)

type csatView struct {
	State string `json:"state"`
	// CanRespond is true for the requester while the survey is pending.
	CanRespond bool         `json:"can_respond"`
	Survey     *csat.Survey `json:"survey"`
}

// handleGetCSAT shows a ticket's survey. A resolved or closed ticket that
// has none (its resolution did not invite) gets its invitation here, so the
// portal always offers the rating.
func (s *Server) handleGetCSAT(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	t, err := s.pathTicket(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	sv, err := csat.Get(r.Context(), s.db, t.OrgID, t.ID)
	if err == nil && sv == nil && csat.Open(t.Status) {
		err = s.db.WithContext(r.Context()).Transaction(func(tx *gorm.DB) error {
			_, err := csat.Invite(r.Context(), tx, t)
			return err
		})
		if err == nil {
			sv, err = csat.Get(r.Context(), s.db, t.OrgID, t.ID)
		}
	}
	if err != nil {
		s.writeError(w, r, database.Classify(err))
		return
	}
	v := csatView{State: csatNotAvailable, Survey: sv}
	switch {
	case sv != nil && sv.RespondedAt != nil:
		v.State = csatResponded
	case sv != nil:
		v.State = csatPending
		v.CanRespond = p.UserID == t.RequesterID && csat.Open(t.Status)
	}
	writeJSON(w, http.StatusOK, v)
}

// handleSubmitCSAT records the requester's rating, once. Someone else who
// can see the ticket gets 403, anyone else 404; a ticket that is not
// resolved or closed 409, a second answer 409.
func (s *Server) handleSubmitCSAT(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	var ans csat.Answer
	if err := decodeJSON(w, r, &ans); err != nil {
		s.writeError(w, r, err)
		return
	}
	t, err := s.pathTicket(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !csat.Open(t.Status) {
		s.writeError(w, r, apperr.New(apperr.InvalidState, "Only a resolved or closed ticket can be rated."))
		return
	}
	if t.RequesterID != p.UserID {
		s.writeError(w, r, apperr.New(apperr.Forbidden, "Only the ticket's requester can rate it."))
		return
	}
	var sv *csat.Survey
	err = s.db.WithContext(r.Context()).Transaction(func(tx *gorm.DB) error {
		// Re-read the status under a share lock: a concurrent reopen
		// either waits for this answer or is seen here.
		var status models.TicketStatus
		if err := tx.Raw(`SELECT status FROM tickets WHERE org_id = ? AND id = ? FOR SHARE`, t.OrgID, t.ID).Scan(&status).Error; err != nil {
			return err
		}
		if !csat.Open(status) {
			return apperr.New(apperr.InvalidState, "Only a resolved or closed ticket can be rated.")
		}
		t.Status = status
		var err error
		sv, err = csat.Submit(r.Context(), tx, t, p.UserID, ans, s.auditEntry(r, p, "", "", t.ID, nil, nil))
		return err
	})
	if err != nil {
		s.writeError(w, r, database.Classify(err))
		return
	}
	writeJSON(w, http.StatusCreated, csatView{State: csatResponded, Survey: sv})
}

// handleCSATMetrics is the organisation's satisfaction summary over the
// surveys invited in [from, to).
func (s *Server) handleCSATMetrics(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	fields := map[string]string{}
	v := r.URL.Query()
	from, to := timeParam(v, "from", fields), timeParam(v, "to", fields)
	if from != nil && to != nil && !from.Before(*to) {
		fields["to"] = "must be after from"
	}
	if err := apperr.Fields(fields); err != nil {
		s.writeError(w, r, err)
		return
	}
	m, err := csat.ComputeMetrics(r.Context(), s.db, p.OrgID, from, to)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, m)
}
