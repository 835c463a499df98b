package httpapi_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// newSLAPolicy inserts an inactive policy of org (no scope conflict).
func (s *stack) newSLAPolicy(org uuid.UUID) uuid.UUID {
	s.t.Helper()
	id := uuid.Must(uuid.NewV7())
	require.NoError(s.t, s.db.Exec(`INSERT INTO sla_policies (id, org_id, name, is_active) VALUES (?, ?, 'Matrix policy', false)`, id, org).Error)
	require.NoError(s.t, s.db.Exec(`INSERT INTO sla_targets (policy_id, org_id, priority, first_response_minutes, resolution_minutes)
		VALUES (?, ?, 'high', 60, 240)`, id, org).Error)
	return id
}

func (s *stack) serviceID(org uuid.UUID) uuid.UUID {
	s.t.Helper()
	var id uuid.UUID
	require.NoError(s.t, s.db.Raw(`SELECT id FROM services WHERE org_id = ? AND is_active ORDER BY name LIMIT 1`, org).Row().Scan(&id))
	return id
}

func TestSLAPolicyCRUD(t *testing.T) {
	s := newStack(t)
	manager, agent := s.login("manager@acme.test"), s.login("agent@acme.test")
	svc := s.serviceID(s.orgs["acme"])
	body := map[string]any{
		"name": "VIP hardware", "service_id": svc, "priority": "critical",
		"business_hours": map[string]any{"mon": [][2]string{{"09:00", "12:00"}, {"13:00", "17:00"}}, "fri": [][2]string{{"09:00", "15:00"}}},
		"timezone":       "Europe/Berlin",
		"holidays":       []map[string]any{{"yearly": "12-25", "name": "Christmas"}, {"date": "2026-12-24", "hours": [][2]string{{"09:00", "12:00"}}}},
		"escalation_rules": []map[string]any{{"at_percent": 50, "notify": []string{"assignee"}},
			{"at_percent": 100, "notify": []string{"manager", s.userID("admin@acme.test").String()}}},
		"clock_start": "created",
		"targets":     []map[string]any{{"priority": "critical", "first_response_minutes": 30, "resolution_minutes": 240}},
	}
	res := s.do("POST", "/api/v1/sla/policies", manager, body)
	require.Equal(t, 201, res.status, string(res.body))
	pol := res.json(t)
	id := pol["id"].(string)
	require.Equal(t, "created", pol["clock_start"])
	require.Equal(t, "Europe/Berlin", pol["timezone"])
	require.Len(t, pol["targets"], 1)
	require.Len(t, pol["escalation_rules"], 2)

	// the same scope again is a conflict; an agent may read but not write
	require.Equal(t, 409, s.do("POST", "/api/v1/sla/policies", manager, body).status)
	require.Equal(t, 403, s.do("POST", "/api/v1/sla/policies", agent, body).status)
	list := s.do("GET", "/api/v1/sla/policies", agent, nil)
	require.Equal(t, 200, list.status)
	items := list.json(t)["items"].([]any)
	require.Len(t, items, 2) // the seed's Standard and this one, most specific first
	require.Equal(t, id, items[0].(map[string]any)["id"])

	// (another organisation's staff get 404: TestRouteRoleMatrix)
	require.Equal(t, 403, s.do("GET", "/api/v1/sla/policies/"+id, s.login("customer_user@acme.test"), nil).status)

	// PATCH: targets replace the set; null inherits the organisation's hours
	res = s.do("PATCH", "/api/v1/sla/policies/"+id, manager, map[string]any{"business_hours": nil, "targets": []map[string]any{
		{"priority": "critical", "first_response_minutes": 15, "resolution_minutes": 120},
		{"priority": "high", "first_response_minutes": 60, "resolution_minutes": 480}}})
	require.Equal(t, 200, res.status, string(res.body))
	pol = res.json(t)
	require.Nil(t, pol["business_hours"])
	require.Len(t, pol["targets"], 2)

	// DELETE deactivates: gone from the list, still readable, scope free
	require.Equal(t, 204, s.do("DELETE", "/api/v1/sla/policies/"+id, manager, nil).status)
	require.Equal(t, 204, s.do("DELETE", "/api/v1/sla/policies/"+id, manager, nil).status)
	require.Len(t, s.do("GET", "/api/v1/sla/policies", manager, nil).json(t)["items"], 1)
	require.Len(t, s.do("GET", "/api/v1/sla/policies?include_inactive=true", manager, nil).json(t)["items"], 2)
	require.Equal(t, false, s.do("GET", "/api/v1/sla/policies/"+id, manager, nil).json(t)["is_active"])
	require.Equal(t, 201, s.do("POST", "/api/v1/sla/policies", manager, body).status)

	var audits int64
	require.NoError(t, s.db.Raw(`SELECT count(*) FROM audit_log WHERE entity_type = 'sla_policy' AND action IN
		('sla_policy.created', 'sla_policy.updated', 'sla_policy.deactivated')`).Scan(&audits).Error)
	require.EqualValues(t, 4, audits) // two creates, one update, one deactivation (the second DELETE changed nothing)
}

