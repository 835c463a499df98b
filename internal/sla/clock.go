package sla

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/internal/businesstime"
	"github.com/atumdesk/atumdesk/models"
	"github.com/atumdesk/atumdesk/pipeline"
)

// Reason says what made a ticket's clock change.
type Reason string

const (
	ReasonStatus        Reason = "status"         // the status changed (not to resolved)
	ReasonResolved      Reason = "resolved"       // the ticket was resolved: resolution met
	ReasonFirstResponse Reason = "first_response" // the first public staff reply: first response met
	ReasonScope         Reason = "scope"          // priority or service changed: the policy is chosen again
	ReasonCreated       Reason = "created"        // the ticket.created task (clock_start created)
	ReasonPolicy        Reason = "policy"         // the policy's targets, calendar or rules changed
)

// StatusReason is the reason to give Sync after a move to status to.
func StatusReason(to models.TicketStatus) Reason {
	if to == models.StatusResolved {
		return ReasonResolved
	}
	return ReasonStatus
}

// Pause is one stretch during which the clocks stood still.
type Pause struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// pausing reports whether status s stops the clocks.
func pausing(s models.TicketStatus) bool {
	return s == models.StatusWaitingCustomer || s == models.StatusResolved
}

// ticketRow is the SLA part of a ticket row.
type ticketRow struct {
	ID                    uuid.UUID
	OrgID                 uuid.UUID
	RequesterID           uuid.UUID
	Number                int64
	Status                models.TicketStatus
	Priority              models.Priority
	ServiceID             *uuid.UUID
	AssignedTo            *uuid.UUID
	CreatedAt             time.Time
	AcceptedAt            *time.Time
	SLAPolicyID           *uuid.UUID
	SLAStartedAt          *time.Time
	FirstResponseDueAt    *time.Time
	ResolutionDueAt       *time.Time
	FirstRespondedAt      *time.Time
	ResolvedAt            *time.Time
	SLAPausedAt           *time.Time
	SLAPausedIntervals    models.JSONB
	FirstResponseBreached bool
	ResolutionBreached    bool
	// Versions of the policy and the organisation (for Cache).
	PolicyUpdatedAt *time.Time
	OrgUpdatedAt    time.Time
}

const ticketColumns = `t.id, t.org_id, t.requester_id, t.number, t.status, t.priority, t.service_id, t.assigned_to,
	t.created_at, t.accepted_at, t.sla_policy_id, t.sla_started_at, t.first_response_due_at, t.resolution_due_at,
	t.first_responded_at, t.resolved_at, t.sla_paused_at, t.sla_paused_intervals, t.first_response_breached,
	t.resolution_breached, p.updated_at AS policy_updated_at, o.updated_at AS org_updated_at`

// loadTickets reads the tickets t where selects (optionally locking them).
func loadTickets(db *gorm.DB, lock bool, where string, args ...any) ([]*ticketRow, error) {
	q := `SELECT ` + ticketColumns + ` FROM tickets t JOIN organizations o ON o.id = t.org_id
		LEFT JOIN sla_policies p ON p.org_id = t.org_id AND p.id = t.sla_policy_id WHERE ` + where
	if lock {
		q += ` FOR UPDATE OF t`
	}
	var rows []*ticketRow
	if err := db.Raw(q, args...).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("sla: load tickets: %w", err)
	}
	return rows, nil
}

func loadTicket(db *gorm.DB, orgID, id uuid.UUID, lock bool) (*ticketRow, error) {
	rows, err := loadTickets(db, lock, `t.org_id = ? AND t.id = ?`, orgID, id)
	if err != nil || len(rows) == 0 {
		return nil, err
	}
	return rows[0], nil
}

func (r *ticketRow) due(m models.SLAMetric) *time.Time {
	if m == models.SLAFirstResponse {
		return r.FirstResponseDueAt
	}
	return r.ResolutionDueAt
}

func (r *ticketRow) metAt(m models.SLAMetric) *time.Time {
	if m == models.SLAFirstResponse {
		return r.FirstRespondedAt
	}
	return r.ResolvedAt
}

func (r *ticketRow) breached(m models.SLAMetric) bool {
	if m == models.SLAFirstResponse {
		return r.FirstResponseBreached
	}
	return r.ResolutionBreached
}

func (r *ticketRow) ref() pipeline.TicketRef {
	return pipeline.TicketRef{OrgID: r.OrgID, TicketID: r.ID, RequesterID: r.RequesterID}
}

