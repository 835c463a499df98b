package httpapi_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/internal/apperr"
	"github.com/atumdesk/atumdesk/internal/csat"
	"github.com/atumdesk/atumdesk/models"
)

func (s *stack) resolve(ticket uuid.UUID) {
	s.t.Helper()
	require.NoError(s.t, s.db.Exec(`UPDATE tickets SET status = 'resolved', resolved_at = now() WHERE id = ?`, ticket).Error)
}

type csatState struct {
	State      string `json:"state"`
	CanRespond bool   `json:"can_respond"`
	Survey     *struct {
		Rating      *int       `json:"rating"`
		Comment     *string    `json:"comment"`
		RespondedAt *time.Time `json:"responded_at"`
	} `json:"survey"`
}

func (s *stack) csatState(ticket uuid.UUID, token string) csatState {
	s.t.Helper()
	res := s.do("GET", ticketPath(ticket, "/csat"), token, nil)
	require.Equal(s.t, 200, res.status, string(res.body))
	var v csatState
	require.NoError(s.t, json.Unmarshal(res.body, &v))
	return v
}

// TestCSAT runs its cases on one stack: each uses its own tickets, and the
// metrics case its own time window.
func TestCSAT(t *testing.T) {
	s := newStack(t)
	t.Run("flow", func(t *testing.T) { testCSATFlow(t, s) })
	t.Run("invite", func(t *testing.T) { testCSATInvite(t, s) })
	t.Run("metrics", func(t *testing.T) { testCSATMetrics(t, s) })
}

func testCSATFlow(t *testing.T, s *stack) {
	acme := s.orgs["acme"]
	cuID := s.userID("customer_user@acme.test")
	cu, ca, agent := s.login("customer_user@acme.test"), s.login("customer_admin@acme.test"), s.login("agent@acme.test")
	stranger := s.extraCustomer("bystander@acme.test")
	globex := s.login("customer_user@globex.test")
	ticket := s.newTicket(acme, cuID, "rate me")
	path := ticketPath(ticket, "/csat")

	// Not resolved yet: nothing to rate.
	require.Equal(t, "not_available", s.csatState(ticket, cu).State)
	require.Equal(t, 409, s.do("POST", path, cu, map[string]any{"rating": 5}).status)
	require.Zero(t, s.count(`SELECT count(*) FROM csat_surveys WHERE ticket_id = ?`, ticket))

	// Resolved without an invitation (as if the resolution did not send
	// one): reading the survey creates it, once.
	s.resolve(ticket)
	st := s.csatState(ticket, agent)
	require.Equal(t, "pending", st.State)
	require.False(t, st.CanRespond)
	st = s.csatState(ticket, cu)
	require.True(t, st.CanRespond)
	require.False(t, s.csatState(ticket, ca).CanRespond)
	require.EqualValues(t, 1, s.count(`SELECT count(*) FROM csat_surveys WHERE ticket_id = ?`, ticket))
	require.EqualValues(t, 1, s.count(`SELECT count(*) FROM audit_log WHERE action = 'csat.invited' AND ticket_id = ?`, ticket))
	require.EqualValues(t, 1, s.count(`SELECT count(*) FROM outbox WHERE event_type = 'csat.invited' AND key = ?`, ticket.String()))

	// Only the requester rates.
	require.Equal(t, 403, s.do("POST", path, ca, map[string]any{"rating": 5}).status, "sees the ticket, is not its requester")
	require.Equal(t, 403, s.do("POST", path, agent, map[string]any{"rating": 5}).status, "staff do not rate")
	require.Equal(t, 404, s.do("POST", path, stranger, map[string]any{"rating": 5}).status, "cannot see the ticket")
	require.Equal(t, 404, s.do("GET", path, stranger, nil).status)
	require.Equal(t, 404, s.do("POST", path, globex, map[string]any{"rating": 5}).status)
	require.Equal(t, 404, s.do("GET", path, globex, nil).status)
	for _, bad := range []map[string]any{{"rating": 0}, {"rating": 6}, {"rating": 3, "comment": strings.Repeat("x", csat.MaxCommentLen+1)}} {
		require.Equal(t, 422, s.do("POST", path, cu, bad).status, "%v", bad)
	}
	require.Equal(t, 400, s.do("POST", path, cu, map[string]any{"rating": 4.5}).status)
	require.Equal(t, 400, s.do("POST", path, cu, map[string]any{"rating": 4, "requester_id": uuid.New()}).status)

	// Several answers at once: exactly one wins.
	var wg sync.WaitGroup
	codes := make(chan int, 5)
	for range 5 {
		wg.Go(func() {
			codes <- s.do("POST", path, cu, map[string]any{"rating": 4, "comment": "  Quick fix, thanks  "}).status
		})
	}
	wg.Wait()
	close(codes)
	got := map[int]int{}
	for c := range codes {
		got[c]++
	}
	require.Equal(t, map[int]int{201: 1, 409: 4}, got)
	require.Equal(t, 409, s.do("POST", path, cu, map[string]any{"rating": 1}).status, "a second answer")

	st = s.csatState(ticket, ca)
	require.Equal(t, "responded", st.State)
	require.Equal(t, 4, *st.Survey.Rating)
	require.Equal(t, "Quick fix, thanks", *st.Survey.Comment)
	require.NotNil(t, st.Survey.RespondedAt)
	require.EqualValues(t, 1, s.count(`SELECT count(*) FROM audit_log WHERE action = 'csat.submitted' AND ticket_id = ? AND user_id = ?`, ticket, cuID))
	require.EqualValues(t, 1, s.count(`SELECT count(*) FROM outbox WHERE event_type = 'csat.submitted' AND key = ?`, ticket.String()))

	// Closed tickets can still be rated (the requester may answer late).
	late := s.newTicket(acme, cuID, "closed quickly")
	require.NoError(t, s.db.Exec(`UPDATE tickets SET status = 'closed' WHERE id = ?`, late).Error)
	require.Equal(t, 201, s.do("POST", ticketPath(late, "/csat"), cu, map[string]any{"rating": 2}).status)
}

