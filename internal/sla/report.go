package sla

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/internal/apperr"
	"github.com/atumdesk/atumdesk/internal/database"
	"github.com/atumdesk/atumdesk/models"
)

// Breach is one breached clock, with its ticket as it is now.
type Breach struct {
	ID           uuid.UUID           `json:"id"`
	TicketID     uuid.UUID           `json:"ticket_id"`
	TicketNumber int64               `json:"ticket_number"`
	Subject      string              `json:"subject"`
	Status       models.TicketStatus `json:"status"`
	Priority     models.Priority     `json:"priority"`
	AssignedTo   *uuid.UUID          `json:"assigned_to"`
	Kind         models.SLAMetric    `json:"kind"`
	PolicyID     *uuid.UUID          `json:"policy_id"`
	PolicyName   *string             `json:"policy_name"`
	DueAt        time.Time           `json:"due_at"`
	BreachedAt   time.Time           `json:"breached_at"`
	// MetAt is when the clock was met after all (late), if it was.
	MetAt *time.Time `json:"met_at"`
}

// BreachFilter selects breaches; zero fields select all. Rows come newest
// first; After is the last id seen.
type BreachFilter struct {
	Kind       models.SLAMetric
	PolicyID   *uuid.UUID
	TicketID   *uuid.UUID
	AssignedTo *uuid.UUID
	From, To   *time.Time // breached_at in [From, To)
	After      uuid.UUID
	Limit      int
}

// ListBreaches returns the organisation's breaches matching f, at most
// f.Limit+1 of them (the extra one tells the caller there is a next page).
func ListBreaches(ctx context.Context, db *gorm.DB, orgID uuid.UUID, f BreachFilter) ([]Breach, error) {
	q := db.WithContext(ctx).Table("sla_breaches b").
		Select(`b.id, b.ticket_id, t.number AS ticket_number, t.subject, t.status, t.priority, t.assigned_to, b.kind,
			b.policy_id, p.name AS policy_name, b.due_at, b.breached_at,
			CASE b.kind WHEN 'first_response' THEN t.first_responded_at ELSE t.resolved_at END AS met_at`).
		Joins(`JOIN tickets t ON t.org_id = b.org_id AND t.id = b.ticket_id`).
		Joins(`LEFT JOIN sla_policies p ON p.org_id = b.org_id AND p.id = b.policy_id`).
		Where("b.org_id = ?", orgID)
	if f.Kind != "" {
		q = q.Where("b.kind = ?", f.Kind)
	}
	if f.PolicyID != nil {
		q = q.Where("b.policy_id = ?", *f.PolicyID)
	}
	if f.TicketID != nil {
		q = q.Where("b.ticket_id = ?", *f.TicketID)
	}
	if f.AssignedTo != nil {
		q = q.Where("t.assigned_to = ?", *f.AssignedTo)
	}
	if f.From != nil {
		q = q.Where("b.breached_at >= ?", *f.From)
	}
	if f.To != nil {
		q = q.Where("b.breached_at < ?", *f.To)
	}
	if f.After != uuid.Nil {
		q = q.Where("b.id < ?", f.After)
	}
	var rows []Breach
	if err := q.Order("b.id DESC").Limit(f.Limit + 1).Scan(&rows).Error; err != nil {
		return nil, database.Classify(fmt.Errorf("sla: list breaches: %w", err))
	}
	return rows, nil
}

// Periods a compliance report may be bucketed by ("" is the whole range).
var Periods = []string{"", "day", "week", "month"}

// MaxReportDays bounds a compliance report's range.
const MaxReportDays = 400

// ComplianceQuery selects a compliance report: tickets whose clock started
// in [From, To), per policy and, with Period, per day, week or month of the
// organisation's time zone.
type ComplianceQuery struct {
	From, To time.Time
	Period   string
	PolicyID *uuid.UUID
}

// ClockStats counts one clock's outcomes. Met: met by the due time;
// breached: breached or met late; pending: neither yet.
// CompliancePercent is met / (met + breached), null when both are zero.
type ClockStats struct {
	Total             int      `json:"total"`
	Met               int      `json:"met"`
	Breached          int      `json:"breached"`
	Pending           int      `json:"pending"`
	CompliancePercent *float64 `json:"compliance_percent"`
}

// ComplianceRow is one policy's (and period's) figures.
type ComplianceRow struct {
	PolicyID      uuid.UUID  `json:"policy_id"`
	PolicyName    string     `json:"policy_name"`
	PeriodStart   *time.Time `json:"period_start,omitempty"`
	FirstResponse ClockStats `json:"first_response"`
	Resolution    ClockStats `json:"resolution"`
}

