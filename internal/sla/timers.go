package sla

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/internal/audit"
	"github.com/atumdesk/atumdesk/internal/businesstime"
	"github.com/atumdesk/atumdesk/internal/database"
	"github.com/atumdesk/atumdesk/models"
	"github.com/atumdesk/atumdesk/pipeline"
)

// Metrics are the two clocks, in the order timers are listed.
var Metrics = []models.SLAMetric{models.SLAFirstResponse, models.SLAResolution}

// Timer is one scheduled look at a ticket's clock: at At, Percent of the
// clock's target has elapsed. DueAt is the clock's due time when the timer
// was made; a ticket whose due time has moved since makes the timer stale.
type Timer struct {
	OrgID    uuid.UUID        `json:"org_id"`
	TicketID uuid.UUID        `json:"ticket_id"`
	Metric   models.SLAMetric `json:"metric"`
	Percent  int              `json:"percent"`
	DueAt    time.Time        `json:"due_at"`
	At       time.Time        `json:"at"`
}

// TaskID names the timer's task: the same timer scheduled twice is one
// task, and a due time that moves gives new names.
func (t Timer) TaskID() string {
	return fmt.Sprintf("sla:%s:%s:%d:%d", t.TicketID, t.Metric, t.Percent, t.DueAt.UnixMicro())
}

// TimersFor lists the timers of a ticket's clocks whose due times were
// dueFR and dueRes, one per percent: the tasks to drop once these due times
// are stale. Only their TaskIDs are meaningful.
func TimersFor(orgID, ticketID uuid.UUID, percents []int, dueFR, dueRes *time.Time) []Timer {
	var out []Timer
	for i, due := range []*time.Time{dueFR, dueRes} {
		if due == nil {
			continue
		}
		for _, pc := range percents {
			out = append(out, Timer{OrgID: orgID, TicketID: ticketID, Metric: Metrics[i], Percent: pc, DueAt: *due})
		}
	}
	return out
}

// running reports whether r's clocks can fire: started, not paused, work
// ongoing.
func (r *ticketRow) running() bool {
	return r.SLAStartedAt != nil && r.SLAPausedAt == nil && r.Status.IsOpen() && r.SLAPolicyID != nil
}

// Plan is what a ticket's clocks need scheduled now.
type Plan struct {
	// Timers: for each clock that runs and is not met, one per escalation
	// percent not yet fired and one for the breach unless recorded. Some
	// may lie in the past (they fire at once).
	Timers []Timer
	// Percents are the policy's timer percents (nil without a policy).
	Percents []int
	// The clocks' due times now: timers made for others are stale.
	FirstResponseDueAt, ResolutionDueAt *time.Time
}

// Due returns the plan's due time of metric m.
func (p Plan) Due(m models.SLAMetric) *time.Time {
	if m == models.SLAFirstResponse {
		return p.FirstResponseDueAt
	}
	return p.ResolutionDueAt
}

// Pending reads a ticket and returns its Plan.
func Pending(ctx context.Context, db *gorm.DB, orgID, ticketID uuid.UUID) (Plan, error) {
	plans, err := PendingAll(ctx, db, orgID, []uuid.UUID{ticketID})
	return plans[ticketID], err
}

// PendingAll is Pending for several tickets of one organisation: the
// tickets, their policies, the organisation's calendar and the fired
// escalations are read once each. A ticket not found has no entry.
func PendingAll(ctx context.Context, db *gorm.DB, orgID uuid.UUID, ticketIDs []uuid.UUID) (map[uuid.UUID]Plan, error) {
	s := newSyncer(ctx, db, time.Now())
	rows, err := loadTickets(s.tx, false, `t.org_id = ? AND t.id = ANY(?::uuid[])`, orgID, database.UUIDArray(ticketIDs))
	if err != nil {
		return nil, err
	}
	if err := s.prefetch(orgID, policyIDs(rows)); err != nil {
		return nil, err
	}
	var running []uuid.UUID
	for _, r := range rows {
		if r.running() {
			running = append(running, r.ID)
		}
	}
	fired, err := firedLevels(s.tx, running)
	if err != nil {
		return nil, err
	}
	plans := make(map[uuid.UUID]Plan, len(rows))
	for _, r := range rows {
		if plans[r.ID], err = s.plan(r, fired[r.ID]); err != nil {
			return nil, err
		}
	}
	return plans, nil
}

// levels are the escalation levels fired on a ticket, per clock.
type levels map[models.SLAMetric]map[int]bool

