package sla

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/internal/apperr"
	"github.com/atumdesk/atumdesk/internal/audit"
	"github.com/atumdesk/atumdesk/internal/database"
	"github.com/atumdesk/atumdesk/models"
)

var errPolicyNotFound = apperr.New(apperr.NotFound, "SLA policy not found.")

// policyRow is a sla_policies row as scanned.
type policyRow struct {
	ID               uuid.UUID
	OrgID            uuid.UUID
	Name             string
	ServiceID        *uuid.UUID
	Priority         *models.Priority
	UseBusinessHours bool
	BusinessHours    models.JSONB
	Timezone         *string
	Holidays         models.JSONB
	EscalationRules  models.JSONB
	ClockStart       models.SLAClockStart
	IsActive         bool
	CreatedAt        time.Time
	UpdatedAt        time.Time
}

const policyColumns = `id, org_id, name, service_id, priority, use_business_hours, business_hours, timezone,
	holidays, escalation_rules, clock_start, is_active, created_at, updated_at`

func (r *policyRow) policy() (*Policy, error) {
	p := &Policy{ID: r.ID, OrgID: r.OrgID, Name: r.Name, ServiceID: r.ServiceID, Priority: r.Priority,
		UseBusinessHours: r.UseBusinessHours, Timezone: r.Timezone, ClockStart: r.ClockStart, IsActive: r.IsActive,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, EscalationRules: []Rule{}, Targets: []Target{}}
	if len(r.BusinessHours) > 0 {
		if err := json.Unmarshal(r.BusinessHours, &p.BusinessHours); err != nil {
			return nil, fmt.Errorf("sla: policy %s: business_hours: %w", r.ID, err)
		}
	}
	if len(r.Holidays) > 0 {
		if err := json.Unmarshal(r.Holidays, &p.Holidays); err != nil {
			return nil, fmt.Errorf("sla: policy %s: holidays: %w", r.ID, err)
		}
	}
	if len(r.EscalationRules) > 0 {
		if err := json.Unmarshal(r.EscalationRules, &p.EscalationRules); err != nil {
			return nil, fmt.Errorf("sla: policy %s: escalation_rules: %w", r.ID, err)
		}
	}
	return p, nil
}

