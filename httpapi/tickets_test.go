package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// newTicket inserts a ticket straight into the database (intake is the
// pipeline's business, not what these tests are about).
func (s *stack) newTicket(org, requester uuid.UUID, subject string) uuid.UUID {
	s.t.Helper()
	id := uuid.Must(uuid.NewV7())
	require.NoError(s.t, s.db.Exec(`INSERT INTO tickets (id, org_id, number, subject, description, requester_id, channel)
		VALUES (?, ?, next_ticket_number(?), ?, ?, ?, 'web')`, id, org, org, subject, "Description of "+subject, requester).Error)
	return id
}

// orgCustomer is the demo customer_user of org.
func (s *stack) orgCustomer(org uuid.UUID) uuid.UUID {
	s.t.Helper()
	for slug, id := range s.orgs {
		if id == org {
			return s.userID("customer_user@" + slug + ".test")
		}
	}
	s.t.Fatalf("unknown org %s", org)
	return uuid.Nil
}

func ticketPath(id uuid.UUID, suffix string) string {
	return "/api/v1/tickets/" + id.String() + suffix
}

func itemsOf(t *testing.T, r response) []map[string]any {
	t.Helper()
	require.Equal(t, 200, r.status, string(r.body))
	var page struct {
		Items      []map[string]any `json:"items"`
		NextCursor string           `json:"next_cursor"`
	}
	require.NoError(t, json.Unmarshal(r.body, &page))
	return page.Items
}

func ids(items []map[string]any) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it["id"].(string)
	}
	return out
}

func requireTransitions(t *testing.T, r response, want ...string) {
	t.Helper()
	require.Equal(t, 409, r.status, string(r.body))
	require.Equal(t, "application/problem+json", r.header.Get("Content-Type"))
	m := r.json(t)
	require.Equal(t, "https://atumdesk.dev/problems/invalid-state", m["type"])
	got := []string{}
	for _, v := range m["allowed_transitions"].([]any) {
		got = append(got, v.(string))
	}
	if want == nil {
		want = []string{}
	}
	require.Equal(t, want, got, string(r.body))
}