func TestSLAPolicyValidation(t *testing.T) {
	s := newStack(t)
	admin := s.login("admin@acme.test")
	bad := map[string]any{
		"name":           "  ",
		"service_id":     s.serviceID(s.orgs["globex"]), // another organisation's
		"priority":       "urgent",
		"business_hours": map[string]any{"mon": [][2]string{{"09:00", "25:00"}}, "xyz": [][2]string{{"09:00", "17:00"}}},
		"timezone":       "Mars/Olympus",
		"holidays":       []map[string]any{{"date": "2026-02-30"}},
		"escalation_rules": []map[string]any{{"at_percent": 0, "notify": []string{"manager"}},
			{"at_percent": 80, "notify": []string{"everyone"}}, {"at_percent": 80, "notify": []string{}},
			{"at_percent": 90, "notify": []string{s.userID("customer_user@acme.test").String()}}},
		"clock_start": "resolved",
		"targets": []map[string]any{{"priority": "high", "first_response_minutes": 0, "resolution_minutes": 60},
			{"priority": "high", "first_response_minutes": 10, "resolution_minutes": 600000}},
	}
	res := s.do("POST", "/api/v1/sla/policies", admin, bad)
	require.Equal(t, 422, res.status, string(res.body))
	require.Equal(t, "application/problem+json", res.header.Get("Content-Type"))
	errs := res.json(t)["errors"].(map[string]any)
	for _, f := range []string{"name", "priority", "clock_start", "targets[0].first_response_minutes",
		"targets[1].priority", "targets[1].resolution_minutes", "escalation_rules[0].at_percent",
		"escalation_rules[1].notify[0]", "escalation_rules[2].at_percent", "escalation_rules[2].notify",
		"escalation_rules[3].notify[0]"} {
		require.Contains(t, errs, f, string(res.body))
	}
	// the calendar is checked as a whole by businesstime, field by field
	res = s.do("POST", "/api/v1/sla/policies", admin, map[string]any{"name": "Cal",
		"business_hours": map[string]any{"mon": [][2]string{{"09:00", "25:00"}}, "xyz": [][2]string{{"09:00", "17:00"}}},
		"timezone":       "Mars/Olympus", "holidays": []map[string]any{{"date": "2026-02-30"}},
		"service_id": s.serviceID(s.orgs["globex"]),
		"targets":    []map[string]any{{"priority": "low", "first_response_minutes": 10, "resolution_minutes": 60}}})
	require.Equal(t, 422, res.status, string(res.body))
	errs = res.json(t)["errors"].(map[string]any)
	for _, f := range []string{"business_hours.mon[0]", "business_hours.xyz", "timezone", "holidays[0].date", "service_id"} {
		require.Contains(t, errs, f, string(res.body))
	}
	// wrong JSON types are field errors too; unknown fields are refused
	res = s.do("POST", "/api/v1/sla/policies", admin, map[string]any{"name": 7, "business_hours": "nine to five",
		"targets": "all", "escalation_rules": map[string]any{}, "holidays": []map[string]any{{"when": "xmas"}}})
	require.Equal(t, 422, res.status, string(res.body))
	errs = res.json(t)["errors"].(map[string]any)
	for _, f := range []string{"name", "business_hours", "targets", "escalation_rules", "holidays"} {
		require.Contains(t, errs, f, string(res.body))
	}
	require.Equal(t, 400, s.do("POST", "/api/v1/sla/policies", admin, map[string]any{"name": "X", "org_id": s.orgs["globex"]}).status)
	// a scoped policy must have a target for its own priority
	res = s.do("POST", "/api/v1/sla/policies", admin, map[string]any{"name": "P", "priority": "low",
		"targets": []map[string]any{{"priority": "high", "first_response_minutes": 10, "resolution_minutes": 60}}})
	require.Equal(t, 422, res.status)
	require.Contains(t, res.json(t)["errors"], "targets")
	// PATCH validates the same way and leaves the policy alone
	id := s.newSLAPolicy(s.orgs["acme"])
	res = s.do("PATCH", "/api/v1/sla/policies/"+id.String(), admin, map[string]any{"timezone": "Nowhere/Else", "name": ""})
	require.Equal(t, 422, res.status)
	require.Contains(t, res.json(t)["errors"], "timezone")
	require.Equal(t, "Matrix policy", s.do("GET", "/api/v1/sla/policies/"+id.String(), admin, nil).json(t)["name"])
	require.Equal(t, 404, s.do("PATCH", "/api/v1/sla/policies/not-a-uuid", admin, map[string]any{"name": "x"}).status)
	// bad query parameters
	require.Equal(t, 422, s.do("GET", "/api/v1/sla/policies?include_inactive=maybe", admin, nil).status)
	require.Equal(t, 422, s.do("GET", "/api/v1/sla/breaches?kind=lunch", admin, nil).status)
	require.Equal(t, 422, s.do("GET", "/api/v1/sla/metrics?period=year", admin, nil).status)
	require.Equal(t, 422, s.do("GET", "/api/v1/sla/metrics?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", admin, nil).status)
}

