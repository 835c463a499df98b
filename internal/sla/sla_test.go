package sla_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/internal/seed"
	"github.com/atumdesk/atumdesk/internal/sla"
	"github.com/atumdesk/atumdesk/internal/testenv"
	"github.com/atumdesk/atumdesk/internal/tickets"
	"github.com/atumdesk/atumdesk/models"
	"github.com/atumdesk/atumdesk/pipeline"
)

var berlin = mustZone("Europe/Berlin")

func mustZone(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// at is a wall time in Berlin in March 2026 (Friday the 6th, Monday the 9th).
func at(day, hour, minute int) time.Time {
	return time.Date(2026, 3, day, hour, minute, 0, 0, berlin)
}

// env is the seeded demo database: acme (Europe/Berlin) with its Standard
// policy (Mon–Fri 09:00–17:00, org default).
type env struct {
	t        *testing.T
	ctx      context.Context
	db       *gorm.DB
	org      uuid.UUID
	customer uuid.UUID
	standard uuid.UUID
	services []uuid.UUID
}

func newEnv(t *testing.T) *env {
	t.Helper()
	db, _ := testenv.DB(t)
	ctx := context.Background()
	_, err := seed.Demo(ctx, db, "correct horse battery staple")
	require.NoError(t, err)
	e := &env{t: t, ctx: ctx, db: db}
	require.NoError(t, db.Raw(`SELECT org_id, id FROM users WHERE email = 'customer_user@acme.test'`).Row().Scan(&e.org, &e.customer))
	require.NoError(t, db.Raw(`SELECT id FROM sla_policies WHERE org_id = ? AND name = 'Standard'`, e.org).Row().Scan(&e.standard))
	var svcs []struct{ ID uuid.UUID }
	require.NoError(t, db.Raw(`SELECT id FROM services WHERE org_id = ? ORDER BY name`, e.org).Scan(&svcs).Error)
	for _, s := range svcs {
		e.services = append(e.services, s.ID)
	}
	require.Len(t, e.services, 3)
	return e
}

func raw(t *testing.T, v any) map[string]json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(b, &m))
	return m
}

func (e *env) entry() sla.PolicyChange {
	return sla.PolicyChange{OrgID: &e.org}
}

// fourHours gives the Standard policy the seed's Test 3 targets: 4 business
// hours for medium, 2 for high.
func (e *env) fourHours() {
	e.t.Helper()
	_, err := sla.UpdatePolicy(e.ctx, e.db, e.org, e.standard, raw(e.t, map[string]any{"targets": []map[string]any{
		{"priority": "medium", "first_response_minutes": 240, "resolution_minutes": 240},
		{"priority": "high", "first_response_minutes": 120, "resolution_minutes": 120}}}), e.entry())
	require.NoError(e.t, err)
}

func (e *env) ticket(service *uuid.UUID, prio models.Priority, created time.Time) uuid.UUID {
	e.t.Helper()
	id := models.NewID()
	require.NoError(e.t, e.db.Exec(`INSERT INTO tickets (id, org_id, number, subject, requester_id, channel, priority, service_id, created_at)
		VALUES (?, ?, next_ticket_number(?), 'sla test', ?, 'web', ?, ?, ?)`, id, e.org, e.org, e.customer, prio, service, created).Error)
	return id
}

// move does what the ticket service's moveTo does: the status and its
// timestamps, then sla.Sync, in one transaction with the events.
func (e *env) move(id uuid.UUID, to models.TicketStatus, now time.Time) []pipeline.Event {
	e.t.Helper()
	var evs []pipeline.Event
	require.NoError(e.t, e.db.Transaction(func(tx *gorm.DB) error {
		cols := map[string]any{"status": to}
		switch to {
		case models.StatusAccepted:
			cols["accepted_at"] = now
		case models.StatusResolved:
			cols["resolved_at"] = now
		case models.StatusInProgress:
			cols["resolved_at"] = nil
		}
		if err := tx.Table("tickets").Where("id = ?", id).Updates(cols).Error; err != nil {
			return err
		}
		var err error
		evs, err = sla.Sync(e.ctx, tx, e.org, id, now, sla.StatusReason(to))
		if err != nil {
			return err
		}
		return pipeline.EmitEvents(e.ctx, tx, evs...)
	}))
	return evs
}

