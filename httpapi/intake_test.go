package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/atumdesk/atumdesk/pipeline"
)

// inbound collects what reaches the inbound topic.
type inbound struct {
	mu  sync.Mutex
	got map[uuid.UUID]pipeline.Intake
}

func (s *stack) watchInbound() *inbound {
	s.t.Helper()
	in := &inbound{got: map[uuid.UUID]pipeline.Intake{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	s.t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		_ = pipeline.Consume(ctx, pipeline.ConsumerConfig{Brokers: s.brokers, GroupID: "test-" + uuid.NewString(), Topic: pipeline.TopicInbound,
			LagInterval: -1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
			func(_ context.Context, batch []kafka.Message) error {
				in.mu.Lock()
				defer in.mu.Unlock()
				for _, m := range batch {
					var it pipeline.Intake
					if err := json.Unmarshal(m.Value, &it); err == nil {
						in.got[it.TicketID] = it
					}
				}
				return nil
			})
	}()
	return in
}

func (in *inbound) wait(t *testing.T, id uuid.UUID) pipeline.Intake {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		in.mu.Lock()
		it, ok := in.got[id]
		in.mu.Unlock()
		if ok {
			return it
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("intake %s never reached the inbound topic", id)
	return pipeline.Intake{}
}

func (in *inbound) count() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.got)
}

func (s *stack) post(path, token string, body any, headers map[string]string) response {
	s.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", s.srv.URL+path, strings.NewReader(string(b)))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return s.send(req)
}

func (s *stack) send(req *http.Request) response {
	s.t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	require.NoError(s.t, err)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{res.StatusCode, res.Header, b}
}

func TestCreateTicketProducesIntake(t *testing.T) {
	s := newStack(t)
	in := s.watchInbound()
	cu := s.login("customer_user@acme.test")
	var service uuid.UUID
	require.NoError(t, s.db.Raw("SELECT id FROM services WHERE org_id = ? AND name = 'Billing'", s.orgs["acme"]).Row().Scan(&service))
	res := s.post("/api/v1/tickets", cu, map[string]any{
		"subject": "  Invoice\r\nwrong  ", "description": "The total is off.", "priority": "high", "service_id": service,
		"description_html": `<p>The total is <b>off</b><script>alert(1)</script></p>`,
	}, map[string]string{"Idempotency-Key": "inv-1"})
	require.Equal(t, 202, res.status, string(res.body))
	rec := res.json(t)
	id := uuid.MustParse(rec["ticket_id"].(string))
	require.Equal(t, "/api/v1/tickets/"+id.String(), rec["status_url"])
	require.Equal(t, "/api/v1/tickets/"+id.String(), res.header.Get("Location"))
	require.EqualValues(t, 7, id.Version(), "ticket ids are UUIDv7")

	it := in.wait(t, id)
	require.Equal(t, "Invoice wrong", it.Subject, "subjects are one line")
	require.Equal(t, "customer_user@acme.test", it.Requester.Email)
	require.Equal(t, s.userID("customer_user@acme.test"), *it.Requester.UserID)
	require.Equal(t, s.orgs["acme"], it.OrgID)
	require.Equal(t, pipeline.ChannelAPI, it.Channel)
	require.NotContains(t, it.HTML, "script")
	require.Contains(t, it.HTML, "<b>off</b>")

	// the same key again: the same ticket, nothing new produced
	again := s.post("/api/v1/tickets", cu, map[string]any{
		"subject": "  Invoice\r\nwrong  ", "description": "The total is off.", "priority": "high", "service_id": service,
		"description_html": `<p>The total is <b>off</b><script>alert(1)</script></p>`,
	}, map[string]string{"Idempotency-Key": "inv-1"})
	require.Equal(t, 202, again.status)
	require.Equal(t, id.String(), again.json(t)["ticket_id"])
	require.Equal(t, true, again.json(t)["replayed"])
	// the same key with another body is refused
	other := s.post("/api/v1/tickets", cu, map[string]any{"subject": "Other", "description": "x"}, map[string]string{"Idempotency-Key": "inv-1"})
	require.Equal(t, 422, other.status, string(other.body))
	// another user's same key is theirs alone
	mine := s.post("/api/v1/tickets", s.login("customer_admin@acme.test"), map[string]any{"subject": "Other", "description": "x"}, map[string]string{"Idempotency-Key": "inv-1"})
	require.Equal(t, 202, mine.status)
	require.NotEqual(t, id.String(), mine.json(t)["ticket_id"])
	time.Sleep(200 * time.Millisecond)
	require.Equal(t, 2, in.count())
}

func TestCreateTicketValidation(t *testing.T) {
	s := newStack(t)
	cu := s.login("customer_user@acme.test")
	var globexService uuid.UUID
	require.NoError(t, s.db.Raw("SELECT id FROM services WHERE org_id = ?", s.orgs["globex"]).Row().Scan(&globexService))
	res := s.post("/api/v1/tickets", cu, map[string]any{"subject": "", "description": "", "priority": "urgent-ish", "service_id": globexService}, nil)
	require.Equal(t, 422, res.status)
	errs := res.json(t)["errors"].(map[string]any)
	for _, f := range []string{"subject", "description", "priority"} {
		require.Contains(t, errs, f)
	}
	res = s.post("/api/v1/tickets", cu, map[string]any{"subject": "s", "description": "d", "service_id": globexService}, nil)
	require.Equal(t, 422, res.status)
	require.Contains(t, res.json(t)["errors"], "service_id", "another organisation's service is refused")
	res = s.post("/api/v1/tickets", cu, map[string]any{"subject": "s", "description": "d", "requester_email": "x@y.z"}, nil)
	require.Equal(t, 422, res.status, "customers cannot file on behalf of others")
	res = s.post("/api/v1/tickets", cu, map[string]any{"subject": "s", "description": "d", "status": "closed"}, nil)
	require.Equal(t, 400, res.status, "unknown fields are refused")
	res = s.post("/api/v1/tickets", cu, map[string]any{"subject": strings.Repeat("x", 1001), "description": "d"}, nil)
	require.Equal(t, 422, res.status)
	res = s.post("/api/v1/tickets", cu, map[string]any{"subject": "s", "description": "d", "attachment_ids": []string{uuid.NewString()}}, nil)
	require.Equal(t, 422, res.status)
	require.Contains(t, res.json(t)["errors"], "attachment_ids")
}

func TestCreateTicketKafkaDown(t *testing.T) {
	s := newStack(t)
	cu := s.login("customer_user@acme.test")
	s.stopBroker()
	res := s.post("/api/v1/tickets", cu, map[string]any{"subject": "s", "description": "d"}, map[string]string{"Idempotency-Key": "k-down"})
	require.Equal(t, 503, res.status, string(res.body))
	require.NotEmpty(t, res.header.Get("Retry-After"))
	// the key was released: nothing half-done remains in Redis
	keys, err := s.rdb.Keys(context.Background(), "atumdesk:idem:*").Result()
	require.NoError(t, err)
	require.Empty(t, keys)
}

func TestWebFormsAndCSRF(t *testing.T) {
	s := newStack(t)
	in := s.watchInbound()
	var formKey string
	require.NoError(t, s.db.Raw("SELECT form_key FROM organizations WHERE slug = 'acme'").Row().Scan(&formKey))

	page := s.do("GET", "/forms/"+formKey, "", nil)
	require.Equal(t, 200, page.status)
	require.Contains(t, string(page.body), `<form method="post"`)
	require.Equal(t, 404, s.do("GET", "/forms/not-a-real-key", "", nil).status)

	form := url.Values{"name": {"Walk In"}, "email": {"Walk.In@Example.com"}, "subject": {"Door jammed"}, "description": {"Front door does not open."}}
	submit := func(v url.Values) response {
		req, _ := http.NewRequest("POST", s.srv.URL+"/forms/"+formKey, strings.NewReader(v.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return s.send(req)
	}
	res := submit(form)
	require.Equal(t, 303, res.status, string(res.body))
	loc, _ := url.Parse(res.header.Get("Location"))
	id := uuid.MustParse(loc.Query().Get("received"))
	it := in.wait(t, id)
	require.Equal(t, "walk.in@example.com", it.Requester.Email)
	require.Nil(t, it.Requester.UserID)
	require.Equal(t, pipeline.ChannelForm, it.Channel)
	// a double submit is the same ticket
	res = submit(form)
	loc, _ = url.Parse(res.header.Get("Location"))
	require.Equal(t, id.String(), loc.Query().Get("received"))
	// the honeypot: looks accepted, nothing produced
	bot := url.Values{"email": {"bot@spam.test"}, "subject": {"Buy"}, "description": {"Now"}, "website": {"http://spam.test"}}
	require.Equal(t, 303, submit(bot).status)
	// invalid input is a 422 problem
	require.Equal(t, 422, submit(url.Values{"email": {"nope"}, "subject": {""}}).status)
	// rate limit per address
	var last int
	for range 12 {
		last = submit(url.Values{"email": {"a@b.test"}, "subject": {"x"}, "description": {uuid.NewString()}}).status
	}
	require.Equal(t, 429, last)
	time.Sleep(300 * time.Millisecond)
	require.Equal(t, 1+(10-4), in.count(), "one walk-in ticket plus the six submissions within the limit")

	// a signed-in form post from another site is refused (CSRF)
	cu := s.login("customer_user@acme.test")
	req, _ := http.NewRequest("POST", s.srv.URL+"/api/v1/tickets", strings.NewReader(url.Values{"subject": {"s"}, "description": {"d"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+cu)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	require.Equal(t, 403, s.send(req).status)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Body = io.NopCloser(strings.NewReader(url.Values{"subject": {"s"}, "description": {"d"}}.Encode()))
	require.Equal(t, 202, s.send(req).status)
}
