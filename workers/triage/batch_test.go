package triage_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/atumdesk/atumdesk/internal/ai"
	"github.com/atumdesk/atumdesk/internal/ai/aitest"
	"github.com/atumdesk/atumdesk/internal/sla"
	"github.com/atumdesk/atumdesk/pipeline"
	"github.com/atumdesk/atumdesk/workers/triage"
)

// batchSet is one copy of the batch scenario: its tickets (in the order
// compared) and its events (in batch order).
type batchSet struct {
	tickets []uuid.UUID
	events  []pipeline.TaskPayload
	updated map[uuid.UUID]time.Time // before the stage
}

// autoApplyOrg gives f's organisation a trained model, auto-apply at 0.5
// and an SLA policy whose clock starts at creation.
func (f *fixture) autoApplyOrg() {
	ctx := context.Background()
	f.org.Settings(map[string]any{"auto_apply": true, "auto_apply_threshold": 0.5})
	f.org.History(12)
	_, err := f.svc.Retrain(ctx, f.org.ID)
	require.NoError(f.t, err)
	policy := uuid.Must(uuid.NewV7())
	require.NoError(f.t, f.db.Exec(`INSERT INTO sla_policies (id, org_id, name, use_business_hours, clock_start)
		VALUES (?, ?, 'All', false, 'created')`, policy, f.org.ID).Error)
	require.NoError(f.t, f.db.Exec(`INSERT INTO sla_targets (policy_id, org_id, priority, first_response_minutes, resolution_minutes)
		VALUES (?, ?, 'low', 480, 4800), (?, ?, 'medium', 240, 2400), (?, ?, 'high', 60, 600), (?, ?, 'critical', 15, 150)`,
		policy, f.org.ID, policy, f.org.ID, policy, f.org.ID, policy, f.org.ID).Error)
}

// scenario stores one copy of the tickets covering every rule, with
// their clocks started, and returns them with the events of a batch:
// auto-applied fields, a priority the requester chose, one staff set, a
// service set at intake, a resolved ticket, a ticket deleted before the
// batch, an event already processed, one event given twice and one ticket
// with two events.
func (f *fixture) scenario() batchSet {
	ctx := context.Background()
	var s batchSet
	add := func(tk aitest.Ticket) uuid.UUID {
		id := f.org.Ticket(tk)
		s.tickets = append(s.tickets, id)
		return id
	}
	free := add(aitest.Ticket{Subject: "VPN down, urgent!", Body: "The VPN disconnects for everyone, production is down."})
	chosen := add(aitest.Ticket{Subject: "Server down, urgent!", Body: "Production is down.", Priority: "low"})
	staff := add(aitest.Ticket{Subject: "Server down, urgent!", Body: "Production is down."})
	require.NoError(f.t, f.db.Exec(`INSERT INTO audit_log (org_id, ticket_id, user_id, actor_kind, action, entity_type, entity_id, before, after)
		VALUES (?, ?, ?, 'user', 'ticket.updated', 'ticket', ?, '{"priority":"high"}', '{"priority":"medium"}')`,
		f.org.ID, staff, f.org.Agent, staff).Error)
	svc := add(aitest.Ticket{Subject: "Forgot my password", Body: "I cannot log in.", Service: "Billing"})
	resolved := add(aitest.Ticket{Subject: "Invoice wrong", Body: "The invoice amount is wrong.", Status: "resolved"})
	plain := add(aitest.Ticket{Subject: "Wrong invoice", Body: "I was charged twice on my credit card."})
	twice := add(aitest.Ticket{Subject: "Wifi drops", Body: "The office wifi keeps dropping every few minutes."})
	two := add(aitest.Ticket{Subject: "Cannot log in", Body: "The login page says my password is wrong, urgent!"})
	done := add(aitest.Ticket{Subject: "VPN not connecting", Body: "The VPN client fails to connect."})
	_, err := sla.StartAll(ctx, f.db, f.org.ID, s.tickets, time.Now())
	require.NoError(f.t, err)
	var stamps []struct {
		ID        uuid.UUID
		UpdatedAt time.Time
	}
	require.NoError(f.t, f.db.Raw(`SELECT id, updated_at FROM tickets WHERE id IN ?`, s.tickets).Scan(&stamps).Error)
	s.updated = map[uuid.UUID]time.Time{}
	for _, st := range stamps {
		s.updated[st.ID] = st.UpdatedAt
	}
	gone := f.org.Ticket(aitest.Ticket{Subject: "Deleted", Body: "Gone before triage."})
	require.NoError(f.t, f.db.Exec(`DELETE FROM tickets WHERE id = ?`, gone).Error)
	doneEvent := f.payload(done)
	require.NoError(f.t, f.db.Exec(`INSERT INTO processed_events (consumer, event_id) VALUES (?, ?)`, triage.Consumer, doneEvent.EventID).Error)
	twiceEvent := f.payload(twice)
	s.events = []pipeline.TaskPayload{f.payload(two), f.payload(plain), twiceEvent, f.payload(free), f.payload(gone), doneEvent,
		f.payload(chosen), f.payload(staff), twiceEvent, f.payload(svc), f.payload(resolved), f.payload(two)}
	return s
}