func (e *env) sync(id uuid.UUID, now time.Time, reason sla.Reason, cols map[string]any) []pipeline.Event {
	e.t.Helper()
	var evs []pipeline.Event
	require.NoError(e.t, e.db.Transaction(func(tx *gorm.DB) error {
		if len(cols) > 0 {
			if err := tx.Table("tickets").Where("id = ?", id).Updates(cols).Error; err != nil {
				return err
			}
		}
		var err error
		evs, err = sla.Sync(e.ctx, tx, e.org, id, now, reason)
		return err
	}))
	return evs
}

// acceptedFriday is a medium ticket under the 4-hour targets, created
// Friday 15:00 and accepted Friday 16:00.
func (e *env) acceptedFriday() uuid.UUID {
	e.t.Helper()
	e.fourHours()
	id := e.ticket(nil, models.PriorityMedium, at(6, 15, 0))
	e.move(id, models.StatusAccepted, at(6, 16, 0))
	return id
}

// timer is the plan's timer of metric at percent.
func timer(t *testing.T, plan sla.Plan, m models.SLAMetric, percent int) sla.Timer {
	t.Helper()
	for _, tm := range plan.Timers {
		if tm.Metric == m && tm.Percent == percent {
			return tm
		}
	}
	t.Fatalf("no %s timer at %d%%", m, percent)
	return sla.Timer{}
}

func (e *env) load(id uuid.UUID) models.Ticket {
	e.t.Helper()
	var tk models.Ticket
	require.NoError(e.t, e.db.Omit("embedding").Where("id = ?", id).Take(&tk).Error)
	return tk
}

func requireAt(t *testing.T, want time.Time, got *time.Time, msg string) {
	t.Helper()
	require.NotNil(t, got, msg)
	require.True(t, want.Equal(*got), "%s: want %s, got %s", msg, want.In(berlin), got.In(berlin))
}