// firedLevels reads the escalations fired on the tickets ids.
func firedLevels(db *gorm.DB, ids []uuid.UUID) (map[uuid.UUID]levels, error) {
	out := map[uuid.UUID]levels{}
	if len(ids) == 0 {
		return out, nil
	}
	var rows []struct {
		TicketID uuid.UUID
		Target   models.SLAMetric
		Level    int
	}
	err := db.Raw(`SELECT ticket_id, target, level FROM sla_escalations WHERE ticket_id = ANY(?::uuid[])`, database.UUIDArray(ids)).
		Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("sla: fired escalations: %w", err)
	}
	for _, f := range rows {
		if out[f.TicketID] == nil {
			out[f.TicketID] = levels{}
		}
		if out[f.TicketID][f.Target] == nil {
			out[f.TicketID][f.Target] = map[int]bool{}
		}
		out[f.TicketID][f.Target][f.Level] = true
	}
	return out, nil
}

// plan is r's Plan, done being the escalations fired on it.
func (s *syncer) plan(r *ticketRow, done levels) (Plan, error) {
	plan := Plan{FirstResponseDueAt: r.FirstResponseDueAt, ResolutionDueAt: r.ResolutionDueAt}
	if r.SLAPolicyID == nil {
		return plan, nil
	}
	pol, err := s.policy(r.OrgID, *r.SLAPolicyID)
	if err != nil || pol == nil {
		return plan, err
	}
	plan.Percents = pol.Percents()
	target, ok := pol.Target(r.Priority)
	if !r.running() || !ok {
		return plan, nil
	}
	cal, err := s.calendar(pol)
	if err != nil {
		return plan, err
	}
	st, err := r.state()
	if err != nil {
		return plan, err
	}
	for _, m := range Metrics {
		due := r.due(m)
		if due == nil || r.metAt(m) != nil {
			continue
		}
		for _, pc := range plan.Percents {
			need := pc == BreachPercent && !r.breached(m)
			for _, lvl := range pol.RulesAt(pc) {
				need = need || !done[m][lvl]
			}
			if !need {
				continue
			}
			at := Instant(cal, *st.StartedAt, target.Budget(m), pc, st.intervals(nil))
			plan.Timers = append(plan.Timers, Timer{OrgID: r.OrgID, TicketID: r.ID, Metric: m, Percent: pc, DueAt: *due, At: at})
		}
	}
	return plan, nil
}

// Verdict is what a timer finds when it fires.
type Verdict struct {
	Fire bool
	// Why the timer does nothing: gone, closed, stale, paused, met,
	// no_policy, no_target, early.
	Why string
	// Wait is how early the timer is (Why == "early"): the threshold lies
	// Wait ahead.
	Wait time.Duration
	// Instant is when the threshold was crossed.
	Instant time.Time

	t   *ticketRow
	pol *Policy
}

// Check re-reads the timer's ticket under its row lock in tx and decides
// whether the timer's threshold has been crossed and still holds: the due
// time it was made for is the ticket's, the clock is not paused, and it
// was not met before the threshold (a clock met late still breaches).
//
// cache, if not nil, keeps the policy and its calendar between calls.
func Check(ctx context.Context, tx *gorm.DB, tm Timer, now time.Time, cache *Cache) (Verdict, error) {
	s := newSyncer(ctx, tx, now)
	r, err := loadTicket(s.tx, tm.OrgID, tm.TicketID, true)
	if err != nil {
		return Verdict{}, err
	}
	switch {
	case r == nil:
		return Verdict{Why: "gone"}, nil
	case r.Status.ReadOnly():
		return Verdict{Why: "closed"}, nil
	case r.due(tm.Metric) == nil || !r.due(tm.Metric).Equal(tm.DueAt):
		return Verdict{Why: "stale"}, nil
	}
	metAt := r.metAt(tm.Metric)
	if r.SLAPausedAt != nil && metAt == nil {
		return Verdict{Why: "paused"}, nil
	}
	if r.SLAPolicyID == nil || r.SLAStartedAt == nil {
		return Verdict{Why: "no_policy"}, nil
	}
	pol, cal, err := cache.lookup(s, r)
	if err != nil {
		return Verdict{}, err
	}
	if pol == nil {
		return Verdict{Why: "no_policy"}, nil
	}
	target, ok := pol.Target(r.Priority)
	if !ok {
		return Verdict{Why: "no_target"}, nil
	}
	st, err := r.state()
	if err != nil {
		return Verdict{}, err
	}
	asOf := s.now
	if metAt != nil && metAt.Before(asOf) {
		asOf = *metAt
	}
	// The breach is the due time the ticket shows; thresholds are where
	// their share of the target elapses, in the same history.
	instant := tm.DueAt
	if tm.Percent != BreachPercent {
		instant = Instant(cal, *st.StartedAt, target.Budget(tm.Metric), tm.Percent, st.intervals(&asOf))
	}
	switch {
	case metAt != nil && !metAt.After(instant):
		return Verdict{Why: "met", Instant: instant}, nil
	case metAt == nil && s.now.Before(instant):
		return Verdict{Why: "early", Wait: instant.Sub(s.now), Instant: instant}, nil
	}
	return Verdict{Fire: true, Instant: instant, t: r, pol: pol}, nil
}