// loadPolicies reads the policies q selects, with their targets.
func loadPolicies(db *gorm.DB, where string, args ...any) ([]*Policy, error) {
	var rows []policyRow
	if err := db.Raw(`SELECT `+policyColumns+` FROM sla_policies WHERE `+where, args...).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("sla: load policies: %w", err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	out := make([]*Policy, 0, len(rows))
	byID := map[uuid.UUID]*Policy{}
	ids := make([]uuid.UUID, 0, len(rows))
	for i := range rows {
		p, err := rows[i].policy()
		if err != nil {
			return nil, err
		}
		out = append(out, p)
		byID[p.ID] = p
		ids = append(ids, p.ID)
	}
	var targets []struct {
		PolicyID uuid.UUID
		Target
	}
	err := db.Raw(`SELECT policy_id, priority, first_response_minutes, resolution_minutes FROM sla_targets
		WHERE policy_id = ANY(?::uuid[]) ORDER BY policy_id, array_position(ARRAY['critical','high','medium','low'], priority)`, database.UUIDArray(ids)).
		Scan(&targets).Error
	if err != nil {
		return nil, fmt.Errorf("sla: load targets: %w", err)
	}
	for _, t := range targets {
		byID[t.PolicyID].Targets = append(byID[t.PolicyID].Targets, t.Target)
	}
	return out, nil
}

// ListPolicies returns the organisation's policies, most specific scope
// first, then by name; inactive ones only with includeInactive.
func ListPolicies(ctx context.Context, db *gorm.DB, orgID uuid.UUID, includeInactive bool) ([]*Policy, error) {
	where := `org_id = ?`
	if !includeInactive {
		where += ` AND is_active`
	}
	ps, err := loadPolicies(db.WithContext(ctx), where+` ORDER BY is_active DESC, service_id IS NULL, priority IS NULL, lower(name), id`, orgID)
	if err != nil {
		return nil, database.Classify(err)
	}
	if ps == nil {
		ps = []*Policy{}
	}
	return ps, nil
}

// GetPolicy returns one policy of the organisation (active or not).
func GetPolicy(ctx context.Context, db *gorm.DB, orgID, id uuid.UUID) (*Policy, error) {
	ps, err := loadPolicies(db.WithContext(ctx), `org_id = ? AND id = ?`, orgID, id)
	if err != nil {
		return nil, database.Classify(err)
	}
	if len(ps) == 0 {
		return nil, errPolicyNotFound
	}
	return ps[0], nil
}

// Select returns the active policy that applies to a ticket of org with
// service (nil: none) and priority, or nil: the most specific one that
// has a target for the priority.
func Select(ctx context.Context, db *gorm.DB, orgID uuid.UUID, service *uuid.UUID, pr models.Priority) (*Policy, error) {
	return newSyncer(ctx, db, time.Now()).choose(orgID, service, pr)
}

// pick is Select's rule over ps, an organisation's active policies: of
// those that cover service and pr and have a target for pr, service and
// priority first, then service, then priority, then the default (the
// unique index on the active scopes leaves no tie).
func pick(ps []*Policy, service *uuid.UUID, pr models.Priority) *Policy {
	var best *Policy
	bestRank := 4
	for _, p := range ps {
		if _, ok := p.Target(pr); !ok || !p.IsActive {
			continue
		}
		if p.ServiceID != nil && (service == nil || *p.ServiceID != *service) || p.Priority != nil && *p.Priority != pr {
			continue
		}
		rank := 0
		if p.ServiceID == nil {
			rank += 2
		}
		if p.Priority == nil {
			rank++
		}
		if rank < bestRank {
			best, bestRank = p, rank
		}
	}
	return best
}

// loadOrgCalendar reads the organisation's calendar settings.
func loadOrgCalendar(db *gorm.DB, orgID uuid.UUID) (orgCalendar, error) {
	var row struct {
		Timezone      string
		BusinessHours models.JSONB
		Holidays      models.JSONB
	}
	err := db.Raw(`SELECT timezone, business_hours, holidays FROM organizations WHERE id = ?`, orgID).Scan(&row).Error
	if err != nil {
		return orgCalendar{}, fmt.Errorf("sla: organisation calendar: %w", err)
	}
	return orgCalendar{Timezone: row.Timezone, BusinessHours: json.RawMessage(row.BusinessHours), Holidays: json.RawMessage(row.Holidays)}, nil
}

// checkRefs validates what needs the database: the service, the users the
// rules notify, and the calendar with the organisation's inheritance.
func checkRefs(tx *gorm.DB, p *Policy, fields map[string]string) error {
	if p.ServiceID != nil {
		var n int64
		if err := tx.Raw(`SELECT count(*) FROM services WHERE org_id = ? AND id = ? AND is_active`, p.OrgID, *p.ServiceID).Scan(&n).Error; err != nil {
			return fmt.Errorf("sla: check service: %w", err)
		}
		if n == 0 {
			fields["service_id"] = "must be an active service of this organisation"
		}
	}
	if users := p.notifyUsers(); len(users) > 0 {
		ids := make([]uuid.UUID, 0, len(users))
		for id := range users {
			ids = append(ids, id)
		}
		var found []struct{ ID uuid.UUID }
		err := tx.Raw(`SELECT id FROM users WHERE org_id = ? AND id IN ? AND is_active AND role IN ('agent','manager','admin')`, p.OrgID, ids).
			Scan(&found).Error
		if err != nil {
			return fmt.Errorf("sla: check users: %w", err)
		}
		ok := map[uuid.UUID]bool{}
		for _, f := range found {
			ok[f.ID] = true
		}
		for id, where := range users {
			if !ok[id] {
				for _, f := range where {
					fields[f] = "must be an active staff user of this organisation"
				}
			}
		}
	}
	org, err := loadOrgCalendar(tx, p.OrgID)
	if err != nil {
		return err
	}
	if _, err := p.calendar(org); err != nil {
		calendarFields(err, fields)
	}
	return nil
}

// PolicyChange is a policy's audit entry: who changes it, from where. The
// action, entity and before/after are filled in here.
type PolicyChange = audit.Entry

// CreatePolicy validates fields (the JSON object of the request) and
// creates the policy with its targets, audited.
func CreatePolicy(ctx context.Context, db *gorm.DB, orgID uuid.UUID, in map[string]json.RawMessage, entry PolicyChange) (*Policy, error) {
	p := newPolicy(orgID)
	fields := map[string]string{}
	if err := p.apply(in, fields); err != nil {
		return nil, err
	}
	if _, ok := in["targets"]; !ok {
		fields["targets"] = "is required"
	}
	var out *Policy
	err := db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := validateAll(tx, p, fields); err != nil {
			return err
		}
		p.ID = models.NewID()
		if err := savePolicy(tx, p, true); err != nil {
			return err
		}
		var err error
		if out, err = GetPolicy(ctx, tx, orgID, p.ID); err != nil {
			return err
		}
		entry.Action, entry.EntityType, entry.EntityID, entry.After = "sla_policy.created", "sla_policy", &p.ID, out
		return audit.Write(ctx, tx, entry)
	})
	if err != nil {
		return nil, classify(err)
	}
	return out, nil
}

