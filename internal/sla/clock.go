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
	"github.com/atumdesk/atumdesk/internal/database"
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
		q += ` FOR NO KEY UPDATE OF t`
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

// syncer computes clocks within one transaction, caching policies,
// calendars and the organisation's active policies, so that many tickets
// of one organisation cost one read of each.
type syncer struct {
	ctx      context.Context
	tx       *gorm.DB
	now      time.Time
	policies map[uuid.UUID]*Policy                // by id; nil: not found
	active   map[uuid.UUID][]*Policy              // organisation → its active policies
	orgs     map[uuid.UUID]orgCalendar            // organisation → its calendar settings
	cals     map[uuid.UUID]*businesstime.Calendar // by policy id
	writes   []ticketWrite                        // clocks sync changed, for flush
	written  map[uuid.UUID]int                    // ticket → its index in writes
}

func newSyncer(ctx context.Context, tx *gorm.DB, now time.Time) *syncer {
	return &syncer{ctx: ctx, tx: tx.WithContext(ctx), now: micro(now),
		policies: map[uuid.UUID]*Policy{}, active: map[uuid.UUID][]*Policy{}, orgs: map[uuid.UUID]orgCalendar{},
		cals: map[uuid.UUID]*businesstime.Calendar{}, written: map[uuid.UUID]int{}}
}

func (s *syncer) policy(orgID, id uuid.UUID) (*Policy, error) {
	if err := s.prefetch(orgID, []uuid.UUID{id}); err != nil {
		return nil, err
	}
	return s.policies[id], nil
}

// prefetch reads, in one go, those of the organisation's policies ids
// that are not cached yet.
func (s *syncer) prefetch(orgID uuid.UUID, ids []uuid.UUID) error {
	var need []uuid.UUID
	for _, id := range ids {
		if _, ok := s.policies[id]; !ok && !slices.Contains(need, id) {
			need = append(need, id)
		}
	}
	if len(need) == 0 {
		return nil
	}
	ps, err := loadPolicies(s.tx, `org_id = ? AND id = ANY(?::uuid[])`, orgID, database.UUIDArray(need))
	if err != nil {
		return err
	}
	for _, id := range need {
		s.policies[id] = nil
	}
	s.keep(ps)
	return nil
}

// loadOrg reads the organisation's active policies, and those of ids
// that are not cached, in one go (ids: the policies its tickets run on).
func (s *syncer) loadOrg(orgID uuid.UUID, ids []uuid.UUID) error {
	if _, ok := s.active[orgID]; ok {
		return s.prefetch(orgID, ids)
	}
	var need []uuid.UUID
	for _, id := range ids {
		if _, ok := s.policies[id]; !ok {
			need = append(need, id)
		}
	}
	ps, err := loadPolicies(s.tx, `org_id = ? AND (is_active OR id = ANY(?::uuid[]))`, orgID, database.UUIDArray(need))
	if err != nil {
		return err
	}
	for _, id := range need {
		s.policies[id] = nil
	}
	active := []*Policy{}
	for _, p := range ps {
		if p.IsActive {
			active = append(active, p)
		}
	}
	s.active[orgID] = active
	s.keep(ps)
	return nil
}

// keep caches ps, leaving a policy already cached as it is (resyncPolicy
// puts the policy it recomputes for there).
func (s *syncer) keep(ps []*Policy) {
	for _, p := range ps {
		if cached := s.policies[p.ID]; cached == nil {
			s.policies[p.ID] = p
		}
	}
}

// choose is Select with the syncer's cache.
func (s *syncer) choose(orgID uuid.UUID, service *uuid.UUID, pr models.Priority) (*Policy, error) {
	if err := s.loadOrg(orgID, nil); err != nil {
		return nil, err
	}
	return pick(s.active[orgID], service, pr), nil
}

// calendar is p's calendar. One that cannot be built (the organisation's
// settings were changed to something invalid since the policy was saved)
// counts as 24×7 in UTC, so that no ticket change is refused for it.
func (s *syncer) calendar(p *Policy) (*businesstime.Calendar, error) {
	if c, ok := s.cals[p.ID]; ok {
		return c, nil
	}
	org, ok := s.orgs[p.OrgID]
	if !ok {
		var err error
		if org, err = loadOrgCalendar(s.tx, p.OrgID); err != nil {
			return nil, err
		}
		s.orgs[p.OrgID] = org
	}
	c, err := p.calendar(org)
	if err != nil {
		c = businesstime.Always(time.UTC)
	}
	s.cals[p.ID] = c
	return c, nil
}

