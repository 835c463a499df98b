package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/r3labs/sse/v2"
	"github.com/stretchr/testify/require"

	"github.com/atumdesk/atumdesk/httpapi"
	"github.com/atumdesk/atumdesk/internal/auth"
	"github.com/atumdesk/atumdesk/internal/metrics"
	"github.com/atumdesk/atumdesk/internal/session"
	"github.com/atumdesk/atumdesk/internal/stream"
	"github.com/atumdesk/atumdesk/internal/testenv"
	"github.com/atumdesk/atumdesk/pipeline"
)

const streamCanary = "CANARY-staff-only-91c2"

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// streamStack is newStack's API with an SSE hub fed by a real broker, and
// its request log kept.
func streamStack(t *testing.T, cfg stream.Config) (*stack, *pipeline.Producer, *lockedBuffer) {
	s := newStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, err := pipeline.StartBroker(ctx, pipeline.BrokerConfig{DataDir: t.TempDir(), Addr: "127.0.0.1:0"})
	require.NoError(t, err)
	t.Cleanup(b.Close)
	require.NoError(t, pipeline.EnsureTopics(ctx, b.Addrs(), pipeline.DefaultTopics(1)))
	producer := pipeline.NewProducer(b.Addrs(), pipeline.WithBatchTimeout(time.Millisecond))
	t.Cleanup(func() { producer.Close() })

	cfg.Brokers = b.Addrs()
	hub := stream.NewHub(cfg)
	hctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = hub.Run(hctx) }()
	t.Cleanup(func() { stop(); <-done })

	logs := &lockedBuffer{}
	rdb := testenv.Redis(t)
	tokens, err := auth.NewTokens([]byte(strings.Repeat("k", 32)), 15*time.Minute)
	require.NoError(t, err)
	api := httpapi.New(httpapi.Deps{
		Config:   httpapi.Config{CookieSecure: true},
		Log:      slog.New(slog.NewTextHandler(logs, nil)),
		DB:       s.db,
		Redis:    rdb,
		Tokens:   tokens,
		Sessions: session.New(s.db, rdb, tokens, session.Config{RefreshTTL: time.Hour, MaxFailures: 5, Window: 15 * time.Minute}),
		Metrics:  metrics.New(),
		Stream:   hub,
	})
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	t.Cleanup(hub.Shutdown) // open streams would keep srv.Close waiting
	s.srv, s.api = srv, api
	tok := s.login("admin@acme.test")
	require.Eventually(t, func() bool { // ready once the hub found the topic
		return s.do("GET", "/api/v1/stream", tok, nil).status == http.StatusOK
	}, 20*time.Second, 20*time.Millisecond)
	return s, producer, logs
}

func publishEvent(t *testing.T, p *pipeline.Producer, ref pipeline.TicketRef, audience string, data any) pipeline.Event {
	t.Helper()
	ev, err := pipeline.NewEvent(pipeline.EventCommentAdded, ref, nil, audience, data)
	require.NoError(t, err)
	v, err := json.Marshal(ev)
	require.NoError(t, err)
	require.NoError(t, p.Publish(context.Background(), pipeline.Message{Topic: pipeline.TopicEvents,
		Key: []byte(ev.TicketID.String()), Value: v, Headers: map[string]string{pipeline.HeaderEventID: ev.ID.String()}}))
	return ev
}

// noRetry stops r3labs' client from reconnecting (a backoff.BackOff).
type noRetry struct{}

func (noRetry) NextBackOff() time.Duration { return -1 }
func (noRetry) Reset()                     {}

type streamReader struct {
	mu     sync.Mutex
	events []*sse.Event
}

func (r *streamReader) data() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		if len(e.Data) == 0 {
			continue // a keep-alive comment or a retry: line, no event
		}
		out = append(out, string(e.Data))
	}
	return out
}

func (r *streamReader) waitFor(t *testing.T, s string) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, d := range r.data() {
			if strings.Contains(d, s) {
				return true
			}
		}
		return false
	}, 10*time.Second, 5*time.Millisecond, "waiting for %s", s)
}