// UpdatePolicy applies fields to the policy, audited with before and after.
// Targets, when given, replace the policy's whole set. When the targets,
// the calendar or the escalation rules change, the due times of the
// policy's running tickets are recomputed (same transaction) and their
// timers rescheduled.
func UpdatePolicy(ctx context.Context, db *gorm.DB, orgID, id uuid.UUID, in map[string]json.RawMessage, entry PolicyChange) (*Policy, error) {
	var out *Policy
	err := db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(`SELECT 1 FROM sla_policies WHERE org_id = ? AND id = ? FOR UPDATE`, orgID, id).Error; err != nil {
			return fmt.Errorf("sla: lock policy: %w", err)
		}
		before, err := GetPolicy(ctx, tx, orgID, id)
		if err != nil {
			return err
		}
		p, err := GetPolicy(ctx, tx, orgID, id)
		if err != nil {
			return err
		}
		fields := map[string]string{}
		if err := p.apply(in, fields); err != nil {
			return err
		}
		if err := validateAll(tx, p, fields); err != nil {
			return err
		}
		if err := savePolicy(tx, p, false); err != nil {
			return err
		}
		if out, err = GetPolicy(ctx, tx, orgID, id); err != nil {
			return err
		}
		entry.Action, entry.EntityType, entry.EntityID, entry.Before, entry.After = "sla_policy.updated", "sla_policy", &id, before, out
		if err := audit.Write(ctx, tx, entry); err != nil {
			return err
		}
		if clockChanged(before, out) {
			return resyncPolicy(ctx, tx, out)
		}
		return nil
	})
	if err != nil {
		return nil, classify(err)
	}
	return out, nil
}

// DeletePolicy deactivates the policy: tickets that run on it keep it (and
// their history), new tickets no longer get it, and its scope is free for
// another policy. Deactivating an inactive policy changes nothing.
func DeletePolicy(ctx context.Context, db *gorm.DB, orgID, id uuid.UUID, entry PolicyChange) error {
	err := db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Exec(`UPDATE sla_policies SET is_active = false WHERE org_id = ? AND id = ? AND is_active`, orgID, id)
		if res.Error != nil {
			return fmt.Errorf("sla: deactivate policy: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			_, err := GetPolicy(ctx, tx, orgID, id) // 404 unless it exists (inactive)
			return err
		}
		entry.Action, entry.EntityType, entry.EntityID = "sla_policy.deactivated", "sla_policy", &id
		entry.Before, entry.After = map[string]any{"is_active": true}, map[string]any{"is_active": false}
		return audit.Write(ctx, tx, entry)
	})
	return classify(err)
}