// state is what Sync maintains on the ticket.
type state struct {
	PolicyID  *uuid.UUID
	StartedAt *time.Time
	FRDue     *time.Time
	ResDue    *time.Time
	PausedAt  *time.Time
	Pauses    []Pause
}

func (r *ticketRow) state() (state, error) {
	st := state{PolicyID: r.SLAPolicyID, StartedAt: r.SLAStartedAt, FRDue: r.FirstResponseDueAt,
		ResDue: r.ResolutionDueAt, PausedAt: r.SLAPausedAt}
	if len(r.SLAPausedIntervals) > 0 {
		if err := json.Unmarshal(r.SLAPausedIntervals, &st.Pauses); err != nil {
			return st, fmt.Errorf("sla: ticket %s: sla_paused_intervals: %w", r.ID, err)
		}
	}
	return st, nil
}

func (s state) equal(o state) bool {
	return eqID(s.PolicyID, o.PolicyID) && eqTime(s.StartedAt, o.StartedAt) && eqTime(s.FRDue, o.FRDue) &&
		eqTime(s.ResDue, o.ResDue) && eqTime(s.PausedAt, o.PausedAt) &&
		slices.EqualFunc(s.Pauses, o.Pauses, func(a, b Pause) bool { return a.From.Equal(b.From) && a.To.Equal(b.To) })
}

func eqID(a, b *uuid.UUID) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

func eqTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Equal(*b)
}

// intervals are the finished pauses as businesstime intervals; with asOf
// set, a pause still running counts up to asOf.
func (s state) intervals(asOf *time.Time) []businesstime.Interval {
	out := make([]businesstime.Interval, 0, len(s.Pauses)+1)
	for _, p := range s.Pauses {
		out = append(out, businesstime.Interval{Start: p.From, End: p.To})
	}
	if asOf != nil && s.PausedAt != nil && s.PausedAt.Before(*asOf) {
		out = append(out, businesstime.Interval{Start: *s.PausedAt, End: *asOf})
	}
	return out
}

// Instant is the moment percent of budget has elapsed on a clock started
// at start, in business time of cal, the pauses excluded: the due time at
// 100 %.
func Instant(cal *businesstime.Calendar, start time.Time, budget time.Duration, percent int, pauses []businesstime.Interval) time.Time {
	return cal.AddExcluding(start, budget*time.Duration(percent)/100, pauses).UTC()
}