func testCSATInvite(t *testing.T, s *stack) {
	ctx := context.Background()
	acme := s.orgs["acme"]
	id := s.newTicket(acme, s.userID("customer_user@acme.test"), "resolved by the workflow")
	var tk models.Ticket
	require.NoError(t, s.db.Take(&tk, "id = ?", id).Error)

	// The workflow calls Invite in the transaction that resolves.
	err := s.db.Transaction(func(tx *gorm.DB) error { _, err := csat.Invite(ctx, tx, &tk); return err })
	require.True(t, apperr.IsKind(err, apperr.InvalidState), "an open ticket is not surveyed: %v", err)

	tk.Status = models.StatusResolved
	var token string
	require.NoError(t, s.db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(`UPDATE tickets SET status = 'resolved' WHERE id = ?`, id).Error; err != nil {
			return err
		}
		token, err = csat.Invite(ctx, tx, &tk)
		return err
	}))
	require.Len(t, token, 43)
	sum := sha256.Sum256([]byte(token))
	require.EqualValues(t, 1, s.count(`SELECT count(*) FROM csat_surveys WHERE ticket_id = ? AND token_hash = ?`, id, sum[:]))
	require.NoError(t, s.db.Transaction(func(tx *gorm.DB) error {
		token, err = csat.Invite(ctx, tx, &tk)
		return err
	}))
	require.Empty(t, token, "a reopened and re-resolved ticket is not invited twice")
	require.EqualValues(t, 1, s.count(`SELECT count(*) FROM csat_surveys WHERE ticket_id = ?`, id))
	require.Equal(t, "pending", s.csatState(id, s.login("customer_user@acme.test")).State)
}