// ComplianceReport is GET /api/v1/sla/metrics.
type ComplianceReport struct {
	From     time.Time       `json:"from"`
	To       time.Time       `json:"to"`
	Period   string          `json:"period,omitempty"`
	Timezone string          `json:"timezone"`
	Items    []ComplianceRow `json:"items"`
}

// Compliance computes the organisation's SLA compliance for q.
func Compliance(ctx context.Context, db *gorm.DB, orgID uuid.UUID, q ComplianceQuery) (*ComplianceReport, error) {
	fields := map[string]string{}
	switch q.Period {
	case "", "day", "week", "month":
	default:
		fields["period"] = "must be day, week or month"
	}
	if !q.From.Before(q.To) {
		fields["to"] = "must be after from"
	} else if q.To.Sub(q.From) > MaxReportDays*24*time.Hour {
		fields["from"] = fmt.Sprintf("the range may span at most %d days", MaxReportDays)
	}
	if err := apperr.Fields(fields); err != nil {
		return nil, err
	}
	db = db.WithContext(ctx)
	var tz string
	if err := db.Raw(`SELECT timezone FROM organizations WHERE id = ?`, orgID).Scan(&tz).Error; err != nil {
		return nil, database.Classify(fmt.Errorf("sla: org timezone: %w", err))
	}
	if _, err := time.LoadLocation(tz); err != nil || tz == "" {
		tz = "UTC"
	}
	bucket := "NULL::timestamptz"
	if q.Period != "" {
		// q.Period is one of the checked constants.
		bucket = "date_trunc('" + q.Period + "', t.sla_started_at AT TIME ZONE @tz) AT TIME ZONE @tz"
	}
	policyCond := ""
	args := map[string]any{"org": orgID, "from": q.From, "to": q.To, "tz": tz}
	if q.PolicyID != nil {
		policyCond = "AND t.sla_policy_id = @policy"
		args["policy"] = *q.PolicyID
	}
	var rows []struct {
		PolicyID    uuid.UUID
		PolicyName  string
		PeriodStart *time.Time
		FRTotal     int
		FRMet       int
		FRBreached  int
		ResTotal    int
		ResMet      int
		ResBreached int
	}
	err := db.Raw(`SELECT t.sla_policy_id AS policy_id, p.name AS policy_name, `+bucket+` AS period_start,
			count(*) FILTER (WHERE t.first_response_due_at IS NOT NULL) AS fr_total,
			count(*) FILTER (WHERE t.first_responded_at <= t.first_response_due_at AND NOT t.first_response_breached) AS fr_met,
			count(*) FILTER (WHERE t.first_response_breached OR t.first_responded_at > t.first_response_due_at) AS fr_breached,
			count(*) FILTER (WHERE t.resolution_due_at IS NOT NULL) AS res_total,
			count(*) FILTER (WHERE t.resolved_at <= t.resolution_due_at AND NOT t.resolution_breached) AS res_met,
			count(*) FILTER (WHERE t.resolution_breached OR t.resolved_at > t.resolution_due_at) AS res_breached
		FROM tickets t JOIN sla_policies p ON p.org_id = t.org_id AND p.id = t.sla_policy_id
		WHERE t.org_id = @org AND t.sla_started_at >= @from AND t.sla_started_at < @to `+policyCond+`
		GROUP BY 1, 2, 3 ORDER BY 3 NULLS FIRST, 2, 1`, args).Scan(&rows).Error
	if err != nil {
		return nil, database.Classify(fmt.Errorf("sla: compliance: %w", err))
	}
	rep := &ComplianceReport{From: q.From, To: q.To, Period: q.Period, Timezone: tz, Items: []ComplianceRow{}}
	for _, r := range rows {
		rep.Items = append(rep.Items, ComplianceRow{PolicyID: r.PolicyID, PolicyName: r.PolicyName, PeriodStart: r.PeriodStart,
			FirstResponse: stats(r.FRTotal, r.FRMet, r.FRBreached), Resolution: stats(r.ResTotal, r.ResMet, r.ResBreached)})
	}
	return rep, nil
}

func stats(total, met, breached int) ClockStats {
	s := ClockStats{Total: total, Met: met, Breached: breached, Pending: max(total-met-breached, 0)}
	if met+breached > 0 {
		pc := math.Round(float64(met)*10000/float64(met+breached)) / 100
		s.CompliancePercent = &pc
	}
	return s
}
