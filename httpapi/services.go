package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/atumdesk/atumdesk/internal/apperr"
	"github.com/atumdesk/atumdesk/internal/audit"
	"github.com/atumdesk/atumdesk/internal/database"
	"github.com/atumdesk/atumdesk/models"
)

// Services are the lines of support customers file tickets against. Every
// signed-in user lists them (customers only the active ones); admins
// manage them. A service tickets, SLA policies or mailboxes refer to is
// deactivated rather than deleted.

// serviceView is a service as the API shows it.
type serviceView struct {
	ID              uuid.UUID        `json:"id"`
	OrgID           uuid.UUID        `json:"org_id"`
	Name            string           `json:"name"`
	Description     string           `json:"description"`
	IsActive        bool             `json:"is_active"`
	DefaultPriority *models.Priority `json:"default_priority"`
	CreatedAt       time.Time        `json:"created_at"`
	UpdatedAt       time.Time        `json:"updated_at"`
}

const serviceColumns = `id, org_id, name, description, is_active, default_priority, created_at, updated_at`

// Limits on a service's fields.
const (
	maxServiceName        = 200
	maxServiceDescription = 2000
	// maxServices bounds a list: a catalogue, not a queue.
	maxServices = 1000
)

// serviceRequest is the body of create (name required) and of update
// (every field optional). DefaultPriority is raw so that an explicit null
// (clear it) differs from an absent field (keep it).
type serviceRequest struct {
	Name            *string         `json:"name"`
	Description     *string         `json:"description"`
	IsActive        *bool           `json:"is_active"`
	DefaultPriority json.RawMessage `json:"default_priority"`
}

var errServiceNotFound = apperr.New(apperr.NotFound, "Service not found.")

// check validates the fields present in req and returns the column
// changes; create requires a name.
func (req *serviceRequest) check(create bool) (map[string]any, error) {
	fields := map[string]string{}
	ch := map[string]any{}
	if req.Name != nil || create {
		n := ""
		if req.Name != nil {
			n = strings.TrimSpace(*req.Name)
		}
		if n == "" || utf8.RuneCountInString(n) > maxServiceName || !utf8.ValidString(n) {
			fields["name"] = "is required, at most 200 characters"
		}
		ch["name"] = n
	}
	if req.Description != nil {
		d := strings.TrimSpace(*req.Description)
		if utf8.RuneCountInString(d) > maxServiceDescription || !utf8.ValidString(d) {
			fields["description"] = "must be at most 2000 characters"
		}
		ch["description"] = d
	}
	if req.IsActive != nil {
		ch["is_active"] = *req.IsActive
	}
	if string(req.DefaultPriority) == "null" {
		ch["default_priority"] = nil
	} else if req.DefaultPriority != nil {
		var pr models.Priority
		if json.Unmarshal(req.DefaultPriority, &pr) != nil || !pr.Valid() {
			fields["default_priority"] = "must be one of low, medium, high, critical, or null"
		}
		ch["default_priority"] = pr
	}
	return ch, apperr.Fields(fields)
}

// errServiceNameTaken: names are unique per organisation, ignoring case.
func errServiceNameTaken(err error) error {
	return &apperr.Error{Kind: apperr.Conflict, Msg: "A service with this name already exists.",
		Fields: map[string]string{"name": "is taken"}, Err: err}
}

// findService reads a service of the caller's organisation; customers see
// only active ones.
func (s *Server) findService(ctx context.Context, db *gorm.DB, p *Principal, raw string) (*serviceView, error) {
	id, err := uuid.Parse(raw)
	if err != nil {
		return nil, errServiceNotFound
	}
	q := db.WithContext(ctx).Table("services").Select(serviceColumns).Where("id = ? AND org_id = ?", id, p.OrgID)
	if !p.IsStaff() {
		q = q.Where("is_active")
	}
	var v serviceView
	if err := q.Take(&v).Error; err != nil {
		return nil, notFoundIfMissing(err, "Service")
	}
	return &v, nil
}

