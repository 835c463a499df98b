package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/atumdesk/atumdesk/internal/stream"
	"github.com/atumdesk/atumdesk/pipeline"
)

// runStage runs a pipeline loop until the test ends.
func runStage(t *testing.T, name string, run func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := run(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("%s stopped: %v", name, err)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// runPersister turns what intake puts on the stack's inbound topic into
// tickets, as the pipeline process does.
func (s *stack) runPersister() {
	s.t.Helper()
	p, err := pipeline.NewPersister(s.db, slog.New(slog.DiscardHandler), nil)
	require.NoError(s.t, err)
	runStage(s.t, "persister", func(ctx context.Context) error {
		return pipeline.RunPersister(ctx, pipeline.ConsumerConfig{Brokers: s.brokers, MaxWait: 5 * time.Millisecond,
			RetryMin: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond, LagInterval: -1}, p)
	})
}

// runRelay publishes the outbox with producer, as the pipeline process does.
func (s *stack) runRelay(producer *pipeline.Producer) {
	s.t.Helper()
	runStage(s.t, "relay", func(ctx context.Context) error {
		return pipeline.RunRelay(ctx, pipeline.RelayConfig{DB: s.db, Producer: producer})
	})
}

// TestSeedTest1 is the seed's Test 1 end to end over HTTP, through intake,
// the persister, storage and the audit log: the customer files a ticket
// with an attachment → NEW in the manager's inbox → accept → assign → an
// internal note and a public reply → the customer sees only the public one
// → waiting_customer → customer reply → in_progress → resolve → CSAT 5 →
// close → read-only. Every answer is checked against openapi.yaml.
func TestSeedTest1(t *testing.T) {
	s := newStack(t)
	s.runPersister()
	spec := loadSpec(t)
	call := func(method, path, token string, body any) response {
		t.Helper()
		r := s.do(method, path, token, body)
		spec.conform(t, method, path, r)
		return r
	}
	customer, manager, agent := s.login("customer_user@acme.test"), s.login("manager@acme.test"), s.login("agent@acme.test")
	customerID, managerID, agentID := s.userID("customer_user@acme.test"), s.userID("manager@acme.test"), s.userID("agent@acme.test")
	canary := "CANARY-NOTE-" + uuid.NewString()

	// 1. The customer uploads a file, then files the ticket naming it.
	file := pngHead + strings.Repeat("\x00", 512)
	up := s.upload("/api/v1/attachments", customer, "printer.png", strings.NewReader(file))
	spec.conform(t, "POST", "/api/v1/attachments", up)
	require.Equal(t, 201, up.status, string(up.body))
	att := up.json(t)
	require.Equal(t, "image/png", att["mime_type"])
	require.Nil(t, att["ticket_id"], "unclaimed until a ticket names it")
	created := s.post("/api/v1/tickets", customer, map[string]any{
		"subject": "Printer on fire", "description": "Smoke is coming out of the printer.", "priority": "high",
		"attachment_ids": []any{att["id"]},
	}, map[string]string{"Prefer": "wait=15", "Idempotency-Key": uuid.NewString()})
	spec.conform(t, "POST", "/api/v1/tickets", created)
	require.Equal(t, 201, created.status, "the ticket is stored within the wait: %s", created.body)
	tk := created.json(t)
	id := uuid.MustParse(tk["id"].(string))
	require.Equal(t, "new", tk["status"])
	require.Equal(t, customerID.String(), tk["requester_id"])
	require.Equal(t, "/api/v1/tickets/"+id.String(), created.header.Get("Location"))

	// The file is the ticket's now: listed, and downloadable by staff.
	files := itemsOf(t, call("GET", ticketPath(id, "/attachments"), manager, nil))
	require.Len(t, files, 1)
	require.Equal(t, att["id"], files[0]["id"])
	require.Equal(t, id.String(), files[0]["ticket_id"])
	dl := call("GET", "/api/v1/attachments/"+att["id"].(string), manager, nil)
	require.Equal(t, 200, dl.status, string(dl.body))
	require.Equal(t, file, string(dl.body))
	require.Contains(t, dl.header.Get("Content-Disposition"), "attachment")

	// 2. NEW in the manager's inbox.
	inbox := itemsOf(t, call("GET", "/api/v1/tickets?queue=new", manager, nil))
	require.Contains(t, ids(inbox), id.String())
	require.Contains(t, call("GET", ticketPath(id, ""), manager, nil).json(t)["allowed_transitions"], "accepted")

	// 3. The manager accepts: audited with who, when and from where.
	before := time.Now()
	res := call("POST", ticketPath(id, "/accept"), manager, nil)
	after := time.Now()
	require.Equal(t, 200, res.status, string(res.body))
	require.Equal(t, "accepted", res.json(t)["status"])
	require.Equal(t, managerID.String(), res.json(t)["accepted_by"])
	accepted := itemsOf(t, call("GET", ticketPath(id, "/audit?action=ticket.accepted"), manager, nil))
	require.Len(t, accepted, 1)
	require.Equal(t, managerID.String(), accepted[0]["user_id"])
	require.Equal(t, "127.0.0.1", accepted[0]["ip"])
	require.Equal(t, "user", accepted[0]["actor_kind"])
	at, err := time.Parse(time.RFC3339Nano, accepted[0]["created_at"].(string))
	require.NoError(t, err)
	require.WithinRange(t, at, before.Add(-time.Second), after.Add(time.Second))
	require.NotContains(t, ids(itemsOf(t, call("GET", "/api/v1/tickets?queue=new", manager, nil))), id.String())

	// 4. The manager assigns it to the agent.
	res = call("POST", ticketPath(id, "/assign"), manager, map[string]any{"assigned_to": agentID})
	require.Equal(t, 200, res.status, string(res.body))
	require.Equal(t, "assigned", res.json(t)["status"])
	require.Equal(t, agentID.String(), res.json(t)["assigned_to"])
	require.Contains(t, ids(itemsOf(t, call("GET", "/api/v1/tickets?queue=mine", agent, nil))), id.String())

	// 5. The agent starts, adds an internal note and a public reply.
	res = call("POST", ticketPath(id, "/status"), agent, map[string]any{"status": "in_progress"})
	require.Equal(t, 200, res.status, string(res.body))
	note := call("POST", ticketPath(id, "/comments"), agent, map[string]any{"content": "Internal: " + canary, "is_internal": true})
	require.Equal(t, 201, note.status, string(note.body))
	require.Equal(t, true, note.json(t)["is_internal"])
	reply := call("POST", ticketPath(id, "/comments"), agent, map[string]any{"content": "Please unplug it; a technician is on the way."})
	require.Equal(t, 201, reply.status, string(reply.body))
	replyID := reply.json(t)["id"]

	// 6. The customer sees the public reply only, and no trace of the note.
	cc := call("GET", ticketPath(id, "/comments"), customer, nil)
	got := itemsOf(t, cc)
	require.Len(t, got, 1)
	require.Equal(t, replyID, got[0]["id"])
	require.Equal(t, false, got[0]["is_internal"])
	for _, path := range []string{ticketPath(id, ""), ticketPath(id, "/comments"), ticketPath(id, "/attachments"), "/api/v1/tickets"} {
		r := call("GET", path, customer, nil)
		require.Equal(t, 200, r.status, path)
		require.NotContains(t, string(r.body), canary, path)
		require.NotContains(t, string(r.body), note.json(t)["id"], path)
	}
	require.Len(t, itemsOf(t, call("GET", ticketPath(id, "/comments"), agent, nil)), 2, "staff see both")

	// 7. waiting_customer → the customer's reply → in_progress.
	res = call("POST", ticketPath(id, "/status"), agent, map[string]any{"status": "waiting_customer"})
	require.Equal(t, 200, res.status, string(res.body))
	require.Equal(t, "waiting_customer", res.json(t)["status"])
	res = call("POST", ticketPath(id, "/comments"), customer, map[string]any{"content": "Unplugged. The smoke stopped."})
	require.Equal(t, 201, res.status, string(res.body))
	require.Equal(t, "in_progress", call("GET", ticketPath(id, ""), customer, nil).json(t)["status"])

	// 8. The agent resolves; the customer rates it 5.
	res = call("POST", ticketPath(id, "/status"), agent, map[string]any{"status": "resolved", "reason": "Replaced the fuser."})
	require.Equal(t, 200, res.status, string(res.body))
	require.Equal(t, "resolved", res.json(t)["status"])
	survey := call("GET", ticketPath(id, "/csat"), customer, nil).json(t)
	require.Equal(t, "pending", survey["state"])
	require.Equal(t, true, survey["can_respond"])
	res = call("POST", ticketPath(id, "/csat"), customer, map[string]any{"rating": 5, "comment": "Fast and friendly."})
	require.Equal(t, 201, res.status, string(res.body))
	require.Equal(t, "responded", res.json(t)["state"])
	require.EqualValues(t, 5, res.json(t)["survey"].(map[string]any)["rating"])
	require.Equal(t, 409, call("POST", ticketPath(id, "/csat"), customer, map[string]any{"rating": 1}).status, "one rating per ticket")

	// 9. The manager closes it: read-only from now on.
	res = call("POST", ticketPath(id, "/status"), manager, map[string]any{"status": "closed"})
	require.Equal(t, 200, res.status, string(res.body))
	require.Equal(t, "closed", res.json(t)["status"])
	require.NotNil(t, res.json(t)["closed_at"])
	requireTransitions(t, call("POST", ticketPath(id, "/comments"), customer, map[string]any{"content": "Thanks again!"}))
	requireTransitions(t, call("POST", ticketPath(id, "/comments"), agent, map[string]any{"content": "late note", "is_internal": true}))
	requireTransitions(t, call("PATCH", ticketPath(id, ""), agent, map[string]any{"priority": "low"}))
	requireTransitions(t, call("POST", ticketPath(id, "/status"), agent, map[string]any{"status": "in_progress"}))
	require.Equal(t, "closed", call("GET", ticketPath(id, ""), customer, nil).json(t)["status"])

	// The ticket's audit trail: every step, by whom, from where.
	type auditRow struct {
		Action    string
		UserID    *uuid.UUID
		IP        *string
		After     string
		CreatedAt time.Time
	}
	var rows []auditRow
	require.NoError(t, s.db.Raw(`SELECT action, user_id, ip, coalesce(after::text, '') AS after, created_at
		FROM audit_log WHERE ticket_id = ? ORDER BY id`, id).Scan(&rows).Error)
	var actions []string
	for _, r := range rows {
		actions = append(actions, r.Action)
		require.NotContains(t, r.After, canary, "the audit log never copies a note's text")
	}
	require.Equal(t, []string{"ticket.created", "attachment.downloaded", "ticket.accepted",
		"ticket.assigned", "ticket.status_changed", // accepted → assigned
		"ticket.status_changed", // → in_progress
		"comment.added", "comment.added",
		"ticket.status_changed",                  // → waiting_customer
		"comment.added", "ticket.status_changed", // the customer's reply → in_progress
		"ticket.status_changed", // → resolved
		"csat.invited", "csat.submitted",
		"ticket.status_changed", // → closed
	}, actions)
	byAction := func(action string, n int) auditRow {
		for _, r := range rows {
			if r.Action == action {
				if n == 0 {
					return r
				}
				n--
			}
		}
		t.Fatalf("no %s audit row", action)
		return auditRow{}
	}
	acc := byAction("ticket.accepted", 0)
	require.Equal(t, managerID, *acc.UserID)
	require.Equal(t, "127.0.0.1", *acc.IP)
	require.WithinRange(t, acc.CreatedAt, before.Add(-time.Second), after.Add(time.Second))
	require.Equal(t, customerID, *byAction("csat.submitted", 0).UserID)
	require.Equal(t, managerID, *byAction("attachment.downloaded", 0).UserID)
	require.Equal(t, customerID, *byAction("ticket.status_changed", 3).UserID, "the customer's reply moved it back")
	require.Contains(t, byAction("ticket.status_changed", 3).After, "customer_reply")
	require.Equal(t, managerID, *byAction("ticket.status_changed", 5).UserID)
	require.Contains(t, byAction("ticket.status_changed", 5).After, `"closed"`)
}

// eventOf decodes an SSE data line as the Event envelope.
func eventOf(t *testing.T, data string) pipeline.Event {
	t.Helper()
	var ev pipeline.Event
	require.NoError(t, json.Unmarshal([]byte(data), &ev), data)
	return ev
}

// commentEvent waits up to d for the comment.added event of comment id on
// r and returns it with the time it was first seen.
func commentEvent(t *testing.T, r *streamReader, id string, d time.Duration) (pipeline.Event, time.Time, bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		for _, data := range r.data() {
			if strings.Contains(data, id) {
				if ev := eventOf(t, data); ev.Type == pipeline.EventCommentAdded {
					return ev, time.Now(), true
				}
			}
		}
		if time.Now().After(deadline) {
			return pipeline.Event{}, time.Time{}, false
		}
		time.Sleep(time.Millisecond)
	}
}

// TestSeedTest2 is the seed's Test 2 through the real pipeline: an agent
// and the customer hold event streams on the same ticket; the customer's
// comment goes through the outbox, the relay, the events topic and the SSE
// hub and reaches the agent within 2 s; the agent's internal note reaches
// the agent but never the customer.
func TestSeedTest2(t *testing.T) {
	s, producer, _ := streamStack(t, stream.Config{})
	s.runRelay(producer)
	spec := loadSpec(t)
	acme := s.orgs["acme"]
	customerID, agentID := s.userID("customer_user@acme.test"), s.userID("agent@acme.test")
	customer, manager, agent := s.login("customer_user@acme.test"), s.login("manager@acme.test"), s.login("agent@acme.test")
	id := s.newTicket(acme, customerID, "Scanner jammed")
	require.Equal(t, 200, s.do("POST", ticketPath(id, "/accept"), manager, nil).status)
	require.Equal(t, 200, s.do("POST", ticketPath(id, "/assign"), manager, map[string]any{"assigned_to": agentID}).status)

	agentStream := subscribe(t, s.srv.URL, agent, false)
	customerStream := subscribe(t, s.srv.URL, customer, true) // as a browser's EventSource

	// The customer comments; the agent sees it within 2 s.
	start := time.Now()
	res := s.do("POST", ticketPath(id, "/comments"), customer, map[string]any{"content": "The scanner still jams on page 2."})
	posted := time.Since(start)
	require.Equal(t, 201, res.status, string(res.body))
	commentID := res.json(t)["id"].(string)
	ev, seen, ok := commentEvent(t, agentStream, commentID, 2*time.Second)
	require.True(t, ok, "the agent did not receive the customer's comment within 2 s")
	latency := seen.Sub(start)
	t.Logf("customer comment → agent's stream: %v from sending the POST (its answer took %v)", latency, posted)
	require.Less(t, latency, 2*time.Second)
	require.Equal(t, id, ev.TicketID)
	require.Equal(t, pipeline.AudiencePublic, ev.Audience)
	require.Equal(t, customerID, *ev.ActorID)
	require.Contains(t, string(ev.Data), "page 2")
	for _, data := range agentStream.data() {
		var body any
		dec := json.NewDecoder(strings.NewReader(data))
		dec.UseNumber()
		require.NoError(t, dec.Decode(&body))
		require.Empty(t, spec.check(map[string]any{"$ref": "#/components/schemas/Event"}, body), data)
	}

	// An internal note reaches the agent, never the customer. A public reply
	// after it marks where the note would be: one ticket's events arrive in
	// order.
	canary := "CANARY-SSE-" + uuid.NewString()
	res = s.do("POST", ticketPath(id, "/comments"), agent, map[string]any{"content": canary, "is_internal": true})
	require.Equal(t, 201, res.status, string(res.body))
	noteID := res.json(t)["id"].(string)
	res = s.do("POST", ticketPath(id, "/comments"), agent, map[string]any{"content": "We are looking into it."})
	require.Equal(t, 201, res.status, string(res.body))
	replyID := res.json(t)["id"].(string)
	noteEv, _, ok := commentEvent(t, agentStream, noteID, 5*time.Second)
	require.True(t, ok, "the agent sees the note's event")
	require.Equal(t, pipeline.AudienceStaff, noteEv.Audience)
	_, _, ok = commentEvent(t, customerStream, replyID, 5*time.Second)
	require.True(t, ok, "the customer sees the public reply")
	_, _, ok = commentEvent(t, customerStream, commentID, 0)
	require.True(t, ok, "the customer sees their own comment too")
	for _, data := range customerStream.data() {
		require.NotContains(t, data, noteID, "the customer received the internal note's event")
		require.NotContains(t, data, canary)
		require.Equal(t, pipeline.AudiencePublic, eventOf(t, data).Audience)
	}
	for _, data := range agentStream.data() {
		require.NotContains(t, data, canary, "a note's text never travels in an event")
	}
}