// The seed's Test 3 at the service level: a 4-hour SLA on Mon–Fri
// 09:00–17:00, accepted Friday 16:00, is due Monday 12:00 (the seed says
// 11:00, but Friday 16:00–17:00 is one business hour and Monday
// 09:00–12:00 the other three). waiting_customer for 24 h extends the due
// time by the business time paused.
func TestSeedTest3(t *testing.T) {
	e := newEnv(t)
	e.fourHours()
	require.Equal(t, time.Friday, at(6, 16, 0).Weekday())

	// Not started while new.
	id := e.ticket(nil, models.PriorityMedium, at(6, 15, 0))
	require.Empty(t, e.sync(id, at(6, 15, 30), sla.ReasonStatus, nil))
	require.Nil(t, e.load(id).SLAStartedAt)

	evs := e.move(id, models.StatusAccepted, at(6, 16, 0))
	require.Len(t, evs, 1)
	require.Equal(t, pipeline.EventSLAChanged, evs[0].Type)
	require.Equal(t, pipeline.AudienceStaff, evs[0].Audience)
	tk := e.load(id)
	require.Equal(t, e.standard, *tk.SLAPolicyID)
	requireAt(t, at(6, 16, 0), tk.SLAStartedAt, "started")
	requireAt(t, at(9, 12, 0), tk.FirstResponseDueAt, "first response due Monday 12:00")
	requireAt(t, at(9, 12, 0), tk.ResolutionDueAt, "resolution due Monday 12:00")

	// waiting_customer Friday 16:30 to Saturday 16:30 (24 h): 30 business
	// minutes paused, so both due times move to Monday 12:30.
	e.move(id, models.StatusAssigned, at(6, 16, 10))
	e.move(id, models.StatusInProgress, at(6, 16, 20))
	e.move(id, models.StatusWaitingCustomer, at(6, 16, 30))
	tk = e.load(id)
	requireAt(t, at(6, 16, 30), tk.SLAPausedAt, "paused")
	requireAt(t, at(9, 12, 0), tk.ResolutionDueAt, "due unchanged while paused")
	evs = e.move(id, models.StatusInProgress, at(7, 16, 30))
	tk = e.load(id)
	require.Nil(t, tk.SLAPausedAt)
	require.JSONEq(t, `[{"from":"2026-03-06T15:30:00Z","to":"2026-03-07T15:30:00Z"}]`, string(tk.SLAPausedIntervals))
	requireAt(t, at(9, 12, 30), tk.FirstResponseDueAt, "first response due after the pause")
	requireAt(t, at(9, 12, 30), tk.ResolutionDueAt, "resolution due after the pause")
	var data sla.ChangedData
	require.NoError(t, json.Unmarshal(evs[0].Data, &data))
	requireAt(t, at(9, 12, 0), data.Previous.ResolutionDueAt, "event carries the previous due time")

	// The first public staff reply Monday 09:30 meets the first response
	// (one business hour after the start: Friday 16:00–16:30 and Monday
	// 09:00–09:30, the pause excluded) and freezes its due time.
	evs = e.sync(id, at(9, 9, 30), sla.ReasonFirstResponse, map[string]any{"first_responded_at": at(9, 9, 30)})
	require.NoError(t, json.Unmarshal(evs[0].Data, &data))
	require.Len(t, data.Met, 1)
	require.Equal(t, models.SLAFirstResponse, data.Met[0].Metric)
	require.InDelta(t, 3600, data.Met[0].BusinessSeconds, 0.001)

	// A second 24 h wait, Monday 10:00 to Tuesday 10:00, is 8 business
	// hours (Monday 10–17, Tuesday 9–10): the resolution due time moves by
	// exactly that, from Monday 12:30 to Tuesday 12:30; the met first
	// response stays.
	e.move(id, models.StatusWaitingCustomer, at(9, 10, 0))
	e.move(id, models.StatusInProgress, at(10, 10, 0))
	tk = e.load(id)
	requireAt(t, at(9, 12, 30), tk.FirstResponseDueAt, "met clock frozen")
	requireAt(t, at(10, 12, 30), tk.ResolutionDueAt, "resolution due after the second pause")

	// Resolved Tuesday 11:00: met after 2 h 30 of business time (Friday
	// 16:00–16:30, Monday 09:00–10:00, Tuesday 10:00–11:00).
	evs = e.move(id, models.StatusResolved, at(10, 11, 0))
	require.NoError(t, json.Unmarshal(evs[0].Data, &data))
	require.Len(t, data.Met, 1)
	require.Equal(t, models.SLAResolution, data.Met[0].Metric)
	require.InDelta(t, 2*3600+30*60, data.Met[0].BusinessSeconds, 0.001)
	// Reopened Wednesday 09:00: the time resolved counts as a pause (Tuesday
	// 11:00–17:00, 6 business hours).
	e.move(id, models.StatusInProgress, at(11, 9, 0))
	requireAt(t, at(11, 9, 0).Add(90*time.Minute), e.load(id).ResolutionDueAt, "reopened: the rest of the budget")
}

// A pause that starts before the due time and ends after it: the clock
// stood still, so the due time is the unpaused one plus the business time
// paused (seed Test 3's other reading: Monday 10:00 to Tuesday 10:00).
func TestPauseAcrossTheDueTime(t *testing.T) {
	e := newEnv(t)
	id := e.acceptedFriday()
	e.move(id, models.StatusWaitingCustomer, at(9, 10, 0))
	e.move(id, models.StatusInProgress, at(10, 10, 0))
	tk := e.load(id)
	requireAt(t, at(10, 12, 0), tk.ResolutionDueAt, "Monday 12:00 + 8 business hours")
	// Waiting only outside business hours changes nothing.
	e.move(id, models.StatusWaitingCustomer, at(10, 18, 0))
	e.move(id, models.StatusInProgress, at(11, 8, 0))
	requireAt(t, at(10, 12, 0), e.load(id).ResolutionDueAt, "pause outside hours")
}