func testCSATMetrics(t *testing.T, s *stack) {
	acme, globex := s.orgs["acme"], s.orgs["globex"]
	cuID, gID := s.userID("customer_user@acme.test"), s.userID("customer_user@globex.test")
	manager := s.login("manager@acme.test")
	// Fixtures in early 2020, where the other cases have no surveys.
	now := time.Date(2020, 3, 15, 12, 0, 0, 0, time.UTC)
	survey := func(org, requester uuid.UUID, rating int, invited time.Time) {
		ticket := s.newTicket(org, requester, "surveyed")
		var r, responded any
		if rating > 0 {
			r, responded = rating, invited.Add(time.Hour)
		}
		require.NoError(t, s.db.Exec(`INSERT INTO csat_surveys (id, org_id, ticket_id, requester_id, rating, invited_at, responded_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, uuid.New(), org, ticket, requester, r, invited, responded).Error)
	}
	recent, old := now.Add(-24*time.Hour), now.Add(-40*24*time.Hour)
	for _, r := range []int{5, 5, 4, 1, 0, 0} { // 0: invited, not answered
		survey(acme, cuID, r, recent)
	}
	survey(acme, cuID, 2, old)
	survey(globex, gID, 3, recent)

	type metrics struct {
		Invited      int64            `json:"invited"`
		Responded    int64            `json:"responded"`
		ResponseRate *float64         `json:"response_rate"`
		Average      *float64         `json:"average"`
		Distribution map[string]int64 `json:"distribution"`
	}
	get := func(query string) metrics {
		res := s.do("GET", "/api/v1/csat/metrics"+query, manager, nil)
		require.Equal(t, 200, res.status, string(res.body))
		var m metrics
		require.NoError(t, json.Unmarshal(res.body, &m))
		return m
	}
	require.GreaterOrEqual(t, get("").Invited, int64(7), "no window: everything")
	all := get("?from=2020-01-01T00:00:00Z&to=2020-04-01T00:00:00Z")
	require.EqualValues(t, 7, all.Invited)
	require.EqualValues(t, 5, all.Responded)
	require.InDelta(t, 5.0/7.0, *all.ResponseRate, 1e-9)
	require.InDelta(t, 17.0/5.0, *all.Average, 1e-9) // (5+5+4+1+2)/5
	require.Equal(t, map[string]int64{"1": 1, "2": 1, "3": 0, "4": 1, "5": 2}, all.Distribution)

	cut := now.Add(-30 * 24 * time.Hour).Format(time.RFC3339)
	last30 := get("?from=" + cut + "&to=2020-04-01T00:00:00Z")
	require.EqualValues(t, 6, last30.Invited)
	require.EqualValues(t, 4, last30.Responded)
	require.InDelta(t, 4.0/6.0, *last30.ResponseRate, 1e-9)
	require.InDelta(t, 3.75, *last30.Average, 1e-9) // (5+5+4+1)/4
	require.Equal(t, map[string]int64{"1": 1, "2": 0, "3": 0, "4": 1, "5": 2}, last30.Distribution)

	before := get("?to=" + cut)
	require.EqualValues(t, 1, before.Invited)
	require.InDelta(t, 2.0, *before.Average, 1e-9)

	none := get("?from=" + now.Add(time.Hour).Format(time.RFC3339) + "&to=2020-04-01T00:00:00Z")
	require.Zero(t, none.Invited)
	require.Nil(t, none.ResponseRate)
	require.Nil(t, none.Average)

	require.Equal(t, 422, s.do("GET", "/api/v1/csat/metrics?from=last-week", manager, nil).status)
	require.Equal(t, 422, s.do("GET", "/api/v1/csat/metrics?from="+cut+"&to="+cut, manager, nil).status)
	require.Equal(t, 403, s.do("GET", "/api/v1/csat/metrics", s.login("agent@acme.test"), nil).status)
}