// TestTicketWorkflow is the seed's Test 1 without intake, attachments and
// CSAT: NEW in the manager's inbox → accept → assign → internal note and
// public reply → the customer sees only the public one → waiting_customer →
// customer reply → in_progress → resolve → close → read-only.
func TestTicketWorkflow(t *testing.T) {
	s := newStack(t)
	acme := s.orgs["acme"]
	customer, manager, agent := s.login("customer_user@acme.test"), s.login("manager@acme.test"), s.login("agent@acme.test")
	customerID, managerID, agentID := s.userID("customer_user@acme.test"), s.userID("manager@acme.test"), s.userID("agent@acme.test")
	id := s.newTicket(acme, customerID, "Printer on fire")
	canary := "CANARY-" + uuid.NewString()

	// NEW, in the manager's inbox; the customer sees it without staff fields.
	require.Contains(t, ids(itemsOf(t, s.do("GET", "/api/v1/tickets?queue=new", manager, nil))), id.String())
	cv := s.do("GET", ticketPath(id, ""), customer, nil).json(t)
	require.Equal(t, "new", cv["status"])
	require.Equal(t, []any{"cancelled"}, cv["allowed_transitions"])
	for _, k := range []string{"ai_suggested_priority", "ai_confidence", "is_duplicate_of", "accepted_by"} {
		require.NotContains(t, cv, k)
	}
	av := s.do("GET", ticketPath(id, ""), agent, nil).json(t)
	require.Contains(t, av, "ai_suggested_priority")
	require.Contains(t, av, "is_duplicate_of")
	require.Equal(t, []any{}, av["allowed_transitions"])
	require.Equal(t, []any{"accepted", "cancelled"}, s.do("GET", ticketPath(id, ""), manager, nil).json(t)["allowed_transitions"])

	// accept (managers only) → assign
	require.Equal(t, 403, s.do("POST", ticketPath(id, "/accept"), agent, nil).status)
	res := s.do("POST", ticketPath(id, "/accept"), manager, nil)
	require.Equal(t, 200, res.status, string(res.body))
	require.Equal(t, "accepted", res.json(t)["status"])
	require.NotNil(t, res.json(t)["accepted_at"])
	requireTransitions(t, s.do("POST", ticketPath(id, "/accept"), manager, nil), "assigned", "cancelled")
	require.NotContains(t, ids(itemsOf(t, s.do("GET", "/api/v1/tickets?queue=new", manager, nil))), id.String())
	require.Contains(t, ids(itemsOf(t, s.do("GET", "/api/v1/tickets?queue=unassigned", manager, nil))), id.String())

	bad := s.do("POST", ticketPath(id, "/assign"), manager, map[string]any{"assigned_to": customerID})
	require.Equal(t, 422, bad.status, string(bad.body))
	require.Contains(t, bad.json(t)["errors"], "assigned_to")
	res = s.do("POST", ticketPath(id, "/assign"), manager, map[string]any{"assigned_to": agentID})
	require.Equal(t, 200, res.status, string(res.body))
	require.Equal(t, "assigned", res.json(t)["status"])
	require.Equal(t, agentID.String(), res.json(t)["assigned_to"])
	require.Contains(t, ids(itemsOf(t, s.do("GET", "/api/v1/tickets?queue=mine", agent, nil))), id.String())
	require.NotContains(t, ids(itemsOf(t, s.do("GET", "/api/v1/tickets?queue=unassigned", manager, nil))), id.String())

	res = s.do("POST", ticketPath(id, "/status"), agent, map[string]any{"status": "in_progress"})
	require.Equal(t, 200, res.status, string(res.body))

	// an internal note and a public (rich-text) reply
	require.Equal(t, 403, s.do("POST", ticketPath(id, "/comments"), customer, map[string]any{"content": "psst", "is_internal": true}).status)
	note := s.do("POST", ticketPath(id, "/comments"), agent, map[string]any{"content": "Internal: " + canary, "is_internal": true})
	require.Equal(t, 201, note.status, string(note.body))
	require.Equal(t, true, note.json(t)["is_internal"])
	reply := s.do("POST", ticketPath(id, "/comments"), agent, map[string]any{
		"content_html": `<p>Hello <b>there</b> &amp; welcome<script>alert(1)</script></p><p onclick="x()">Line two</p>`})
	require.Equal(t, 201, reply.status, string(reply.body))
	rv := reply.json(t)
	require.Equal(t, "Hello there & welcome\n\nLine two", rv["content"])
	require.NotContains(t, rv["content_html"], "script")
	require.NotContains(t, rv["content_html"], "onclick")
	require.Contains(t, rv["content_html"], "<b>there</b>")
	require.Equal(t, true, rv["author_is_staff"])
	require.Equal(t, false, rv["is_ai_generated"])
	require.NotNil(t, s.do("GET", ticketPath(id, ""), agent, nil).json(t)["first_responded_at"])

	// the customer sees the public reply only; staff see both
	cc := s.do("GET", ticketPath(id, "/comments"), customer, nil)
	require.Len(t, itemsOf(t, cc), 1)
	require.NotContains(t, string(cc.body), canary)
	require.Len(t, itemsOf(t, s.do("GET", ticketPath(id, "/comments"), agent, nil)), 2)

	// waiting_customer → a customer reply moves it back to in_progress
	require.Equal(t, 200, s.do("POST", ticketPath(id, "/status"), agent, map[string]any{"status": "waiting_customer"}).status)
	res = s.do("POST", ticketPath(id, "/comments"), customer, map[string]any{"content": "Still burning."})
	require.Equal(t, 201, res.status, string(res.body))
	require.Equal(t, false, res.json(t)["author_is_staff"])
	require.Equal(t, "in_progress", s.do("GET", ticketPath(id, ""), customer, nil).json(t)["status"])

	// resolve → close → read-only
	res = s.do("POST", ticketPath(id, "/status"), agent, map[string]any{"status": "resolved", "reason": "Extinguished"})
	require.Equal(t, 200, res.status, string(res.body))
	require.NotNil(t, res.json(t)["resolved_at"])
	require.Equal(t, []any{"closed"}, s.do("GET", ticketPath(id, ""), customer, nil).json(t)["allowed_transitions"])
	res = s.do("POST", ticketPath(id, "/status"), customer, map[string]any{"status": "closed"})
	require.Equal(t, 200, res.status, string(res.body))
	require.Equal(t, "closed", res.json(t)["status"])
	requireTransitions(t, s.do("POST", ticketPath(id, "/comments"), customer, map[string]any{"content": "one more thing"}))
	requireTransitions(t, s.do("POST", ticketPath(id, "/comments"), agent, map[string]any{"content": "note", "is_internal": true}))
	requireTransitions(t, s.do("POST", ticketPath(id, "/status"), manager, map[string]any{"status": "in_progress"}))
	requireTransitions(t, s.do("PATCH", ticketPath(id, ""), agent, map[string]any{"priority": "high"}))
	requireTransitions(t, s.do("POST", ticketPath(id, "/assign"), manager, map[string]any{"assigned_to": managerID}))
	require.Equal(t, 200, s.do("GET", ticketPath(id, "/comments"), customer, nil).status, "a closed ticket stays readable")

	// The audit trail: who, what, before/after, from where.
	type auditRow struct {
		Action, Before, After string
		UserID                uuid.UUID
		IP, UserAgent         *string
	}
	var rows []auditRow
	require.NoError(t, s.db.Raw(`SELECT action, coalesce(before::text, '') AS before, coalesce(after::text, '') AS after,
		user_id, ip, user_agent FROM audit_log WHERE ticket_id = ? ORDER BY id`, id).Scan(&rows).Error)
	var actions []string
	for _, r := range rows {
		actions = append(actions, r.Action)
		require.Equal(t, "127.0.0.1", *r.IP, r.Action)
		require.NotEmpty(t, *r.UserAgent)
		require.NotContains(t, r.Before+r.After, canary, "the audit log does not copy note content")
	}
	require.Equal(t, []string{"ticket.accepted", "ticket.assigned", "ticket.status_changed", "ticket.status_changed",
		"comment.added", "comment.added", "ticket.status_changed", "comment.added", "ticket.status_changed",
		"ticket.status_changed", "ticket.status_changed"}, actions)
	require.Equal(t, managerID, rows[0].UserID)
	require.JSONEq(t, `{"status":"new"}`, rows[0].Before)
	require.JSONEq(t, fmt.Sprintf(`{"status":"accepted","accepted_by":%q}`, managerID), rows[0].After)
	require.JSONEq(t, `{"assigned_to":null}`, rows[1].Before)
	require.JSONEq(t, fmt.Sprintf(`{"assigned_to":%q}`, agentID), rows[1].After)
	require.JSONEq(t, `{"status":"waiting_customer"}`, rows[8].Before) // customer reply → in_progress
	require.Contains(t, rows[8].After, `"cause": "customer_reply"`)
	require.Equal(t, customerID, rows[8].UserID)

	// The outbox: one event per change, internal notes for staff only and
	// never with their text.
	type outboxRow struct {
		EventType string
		Payload   string
	}
	var events []outboxRow
	require.NoError(t, s.db.Raw(`SELECT event_type, payload::text AS payload FROM outbox WHERE key = ? ORDER BY id`, id.String()).Scan(&events).Error)
	var types []string
	for _, e := range events {
		if e.EventType == "ticket.sla_changed" { // the SLA clock's own events, staff only (internal/sla tests them)
			require.Contains(t, e.Payload, `"audience": "staff"`)
			continue
		}
		types = append(types, e.EventType)
		var ev struct {
			Audience string          `json:"audience"`
			TicketID uuid.UUID       `json:"ticket_id"`
			OrgID    uuid.UUID       `json:"org_id"`
			Data     json.RawMessage `json:"data"`
		}
		require.NoError(t, json.Unmarshal([]byte(e.Payload), &ev))
		require.Equal(t, id, ev.TicketID)
		require.Equal(t, acme, ev.OrgID)
		require.NotContains(t, e.Payload, canary)
		if strings.Contains(string(ev.Data), `"is_internal": true`) || strings.Contains(string(ev.Data), `"is_internal":true`) {
			require.Equal(t, "staff", ev.Audience)
			require.NotContains(t, string(ev.Data), "content")
		} else {
			require.Equal(t, "public", ev.Audience, e.Payload)
		}
	}
	require.Equal(t, []string{"ticket.status_changed", "ticket.assigned", "ticket.status_changed", "ticket.status_changed",
		"comment.added", "comment.added", "ticket.status_changed", "comment.added", "ticket.status_changed",
		"ticket.status_changed", "ticket.status_changed"}, types)

	// Every customer-facing read is free of the internal note.
	for _, path := range []string{"/api/v1/tickets", ticketPath(id, ""), ticketPath(id, "/comments"), "/api/v1/tickets?q=" + url.QueryEscape(canary)} {
		for _, tok := range []string{customer, s.login("customer_admin@acme.test")} {
			r := s.do("GET", path, tok, nil)
			require.Equal(t, 200, r.status, path)
			require.NotContains(t, string(r.body), canary, path)
		}
	}
}