// A priority change recomputes the due times from the history (start and
// pauses), not from the moment of the change.
func TestPriorityChangeRecomputesFromHistory(t *testing.T) {
	e := newEnv(t)
	id := e.acceptedFriday()
	e.move(id, models.StatusWaitingCustomer, at(6, 16, 30))
	e.move(id, models.StatusInProgress, at(7, 16, 30))
	requireAt(t, at(9, 12, 30), e.load(id).ResolutionDueAt, "medium")

	// Monday 09:30 it becomes high (2 h): from the start, Friday 16:00–16:30
	// and Monday 09:00–10:30, so Monday 10:30, not 11:30 ("now" + 2 h).
	evs := e.sync(id, at(9, 9, 30), sla.ReasonScope, map[string]any{"priority": models.PriorityHigh})
	require.Len(t, evs, 1)
	tk := e.load(id)
	requireAt(t, at(9, 10, 30), tk.FirstResponseDueAt, "high, first response")
	requireAt(t, at(9, 10, 30), tk.ResolutionDueAt, "high, resolution")
	requireAt(t, at(6, 16, 0), tk.SLAStartedAt, "start kept")

	// Back to medium: the original due time again.
	e.sync(id, at(9, 9, 40), sla.ReasonScope, map[string]any{"priority": models.PriorityMedium})
	requireAt(t, at(9, 12, 30), e.load(id).ResolutionDueAt, "medium again")

	// A policy change recomputes the running tickets the same way, and
	// emits their events in the same transaction.
	var before int64
	require.NoError(t, e.db.Raw(`SELECT count(*) FROM outbox WHERE event_type = ?`, pipeline.EventSLAChanged).Scan(&before).Error)
	_, err := sla.UpdatePolicy(e.ctx, e.db, e.org, e.standard, raw(t, map[string]any{"targets": []map[string]any{
		{"priority": "medium", "first_response_minutes": 60, "resolution_minutes": 480}}}), e.entry())
	require.NoError(t, err)
	tk = e.load(id)
	requireAt(t, at(9, 9, 30), tk.FirstResponseDueAt, "1 business hour from Friday 16:00, the pause excluded")
	var after int64
	require.NoError(t, e.db.Raw(`SELECT count(*) FROM outbox WHERE event_type = ?`, pipeline.EventSLAChanged).Scan(&after).Error)
	require.Equal(t, before+1, after)
}

func TestPolicySelectionMostSpecificFirst(t *testing.T) {
	e := newEnv(t)
	s1, s2 := e.services[0], e.services[1]
	create := func(name string, svc *uuid.UUID, prio *models.Priority, prios ...models.Priority) uuid.UUID {
		var targets []map[string]any
		for _, p := range prios {
			targets = append(targets, map[string]any{"priority": p, "first_response_minutes": 10, "resolution_minutes": 100})
		}
		p, err := sla.CreatePolicy(e.ctx, e.db, e.org, raw(t, map[string]any{"name": name, "service_id": svc, "priority": prio,
			"targets": targets}), e.entry())
		require.NoError(t, err)
		return p.ID
	}
	high := models.PriorityHigh
	pHigh := create("high", nil, &high, high)
	pS1 := create("S1", &s1, nil, models.PriorityMedium)
	pS1High := create("S1 high", &s1, &high, high)
	want := func(svc *uuid.UUID, prio models.Priority, id uuid.UUID) {
		t.Helper()
		p, err := sla.Select(e.ctx, e.db, e.org, svc, prio)
		require.NoError(t, err)
		require.NotNil(t, p)
		require.Equal(t, id, p.ID, "service %v priority %s: got %s", svc, prio, p.Name)
	}
	want(&s1, high, pS1High)                  // service + priority
	want(&s1, models.PriorityMedium, pS1)     // service
	want(&s1, models.PriorityLow, e.standard) // S1 has no low target: the default
	want(&s2, high, pHigh)                    // priority
	want(nil, high, pHigh)
	want(&s2, models.PriorityCritical, e.standard) // org default
	// inactive policies never apply
	require.NoError(t, sla.DeletePolicy(e.ctx, e.db, e.org, pS1High, e.entry()))
	want(&s1, high, pHigh)
	// another organisation's policies never apply
	var globex uuid.UUID
	require.NoError(t, e.db.Raw(`SELECT id FROM organizations WHERE slug = 'globex'`).Row().Scan(&globex))
	p, err := sla.Select(e.ctx, e.db, globex, &s1, high)
	require.NoError(t, err)
	require.NotEqual(t, pHigh, p.ID)

	// A ticket moved to another service gets that service's policy, from
	// its start.
	e.fourHours()
	id := e.ticket(&s2, models.PriorityMedium, at(6, 15, 0))
	e.move(id, models.StatusAccepted, at(6, 16, 0))
	require.Equal(t, e.standard, *e.load(id).SLAPolicyID)
	e.sync(id, at(6, 16, 5), sla.ReasonScope, map[string]any{"service_id": s1})
	tk := e.load(id)
	require.Equal(t, pS1, *tk.SLAPolicyID)
	requireAt(t, at(6, 16, 10), tk.FirstResponseDueAt, "S1's 10 minutes from the start, in the organisation's hours")
}