// FiredData is the Data of an sla.threshold or sla.breached event, and the
// audit row's after: what was crossed, and who is to be told (the notify
// stage resolves roles, "assignee" and user ids to people).
type FiredData struct {
	Metric       models.SLAMetric `json:"metric"`
	Percent      int              `json:"percent"`
	Breach       bool             `json:"breach"`
	DueAt        time.Time        `json:"due_at"`
	CrossedAt    time.Time        `json:"crossed_at"`
	FiredAt      time.Time        `json:"fired_at"`
	MetAt        *time.Time       `json:"met_at,omitempty"`
	PolicyID     uuid.UUID        `json:"policy_id"`
	PolicyName   string           `json:"policy_name"`
	Priority     models.Priority  `json:"priority"`
	TicketNumber int64            `json:"ticket_number"`
	AssignedTo   *uuid.UUID       `json:"assigned_to"`
	Levels       []int            `json:"levels"`
	Notify       []string         `json:"notify"`
}

// Fired is what Fire recorded; nil when every step had fired before.
type Fired struct {
	Event pipeline.Event
	Data  FiredData
}

// Fire records a crossing that Check allowed, in tx: for the breach an
// sla_breaches row and the ticket's breached flag, for each escalation
// rule at the percent an sla_escalations row, each at most once ever (ON
// CONFLICT DO NOTHING); then, if anything was new, the sla.breached or
// sla.threshold event (staff) and an audit row.
func Fire(ctx context.Context, tx *gorm.DB, v Verdict, tm Timer, now time.Time) (*Fired, error) {
	if !v.Fire || v.t == nil {
		return nil, nil
	}
	if !tm.Metric.Valid() {
		return nil, fmt.Errorf("sla: timer with unknown metric %q", tm.Metric)
	}
	r, pol := v.t, v.pol
	tx = tx.WithContext(ctx)
	now = micro(now)
	breach := false
	if tm.Percent == BreachPercent {
		// One statement: the flag is set exactly when the row is new.
		res := tx.Exec(`WITH b AS (
				INSERT INTO sla_breaches (id, org_id, ticket_id, kind, policy_id, due_at, breached_at)
				VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (ticket_id, kind) DO NOTHING RETURNING ticket_id)
			UPDATE tickets SET `+string(tm.Metric)+`_breached = true WHERE id IN (SELECT ticket_id FROM b)`,
			models.NewID(), r.OrgID, r.ID, tm.Metric, pol.ID, tm.DueAt, now)
		if res.Error != nil {
			return nil, fmt.Errorf("sla: record breach: %w", res.Error)
		}
		breach = res.RowsAffected == 1
	}
	levels := []int{}
	notify := []string{}
	for _, lvl := range pol.RulesAt(tm.Percent) {
		res := tx.Exec(`INSERT INTO sla_escalations (ticket_id, org_id, target, level, fired_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT DO NOTHING`, r.ID, r.OrgID, tm.Metric, lvl, now)
		if res.Error != nil {
			return nil, fmt.Errorf("sla: record escalation: %w", res.Error)
		}
		if res.RowsAffected == 1 {
			levels = append(levels, lvl)
			for _, n := range pol.EscalationRules[lvl].Notify {
				if !slices.Contains(notify, n) {
					notify = append(notify, n)
				}
			}
		}
	}
	if !breach && len(levels) == 0 {
		return nil, nil
	}
	data := FiredData{Metric: tm.Metric, Percent: tm.Percent, Breach: breach, DueAt: tm.DueAt, CrossedAt: v.Instant,
		FiredAt: now, MetAt: r.metAt(tm.Metric), PolicyID: pol.ID, PolicyName: pol.Name, Priority: r.Priority,
		TicketNumber: r.Number, AssignedTo: r.AssignedTo, Levels: levels, Notify: notify}
	typ, action := pipeline.EventSLAThreshold, "sla.threshold"
	if breach {
		typ, action = pipeline.EventSLABreached, "sla.breached"
	}
	ev, err := pipeline.NewEvent(typ, r.ref(), nil, pipeline.AudienceStaff, data)
	if err != nil {
		return nil, err
	}
	if err := pipeline.EmitEvents(ctx, tx, ev); err != nil {
		return nil, err
	}
	err = audit.Write(ctx, tx, audit.Entry{OrgID: &r.OrgID, TicketID: &r.ID, ActorKind: audit.ActorSystem,
		Action: action, EntityType: "ticket", EntityID: &r.ID, After: data})
	if err != nil {
		return nil, err
	}
	return &Fired{Event: ev, Data: data}, nil
}