// ticketWrite is one ticket's changed clock, as flush writes it.
type ticketWrite struct {
	OrgID              uuid.UUID       `json:"org_id"`
	ID                 uuid.UUID       `json:"id"`
	PolicyID           *uuid.UUID      `json:"policy_id"`
	StartedAt          *time.Time      `json:"started_at"`
	FirstResponseDueAt *time.Time      `json:"first_response_due_at"`
	ResolutionDueAt    *time.Time      `json:"resolution_due_at"`
	PausedAt           *time.Time      `json:"paused_at"`
	PausedIntervals    json.RawMessage `json:"paused_intervals"`
}

// microPtr keeps *t to what PostgreSQL stores (as the driver does for a
// time parameter: the JSON text would be rounded, not truncated).
func microPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	m := micro(*t)
	return &m
}

// record keeps st as r's clock: on r, so a later sync of the ticket in
// this syncer starts from it, and for flush (the last state of a ticket
// wins).
func (s *syncer) record(r *ticketRow, st state) error {
	pauses, err := json.Marshal(st.Pauses)
	if err != nil {
		return err
	}
	if st.Pauses == nil {
		pauses = []byte("[]")
	}
	r.SLAPolicyID, r.SLAStartedAt, r.FirstResponseDueAt, r.ResolutionDueAt, r.SLAPausedAt, r.SLAPausedIntervals =
		st.PolicyID, st.StartedAt, st.FRDue, st.ResDue, st.PausedAt, models.JSONB(pauses)
	w := ticketWrite{OrgID: r.OrgID, ID: r.ID, PolicyID: st.PolicyID, StartedAt: microPtr(st.StartedAt),
		FirstResponseDueAt: microPtr(st.FRDue), ResolutionDueAt: microPtr(st.ResDue), PausedAt: microPtr(st.PausedAt),
		PausedIntervals: pauses}
	if i, ok := s.written[r.ID]; ok {
		s.writes[i] = w
		return nil
	}
	s.written[r.ID] = len(s.writes)
	s.writes = append(s.writes, w)
	return nil
}

// flush writes the clocks sync changed, all in one statement.
func (s *syncer) flush() error {
	if len(s.writes) == 0 {
		return nil
	}
	param, err := json.Marshal(s.writes)
	if err != nil {
		return fmt.Errorf("sla: update tickets: %w", err)
	}
	err = s.tx.Exec(`UPDATE tickets t SET sla_policy_id = v.policy_id, sla_started_at = v.started_at,
		first_response_due_at = v.first_response_due_at, resolution_due_at = v.resolution_due_at,
		sla_paused_at = v.paused_at, sla_paused_intervals = v.paused_intervals
		FROM jsonb_to_recordset(?::jsonb) AS v(org_id uuid, id uuid, policy_id uuid, started_at timestamptz,
			first_response_due_at timestamptz, resolution_due_at timestamptz, paused_at timestamptz, paused_intervals jsonb)
		WHERE t.org_id = v.org_id AND t.id = v.id`, string(param)).Error
	if err != nil {
		return fmt.Errorf("sla: update %d ticket(s): %w", len(s.writes), err)
	}
	s.writes, s.written = s.writes[:0], map[uuid.UUID]int{}
	return nil
}

// Sync brings ticket's SLA clock in step with its row as it is now in tx
// (status, priority, service, met times): it starts the clock, opens or
// closes a pause, chooses the policy again on ReasonScope and recomputes
// the due times from the history. The caller holds the ticket's row lock
// in tx. It returns the ticket.sla_changed event to emit in tx, if the
// clock changed or a clock was met.
func Sync(ctx context.Context, tx *gorm.DB, orgID, ticketID uuid.UUID, now time.Time, reason Reason) ([]pipeline.Event, error) {
	return SyncAll(ctx, tx, orgID, []uuid.UUID{ticketID}, now, reason)
}

