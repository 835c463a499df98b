package httpapi_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCannedResponses(t *testing.T) {
	s := newStack(t)
	acme, globex := s.orgs["acme"], s.orgs["globex"]
	agent, manager := s.login("agent@acme.test"), s.login("manager@acme.test")
	path := "/api/v1/canned-responses"
	// the demo seed shares three; from here on, only this test's
	require.Len(t, itemsOf(t, s.do("GET", path+"?scope=shared", agent, nil)), 3)
	require.NoError(t, s.db.Exec(`DELETE FROM canned_responses`).Error)

	// validation and mass assignment
	bad := s.do("POST", path, agent, map[string]any{"title": " ", "content": ""})
	require.Equal(t, 422, bad.status, string(bad.body))
	require.Contains(t, bad.json(t)["errors"], "title")
	require.Contains(t, bad.json(t)["errors"], "content")
	require.Equal(t, 400, s.do("POST", path, agent, map[string]any{"title": "T", "content": "C", "created_by": s.userID("admin@acme.test")}).status)
	// only managers and admins share
	require.Equal(t, 403, s.do("POST", path, agent, map[string]any{"title": "T", "content": "C", "is_shared": true}).status)

	res := s.do("POST", path, agent, map[string]any{"title": "Password reset", "content": "Hi {{requester.name}}, reset it at /reset. — {{ agent.name }} ({{unknown.thing}})"})
	require.Equal(t, 201, res.status, string(res.body))
	personal := res.json(t)
	pid := personal["id"].(string)
	require.Equal(t, false, personal["is_shared"])
	require.Equal(t, true, personal["can_edit"])
	require.Equal(t, s.userID("agent@acme.test").String(), personal["created_by"])

	// a personal response is its author's alone
	require.Equal(t, 404, s.do("GET", path+"/"+pid, manager, nil).status)
	require.Equal(t, 404, s.do("PATCH", path+"/"+pid, manager, map[string]any{"title": "Mine now"}).status)
	require.Equal(t, 403, s.do("PATCH", path+"/"+pid, agent, map[string]any{"is_shared": true}).status)

	res = s.do("POST", path, manager, map[string]any{"title": "Closing note", "content": "Closing ticket {{ticket.number}}.", "is_shared": true})
	require.Equal(t, 201, res.status, string(res.body))
	sid := res.json(t)["id"].(string)
	got := s.do("GET", path+"/"+sid, agent, nil)
	require.Equal(t, 200, got.status)
	require.Equal(t, false, got.json(t)["can_edit"])
	require.Equal(t, 403, s.do("PATCH", path+"/"+sid, agent, map[string]any{"content": "changed"}).status)
	require.Equal(t, 403, s.do("DELETE", path+"/"+sid, agent, nil).status)
	res = s.do("PATCH", path+"/"+sid, s.login("admin@acme.test"), map[string]any{"content": "Closing ticket #{{ticket.number}}."})
	require.Equal(t, 200, res.status, string(res.body))
	require.Equal(t, "Closing ticket #{{ticket.number}}.", res.json(t)["content"])
	require.Equal(t, 422, s.do("PATCH", path+"/"+sid, manager, map[string]any{"title": ""}).status)

	// list: own + shared, text filter, scope, keyset pages
	s.newCanned(acme, nil, "Orphaned shared", true)
	s.newCanned(acme, ptr(s.userID("manager@acme.test")), "Manager private", false)
	s.newCanned(globex, nil, "Globex shared", true)
	titles := func(token, query string) []string {
		t.Helper()
		r := s.do("GET", path+query, token, nil)
		require.Equal(t, 200, r.status, string(r.body))
		var out []string
		for _, it := range itemsOf(t, r) {
			out = append(out, it["title"].(string))
		}
		return out
	}
	require.Equal(t, []string{"Closing note", "Orphaned shared", "Password reset"}, titles(agent, ""))
	require.Equal(t, []string{"Closing note", "Manager private", "Orphaned shared"}, titles(manager, ""))
	require.Equal(t, []string{"Password reset"}, titles(agent, "?q=RESET"))
	require.Equal(t, []string{"Closing note"}, titles(agent, "?q=%23%7B")) // content match: "#{"
	require.Empty(t, titles(agent, "?q=100%25"))                           // % is literal
	require.Equal(t, []string{"Password reset"}, titles(agent, "?scope=mine"))
	require.Equal(t, []string{"Closing note", "Orphaned shared"}, titles(agent, "?scope=shared"))
	require.Equal(t, 422, s.do("GET", path+"?scope=everyone", agent, nil).status)
	require.Equal(t, 422, s.do("GET", path+"?after=nope", agent, nil).status)
	var seen []string
	for after := ""; ; {
		r := s.do("GET", path+"?limit=1"+after, agent, nil)
		require.Equal(t, 200, r.status)
		m := r.json(t)
		for _, it := range m["items"].([]any) {
			seen = append(seen, it.(map[string]any)["title"].(string))
		}
		next, _ := m["next_cursor"].(string)
		if next == "" {
			break
		}
		after = "&after=" + next
	}
	require.Equal(t, []string{"Closing note", "Orphaned shared", "Password reset"}, seen)

	// render: agent alone, then with a ticket; unknown placeholders stay
	res = s.do("GET", path+"/"+pid+"/render", agent, nil)
	require.Equal(t, 200, res.status, string(res.body))
	require.Equal(t, "Hi {{requester.name}}, reset it at /reset. — Alex Agent (acme) ({{unknown.thing}})", res.json(t)["content"])
	ticket := s.newTicket(acme, s.orgCustomer(acme), "Locked out")
	var number int64
	require.NoError(t, s.db.Raw(`SELECT number FROM tickets WHERE id = ?`, ticket).Row().Scan(&number))
	var requester string
	require.NoError(t, s.db.Raw(`SELECT coalesce(nullif(name, ''), email) FROM users WHERE id = ?`, s.orgCustomer(acme)).Row().Scan(&requester))
	res = s.do("GET", path+"/"+sid+"/render?ticket_id="+ticket.String(), agent, nil)
	require.Equal(t, 200, res.status, string(res.body))
	require.Equal(t, fmt.Sprintf("Closing ticket #%d.", number), res.json(t)["content"])
	res = s.do("GET", path+"/"+pid+"/render?ticket_id="+ticket.String(), agent, nil)
	require.Contains(t, res.json(t)["content"], "Hi "+requester+",")
	other := s.newTicket(globex, s.orgCustomer(globex), "Globex ticket")
	require.Equal(t, 404, s.do("GET", path+"/"+sid+"/render?ticket_id="+other.String(), agent, nil).status)
	require.Equal(t, 422, s.do("GET", path+"/"+sid+"/render?ticket_id=42", agent, nil).status)

	// delete by the author; audited
	require.Equal(t, 204, s.do("DELETE", path+"/"+pid, agent, nil).status)
	require.Equal(t, 404, s.do("GET", path+"/"+pid, agent, nil).status)
	var actions []string
	require.NoError(t, s.db.Raw(`SELECT action FROM audit_log WHERE entity_type = 'canned_response' ORDER BY id`).Scan(&actions).Error)
	require.Equal(t, []string{"canned_response.created", "canned_response.created", "canned_response.updated", "canned_response.deleted"}, actions)
}