// TicketKey names a ticket.
type TicketKey struct {
	OrgID uuid.UUID
	ID    uuid.UUID
}

// Running lists, across organisations, tickets whose clocks run (started,
// not paused, open, a clock not met), after the id after, at most limit:
// what a reconciliation pass reschedules.
func Running(ctx context.Context, db *gorm.DB, after uuid.UUID, limit int) ([]TicketKey, error) {
	var out []TicketKey
	err := db.WithContext(ctx).Raw(`SELECT org_id, id FROM tickets
		WHERE sla_started_at IS NOT NULL AND sla_paused_at IS NULL AND sla_policy_id IS NOT NULL
		  AND status IN ('new', 'accepted', 'assigned', 'in_progress')
		  AND ((first_responded_at IS NULL AND first_response_due_at IS NOT NULL)
		    OR (resolved_at IS NULL AND resolution_due_at IS NOT NULL))
		  AND id > ?
		ORDER BY id LIMIT ?`, after, limit).Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("sla: running tickets: %w", err)
	}
	return out, nil
}

// AtRisk counts, across organisations and per clock, the open tickets that
// have crossed an escalation threshold of their policy but are neither met
// nor breached: the policy's owner says when a ticket is at risk by the
// thresholds they set.
func AtRisk(ctx context.Context, db *gorm.DB) (map[models.SLAMetric]int, error) {
	var rows []struct {
		Target models.SLAMetric
		N      int
	}
	err := db.WithContext(ctx).Raw(`SELECT e.target, count(DISTINCT e.ticket_id) AS n
		FROM tickets t JOIN sla_escalations e ON e.ticket_id = t.id
		WHERE t.status IN ('new', 'accepted', 'assigned', 'in_progress', 'waiting_customer')
		  AND ((e.target = 'first_response' AND t.first_responded_at IS NULL AND NOT t.first_response_breached)
		    OR (e.target = 'resolution' AND t.resolved_at IS NULL AND NOT t.resolution_breached))
		GROUP BY e.target`).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("sla: at risk: %w", err)
	}
	out := map[models.SLAMetric]int{models.SLAFirstResponse: 0, models.SLAResolution: 0}
	for _, r := range rows {
		out[r.Target] = r.N
	}
	return out, nil
}

// Cache keeps policies and their calendars between timer runs, keyed by
// the policy's and its organisation's updated_at (read with the ticket),
// so a change to either is seen at once. Safe for concurrent use.
type Cache struct {
	mu sync.Mutex
	m  map[uuid.UUID]cacheEntry
}

type cacheEntry struct {
	polAt, orgAt time.Time
	pol          *Policy
	cal          *businesstime.Calendar
}

// maxCached bounds the cache; it is emptied when full.
const maxCached = 10_000

// NewCache returns an empty cache.
func NewCache() *Cache { return &Cache{m: map[uuid.UUID]cacheEntry{}} }

// lookup returns r's policy and calendar, from the cache when their
// versions match (c may be nil: no cache).
func (c *Cache) lookup(s *syncer, r *ticketRow) (*Policy, *businesstime.Calendar, error) {
	id := *r.SLAPolicyID
	if c != nil && r.PolicyUpdatedAt != nil {
		c.mu.Lock()
		e, ok := c.m[id]
		c.mu.Unlock()
		if ok && e.polAt.Equal(*r.PolicyUpdatedAt) && e.orgAt.Equal(r.OrgUpdatedAt) {
			return e.pol, e.cal, nil
		}
	}
	pol, err := s.policy(r.OrgID, id)
	if err != nil || pol == nil {
		return nil, nil, err
	}
	cal, err := s.calendar(pol)
	if err != nil {
		return nil, nil, err
	}
	if c != nil && r.PolicyUpdatedAt != nil {
		c.mu.Lock()
		if len(c.m) >= maxCached {
			clear(c.m)
		}
		c.m[id] = cacheEntry{polAt: *r.PolicyUpdatedAt, orgAt: r.OrgUpdatedAt, pol: pol, cal: cal}
		c.mu.Unlock()
	}
	return pol, cal, nil
}