// TestTransitionRules: invalid moves get 409 with what the caller may do;
// cancelling is for managers and the requester; assigning and reopening
// follow their own rules.
func TestTransitionRules(t *testing.T) {
	s := newStack(t)
	acme := s.orgs["acme"]
	customer, cadmin := s.login("customer_user@acme.test"), s.login("customer_admin@acme.test")
	agent, manager, admin := s.login("agent@acme.test"), s.login("manager@acme.test"), s.login("admin@acme.test")
	customerID, agentID, managerID := s.userID("customer_user@acme.test"), s.userID("agent@acme.test"), s.userID("manager@acme.test")

	// Concurrent accepts: the row lock lets exactly one through.
	raced := s.newTicket(acme, customerID, "Race")
	codes := make(chan int, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { codes <- s.do("POST", ticketPath(raced, "/accept"), manager, nil).status })
	}
	wg.Wait()
	close(codes)
	counts := map[int]int{}
	for c := range codes {
		counts[c]++
	}
	require.Equal(t, map[int]int{200: 1, 409: 7}, counts)
	var accepts int64
	require.NoError(t, s.db.Raw(`SELECT count(*) FROM audit_log WHERE ticket_id = ? AND action = 'ticket.accepted'`, raced).Scan(&accepts).Error)
	require.EqualValues(t, 1, accepts)

	id := s.newTicket(acme, customerID, "Rules")
	requireTransitions(t, s.do("POST", ticketPath(id, "/status"), agent, map[string]any{"status": "resolved"}))
	requireTransitions(t, s.do("POST", ticketPath(id, "/status"), manager, map[string]any{"status": "in_progress"}), "accepted", "cancelled")
	requireTransitions(t, s.do("POST", ticketPath(id, "/status"), cadmin, map[string]any{"status": "cancelled"}))
	requireTransitions(t, s.do("POST", ticketPath(id, "/assign"), manager, map[string]any{"assigned_to": agentID}), "accepted", "cancelled")
	bad := s.do("POST", ticketPath(id, "/status"), manager, map[string]any{"status": "on_fire"})
	require.Equal(t, 422, bad.status)
	require.Contains(t, bad.json(t)["errors"], "status")
	require.Equal(t, 400, s.do("POST", ticketPath(id, "/status"), manager, map[string]any{"status": "accepted", "org_id": uuid.NewString()}).status)
	require.Equal(t, 422, s.do("POST", ticketPath(id, "/status"), manager, map[string]any{"status": "closed", "reason": strings.Repeat("x", 2001)}).status)

	// accepting through /status is the same as /accept; assigning needs /assign
	res := s.do("POST", ticketPath(id, "/status"), admin, map[string]any{"status": "accepted"})
	require.Equal(t, 200, res.status, string(res.body))
	var acceptedBy string
	require.NoError(t, s.db.Raw(`SELECT accepted_by::text FROM tickets WHERE id = ?`, id).Scan(&acceptedBy).Error)
	require.Equal(t, s.userID("admin@acme.test").String(), acceptedBy)
	res = s.do("POST", ticketPath(id, "/status"), manager, map[string]any{"status": "assigned"})
	require.Equal(t, 422, res.status, string(res.body))
	require.Contains(t, res.json(t)["errors"].(map[string]any)["status"], "/assign")

	// reassignment keeps the status and is audited
	require.Equal(t, 200, s.do("POST", ticketPath(id, "/assign"), manager, map[string]any{"assigned_to": agentID}).status)
	require.Equal(t, 200, s.do("POST", ticketPath(id, "/status"), agent, map[string]any{"status": "in_progress"}).status)
	res = s.do("POST", ticketPath(id, "/assign"), manager, map[string]any{"assigned_to": managerID})
	require.Equal(t, 200, res.status, string(res.body))
	require.Equal(t, "in_progress", res.json(t)["status"])
	var assigned int64
	require.NoError(t, s.db.Raw(`SELECT count(*) FROM audit_log WHERE ticket_id = ? AND action = 'ticket.assigned'`, id).Scan(&assigned).Error)
	require.EqualValues(t, 2, assigned)
	// an inactive agent cannot take tickets
	require.NoError(t, s.db.Exec(`UPDATE users SET is_active = false WHERE id = ?`, agentID).Error)
	require.Equal(t, 422, s.do("POST", ticketPath(id, "/assign"), manager, map[string]any{"assigned_to": agentID}).status)
	require.Equal(t, 422, s.do("POST", ticketPath(id, "/assign"), manager, map[string]any{}).status)

	// the requester cancels their own ticket; then it is read-only
	other := s.newTicket(acme, customerID, "Never mind")
	res = s.do("POST", ticketPath(other, "/status"), customer, map[string]any{"status": "cancelled", "reason": "Fixed it myself"})
	require.Equal(t, 200, res.status, string(res.body))
	require.Equal(t, []any{}, res.json(t)["allowed_transitions"])
	requireTransitions(t, s.do("POST", ticketPath(other, "/comments"), customer, map[string]any{"content": "hello?"}))

	// Reopen window: a reply reopens a resolved ticket within the window
	// (default 7 days), not after the organisation's own window.
	recent := s.newTicket(acme, customerID, "Recently resolved")
	require.NoError(t, s.db.Exec(`UPDATE tickets SET status = 'resolved', resolved_at = now() - interval '6 days', assigned_to = ? WHERE id = ?`, agentID, recent).Error)
	require.Equal(t, 201, s.do("POST", ticketPath(recent, "/comments"), customer, map[string]any{"content": "It is back."}).status)
	v := s.do("GET", ticketPath(recent, ""), customer, nil).json(t)
	require.Equal(t, "in_progress", v["status"])
	require.Nil(t, v["resolved_at"])

	old := s.newTicket(acme, customerID, "Resolved a while ago")
	require.NoError(t, s.db.Exec(`UPDATE tickets SET status = 'resolved', resolved_at = now() - interval '2 hours' WHERE id = ?`, old).Error)
	require.NoError(t, s.db.Exec(`UPDATE organizations SET settings = settings || '{"reopen_window_hours": 1}' WHERE id = ?`, acme).Error)
	require.Equal(t, 201, s.do("POST", ticketPath(old, "/comments"), customer, map[string]any{"content": "Thanks!"}).status)
	require.Equal(t, "resolved", s.do("GET", ticketPath(old, ""), customer, nil).json(t)["status"])
	// staff replies never reopen
	require.NoError(t, s.db.Exec(`UPDATE tickets SET resolved_at = now() WHERE id = ?`, old).Error)
	require.Equal(t, 201, s.do("POST", ticketPath(old, "/comments"), manager, map[string]any{"content": "You're welcome"}).status)
	require.Equal(t, "resolved", s.do("GET", ticketPath(old, ""), customer, nil).json(t)["status"])

	// comments are validated
	require.Equal(t, 422, s.do("POST", ticketPath(recent, "/comments"), customer, map[string]any{"content": "   "}).status)
	require.Equal(t, 422, s.do("POST", ticketPath(recent, "/comments"), customer, map[string]any{"content_html": "<script>x</script>"}).status)
	require.Equal(t, 400, s.do("POST", ticketPath(recent, "/comments"), customer, map[string]any{"content": "x", "author_id": agentID}).status)
	require.Equal(t, 422, s.do("POST", ticketPath(recent, "/comments"), customer, map[string]any{"content": strings.Repeat("y", 50_001)}).status)
}

