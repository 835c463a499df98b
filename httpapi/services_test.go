package httpapi_test

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestServices(t *testing.T) {
	s := newStack(t)
	acme, globex := s.orgs["acme"], s.orgs["globex"]
	admin, agent, customer := s.login("admin@acme.test"), s.login("agent@acme.test"), s.login("customer_user@acme.test")

	// create, with validation first
	bad := s.do("POST", "/api/v1/services", admin, map[string]any{"name": "  ", "default_priority": "urgent", "description": string(make([]byte, 2001))})
	require.Equal(t, 422, bad.status, string(bad.body))
	require.Equal(t, "application/problem+json", bad.header.Get("Content-Type"))
	errs := bad.json(t)["errors"].(map[string]any)
	require.Contains(t, errs, "name")
	require.Contains(t, errs, "default_priority")
	require.Contains(t, errs, "description")
	require.Equal(t, 400, s.do("POST", "/api/v1/services", admin, map[string]any{"name": "X", "org_id": globex}).status)
	require.Equal(t, 400, s.do("POST", "/api/v1/services", admin, map[string]any{"name": 5}).status)
	require.Equal(t, 422, s.do("POST", "/api/v1/services", admin, map[string]any{"name": "X", "default_priority": 3}).status)

	res := s.do("POST", "/api/v1/services", admin, map[string]any{"name": " Network ", "description": "LAN, Wi-Fi, VPN", "default_priority": "high"})
	require.Equal(t, 201, res.status, string(res.body))
	svc := res.json(t)
	id := svc["id"].(string)
	require.Equal(t, "Network", svc["name"])
	require.Equal(t, "high", svc["default_priority"])
	require.Equal(t, true, svc["is_active"])
	require.Equal(t, "/api/v1/services/"+id, res.header.Get("Location"))
	dup := s.do("POST", "/api/v1/services", admin, map[string]any{"name": "NETWORK"})
	require.Equal(t, 409, dup.status)
	require.Contains(t, dup.json(t)["errors"], "name")

	// patch: null clears the default priority; an absent field stays
	res = s.do("PATCH", "/api/v1/services/"+id, admin, map[string]any{"default_priority": nil})
	require.Equal(t, 200, res.status, string(res.body))
	require.Nil(t, res.json(t)["default_priority"])
	require.Equal(t, "LAN, Wi-Fi, VPN", res.json(t)["description"])
	require.Equal(t, 409, s.do("PATCH", "/api/v1/services/"+id, admin, map[string]any{"name": "billing"}).status)
	require.Equal(t, 422, s.do("PATCH", "/api/v1/services/"+id, admin, map[string]any{"name": ""}).status)

	// customers see active services only; staff see all and filter
	inactive := s.newService(acme, "Retired", false)
	names := func(token, query string) []string {
		t.Helper()
		r := s.do("GET", "/api/v1/services"+query, token, nil)
		require.Equal(t, 200, r.status, string(r.body))
		var out []string
		for _, it := range itemsOf(t, r) {
			out = append(out, it["name"].(string))
		}
		return out
	}
	custNames := names(customer, "")
	require.Contains(t, custNames, "Network")
	require.Contains(t, custNames, "Billing")
	require.NotContains(t, custNames, "Retired "+inactive.String()[24:])
	require.Len(t, names(customer, "?is_active=false"), 0)
	require.Contains(t, names(agent, ""), "Retired "+inactive.String()[24:])
	require.Equal(t, []string{"Retired " + inactive.String()[24:]}, names(agent, "?is_active=false"))
	require.Equal(t, 422, s.do("GET", "/api/v1/services?is_active=maybe", agent, nil).status)
	require.Equal(t, 404, s.do("GET", "/api/v1/services/"+inactive.String(), customer, nil).status)
	require.Equal(t, 200, s.do("GET", "/api/v1/services/"+inactive.String(), agent, nil).status)
	require.Equal(t, 404, s.do("GET", "/api/v1/services/not-a-uuid", agent, nil).status)
	require.NotContains(t, names(s.login("customer_user@globex.test"), ""), "Network")

	// delete: a used service is deactivated (200), an unused one deleted (204)
	ticket := s.newTicket(acme, s.orgCustomer(acme), "VPN down")
	require.NoError(t, s.db.Exec(`UPDATE tickets SET service_id = ? WHERE id = ?`, id, ticket).Error)
	res = s.do("DELETE", "/api/v1/services/"+id, admin, nil)
	require.Equal(t, 200, res.status, string(res.body))
	require.Equal(t, false, res.json(t)["is_active"])
	require.Equal(t, 404, s.do("GET", "/api/v1/services/"+id, customer, nil).status)
	unused := s.newService(acme, "Unused", true)
	require.Equal(t, 204, s.do("DELETE", "/api/v1/services/"+unused.String(), admin, nil).status)
	require.Equal(t, 404, s.do("GET", "/api/v1/services/"+unused.String(), admin, nil).status)

	// another organisation's service is not found, and stays unchanged
	other := s.newService(globex, "Globex only", true)
	require.Equal(t, 404, s.do("PATCH", "/api/v1/services/"+other.String(), admin, map[string]any{"name": "Stolen"}).status)
	require.Equal(t, 404, s.do("DELETE", "/api/v1/services/"+other.String(), admin, nil).status)
	var active bool
	require.NoError(t, s.db.Raw(`SELECT is_active FROM services WHERE id = ?`, other).Row().Scan(&active))
	require.True(t, active)

	// every change is audited
	var actions []string
	require.NoError(t, s.db.Raw(`SELECT action FROM audit_log WHERE entity_type = 'service' ORDER BY id`).Scan(&actions).Error)
	require.Equal(t, []string{"service.created", "service.updated", "service.deactivated", "service.deleted"}, actions)
}
