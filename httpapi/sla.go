package httpapi

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/atumdesk/atumdesk/internal/apperr"
	"github.com/atumdesk/atumdesk/internal/sla"
	"github.com/atumdesk/atumdesk/models"
)

var errSLAPolicyNotFound = apperr.New(apperr.NotFound, "SLA policy not found.")

func slaPolicyIDParam(r *http.Request) (uuid.UUID, error) {
	id, err := uuid.Parse(chi.URLParam(r, "policyID"))
	if err != nil {
		return uuid.Nil, errSLAPolicyNotFound
	}
	return id, nil
}

// handleListSLAPolicies lists the organisation's policies, most specific
// scope first; ?include_inactive=true adds the deactivated ones.
func (s *Server) handleListSLAPolicies(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	inactive := false
	switch v := r.URL.Query().Get("include_inactive"); v {
	case "", "false":
	case "true":
		inactive = true
	default:
		s.writeError(w, r, apperr.Fields(map[string]string{"include_inactive": "must be true or false"}))
		return
	}
	ps, err := sla.ListPolicies(r.Context(), s.db, p.OrgID, inactive)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": ps})
}

// handleCreateSLAPolicy creates a policy. The body is validated field by
// field (422 lists every bad one), including the calendar it makes with
// what it inherits from the organisation.
func (s *Server) handleCreateSLAPolicy(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	var in map[string]json.RawMessage
	if err := decodeJSON(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	pol, err := sla.CreatePolicy(r.Context(), s.db, p.OrgID, in, s.auditEntry(r, p, "", "", uuid.Nil, nil, nil))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, pol)
}

func (s *Server) handleGetSLAPolicy(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	id, err := slaPolicyIDParam(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	pol, err := sla.GetPolicy(r.Context(), s.db, p.OrgID, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, pol)
}

// handlePatchSLAPolicy changes the given fields; targets replace the whole
// set. Running tickets of the policy get their due times recomputed.
func (s *Server) handlePatchSLAPolicy(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	id, err := slaPolicyIDParam(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var in map[string]json.RawMessage
	if err := decodeJSON(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	pol, err := sla.UpdatePolicy(r.Context(), s.db, p.OrgID, id, in, s.auditEntry(r, p, "", "", id, nil, nil))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, pol)
}

// handleDeleteSLAPolicy deactivates the policy (tickets running on it keep
// it).
func (s *Server) handleDeleteSLAPolicy(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	id, err := slaPolicyIDParam(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := sla.DeletePolicy(r.Context(), s.db, p.OrgID, id, s.auditEntry(r, p, "", "", id, nil, nil)); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleListSLABreaches lists breached clocks, newest first, filtered by
// kind, policy_id, ticket_id, assigned_to and breached_at in [from, to).
func (s *Server) handleListSLABreaches(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	v := r.URL.Query()
	pg, err := parsePage(v)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	fields := map[string]string{}
	f := sla.BreachFilter{Kind: models.SLAMetric(v.Get("kind")), PolicyID: uuidParam(v, "policy_id", fields),
		TicketID: uuidParam(v, "ticket_id", fields), AssignedTo: uuidParam(v, "assigned_to", fields),
		From: timeParam(v, "from", fields), To: timeParam(v, "to", fields), After: pg.After, Limit: pg.Limit}
	if f.Kind != "" && !f.Kind.Valid() {
		fields["kind"] = "must be first_response or resolution"
	}
	if f.From != nil && f.To != nil && !f.From.Before(*f.To) {
		fields["to"] = "must be after from"
	}
	if err := apperr.Fields(fields); err != nil {
		s.writeError(w, r, err)
		return
	}
	rows, err := sla.ListBreaches(r.Context(), s.db, p.OrgID, f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, pageOf(rows, pg.Limit, func(b sla.Breach) uuid.UUID { return b.ID }))
}

// handleSLAMetrics is the compliance report: per policy (and per day, week
// or month with ?period=) for the tickets whose clock started in
// [from, to), by default the last 30 days.
func (s *Server) handleSLAMetrics(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	v := r.URL.Query()
	fields := map[string]string{}
	from, to := timeParam(v, "from", fields), timeParam(v, "to", fields)
	policy := uuidParam(v, "policy_id", fields)
	if err := apperr.Fields(fields); err != nil {
		s.writeError(w, r, err)
		return
	}
	q := sla.ComplianceQuery{To: time.Now().UTC(), Period: v.Get("period"), PolicyID: policy}
	if to != nil {
		q.To = *to
	}
	q.From = q.To.AddDate(0, 0, -30)
	if from != nil {
		q.From = *from
	}
	rep, err := sla.Compliance(r.Context(), s.db, p.OrgID, q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}