func TestPatchTicket(t *testing.T) {
	s := newStack(t)
	acme, globex := s.orgs["acme"], s.orgs["globex"]
	agent := s.login("agent@acme.test")
	id := s.newTicket(acme, s.userID("customer_user@acme.test"), "Patch me")
	var billing, foreign uuid.UUID
	require.NoError(t, s.db.Raw(`SELECT id FROM services WHERE org_id = ? AND name = 'Billing'`, acme).Row().Scan(&billing))
	require.NoError(t, s.db.Raw(`SELECT id FROM services WHERE org_id = ?`, globex).Row().Scan(&foreign))

	res := s.do("PATCH", ticketPath(id, ""), agent, map[string]any{"priority": "critical", "service_id": billing})
	require.Equal(t, 200, res.status, string(res.body))
	require.Equal(t, "critical", res.json(t)["priority"])
	require.Equal(t, billing.String(), res.json(t)["service_id"])
	bad := s.do("PATCH", ticketPath(id, ""), agent, map[string]any{"service_id": foreign})
	require.Equal(t, 422, bad.status)
	require.NotContains(t, string(bad.body), "General Support")
	require.Equal(t, 422, s.do("PATCH", ticketPath(id, ""), agent, map[string]any{"priority": "urgent"}).status)
	require.Equal(t, 400, s.do("PATCH", ticketPath(id, ""), agent, map[string]any{"status": "closed"}).status)
	require.Equal(t, 403, s.do("PATCH", ticketPath(id, ""), s.login("customer_admin@acme.test"), map[string]any{"priority": "low"}).status)
	// null clears the service; leaving it out keeps it
	res = s.do("PATCH", ticketPath(id, ""), agent, map[string]any{"priority": "high"})
	require.Equal(t, billing.String(), res.json(t)["service_id"])
	res = s.do("PATCH", ticketPath(id, ""), agent, map[string]any{"service_id": nil})
	require.Equal(t, 200, res.status, string(res.body))
	require.Nil(t, res.json(t)["service_id"])
	// a no-op changes nothing and audits nothing
	require.Equal(t, 200, s.do("PATCH", ticketPath(id, ""), agent, map[string]any{"priority": "high"}).status)

	var rows []struct{ Before, After string }
	require.NoError(t, s.db.Raw(`SELECT before::text AS before, after::text AS after FROM audit_log
		WHERE ticket_id = ? AND action = 'ticket.updated' ORDER BY id`, id).Scan(&rows).Error)
	require.Len(t, rows, 3)
	require.JSONEq(t, `{"priority":"medium","service_id":null}`, rows[0].Before)
	require.JSONEq(t, fmt.Sprintf(`{"priority":"critical","service_id":%q}`, billing), rows[0].After)
	require.JSONEq(t, fmt.Sprintf(`{"service_id":%q}`, billing), rows[2].Before)
	require.JSONEq(t, `{"service_id":null}`, rows[2].After)
	var updates int64
	require.NoError(t, s.db.Raw(`SELECT count(*) FROM outbox WHERE key = ? AND event_type = 'ticket.updated'`, id.String()).Scan(&updates).Error)
	require.EqualValues(t, 3, updates)
}