// dump describes what the stage left of each ticket of s: its fields
// (service ids as names, times as facts), its audit rows, its SLA clock
// and the events it emitted (times and ids left out), plus the inbox rows.
func (f *fixture) dump(s batchSet) []string {
	names := strings.NewReplacer(
		f.org.Services["Accounts"].String(), "Accounts", f.org.Services["Billing"].String(), "Billing",
		f.org.Services["Network"].String(), "Network")
	var out []string
	for _, id := range s.tickets {
		var row map[string]any
		require.NoError(f.t, f.db.Raw(`SELECT status, priority, service_id, category, ai_suggested_priority,
			ai_suggested_service_id, ai_suggested_category, ai_confidence, ai_suggested_at IS NOT NULL AS suggested,
			updated_at = ? AS untouched, sla_policy_id IS NOT NULL AS sla,
			(first_response_due_at - sla_started_at)::text AS first_response, (resolution_due_at - sla_started_at)::text AS resolution
			FROM tickets WHERE id = ?`, s.updated[id], id).Scan(&row).Error)
		var audits []string
		require.NoError(f.t, f.db.Raw(`SELECT actor_kind || ' ' || action || ' ' || coalesce(before::text, '') || ' ' || coalesce(after::text, '')
			FROM audit_log WHERE ticket_id = ? ORDER BY id`, id).Scan(&audits).Error)
		var payloads []string
		require.NoError(f.t, f.db.Raw(`SELECT payload::text FROM outbox WHERE key = ? ORDER BY id`, id.String()).Scan(&payloads).Error)
		var events []string
		for _, p := range payloads {
			var ev pipeline.Event
			require.NoError(f.t, json.Unmarshal([]byte(p), &ev))
			data := map[string]any{}
			require.NoError(f.t, json.Unmarshal(ev.Data, &data))
			delete(data, "suggested_at")
			delete(data, "number")
			if ev.Type != ai.EventTriaged && ev.Type != pipeline.EventTicketUpdated {
				data = nil // the SLA's events: times of the run
			}
			b, err := json.Marshal(data)
			require.NoError(f.t, err)
			events = append(events, fmt.Sprintf("%s %s %s", ev.Type, ev.Audience, b))
		}
		out = append(out, names.Replace(fmt.Sprintf("%v\naudit: %q\nevents: %q", row, audits, events)))
	}
	var inbox int
	ids := make([]uuid.UUID, len(s.events))
	for i, p := range s.events {
		ids[i] = p.EventID
	}
	require.NoError(f.t, f.db.Raw(`SELECT count(*) FROM processed_events WHERE consumer = ? AND event_id IN ?`, triage.Consumer, ids).
		Scan(&inbox).Error)
	return append(out, fmt.Sprintf("inbox rows: %d", inbox))
}

// A batch leaves exactly what its events one by one leave; run again, it
// changes nothing.
func TestBatchMatchesOneByOne(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.autoApplyOrg()
	one, batch := f.scenario(), f.scenario()

	for _, p := range one.events {
		_, err := f.h.Process(ctx, p)
		require.NoError(t, err)
	}
	failed, err := f.h.ProcessBatch(ctx, batch.events)
	require.NoError(t, err)
	require.Empty(t, failed)

	want, got := f.dump(one), f.dump(batch)
	for i := range want {
		require.Equal(t, want[i], got[i], "ticket %d", i)
	}
	// The scenario covers what it claims to.
	require.Contains(t, got[0], "ticket.ai_applied", "the free ticket gets fields applied")
	require.Contains(t, got[0], pipeline.EventSLAChanged, "and its SLA clock follows the new priority")
	require.Contains(t, got[4], "untouched:true", "a suggestion alone (a resolved ticket) does not make the ticket updated")
	require.Equal(t, 2, strings.Count(got[7], ai.EventTriaged), "two events of one ticket: two triaged events")
	require.Equal(t, 1, strings.Count(got[6], ai.EventTriaged), "one event given twice: triaged once")
	require.NotContains(t, got[8], ai.EventTriaged, "an event already processed")
	require.Equal(t, "inbox rows: 10", got[len(got)-1], "11 distinct events, all but the deleted ticket's")

	var xmin []string
	versions := func() []string {
		require.NoError(t, f.db.Raw(`SELECT xmin::text FROM tickets WHERE id IN ? ORDER BY id`, batch.tickets).Scan(&xmin).Error)
		return xmin
	}
	before := versions()
	failed, err = f.h.ProcessBatch(ctx, batch.events)
	require.NoError(t, err)
	require.Empty(t, failed)
	require.Equal(t, got, f.dump(batch), "the same batch again changes nothing")
	require.Equal(t, before, versions(), "not even a row version")
}

// One event that fails fails alone: the batch runs one by one and only its
// index comes back.
func TestBatchWithAFailingEvent(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var events []pipeline.TaskPayload
	for i := range 5 {
		events = append(events, f.payload(f.org.Ticket(aitest.Ticket{Subject: fmt.Sprintf("Printer %d", i), Body: "It jams."})))
	}
	bad := events[2].TicketID
	require.NoError(t, f.db.Exec(`CREATE FUNCTION fail_one() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN IF NEW.id = '`+bad.String()+`' THEN RAISE EXCEPTION 'this ticket cannot be written'; END IF; RETURN NEW; END $$`).Error)
	require.NoError(t, f.db.Exec(`CREATE TRIGGER fail_one BEFORE UPDATE ON tickets FOR EACH ROW EXECUTE FUNCTION fail_one()`).Error)

	failed, err := f.h.ProcessBatch(ctx, events)
	require.NoError(t, err)
	require.Len(t, failed, 1)
	require.ErrorContains(t, failed[2], "this ticket cannot be written")
	for i, p := range events {
		s := f.ticket(p.TicketID)
		require.Equal(t, i != 2, s.AISuggestedAt != nil, "event %d", i)
		require.Len(t, f.events(p.TicketID, ai.EventTriaged), map[bool]int{true: 1, false: 0}[i != 2])
	}

	// A run cut short (shutdown) fails the batch as a whole.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = f.h.ProcessBatch(cancelled, events)
	require.Error(t, err)
}
