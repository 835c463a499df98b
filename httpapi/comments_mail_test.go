package httpapi_test

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCommentThreadReason: why an e-mail was threaded onto a ticket is
// shown to staff and to nobody else.
func TestCommentThreadReason(t *testing.T) {
	s := newStack(t)
	acme := s.orgs["acme"]
	ticket := s.newTicket(acme, s.userID("customer_user@acme.test"), "Printer")
	require.NoError(t, s.db.Exec(`INSERT INTO comments (org_id, ticket_id, author_id, content, channel, source_message_id, thread_reason)
		VALUES (?, ?, ?, 'by mail', 'email', 'm1@example.test', 'subject_token')`, acme, ticket, s.userID("customer_user@acme.test")).Error)
	path := "/api/v1/tickets/" + ticket.String() + "/comments"

	res := s.do("GET", path, s.login("agent@acme.test"), nil)
	require.Equal(t, 200, res.status, string(res.body))
	item := res.json(t)["items"].([]any)[0].(map[string]any)
	require.Equal(t, "subject_token", item["thread_reason"])
	require.Equal(t, "email", item["channel"])

	res = s.do("GET", path, s.login("customer_user@acme.test"), nil)
	require.Equal(t, 200, res.status, string(res.body))
	require.NotContains(t, string(res.body), "thread_reason")
	require.NotContains(t, string(res.body), "subject_token")
}