// subscribe opens a stream with r3labs' own client: with the token in the
// Authorization header, or (inQuery) as ?access_token= like a browser's
// EventSource.
func subscribe(t *testing.T, base, token string, inQuery bool) *streamReader {
	t.Helper()
	u := base + "/api/v1/stream"
	if inQuery {
		u += "?access_token=" + url.QueryEscape(token)
	}
	c := sse.NewClient(u)
	c.ReconnectStrategy = noRetry{}
	if !inQuery {
		c.Headers["Authorization"] = "Bearer " + token
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch := make(chan *sse.Event, 1024)
	require.NoError(t, c.SubscribeChanRawWithContext(ctx, ch))
	r := &streamReader{}
	opened := make(chan struct{})
	go func() {
		for e := range ch {
			if string(e.Event) == "ready" {
				close(opened)
				continue
			}
			r.mu.Lock()
			r.events = append(r.events, e)
			r.mu.Unlock()
		}
	}()
	select {
	case <-opened:
	case <-time.After(10 * time.Second):
		t.Fatal("stream did not open")
	}
	return r
}

// TestStreamFiltering runs the stream route end to end: real tokens, the
// route table's permission, events from the broker.
func TestStreamFiltering(t *testing.T) {
	s, producer, logs := streamStack(t, stream.Config{MaxPerUser: 2})
	acme, globex := s.orgs["acme"], s.orgs["globex"]
	cuser, other := s.userID("customer_user@acme.test"), s.newCustomer()

	agentTok := s.login("agent@acme.test")
	cuserTok := s.login("customer_user@acme.test")
	cadminTok := s.login("customer_admin@acme.test")
	globexTok := s.login("customer_user@globex.test")
	agent := subscribe(t, s.srv.URL, agentTok, false)
	customer := subscribe(t, s.srv.URL, cuserTok, true)
	cadmin := subscribe(t, s.srv.URL, cadminTok, true)
	globexUser := subscribe(t, s.srv.URL, globexTok, true)

	own := pipeline.TicketRef{OrgID: acme, TicketID: uuid.New(), RequesterID: cuser}
	notOwn := pipeline.TicketRef{OrgID: acme, TicketID: uuid.New(), RequesterID: other}
	reply := publishEvent(t, producer, own, pipeline.AudiencePublic, map[string]string{"body": "a reply"})
	note := publishEvent(t, producer, own, pipeline.AudienceStaff, map[string]string{"body": streamCanary})
	colleague := publishEvent(t, producer, notOwn, pipeline.AudiencePublic, map[string]string{"body": "someone else's"})
	agent.waitFor(t, colleague.ID.String())
	agent.waitFor(t, note.ID.String())
	// markers after everything else, one per customer stream
	mark := publishEvent(t, producer, own, pipeline.AudiencePublic, map[string]string{"marker": "acme"})
	gmark := publishEvent(t, producer, pipeline.TicketRef{OrgID: globex, TicketID: uuid.New(), RequesterID: s.userID("customer_user@globex.test")},
		pipeline.AudiencePublic, map[string]string{"marker": "globex"})
	customer.waitFor(t, mark.ID.String())
	cadmin.waitFor(t, mark.ID.String())
	globexUser.waitFor(t, gmark.ID.String())

	has := func(r *streamReader, ev pipeline.Event) bool {
		for _, d := range r.data() {
			if strings.Contains(d, ev.ID.String()) {
				return true
			}
		}
		return false
	}
	require.True(t, has(agent, reply) && has(agent, note) && has(agent, colleague))
	require.True(t, has(customer, reply))
	require.False(t, has(customer, colleague), "another requester's ticket")
	require.True(t, has(cadmin, reply) && has(cadmin, colleague))
	for name, r := range map[string]*streamReader{"customer": customer, "customer_admin": cadmin, "globex": globexUser} {
		for _, d := range r.data() {
			require.NotContains(t, d, streamCanary, "%s received a staff-only event", name)
			require.NotContains(t, d, note.ID.String(), name)
		}
	}
	require.Len(t, globexUser.data(), 1, "globex sees only its own marker")
	require.NotContains(t, globexUser.data()[0], acme.String())
	require.False(t, has(agent, gmark), "acme's agent sees nothing of globex")

	// Caps: the customer holds one stream (MaxPerUser 2).
	subscribe(t, s.srv.URL, cuserTok, false)
	res := s.do("GET", "/api/v1/stream", cuserTok, nil)
	require.Equal(t, http.StatusTooManyRequests, res.status)
	require.Equal(t, "application/problem+json", res.header.Get("Content-Type"))
	require.NotEmpty(t, res.header.Get("Retry-After"))

	// Authentication: no token, a bad one, a bad one in the query.
	require.Equal(t, http.StatusUnauthorized, s.do("GET", "/api/v1/stream", "", nil).status)
	require.Equal(t, http.StatusUnauthorized, s.do("GET", "/api/v1/stream", "nope", nil).status)
	require.Equal(t, http.StatusUnauthorized, s.do("GET", "/api/v1/stream?access_token=nope", "", nil).status)
	// The query token counts on the stream route only.
	require.Equal(t, http.StatusUnauthorized, s.do("GET", "/api/v1/me?access_token="+url.QueryEscape(agentTok), "", nil).status)

	// Tokens never reach the log, the route does.
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "route=/api/v1/stream") }, 5*time.Second, 10*time.Millisecond)
	for _, tok := range []string{agentTok, cuserTok, cadminTok, globexTok} {
		require.NotContains(t, logs.String(), tok)
	}
	require.NotContains(t, logs.String(), "access_token")
}

// TestStreamTokenExpiry: a stream ends when its access token expires.
func TestStreamTokenExpiry(t *testing.T) {
	s, _, _ := streamStack(t, stream.Config{})
	tokens, err := auth.NewTokens([]byte(strings.Repeat("k", 32)), 1500*time.Millisecond)
	require.NoError(t, err)
	tok, err := tokens.Issue(s.userID("agent@acme.test"), s.orgs["acme"], "agent")
	require.NoError(t, err)
	req, _ := http.NewRequest("GET", s.srv.URL+"/api/v1/stream", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	ended := make(chan struct{})
	go func() {
		buf := make([]byte, 4096)
		for {
			if _, err := res.Body.Read(buf); err != nil {
				close(ended)
				return
			}
		}
	}()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the stream outlived its token")
	}
}