// TestTicketVisibilityAndList: customer_users see only their own tickets
// (everything else is 404), customer_admins all of their organisation's;
// filters, text search and keyset pages.
func TestTicketVisibilityAndList(t *testing.T) {
	s := newStack(t)
	acme := s.orgs["acme"]
	customer, cadmin, agent := s.login("customer_user@acme.test"), s.login("customer_admin@acme.test"), s.login("agent@acme.test")
	customerID, cadminID := s.userID("customer_user@acme.test"), s.userID("customer_admin@acme.test")

	mine := s.newTicket(acme, customerID, "Keyboard sticky")
	theirs := s.newTicket(acme, cadminID, "Invoice wrong amount")
	for _, path := range []string{ticketPath(theirs, ""), ticketPath(theirs, "/comments")} {
		r := s.do("GET", path, customer, nil)
		require.Equal(t, 404, r.status, path)
		require.NotContains(t, string(r.body), "Invoice")
	}
	require.Equal(t, 404, s.do("POST", ticketPath(theirs, "/comments"), customer, map[string]any{"content": "me too"}).status)
	require.Equal(t, 404, s.do("POST", ticketPath(theirs, "/status"), customer, map[string]any{"status": "cancelled"}).status)
	require.Equal(t, 404, s.do("GET", "/api/v1/tickets/not-a-uuid", customer, nil).status)
	require.Equal(t, []string{mine.String()}, ids(itemsOf(t, s.do("GET", "/api/v1/tickets", customer, nil))))
	require.ElementsMatch(t, []string{mine.String(), theirs.String()}, ids(itemsOf(t, s.do("GET", "/api/v1/tickets", cadmin, nil))))
	g := s.login("customer_user@globex.test")
	require.Equal(t, 404, s.do("GET", ticketPath(mine, ""), g, nil).status)
	require.Empty(t, itemsOf(t, s.do("GET", "/api/v1/tickets", g, nil)))

	// more tickets for the filters and pages
	var created []uuid.UUID
	for i := range 5 {
		id := s.newTicket(acme, customerID, fmt.Sprintf("Laptop battery %d", i))
		created = append(created, id)
	}
	require.NoError(t, s.db.Exec(`UPDATE tickets SET priority = 'high', status = 'accepted' WHERE id IN ?`, created[:2]).Error)
	require.NoError(t, s.db.Exec(`UPDATE tickets SET created_at = now() - interval '3 days' WHERE id = ?`, created[4]).Error)

	all := ids(itemsOf(t, s.do("GET", "/api/v1/tickets?queue=all", agent, nil)))
	require.Len(t, all, 7)
	require.Equal(t, created[3].String(), all[0], "newest first")
	require.Equal(t, created[4].String(), all[6])
	require.Equal(t, created[4].String(), ids(itemsOf(t, s.do("GET", "/api/v1/tickets?order=oldest", agent, nil)))[0])
	require.ElementsMatch(t, []string{created[0].String(), created[1].String()},
		ids(itemsOf(t, s.do("GET", "/api/v1/tickets?priority=high,critical&status=accepted", agent, nil))))
	require.Len(t, itemsOf(t, s.do("GET", "/api/v1/tickets?status=new&status=accepted", agent, nil)), 7)
	require.Len(t, itemsOf(t, s.do("GET", "/api/v1/tickets?q=laptop+battery", agent, nil)), 5)
	require.Equal(t, []string{theirs.String()}, ids(itemsOf(t, s.do("GET", "/api/v1/tickets?q=invoice", agent, nil))))
	require.Empty(t, itemsOf(t, s.do("GET", "/api/v1/tickets?q=invoice", customer, nil)))
	require.Equal(t, []string{theirs.String()}, ids(itemsOf(t, s.do("GET", "/api/v1/tickets?requester_id="+cadminID.String(), agent, nil))))
	before := url.QueryEscape(time.Now().Add(-24 * time.Hour).UTC().Format(time.RFC3339))
	require.Equal(t, []string{created[4].String()}, ids(itemsOf(t, s.do("GET", "/api/v1/tickets?created_before="+before, agent, nil))))
	require.Len(t, itemsOf(t, s.do("GET", "/api/v1/tickets?created_after="+before, agent, nil)), 6)

	// keyset pages of 3 walk all 7 once
	var walked []string
	path := "/api/v1/tickets?limit=3"
	for {
		r := s.do("GET", path, agent, nil)
		items := itemsOf(t, r)
		walked = append(walked, ids(items)...)
		next, _ := r.json(t)["next_cursor"].(string)
		if next == "" {
			break
		}
		path = "/api/v1/tickets?limit=3&after=" + next
	}
	require.Equal(t, all, walked)

	bad := s.do("GET", "/api/v1/tickets?queue=everything&status=open&priority=p1&service_id=x&created_after=yesterday&order=random", agent, nil)
	require.Equal(t, 422, bad.status)
	for _, f := range []string{"queue", "status", "priority", "service_id", "created_after", "order"} {
		require.Contains(t, bad.json(t)["errors"], f)
	}

	// comment pages, oldest first
	for i := range 3 {
		require.Equal(t, 201, s.do("POST", ticketPath(mine, "/comments"), customer, map[string]any{"content": fmt.Sprintf("c%d", i)}).status)
	}
	r := s.do("GET", ticketPath(mine, "/comments?limit=2"), customer, nil)
	first := itemsOf(t, r)
	require.Equal(t, "c0", first[0]["content"])
	r = s.do("GET", ticketPath(mine, "/comments?limit=2&after="+r.json(t)["next_cursor"].(string)), customer, nil)
	require.Equal(t, "c2", itemsOf(t, r)[0]["content"])
}

// TestAIGeneratedReplyMarked: a reply an agent sends from an AI draft is
// marked is_ai_generated; customers cannot set the flag.
func TestAIGeneratedReplyMarked(t *testing.T) {
	s := newStack(t)
	id := s.newTicket(s.orgs["acme"], s.userID("customer_user@acme.test"), "Draft me")
	agent, customer := s.login("agent@acme.test"), s.login("customer_user@acme.test")
	drafted := s.do("POST", ticketPath(id, "/comments"), agent, map[string]any{"content": "From the AI draft.", "is_ai_generated": true})
	require.Equal(t, 201, drafted.status, string(drafted.body))
	require.Equal(t, true, drafted.json(t)["is_ai_generated"])
	var marked bool
	require.NoError(t, s.db.Raw(`SELECT is_ai_generated FROM comments WHERE ticket_id = ?`, id).Row().Scan(&marked))
	require.True(t, marked)
	require.Equal(t, 422, s.do("POST", ticketPath(id, "/comments"), customer, map[string]any{"content": "x", "is_ai_generated": true}).status)
}