// micro keeps t to what PostgreSQL stores.
func micro(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// Met is a clock met by the change a ticket.sla_changed event reports.
type Met struct {
	Metric          models.SLAMetric `json:"metric"`
	At              time.Time        `json:"at"`
	DueAt           *time.Time       `json:"due_at"`
	BusinessSeconds float64          `json:"business_seconds"`
	PolicyName      string           `json:"policy_name"`
}

// ChangedData is the Data of a ticket.sla_changed event: the clock after
// the change, the due times before it (so stale timers can be dropped) and
// the clocks the change met.
type ChangedData struct {
	Reason             Reason     `json:"reason"`
	PolicyID           *uuid.UUID `json:"policy_id"`
	StartedAt          *time.Time `json:"started_at"`
	FirstResponseDueAt *time.Time `json:"first_response_due_at"`
	ResolutionDueAt    *time.Time `json:"resolution_due_at"`
	PausedAt           *time.Time `json:"paused_at"`
	Previous           struct {
		FirstResponseDueAt *time.Time `json:"first_response_due_at"`
		ResolutionDueAt    *time.Time `json:"resolution_due_at"`
	} `json:"previous"`
	Met []Met `json:"met,omitempty"`
}

// syncer computes clocks within one transaction, caching policies and
// calendars.
type syncer struct {
	ctx      context.Context
	tx       *gorm.DB
	now      time.Time
	policies map[uuid.UUID]*Policy
	cals     map[uuid.UUID]*businesstime.Calendar
}

func newSyncer(ctx context.Context, tx *gorm.DB, now time.Time) *syncer {
	return &syncer{ctx: ctx, tx: tx.WithContext(ctx), now: micro(now),
		policies: map[uuid.UUID]*Policy{}, cals: map[uuid.UUID]*businesstime.Calendar{}}
}

func (s *syncer) policy(orgID, id uuid.UUID) (*Policy, error) {
	if p, ok := s.policies[id]; ok {
		return p, nil
	}
	ps, err := loadPolicies(s.tx, `org_id = ? AND id = ?`, orgID, id)
	if err != nil {
		return nil, err
	}
	var p *Policy
	if len(ps) > 0 {
		p = ps[0]
	}
	s.policies[id] = p
	return p, nil
}

// calendar is p's calendar. One that cannot be built (the organisation's
// settings were changed to something invalid since the policy was saved)
// counts as 24×7 in UTC, so that no ticket change is refused for it.
func (s *syncer) calendar(p *Policy) (*businesstime.Calendar, error) {
	if c, ok := s.cals[p.ID]; ok {
		return c, nil
	}
	org, err := loadOrgCalendar(s.tx, p.OrgID)
	if err != nil {
		return nil, err
	}
	c, err := p.calendar(org)
	if err != nil {
		c = businesstime.Always(time.UTC)
	}
	s.cals[p.ID] = c
	return c, nil
}

// Sync brings ticket's SLA clock in step with its row as it is now in tx
// (status, priority, service, met times): it starts the clock, opens or
// closes a pause, chooses the policy again on ReasonScope and recomputes
// the due times from the history. The caller holds the ticket's row lock
// in tx. It returns the ticket.sla_changed event to emit in tx, if the
// clock changed or a clock was met.
func Sync(ctx context.Context, tx *gorm.DB, orgID, ticketID uuid.UUID, now time.Time, reason Reason) ([]pipeline.Event, error) {
	s := newSyncer(ctx, tx, now)
	r, err := loadTicket(s.tx, orgID, ticketID, false)
	if err != nil || r == nil {
		return nil, err
	}
	ev, err := s.sync(r, reason)
	if err != nil || ev == nil {
		return nil, err
	}
	return []pipeline.Event{*ev}, nil
}

// Start is Sync for the ticket.created task: it takes the ticket's lock in
// its own transaction and starts a clock_start=created clock (a no-op when
// the clock runs already or the policy starts at acceptance). It returns
// whether the clock changed.
func Start(ctx context.Context, db *gorm.DB, orgID, ticketID uuid.UUID, now time.Time) (bool, error) {
	changed := false
	err := db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(`SELECT 1 FROM tickets WHERE org_id = ? AND id = ? FOR UPDATE`, orgID, ticketID).Error; err != nil {
			return fmt.Errorf("sla: lock ticket: %w", err)
		}
		evs, err := Sync(ctx, tx, orgID, ticketID, now, ReasonCreated)
		if err != nil {
			return err
		}
		changed = len(evs) > 0
		return pipeline.EmitEvents(ctx, tx, evs...)
	})
	return changed, err
}

// startAt is when r's clock starts under p, if it does yet.
func startAt(p *Policy, r *ticketRow, now time.Time) (time.Time, bool) {
	switch {
	case r.Status == models.StatusCancelled:
		return time.Time{}, false
	case p.ClockStart == models.ClockStartCreated:
		return micro(r.CreatedAt), true
	case r.Status == models.StatusNew:
		return time.Time{}, false
	case r.AcceptedAt != nil:
		return micro(*r.AcceptedAt), true
	}
	return now, true
}