// handleListServices lists the organisation's services by name. Customers
// get the active ones; staff all of them, or those with ?is_active=.
func (s *Server) handleListServices(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	q := s.db.WithContext(r.Context()).Table("services").Select(serviceColumns).Where("org_id = ?", p.OrgID)
	switch v := r.URL.Query().Get("is_active"); v {
	case "":
	case "true", "false":
		q = q.Where("is_active = ?", v == "true")
	default:
		s.writeError(w, r, apperr.Fields(map[string]string{"is_active": "must be true or false"}))
		return
	}
	if !p.IsStaff() {
		q = q.Where("is_active")
	}
	rows := []serviceView{}
	if err := q.Order("lower(name), id").Limit(maxServices).Find(&rows).Error; err != nil {
		s.writeError(w, r, database.Classify(err))
		return
	}
	writeJSON(w, http.StatusOK, pageResult[serviceView]{Items: rows})
}

func (s *Server) handleGetService(w http.ResponseWriter, r *http.Request) {
	v, err := s.findService(r.Context(), s.db, mustPrincipal(r), chi.URLParam(r, "serviceID"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) handleCreateService(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	var req serviceRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	ch, err := req.check(true)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	id := models.NewID()
	ch["id"], ch["org_id"] = id, p.OrgID
	if _, ok := ch["is_active"]; !ok {
		ch["is_active"] = true
	}
	var out *serviceView
	err = s.db.WithContext(r.Context()).Transaction(func(tx *gorm.DB) error {
		if err := tx.Table("services").Create(ch).Error; err != nil {
			if database.SQLState(err) == "23505" {
				return errServiceNameTaken(err)
			}
			return err
		}
		var err error
		if out, err = s.findService(r.Context(), tx, p, id.String()); err != nil {
			return err
		}
		return audit.Write(r.Context(), tx, s.auditEntry(r, p, "service.created", "service", id, nil, out))
	})
	if err != nil {
		s.writeError(w, r, database.Classify(err))
		return
	}
	w.Header().Set("Location", "/api/v1/services/"+id.String())
	writeJSON(w, http.StatusCreated, out)
}

func (s *Server) handlePatchService(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	var req serviceRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	ch, err := req.check(false)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var out *serviceView
	err = s.db.WithContext(r.Context()).Transaction(func(tx *gorm.DB) error {
		cur, err := s.findService(r.Context(), tx.Clauses(clause.Locking{Strength: "UPDATE"}), p, chi.URLParam(r, "serviceID"))
		if err != nil {
			return err
		}
		if len(ch) == 0 {
			out = cur
			return nil
		}
		if err := tx.Table("services").Where("id = ? AND org_id = ?", cur.ID, p.OrgID).Updates(ch).Error; err != nil {
			if database.SQLState(err) == "23505" {
				return errServiceNameTaken(err)
			}
			return err
		}
		if out, err = s.findService(r.Context(), tx, p, cur.ID.String()); err != nil {
			return err
		}
		return audit.Write(r.Context(), tx, s.auditEntry(r, p, "service.updated", "service", cur.ID, cur, out))
	})
	if err != nil {
		s.writeError(w, r, database.Classify(err))
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// handleDeleteService deletes a service nothing refers to (204). One that
// tickets, SLA policies or mailboxes use is deactivated instead, so their
// history keeps its service, and returned (200, is_active false).
func (s *Server) handleDeleteService(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	var kept *serviceView
	err := s.db.WithContext(r.Context()).Transaction(func(tx *gorm.DB) error {
		cur, err := s.findService(r.Context(), tx.Clauses(clause.Locking{Strength: "UPDATE"}), p, chi.URLParam(r, "serviceID"))
		if err != nil {
			return err
		}
		// The foreign keys decide: a savepoint lets the transaction go on
		// after a refused DELETE.
		err = tx.Transaction(func(sp *gorm.DB) error {
			return sp.Exec(`DELETE FROM services WHERE id = ? AND org_id = ?`, cur.ID, p.OrgID).Error
		})
		switch {
		case err == nil:
			return audit.Write(r.Context(), tx, s.auditEntry(r, p, "service.deleted", "service", cur.ID, cur, nil))
		case database.SQLState(err) != "23503":
			return err
		}
		if err := tx.Exec(`UPDATE services SET is_active = false WHERE id = ? AND org_id = ?`, cur.ID, p.OrgID).Error; err != nil {
			return err
		}
		if kept, err = s.findService(r.Context(), tx, p, cur.ID.String()); err != nil {
			return err
		}
		return audit.Write(r.Context(), tx, s.auditEntry(r, p, "service.deactivated", "service", cur.ID, cur, kept))
	})
	if err != nil {
		s.writeError(w, r, database.Classify(err))
		return
	}
	if kept != nil {
		writeJSON(w, http.StatusOK, kept)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