func TestSLABreachesAndMetrics(t *testing.T) {
	s := newStack(t)
	acme := s.orgs["acme"]
	manager := s.login("manager@acme.test")
	var policy uuid.UUID
	require.NoError(t, s.db.Raw(`SELECT id FROM sla_policies WHERE org_id = ? AND name = 'Standard'`, acme).Row().Scan(&policy))
	start := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	// four tickets: first response met, met late, breached (unmet), pending
	mk := func(responded *time.Time, breached bool) uuid.UUID {
		id := s.newTicket(acme, s.orgCustomer(acme), "sla")
		require.NoError(t, s.db.Exec(`UPDATE tickets SET status = 'in_progress', sla_policy_id = ?, sla_started_at = ?,
			first_response_due_at = ?, resolution_due_at = ?, first_responded_at = ?, first_response_breached = ? WHERE id = ?`,
			policy, start, start.Add(time.Hour), start.Add(8*time.Hour), responded, breached, id).Error)
		if breached {
			require.NoError(t, s.db.Exec(`INSERT INTO sla_breaches (id, org_id, ticket_id, kind, policy_id, due_at, breached_at)
				VALUES (?, ?, ?, 'first_response', ?, ?, ?)`, uuid.Must(uuid.NewV7()), acme, id, policy, start.Add(time.Hour), start.Add(time.Hour)).Error)
		}
		return id
	}
	early, late := start.Add(30*time.Minute), start.Add(2*time.Hour)
	mk(&early, false)
	lateID := mk(&late, true)
	mk(nil, true)
	mk(nil, false)

	res := s.do("GET", "/api/v1/sla/breaches?kind=first_response&limit=1", manager, nil)
	require.Equal(t, 200, res.status, string(res.body))
	page := res.json(t)
	require.Len(t, page["items"], 1)
	require.NotEmpty(t, page["next_cursor"])
	first := page["items"].([]any)[0].(map[string]any)
	require.Equal(t, "Standard", first["policy_name"])
	next := itemsOf(t, s.do("GET", "/api/v1/sla/breaches?limit=1&after="+page["next_cursor"].(string), manager, nil))
	require.Len(t, next, 1)
	require.NotEqual(t, first["id"], next[0]["id"])
	require.Len(t, itemsOf(t, s.do("GET", "/api/v1/sla/breaches?ticket_id="+lateID.String(), manager, nil)), 1)
	require.Empty(t, itemsOf(t, s.do("GET", "/api/v1/sla/breaches?kind=resolution", manager, nil)))

	res = s.do("GET", "/api/v1/sla/metrics?from=2026-03-01T00:00:00Z&to=2026-04-01T00:00:00Z&period=week", manager, nil)
	require.Equal(t, 200, res.status, string(res.body))
	rep := res.json(t)
	rows := rep["items"].([]any)
	require.Len(t, rows, 1)
	fr := rows[0].(map[string]any)["first_response"].(map[string]any)
	require.EqualValues(t, 4, fr["total"])
	require.EqualValues(t, 1, fr["met"])
	require.EqualValues(t, 2, fr["breached"])
	require.EqualValues(t, 1, fr["pending"])
	require.InDelta(t, 33.33, fr["compliance_percent"], 0.001)
	require.NotNil(t, rows[0].(map[string]any)["period_start"])
	// outside the range: nothing
	res = s.do("GET", "/api/v1/sla/metrics?from=2025-01-01T00:00:00Z&to=2025-02-01T00:00:00Z", manager, nil)
	require.Empty(t, res.json(t)["items"])
}