// clock_start "created": the ticket.created task starts the clock at the
// creation time, once.
func TestClockStartCreated(t *testing.T) {
	e := newEnv(t)
	s3 := e.services[2]
	_, err := sla.CreatePolicy(e.ctx, e.db, e.org, raw(t, map[string]any{"name": "From creation", "service_id": s3,
		"clock_start": "created", "use_business_hours": false,
		"targets": []map[string]any{{"priority": "medium", "first_response_minutes": 30, "resolution_minutes": 60}}}), e.entry())
	require.NoError(t, err)
	created := at(7, 3, 0) // a Saturday night: 24×7 counts it
	id := e.ticket(&s3, models.PriorityMedium, created)
	changed, err := sla.Start(e.ctx, e.db, e.org, id, at(7, 3, 1))
	require.NoError(t, err)
	require.True(t, changed)
	tk := e.load(id)
	requireAt(t, created, tk.SLAStartedAt, "started at creation")
	requireAt(t, created.Add(30*time.Minute), tk.FirstResponseDueAt, "24×7")
	changed, err = sla.Start(e.ctx, e.db, e.org, id, at(7, 3, 2))
	require.NoError(t, err)
	require.False(t, changed, "idempotent")
	// accepting later does not move the start
	e.move(id, models.StatusAccepted, at(9, 10, 0))
	requireAt(t, created, e.load(id).SLAStartedAt, "start kept")
	// an accepted-start policy does not start on creation
	other := e.ticket(nil, models.PriorityMedium, at(7, 3, 0))
	changed, err = sla.Start(e.ctx, e.db, e.org, other, at(7, 3, 1))
	require.NoError(t, err)
	require.False(t, changed)
}

// Timers: what is pending, and what a timer finds when it fires.
func TestTimersCheckAndFireOnce(t *testing.T) {
	e := newEnv(t)
	e.fourHours() // Standard has rules at 50, 80 and 100 %
	id := e.ticket(nil, models.PriorityMedium, at(6, 15, 0))
	e.move(id, models.StatusAccepted, at(6, 16, 0))
	plan, err := sla.Pending(e.ctx, e.db, e.org, id)
	require.NoError(t, err)
	require.Equal(t, []int{50, 80, 100}, plan.Percents)
	require.Len(t, plan.Timers, 6)
	res100 := timer(t, plan, models.SLAResolution, 100)
	r50, r100 := timer(t, plan, models.SLAResolution, 50).At, res100.At
	requireAt(t, at(9, 10, 0), &r50, "50 %: 2 of 4 business hours")
	requireAt(t, at(9, 12, 0), &r100, "100 %: the due time")
	breach := timer(t, plan, models.SLAFirstResponse, 100)
	require.Contains(t, breach.TaskID(), id.String())

	cache := sla.NewCache()
	check := func(tm sla.Timer, now time.Time) (sla.Verdict, *sla.Fired) {
		t.Helper()
		var v sla.Verdict
		var f *sla.Fired
		require.NoError(t, e.db.Transaction(func(tx *gorm.DB) error {
			var err error
			if v, err = sla.Check(e.ctx, tx, tm, now, cache); err != nil || !v.Fire {
				return err
			}
			f, err = sla.Fire(e.ctx, tx, v, tm, now)
			return err
		}))
		return v, f
	}
	v, _ := check(breach, at(9, 11, 59))
	require.Equal(t, "early", v.Why)
	require.Equal(t, time.Minute, v.Wait)

	v, f := check(breach, at(9, 12, 0))
	require.True(t, v.Fire)
	require.NotNil(t, f)
	require.Equal(t, pipeline.EventSLABreached, f.Event.Type)
	require.True(t, f.Data.Breach)
	require.Equal(t, []string{"manager", "admin"}, f.Data.Notify)
	_, f = check(breach, at(9, 12, 1))
	require.Nil(t, f, "a breach fires once")
	tk := e.load(id)
	require.True(t, tk.FirstResponseBreached)
	require.False(t, tk.ResolutionBreached)
	var n int64
	require.NoError(t, e.db.Raw(`SELECT count(*) FROM sla_breaches WHERE ticket_id = ?`, id).Scan(&n).Error)
	require.EqualValues(t, 1, n)
	require.NoError(t, e.db.Raw(`SELECT count(*) FROM audit_log WHERE ticket_id = ? AND action = 'sla.breached'`, id).Scan(&n).Error)
	require.EqualValues(t, 1, n)

	// A threshold is an sla.threshold event and an escalation row.
	_, f = check(timer(t, plan, models.SLAResolution, 50), at(9, 10, 0))
	require.NotNil(t, f)
	require.Equal(t, pipeline.EventSLAThreshold, f.Event.Type)
	require.Equal(t, []int{0}, f.Data.Levels)
	risk, err := sla.AtRisk(e.ctx, e.db)
	require.NoError(t, err)
	require.Equal(t, 1, risk[models.SLAResolution])
	require.Equal(t, 0, risk[models.SLAFirstResponse]) // breached, not at risk

	// Pending no longer lists what fired.
	plan, err = sla.Pending(e.ctx, e.db, e.org, id)
	require.NoError(t, err)
	require.Len(t, plan.Timers, 4) // first response 50, 80; resolution 80, 100

	// Paused: the resolution timer does nothing; resumed, the old due time
	// is stale.
	e.move(id, models.StatusWaitingCustomer, at(9, 11, 0))
	v, _ = check(res100, at(9, 12, 0))
	require.Equal(t, "paused", v.Why)
	e.move(id, models.StatusInProgress, at(9, 11, 30))
	v, _ = check(res100, at(9, 12, 30))
	require.Equal(t, "stale", v.Why)

	// Resolved in time: met. Resolved late: still a breach.
	plan, err = sla.Pending(e.ctx, e.db, e.org, id)
	require.NoError(t, err)
	res := timer(t, plan, models.SLAResolution, 100)
	requireAt(t, at(9, 12, 30), &res.At, "resumed due")
	e.move(id, models.StatusResolved, at(9, 12, 40))
	v, f = check(res, at(9, 12, 41))
	require.True(t, v.Fire, v.Why)
	require.NotNil(t, f.Data.MetAt)
	require.True(t, f.Data.Breach)
}