// SyncAll is Sync for several tickets of one organisation, the caller
// holding their row locks in tx: the tickets and the policies are read
// once, the clocks that changed written in one statement. It returns the
// events to emit in tx (in ticket id order).
func SyncAll(ctx context.Context, tx *gorm.DB, orgID uuid.UUID, ticketIDs []uuid.UUID, now time.Time, reason Reason) ([]pipeline.Event, error) {
	return newSyncer(ctx, tx, now).syncTickets(orgID, ticketIDs, false, reason)
}

// Start is Sync for the ticket.created task: it takes the ticket's lock in
// its own transaction and starts a clock_start=created clock (a no-op when
// the clock runs already or the policy starts at acceptance). It returns
// whether the clock changed.
func Start(ctx context.Context, db *gorm.DB, orgID, ticketID uuid.UUID, now time.Time) (bool, error) {
	changed, err := StartAll(ctx, db, orgID, []uuid.UUID{ticketID}, now)
	return changed[ticketID], err
}

// StartAll is Start for several tickets of one organisation in one
// transaction: it locks and reads them in one statement (in id order, the
// order every multi-ticket lock here takes), reads the organisation's
// policies once, writes the clocks that changed in one statement and emits
// their events in one. It returns the tickets whose clocks changed. On an
// error nothing is written.
func StartAll(ctx context.Context, db *gorm.DB, orgID uuid.UUID, ticketIDs []uuid.UUID, now time.Time) (map[uuid.UUID]bool, error) {
	changed := map[uuid.UUID]bool{}
	err := db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		evs, err := newSyncer(ctx, tx, now).syncTickets(orgID, ticketIDs, true, ReasonCreated)
		if err != nil {
			return err
		}
		for _, ev := range evs {
			changed[ev.TicketID] = true
		}
		return pipeline.EmitEvents(ctx, tx, evs...)
	})
	if err != nil {
		return nil, err
	}
	return changed, nil
}

// syncTickets reads (and with lock locks, in id order) the organisation's
// tickets ids, reads the policies they need in one go and syncs them.
func (s *syncer) syncTickets(orgID uuid.UUID, ids []uuid.UUID, lock bool, reason Reason) ([]pipeline.Event, error) {
	rows, err := loadTickets(s.tx, lock, `t.org_id = ? AND t.id = ANY(?::uuid[]) ORDER BY t.id`, orgID, database.UUIDArray(ids))
	if err != nil || len(rows) == 0 {
		return nil, err
	}
	// A clock that starts, or a scope change, chooses among the active
	// policies; otherwise the tickets' own policies are all it needs.
	choose := reason == ReasonScope
	for _, r := range rows {
		choose = choose || r.SLAStartedAt == nil
	}
	if choose {
		err = s.loadOrg(orgID, policyIDs(rows))
	} else {
		err = s.prefetch(orgID, policyIDs(rows))
	}
	if err != nil {
		return nil, err
	}
	return s.syncAll(rows, reason)
}

// policyIDs lists the policies rows run on.
func policyIDs(rows []*ticketRow) []uuid.UUID {
	var ids []uuid.UUID
	for _, r := range rows {
		if r.SLAPolicyID != nil && !slices.Contains(ids, *r.SLAPolicyID) {
			ids = append(ids, *r.SLAPolicyID)
		}
	}
	return ids
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
		if pol, err = s.choose(r.OrgID, r.ServiceID, r.Priority); err != nil {
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
		if err := s.record(r, st); err != nil {
			return nil, err
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
	evs, err := s.syncAll(rows, ReasonPolicy)
	if err != nil {
		return err
	}
	return pipeline.EmitEvents(ctx, tx, evs...)
}

// syncAll syncs rows for reason and writes the clocks that changed in one
// statement. It returns the events to emit.
func (s *syncer) syncAll(rows []*ticketRow, reason Reason) ([]pipeline.Event, error) {
	var evs []pipeline.Event
	for _, r := range rows {
		ev, err := s.sync(r, reason)
		if err != nil {
			return nil, err
		}
		if ev != nil {
			evs = append(evs, *ev)
		}
	}
	if err := s.flush(); err != nil {
		return nil, err
	}
	return evs, nil
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
