package httpapi

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/internal/apperr"
	"github.com/atumdesk/atumdesk/internal/audit"
	"github.com/atumdesk/atumdesk/internal/database"
	"github.com/atumdesk/atumdesk/internal/sla"
)

// orgView is an organisation as the API shows it. Customers see the public
// part only (staff fields are omitted).
type orgView struct {
	ID            uuid.UUID        `json:"id"`
	Slug          string           `json:"slug"`
	Name          string           `json:"name"`
	Timezone      string           `json:"timezone"`
	BusinessHours *json.RawMessage `json:"business_hours,omitempty"`
	Holidays      *json.RawMessage `json:"holidays,omitempty"`
	AllowedIPs    *json.RawMessage `json:"allowed_ips,omitempty"`
	Settings      *json.RawMessage `json:"settings,omitempty"`
	CreatedAt     time.Time        `json:"created_at"`
	UpdatedAt     time.Time        `json:"updated_at"`
}

type orgRow struct {
	ID            uuid.UUID
	Slug          string
	Name          string
	Timezone      string
	BusinessHours string
	Holidays      string
	AllowedIPs    string
	Settings      string
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

func (s *Server) loadOrg(db *gorm.DB, r *http.Request, p *Principal, id string) (*orgView, error) {
	oid, err := uuid.Parse(id)
	if err != nil || oid != p.OrgID {
		return nil, apperr.New(apperr.NotFound, "Organization not found.") // other tenants do not exist
	}
	var row orgRow
	err = db.WithContext(r.Context()).Raw(`SELECT id, slug, name, timezone,
		coalesce(business_hours, 'null'::jsonb)::text AS business_hours, holidays::text AS holidays,
		array_to_json(allowed_ips)::text AS allowed_ips, settings::text AS settings, created_at, updated_at
		FROM organizations WHERE id = ? AND is_active`, oid).Take(&row).Error
	if err != nil {
		return nil, notFoundIfMissing(err, "Organization")
	}
	v := &orgView{ID: row.ID, Slug: row.Slug, Name: row.Name, Timezone: row.Timezone, CreatedAt: row.CreatedAt, UpdatedAt: row.UpdatedAt}
	if p.IsStaff() {
		raw := func(s string) *json.RawMessage { m := json.RawMessage(s); return &m }
		v.BusinessHours, v.Holidays, v.AllowedIPs, v.Settings = raw(row.BusinessHours), raw(row.Holidays), raw(row.AllowedIPs), raw(row.Settings)
	}
	return v, nil
}

func (s *Server) handleListOrgs(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	o, err := s.loadOrg(s.db, r, p, p.OrgID.String())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, pageResult[orgView]{Items: []orgView{*o}})
}

func (s *Server) handleGetOrg(w http.ResponseWriter, r *http.Request) {
	o, err := s.loadOrg(s.db, r, mustPrincipal(r), chi.URLParam(r, "orgID"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, o)
}

type patchOrgRequest struct {
	Name          *string          `json:"name"`
	Timezone      *string          `json:"timezone"`
	BusinessHours *json.RawMessage `json:"business_hours"`
	Holidays      *json.RawMessage `json:"holidays"`
	AllowedIPs    *[]string        `json:"allowed_ips"`
	Settings      *json.RawMessage `json:"settings"`
}

func (s *Server) handlePatchOrg(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	var req patchOrgRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	before, err := s.loadOrg(s.db, r, p, chi.URLParam(r, "orgID"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	fields := map[string]string{}
	changes := map[string]any{}
	if req.Name != nil {
		n := strings.TrimSpace(*req.Name)
		if n == "" || len(n) > 200 {
			fields["name"] = "is required, at most 200 characters"
		}
		changes["name"] = n
	}
	if req.Timezone != nil {
		if !validZone(*req.Timezone) {
			fields["timezone"] = "must be an IANA time zone such as Europe/Berlin"
		}
		changes["timezone"] = *req.Timezone
	}
	if req.BusinessHours != nil {
		if reason := validSchedule(*req.BusinessHours); reason != "" {
			fields["business_hours"] = reason
		}
		changes["business_hours"] = gorm.Expr("?::jsonb", string(*req.BusinessHours))
	}
	if req.Holidays != nil {
		var list []json.RawMessage
		if json.Unmarshal(*req.Holidays, &list) != nil {
			fields["holidays"] = "must be an array"
		}
		changes["holidays"] = gorm.Expr("?::jsonb", string(*req.Holidays))
	}
	if req.AllowedIPs != nil {
		for _, c := range *req.AllowedIPs {
			if _, err := netip.ParsePrefix(c); err != nil {
				if _, err := netip.ParseAddr(c); err != nil {
					fields["allowed_ips"] = "must hold CIDRs or addresses, " + c + " is neither"
				}
			}
		}
		changes["allowed_ips"] = gorm.Expr("?::text[]", pgTextArray(*req.AllowedIPs))
	}
	if req.Settings != nil {
		var m map[string]any
		if json.Unmarshal(*req.Settings, &m) != nil {
			fields["settings"] = "must be an object"
		}
		changes["settings"] = gorm.Expr("?::jsonb", string(*req.Settings))
	}
	if err := apperr.Fields(fields); err != nil {
		s.writeError(w, r, err)
		return
	}
	if len(changes) > 0 {
		err = s.db.WithContext(r.Context()).Transaction(func(tx *gorm.DB) error {
			if err := tx.Table("organizations").Where("id = ?", p.OrgID).Updates(changes).Error; err != nil {
				return err
			}
			if req.Timezone != nil || req.BusinessHours != nil || req.Holidays != nil {
				// Policies that inherit the calendar: due times from the history again.
				if err := sla.ResyncOrganization(r.Context(), tx, p.OrgID); err != nil {
					return err
				}
			}
			after, err := s.loadOrg(tx, r, p, p.OrgID.String())
			if err != nil {
				return err
			}
			return audit.Write(r.Context(), tx, s.auditEntry(r, p, "organization.updated", "organization", p.OrgID, before, after))
		})
		if err != nil {
			s.writeError(w, r, database.Classify(err))
			return
		}
		if req.AllowedIPs != nil {
			s.principals.Clear() // cached principals carry the allow-list
		}
	}
	s.handleGetOrg(w, r)
}

// validSchedule checks a weekly schedule: {"mon":[["09:00","17:00"]],...}.
func validSchedule(raw json.RawMessage) string {
	if string(raw) == "null" {
		return ""
	}
	var sched map[string][][2]string
	if err := json.Unmarshal(raw, &sched); err != nil {
		return `must be an object like {"mon":[["09:00","17:00"]]} or null for 24x7`
	}
	for day, ivs := range sched {
		switch day {
		case "mon", "tue", "wed", "thu", "fri", "sat", "sun":
		default:
			return "unknown weekday " + day
		}
		for _, iv := range ivs {
			for _, t := range iv {
				if _, err := time.Parse("15:04", t); err != nil && t != "24:00" {
					return "times must be HH:MM, got " + t
				}
			}
		}
	}
	return ""
}

// pgTextArray renders a text[] literal.
func pgTextArray(items []string) string {
	quoted := make([]string, len(items))
	for i, it := range items {
		quoted[i] = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(it) + `"`
	}
	return "{" + strings.Join(quoted, ",") + "}"
}