// The ticket service calls Sync at its one status change, at the first
// public staff reply and at a priority or service change, in the change's
// transaction, and writes the ticket.sla_changed events to the outbox.
func TestTicketServiceHooks(t *testing.T) {
	e := newEnv(t)
	e.fourHours()
	svc := tickets.New(e.db, tickets.Config{})
	var managerID, agentID uuid.UUID
	require.NoError(t, e.db.Raw(`SELECT id FROM users WHERE email = 'manager@acme.test'`).Row().Scan(&managerID))
	require.NoError(t, e.db.Raw(`SELECT id FROM users WHERE email = 'agent@acme.test'`).Row().Scan(&agentID))
	manager := tickets.Actor{UserID: managerID, OrgID: e.org, Role: models.RoleManager}
	agent := tickets.Actor{UserID: agentID, OrgID: e.org, Role: models.RoleAgent}
	customer := tickets.Actor{UserID: e.customer, OrgID: e.org, Role: models.RoleCustomerUser}
	id := e.ticket(nil, models.PriorityMedium, time.Now().Add(-time.Hour))
	events := func() []string {
		var types []string
		require.NoError(t, e.db.Raw(`SELECT event_type FROM outbox WHERE key = ? ORDER BY id`, id.String()).Scan(&types).Error)
		return types
	}

	tk, err := svc.Accept(e.ctx, manager, id)
	require.NoError(t, err)
	require.NotNil(t, tk.SLAStartedAt)
	require.Equal(t, e.standard, *tk.SLAPolicyID)
	require.True(t, tk.SLAStartedAt.Equal(*tk.AcceptedAt))
	require.NotNil(t, tk.FirstResponseDueAt)
	require.Equal(t, []string{pipeline.EventStatusChanged, pipeline.EventSLAChanged}, events())

	_, err = svc.Assign(e.ctx, manager, id, agentID)
	require.NoError(t, err)
	_, err = svc.ChangeStatus(e.ctx, agent, id, models.StatusInProgress, "")
	require.NoError(t, err)
	tk, err = svc.ChangeStatus(e.ctx, agent, id, models.StatusWaitingCustomer, "")
	require.NoError(t, err)
	require.NotNil(t, tk.SLAPausedAt)
	// the customer's reply resumes the clock (waiting_customer -> in_progress)
	_, _, err = svc.AddComment(e.ctx, customer, id, tickets.NewComment{Content: "here you go"})
	require.NoError(t, err)
	resumed := e.load(id)
	require.Nil(t, resumed.SLAPausedAt)
	require.Contains(t, string(resumed.SLAPausedIntervals), `"from"`)

	// the first public staff reply meets the first response
	n := len(events())
	_, tk, err = svc.AddComment(e.ctx, agent, id, tickets.NewComment{Content: "on it"})
	require.NoError(t, err)
	require.NotNil(t, tk.FirstRespondedAt)
	evs := events()[n:]
	require.Equal(t, []string{pipeline.EventCommentAdded, pipeline.EventSLAChanged}, evs)

	// a priority change recomputes from the start
	before := *e.load(id).ResolutionDueAt
	high := models.PriorityHigh
	tk, err = svc.Update(e.ctx, agent, id, tickets.Changes{Priority: &high})
	require.NoError(t, err)
	require.True(t, tk.ResolutionDueAt.Before(before), "2 h instead of 4 h")
	require.Equal(t, pipeline.EventSLAChanged, events()[len(events())-1])

	// resolving meets the resolution and pauses the clock
	tk, err = svc.ChangeStatus(e.ctx, agent, id, models.StatusResolved, "")
	require.NoError(t, err)
	require.NotNil(t, tk.SLAPausedAt)
	require.NotNil(t, tk.ResolvedAt)
}