func validateAll(tx *gorm.DB, p *Policy, fields map[string]string) error {
	p.validate(fields)
	if err := checkRefs(tx, p, fields); err != nil {
		return err
	}
	return apperr.Fields(fields)
}

// clockChanged reports whether a change of a policy moves its tickets'
// due times or timers.
func clockChanged(a, b *Policy) bool {
	ja, _ := json.Marshal([]any{a.UseBusinessHours, a.BusinessHours, a.Timezone, a.Holidays, a.EscalationRules, a.Targets})
	jb, _ := json.Marshal([]any{b.UseBusinessHours, b.BusinessHours, b.Timezone, b.Holidays, b.EscalationRules, b.Targets})
	return string(ja) != string(jb)
}

// jsonOrNull renders v for a jsonb column, nil staying SQL NULL.
func jsonOrNull(v any, isNil bool) (any, error) {
	if isNil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

func savePolicy(tx *gorm.DB, p *Policy, create bool) error {
	hours, err := jsonOrNull(p.BusinessHours, p.BusinessHours == nil)
	if err != nil {
		return err
	}
	hols, err := jsonOrNull(p.Holidays, p.Holidays == nil)
	if err != nil {
		return err
	}
	rules, err := jsonOrNull(p.EscalationRules, false)
	if err != nil {
		return err
	}
	if create {
		err = tx.Exec(`INSERT INTO sla_policies (id, org_id, name, service_id, priority, use_business_hours, business_hours,
			timezone, holidays, escalation_rules, clock_start, is_active)
			VALUES (?, ?, ?, ?, ?, ?, ?::jsonb, ?, ?::jsonb, ?::jsonb, ?, ?)`,
			p.ID, p.OrgID, p.Name, p.ServiceID, p.Priority, p.UseBusinessHours, hours, p.Timezone, hols, rules,
			p.ClockStart, p.IsActive).Error
	} else {
		err = tx.Exec(`UPDATE sla_policies SET name = ?, service_id = ?, priority = ?, use_business_hours = ?,
			business_hours = ?::jsonb, timezone = ?, holidays = ?::jsonb, escalation_rules = ?::jsonb, clock_start = ?,
			is_active = ? WHERE org_id = ? AND id = ?`,
			p.Name, p.ServiceID, p.Priority, p.UseBusinessHours, hours, p.Timezone, hols, rules, p.ClockStart,
			p.IsActive, p.OrgID, p.ID).Error
	}
	if err != nil {
		return fmt.Errorf("sla: save policy: %w", err)
	}
	if err := tx.Exec(`DELETE FROM sla_targets WHERE policy_id = ?`, p.ID).Error; err != nil {
		return fmt.Errorf("sla: replace targets: %w", err)
	}
	for _, t := range p.Targets {
		err := tx.Exec(`INSERT INTO sla_targets (policy_id, org_id, priority, first_response_minutes, resolution_minutes)
			VALUES (?, ?, ?, ?, ?)`, p.ID, p.OrgID, t.Priority, t.FirstResponseMinutes, t.ResolutionMinutes).Error
		if err != nil {
			return fmt.Errorf("sla: insert target: %w", err)
		}
	}
	return nil
}

// classify maps the one constraint a valid policy can still break (another
// active policy with the same scope) to a clear conflict.
func classify(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" && pe.ConstraintName == "sla_policies_active_scope_key" {
		return apperr.Wrap(apperr.Conflict,
			"Another active SLA policy already covers this service and priority; deactivate it or change this one's scope.", err)
	}
	return database.Classify(err)
}