func (s *syncer) sync(r *ticketRow, reason Reason) (*pipeline.Event, error) {
	old, err := r.state()
	if err != nil {
		return nil, err
	}
	st := old
	st.Pauses = slices.Clone(old.Pauses)

	var pol *Policy
	if st.StartedAt == nil || reason == ReasonScope {
		if pol, err = Select(s.ctx, s.tx, r.OrgID, r.ServiceID, r.Priority); err != nil {
			return nil, err
		}
	}
	if pol == nil && st.PolicyID != nil {
		if pol, err = s.policy(r.OrgID, *st.PolicyID); err != nil {
			return nil, err
		}
	}
	if st.StartedAt == nil {
		if pol == nil {
			return nil, nil // no SLA for this ticket
		}
		start, ok := startAt(pol, r, s.now)
		if !ok {
			return nil, nil
		}
		st.StartedAt = &start
	}
	if pol != nil {
		st.PolicyID = &pol.ID
	}

	now := s.now
	switch {
	case pausing(r.Status) && st.PausedAt == nil:
		st.PausedAt = &now
	case !pausing(r.Status) && !r.Status.ReadOnly() && st.PausedAt != nil:
		if st.PausedAt.Before(now) {
			st.Pauses = append(st.Pauses, Pause{From: *st.PausedAt, To: now})
		}
		st.PausedAt = nil
	}

	var cal *businesstime.Calendar
	var target Target
	hasTarget := false
	if pol != nil {
		if target, hasTarget = pol.Target(r.Priority); hasTarget {
			if cal, err = s.calendar(pol); err != nil {
				return nil, err
			}
		}
	}
	// The change that meets a clock fixes its due time for good, counting
	// a pause still running at that moment (a reply while waiting on the
	// customer); later changes leave it alone.
	meets := map[models.SLAMetric]bool{models.SLAFirstResponse: reason == ReasonFirstResponse, models.SLAResolution: reason == ReasonResolved}
	recompute := func(metric models.SLAMetric, due **time.Time) {
		metAt := r.metAt(metric)
		if metAt != nil && *due != nil && !meets[metric] {
			return
		}
		if !hasTarget {
			*due = nil
			return
		}
		var asOf *time.Time
		if metAt != nil {
			a := micro(*metAt)
			asOf = &a
		}
		d := Instant(cal, *st.StartedAt, target.Budget(metric), BreachPercent, st.intervals(asOf))
		*due = &d
	}
	recompute(models.SLAFirstResponse, &st.FRDue)
	recompute(models.SLAResolution, &st.ResDue)

	var met []Met
	observe := func(metric models.SLAMetric, at *time.Time, due *time.Time) {
		if at == nil || cal == nil {
			return
		}
		a := micro(*at)
		met = append(met, Met{Metric: metric, At: a, DueAt: due, PolicyName: pol.Name,
			BusinessSeconds: cal.ElapsedExcluding(*st.StartedAt, a, st.intervals(&a)).Seconds()})
	}
	switch reason {
	case ReasonFirstResponse:
		observe(models.SLAFirstResponse, r.FirstRespondedAt, st.FRDue)
	case ReasonResolved:
		observe(models.SLAResolution, r.ResolvedAt, st.ResDue)
	}

	changed := !st.equal(old)
	if !changed && len(met) == 0 && reason != ReasonPolicy {
		return nil, nil
	}
	if changed {
		pauses, err := json.Marshal(st.Pauses)
		if err != nil {
			return nil, err
		}
		if st.Pauses == nil {
			pauses = []byte("[]")
		}
		err = s.tx.Exec(`UPDATE tickets SET sla_policy_id = ?, sla_started_at = ?, first_response_due_at = ?,
			resolution_due_at = ?, sla_paused_at = ?, sla_paused_intervals = ?::jsonb WHERE org_id = ? AND id = ?`,
			st.PolicyID, st.StartedAt, st.FRDue, st.ResDue, st.PausedAt, string(pauses), r.OrgID, r.ID).Error
		if err != nil {
			return nil, fmt.Errorf("sla: update ticket %s: %w", r.ID, err)
		}
	}
	data := ChangedData{Reason: reason, PolicyID: st.PolicyID, StartedAt: st.StartedAt,
		FirstResponseDueAt: st.FRDue, ResolutionDueAt: st.ResDue, PausedAt: st.PausedAt, Met: met}
	data.Previous.FirstResponseDueAt, data.Previous.ResolutionDueAt = old.FRDue, old.ResDue
	ev, err := pipeline.NewEvent(pipeline.EventSLAChanged, r.ref(), nil, pipeline.AudienceStaff, data)
	if err != nil {
		return nil, err
	}
	return &ev, nil
}

// resyncPolicy recomputes the clocks of p's running tickets after p
// changed, and emits their events, in tx.
func resyncPolicy(ctx context.Context, tx *gorm.DB, p *Policy) error {
	s := newSyncer(ctx, tx, time.Now())
	s.policies[p.ID] = p
	rows, err := loadTickets(s.tx, true, `t.org_id = ? AND t.sla_policy_id = ? AND t.sla_started_at IS NOT NULL
		AND t.status NOT IN ('closed', 'cancelled') ORDER BY t.id`, p.OrgID, p.ID)
	if err != nil {
		return err
	}
	events := make([]pipeline.Event, 0, len(rows))
	for _, r := range rows {
		ev, err := s.sync(r, ReasonPolicy)
		if err != nil {
			return err
		}
		if ev != nil {
			events = append(events, *ev)
		}
	}
	return pipeline.EmitEvents(ctx, tx, events...)
}

// ResyncOrganization recomputes, in tx, the running clocks of the
// organisation's tickets whose policy inherits any of its calendar
// settings, after its time zone, business hours or holidays changed.
func ResyncOrganization(ctx context.Context, tx *gorm.DB, orgID uuid.UUID) error {
	ps, err := loadPolicies(tx.WithContext(ctx), `org_id = ? AND (timezone IS NULL
		OR (use_business_hours AND (business_hours IS NULL OR holidays IS NULL)))`, orgID)
	if err != nil {
		return err
	}
	for _, p := range ps {
		if err := resyncPolicy(ctx, tx, p); err != nil {
			return err
		}
	}
	return nil
}