// A reply while waiting on the customer meets the first response with the
// running pause counted: the due time it fixes lies after the reply, and
// the timer made for the old due time is stale.
func TestMetDuringAPause(t *testing.T) {
	e := newEnv(t)
	id := e.acceptedFriday()
	plan, err := sla.Pending(e.ctx, e.db, e.org, id)
	require.NoError(t, err)
	e.move(id, models.StatusWaitingCustomer, at(9, 9, 0)) // 1 business hour used
	// the first public staff reply Monday 14:00, still waiting: 5 business
	// hours later, but the clock stood still
	evs := e.sync(id, at(9, 14, 0), sla.ReasonFirstResponse, map[string]any{"first_responded_at": at(9, 14, 0)})
	var data sla.ChangedData
	require.NoError(t, json.Unmarshal(evs[0].Data, &data))
	require.InDelta(t, 3600, data.Met[0].BusinessSeconds, 0.001)
	tk := e.load(id)
	requireAt(t, at(9, 17, 0), tk.FirstResponseDueAt, "3 business hours left at the reply: 14:00 + 3 h")
	require.NoError(t, e.db.Transaction(func(tx *gorm.DB) error {
		v, err := sla.Check(e.ctx, tx, timer(t, plan, models.SLAFirstResponse, 100), at(9, 14, 1), nil)
		require.Equal(t, "stale", v.Why)
		return err
	}))
}

// Changing the organisation's calendar recomputes the tickets whose
// policy inherits it.
func TestOrganisationCalendarChange(t *testing.T) {
	e := newEnv(t)
	svc := e.services[0]
	_, err := sla.CreatePolicy(e.ctx, e.db, e.org, raw(t, map[string]any{"name": "Inherits", "service_id": svc,
		"targets": []map[string]any{{"priority": "medium", "first_response_minutes": 120, "resolution_minutes": 600}}}), e.entry())
	require.NoError(t, err)
	id := e.ticket(&svc, models.PriorityMedium, at(6, 15, 0))
	e.move(id, models.StatusAccepted, at(6, 16, 0))
	requireAt(t, at(9, 10, 0), e.load(id).FirstResponseDueAt, "the organisation's Mon–Fri 9–17")
	require.NoError(t, e.db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(`UPDATE organizations SET business_hours = NULL WHERE id = ?`, e.org).Error; err != nil {
			return err
		}
		return sla.ResyncOrganization(e.ctx, tx, e.org)
	}))
	requireAt(t, at(6, 18, 0), e.load(id).FirstResponseDueAt, "24×7 now")
}

