package httpapi_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/atumdesk/atumdesk/pipeline"
	"github.com/atumdesk/atumdesk/workers/embed"
)

// aiTicket is a ticket of org with a description of its own.
func (s *stack) aiTicket(org uuid.UUID, subject, body string) uuid.UUID {
	s.t.Helper()
	id := s.newTicket(org, s.orgCustomer(org), subject)
	require.NoError(s.t, s.db.Exec(`UPDATE tickets SET description = ? WHERE id = ?`, body, id).Error)
	return id
}

func (s *stack) aiComment(org, ticket uuid.UUID, author, content string, internal bool) {
	s.t.Helper()
	require.NoError(s.t, s.db.Exec(`INSERT INTO comments (org_id, ticket_id, author_id, content, is_internal) VALUES (?, ?, ?, ?, ?)`,
		org, ticket, s.userID(author), content, internal).Error)
}

func TestAIEndpoints(t *testing.T) {
	s := newStack(t)
	acme, globex := s.orgs["acme"], s.orgs["globex"]
	agent := s.login("agent@acme.test")
	customer := s.login("customer_user@acme.test")

	login := s.aiTicket(acme, "Cannot log in", "I forgot my password and cannot log in.")
	s.aiComment(acme, login, "agent@acme.test", "SECRET-NOTE-1234: VIP, handle with care", true)
	s.aiComment(acme, login, "agent@acme.test", "Which browser do you use?", false)
	other := s.aiTicket(acme, "Password reset", "Please reset my password, the login fails.")
	s.aiTicket(acme, "Wrong invoice", "The invoice amount is wrong.")
	foreign := s.aiTicket(globex, "Password reset at Globex", "Globex password reset, the login fails.")
	require.NoError(t, s.db.Exec(`INSERT INTO kb_articles (org_id, title, slug, content, is_published) VALUES
		(?, 'How to reset your password', 'reset-password', 'Click "Forgot password" on the login page and follow the e-mailed link.', true),
		(?, 'Globex internal password policy', 'globex-policy', 'Globex password reset secrets.', true)`, acme, globex).Error)
	// A published but staff-only article: never grounds a draft a customer may read.
	require.NoError(t, s.db.Exec(`INSERT INTO kb_articles (org_id, title, slug, content, is_published, visibility) VALUES
		(?, 'Password reset override codes', 'override-codes', 'INTERNAL-KB-5678: reset password login override code.', true, 'internal')`, acme).Error)

	// Triage: computed on the fly before the stage ran, stored after.
	res := s.do("GET", "/api/v1/ai/triage/"+login.String(), agent, nil)
	require.Equal(t, 200, res.status, string(res.body))
	tri := res.json(t)
	require.Equal(t, "computed", tri["source"])
	require.Equal(t, "high", tri["priority"]) // "cannot log in" is an urgency cue
	urgent := s.aiTicket(acme, "Server down, urgent!", "Production is down.")
	res = s.do("GET", "/api/v1/ai/triage/"+urgent.String(), agent, nil)
	require.Equal(t, 200, res.status)
	require.Equal(t, "critical", res.json(t)["priority"])
	require.Greater(t, res.json(t)["confidence"].(float64), 0.7)
	require.NoError(t, s.db.Exec(`UPDATE tickets SET ai_suggested_priority = 'high', ai_confidence = 0.5, ai_suggested_at = now() WHERE id = ?`, login).Error)
	res = s.do("GET", "/api/v1/ai/triage/"+login.String(), agent, nil)
	require.Equal(t, "stored", res.json(t)["source"])
	require.Equal(t, "high", res.json(t)["priority"])

	// Similar tickets (after the embed stage ran): the org's own, never
	// the other org's.
	stage := embed.New(s.db, nil, nil)
	for _, id := range []uuid.UUID{login, other, urgent, foreign} {
		org := acme
		if id == foreign {
			org = globex
		}
		_, err := stage.Process(context.Background(), pipeline.TaskPayload{EventID: uuid.Must(uuid.NewV7()), OrgID: org, TicketID: id})
		require.NoError(t, err)
	}
	res = s.do("GET", "/api/v1/ai/similar-tickets/"+login.String()+"?limit=3", agent, nil)
	require.Equal(t, 200, res.status, string(res.body))
	items := res.json(t)["items"].([]any)
	require.NotEmpty(t, items)
	require.Equal(t, other.String(), items[0].(map[string]any)["ticket_id"])
	require.NotContains(t, string(res.body), foreign.String())
	require.NotContains(t, string(res.body), "Globex")
	require.Equal(t, 422, s.do("GET", "/api/v1/ai/similar-tickets/"+login.String()+"?limit=0", agent, nil).status)
	require.Equal(t, 404, s.do("GET", "/api/v1/ai/similar-tickets/"+foreign.String(), agent, nil).status)
	require.Equal(t, 404, s.do("GET", "/api/v1/ai/similar-tickets/not-a-uuid", agent, nil).status)

	// KB suggestions.
	res = s.do("GET", "/api/v1/ai/suggest-kb/"+login.String(), agent, nil)
	require.Equal(t, 200, res.status, string(res.body))
	require.Contains(t, string(res.body), "How to reset your password")
	require.NotContains(t, string(res.body), "Globex")

	// Drafts: helpful, marked AI-generated, never an internal note.
	res = s.do("POST", "/api/v1/ai/suggest-response", agent, map[string]any{"ticket_id": login})
	require.Equal(t, 200, res.status, string(res.body))
	d := res.json(t)
	require.Equal(t, true, d["is_ai_generated"])
	require.Contains(t, d["text"], "Forgot password")
	require.NotContains(t, string(res.body), "SECRET-NOTE-1234")
	require.NotContains(t, string(res.body), "INTERNAL-KB-5678")
	require.NotContains(t, string(res.body), "Globex")
	require.Equal(t, 404, s.do("POST", "/api/v1/ai/suggest-response", agent, map[string]any{"ticket_id": foreign}).status)
	require.Equal(t, 422, s.do("POST", "/api/v1/ai/suggest-response", agent, map[string]any{}).status)
	require.Equal(t, 400, s.do("POST", "/api/v1/ai/suggest-response", agent, map[string]any{"ticket_id": "nope"}).status)
	require.Equal(t, 400, s.do("POST", "/api/v1/ai/suggest-response", agent, map[string]any{"ticket_id": login, "x": 1}).status)

	// Staff only: a customer gets nothing of it, not even for their own ticket.
	for _, path := range []string{"/api/v1/ai/triage/", "/api/v1/ai/similar-tickets/", "/api/v1/ai/suggest-kb/"} {
		res := s.do("GET", path+login.String(), customer, nil)
		require.Equal(t, 403, res.status, path)
		require.False(t, strings.Contains(string(res.body), "password"), path)
	}
	require.Equal(t, 403, s.do("POST", "/api/v1/ai/suggest-response", customer, map[string]any{"ticket_id": login}).status)
}