// The timer cache notices a policy change at once.
func TestTimerCacheSeesPolicyChanges(t *testing.T) {
	e := newEnv(t)
	id := e.acceptedFriday()
	plan, err := sla.Pending(e.ctx, e.db, e.org, id)
	require.NoError(t, err)
	t80 := timer(t, plan, models.SLAResolution, 80)
	cache := sla.NewCache()
	fire := func(now time.Time) *sla.Fired {
		var f *sla.Fired
		require.NoError(t, e.db.Transaction(func(tx *gorm.DB) error {
			v, err := sla.Check(e.ctx, tx, t80, now, cache)
			if err != nil || !v.Fire {
				return err
			}
			f, err = sla.Fire(e.ctx, tx, v, t80, now)
			return err
		}))
		return f
	}
	require.Nil(t, fire(at(9, 9, 0))) // early; policy cached
	_, err = sla.UpdatePolicy(e.ctx, e.db, e.org, e.standard, raw(t, map[string]any{"escalation_rules": []map[string]any{
		{"at_percent": 90, "notify": []string{"manager"}}}}), e.entry())
	require.NoError(t, err)
	require.Nil(t, fire(at(9, 12, 0)), "no rule at 80 % any more")
}

// SyncAll and PendingAll over several tickets give what Sync and Pending
// give ticket by ticket: the same clocks, events and plans.
func TestSyncAllSameAsOneByOne(t *testing.T) {
	e := newEnv(t)
	e.fourHours()
	s1 := e.services[0]
	_, err := sla.CreatePolicy(e.ctx, e.db, e.org, raw(t, map[string]any{"name": "S1", "service_id": s1,
		"targets": []map[string]any{{"priority": "high", "first_response_minutes": 10, "resolution_minutes": 100}}}), e.entry())
	require.NoError(t, err)
	// Per set: a medium ticket made low (the default's low targets), a
	// high one moved to S1 (S1's policy), one not accepted (moved to S1).
	set := func() []uuid.UUID {
		ids := []uuid.UUID{e.ticket(nil, models.PriorityMedium, at(6, 15, 0)), e.ticket(nil, models.PriorityHigh, at(6, 15, 0)),
			e.ticket(nil, models.PriorityMedium, at(6, 15, 0))}
		e.move(ids[0], models.StatusAccepted, at(6, 16, 0))
		e.move(ids[1], models.StatusAccepted, at(6, 16, 0))
		require.NoError(t, e.db.Exec(`UPDATE tickets SET priority = 'low' WHERE id = ?`, ids[0]).Error)
		require.NoError(t, e.db.Exec(`UPDATE tickets SET service_id = ? WHERE id IN ?`, s1, ids[1:]).Error)
		return ids
	}
	type result struct {
		Row  [6]any
		Data json.RawMessage
		Plan []string
	}
	collect := func(ids []uuid.UUID, evs []pipeline.Event) []result {
		out := make([]result, len(ids))
		for i, id := range ids {
			tk := e.load(id)
			out[i].Row = [6]any{tk.SLAPolicyID, tk.SLAStartedAt, tk.FirstResponseDueAt, tk.ResolutionDueAt, tk.SLAPausedAt, string(tk.SLAPausedIntervals)}
			for _, ev := range evs {
				if ev.TicketID == id {
					out[i].Data = ev.Data
				}
			}
			plan, err := sla.Pending(e.ctx, e.db, e.org, id)
			require.NoError(t, err)
			for _, tm := range plan.Timers {
				out[i].Plan = append(out[i].Plan, fmt.Sprintf("%s %d %s %s", tm.Metric, tm.Percent, tm.DueAt, tm.At))
			}
		}
		return out
	}
	now := at(6, 16, 5)

	one := set()
	var evs []pipeline.Event
	for _, id := range one {
		evs = append(evs, e.sync(id, now, sla.ReasonScope, nil)...)
	}
	want := collect(one, evs)
	require.Len(t, evs, 2)
	require.NotNil(t, want[1].Row[0])

	all := set()
	require.NoError(t, e.db.Transaction(func(tx *gorm.DB) error {
		var err error
		evs, err = sla.SyncAll(e.ctx, tx, e.org, all, now, sla.ReasonScope)
		return err
	}))
	require.Equal(t, want, collect(all, evs))
	plans, err := sla.PendingAll(e.ctx, e.db, e.org, append(all, models.NewID()))
	require.NoError(t, err)
	require.Len(t, plans, 3, "a ticket not found has no plan")
	for i, id := range all {
		var got []string
		for _, tm := range plans[id].Timers {
			got = append(got, fmt.Sprintf("%s %d %s %s", tm.Metric, tm.Percent, tm.DueAt, tm.At))
		}
		require.Equal(t, want[i].Plan, got)
	}
}
