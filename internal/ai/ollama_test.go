package ai_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/internal/ai"
	"github.com/atumdesk/atumdesk/internal/ai/aitest"
	"github.com/atumdesk/atumdesk/internal/ai/ollamatest"
	"github.com/atumdesk/atumdesk/internal/ai/textvec"
	"github.com/atumdesk/atumdesk/internal/testenv"
	"github.com/atumdesk/atumdesk/models"
)

// recorder keeps every request body sent to Ollama, so tests can check
// what left the helpdesk.
type recorder struct {
	mu     sync.Mutex
	bodies []string
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		_ = req.Body.Close()
		r.mu.Lock()
		r.bodies = append(r.bodies, req.URL.Path+" "+string(b))
		r.mu.Unlock()
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	return http.DefaultTransport.RoundTrip(req)
}

func (r *recorder) sent() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.bodies, "\n")
}

func ollamaConfig(url string, rec *recorder) ai.OllamaConfig {
	cfg := ai.OllamaConfig{URL: url, TriageModel: ollamatest.ModelName, EmbedModel: ollamatest.ModelName,
		DraftModel: ollamatest.ModelName, Timeout: 60 * time.Second, Retries: 0}
	if rec != nil {
		cfg.HTTPClient = &http.Client{Transport: rec}
	}
	return cfg
}

func ollamaOrg(t *testing.T, db *gorm.DB) *aitest.Org {
	org := aitest.NewOrg(t, db, "ollama")
	org.Settings(map[string]any{"provider": "ollama"})
	return org
}

// The provider against a real Ollama server running the tiny generated
// model: the triage reply is schema-valid JSON, the embed vectors have the
// model's dimension, a draft comes back, and nothing falls back.
func TestOllamaProviderAgainstARealServer(t *testing.T) {
	srv := ollamatest.Shared(t)
	db, _ := testenv.DB(t)
	ctx := context.Background()
	org := ollamaOrg(t, db)
	rec := &recorder{}
	svc, reg := newService(t, db, func(c *ai.Config) { c.Ollama = ollamaConfig(srv.URL, rec) })

	s, err := svc.Triage(ctx, ai.Ticket{OrgID: org.ID, Subject: "Server down, urgent!", Body: "Nothing works."})
	require.NoError(t, err)
	require.Equal(t, ai.ProviderOllama, s.Provider, "no fallback: %s", srv.Log())
	require.Equal(t, ollamatest.ModelName, s.Model)
	require.True(t, s.Priority.Valid(), "priority %q from the schema's enum", s.Priority)
	require.GreaterOrEqual(t, s.Confidence, 0.0)
	require.LessOrEqual(t, s.Confidence, 1.0)
	if s.ServiceID != nil {
		require.Contains(t, org.Services, serviceName(org, *s.ServiceID), "a service of the organisation")
	}
	require.Contains(t, s.Cues, "urgent", "urgency cues are reported with any provider")
	// The request carried the schema as `format`, with the org's services.
	var chat struct {
		Format struct {
			Properties map[string]struct {
				Enum []string `json:"enum"`
			} `json:"properties"`
			Required []string `json:"required"`
		} `json:"format"`
		Stream *bool `json:"stream"`
	}
	body := rec.sent()
	require.Contains(t, body, "/api/chat ")
	require.NoError(t, json.Unmarshal([]byte(body[strings.Index(body, "/api/chat ")+len("/api/chat "):]), &chat))
	require.ElementsMatch(t, []string{"service", "category", "priority", "confidence"}, chat.Format.Required)
	require.ElementsMatch(t, []string{"none", "Accounts", "Billing", "Network"}, chat.Format.Properties["service"].Enum)
	require.Equal(t, []string{"low", "medium", "high", "critical"}, chat.Format.Properties["priority"].Enum)
	require.False(t, *chat.Stream)

	// The schema holds on its own too: ten different tickets, ten valid replies.
	p, err := ai.NewOllama(ollamaConfig(srv.URL, nil))
	require.NoError(t, err)
	for i, subject := range []string{"VPN", "Invoice wrong", "Password", "Printer", "Refund", "Wifi", "Login", "Outage", "Spam", "Hello"} {
		s, err := p.Triage(ctx, ai.TriageInput{Ticket: ai.Ticket{Subject: subject, Body: strings.Repeat("please help ", i)},
			Services: []ai.OrgService{{Name: "Accounts"}, {Name: "Billing"}}, Categories: []string{"account", "billing"}})
		require.NoError(t, err, "ticket %d", i)
		require.True(t, s.Priority.Valid())
		require.True(t, s.Category == "" || s.Category == "account" || s.Category == "billing", s.Category)
	}

	vec, model, err := svc.Embed(ctx, ai.Ticket{OrgID: org.ID, Subject: "VPN", Body: "The VPN does not connect."})
	require.NoError(t, err)
	require.Equal(t, "ollama:"+ollamatest.ModelName, model)
	require.Len(t, vec, 64, "the tiny model's embedding length")
	require.InDelta(t, 1.0, textvec.Dot(vec, vec), 1e-4)

	// Draft: grounded on the KB and public comments, never on internal notes.
	kb := org.Article("How to reset your password", "Click \"Forgot password\" on the login page.")
	ticket := org.Ticket(aitest.Ticket{Subject: "Cannot log in", Body: "I forgot my password."})
	org.Comment(ticket, "SECRET-NOTE-0815: do not tell the customer", true)
	org.Comment(ticket, "Which browser do you use?", false)
	d, err := svc.DraftFor(ctx, org.ID, ticket, org.Agent)
	require.NoError(t, err)
	require.Equal(t, ai.ProviderOllama, d.Provider)
	require.NotEmpty(t, d.Text)
	require.Equal(t, kb, d.Sources[0].ID)
	sent := rec.sent()
	require.Contains(t, sent, "/api/generate ")
	require.Contains(t, sent, "How to reset your password")
	require.Contains(t, sent, "Which browser do you use?")
	require.NotContains(t, sent, "SECRET-NOTE-0815", "an internal note was sent to the model")

	require.Zero(t, aitest.Counter(t, reg, "atumdesk_ai_fallbacks_total", nil))
	require.EqualValues(t, 1, aitest.Counter(t, reg, "atumdesk_ai_requests_total", map[string]string{"provider": "ollama", "op": "triage", "outcome": "ok"}))
	require.EqualValues(t, 1, aitest.Counter(t, reg, "atumdesk_ai_requests_total", map[string]string{"provider": "ollama", "op": "draft", "outcome": "ok"}))
}

func serviceName(org *aitest.Org, id [16]byte) string {
	for name, sid := range org.Services {
		if sid == id {
			return name
		}
	}
	return ""
}

// A slow Ollama (here: slower than a 1 ms budget) degrades to the built-in
// provider, counted with reason "timeout".
func TestOllamaTimeoutFallsBack(t *testing.T) {
	srv := ollamatest.Shared(t)
	db, _ := testenv.DB(t)
	org := ollamaOrg(t, db)
	cfg := ollamaConfig(srv.URL, nil)
	cfg.Timeout, cfg.Retries = time.Millisecond, 1
	svc, reg := newService(t, db, func(c *ai.Config) { c.Ollama = cfg })
	start := time.Now()
	s, err := svc.Triage(context.Background(), ai.Ticket{OrgID: org.ID, Subject: "Server down, urgent!"})
	require.NoError(t, err)
	require.Less(t, time.Since(start), 5*time.Second)
	require.Equal(t, ai.ProviderBuiltin, s.Provider)
	require.Equal(t, models.PriorityCritical, s.Priority)
	require.EqualValues(t, 1, aitest.Counter(t, reg, "atumdesk_ai_fallbacks_total", map[string]string{"op": "triage", "reason": "timeout"}))
}

// The server stops in the middle of a run: the next calls fall back, the
// ticket work goes on.
func TestOllamaStoppedMidRunFallsBack(t *testing.T) {
	srv := ollamatest.Start(t) // a private server this test may stop
	db, _ := testenv.DB(t)
	ctx := context.Background()
	org := ollamaOrg(t, db)
	cfg := ollamaConfig(srv.URL, nil)
	cfg.Timeout, cfg.Retries = 30*time.Second, 1
	svc, reg := newService(t, db, func(c *ai.Config) { c.Ollama = cfg })

	s, err := svc.Triage(ctx, ai.Ticket{OrgID: org.ID, Subject: "Printer jam", Body: "The printer is jammed."})
	require.NoError(t, err)
	require.Equal(t, ai.ProviderOllama, s.Provider, srv.Log())

	srv.Stop()
	s, err = svc.Triage(ctx, ai.Ticket{OrgID: org.ID, Subject: "Server down, urgent!"})
	require.NoError(t, err)
	require.Equal(t, ai.ProviderBuiltin, s.Provider)
	require.Equal(t, models.PriorityCritical, s.Priority)
	_, model, err := svc.Embed(ctx, ai.Ticket{OrgID: org.ID, Subject: "x"})
	require.NoError(t, err)
	require.Equal(t, ai.BuiltinModel, model)
	require.EqualValues(t, 1, aitest.Counter(t, reg, "atumdesk_ai_fallbacks_total", map[string]string{"op": "triage", "reason": "unreachable"}))
	require.EqualValues(t, 1, aitest.Counter(t, reg, "atumdesk_ai_fallbacks_total", map[string]string{"op": "embed", "reason": "unreachable"}))
	require.EqualValues(t, 1, aitest.Counter(t, reg, "atumdesk_ai_requests_total", map[string]string{"provider": "ollama", "op": "triage", "outcome": "ok"}))
}

// inFlight counts the requests to Ollama under way, and the most at once.
type inFlight struct {
	mu       sync.Mutex
	now, max int
}

func (f *inFlight) RoundTrip(req *http.Request) (*http.Response, error) {
	f.mu.Lock()
	f.now++
	f.max = max(f.max, f.now)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.now--
		f.mu.Unlock()
	}()
	return http.DefaultTransport.RoundTrip(req)
}

// A batch's tickets go to Ollama one call each, a few at a time, and
// come back in their order.
func TestOllamaBatchCallsOverlap(t *testing.T) {
	srv := ollamatest.Shared(t)
	db, _ := testenv.DB(t)
	ctx := context.Background()
	org := ollamaOrg(t, db)
	flight := &inFlight{}
	cfg := ollamaConfig(srv.URL, nil)
	cfg.HTTPClient = &http.Client{Transport: flight}
	svc, reg := newService(t, db, func(c *ai.Config) { c.Ollama = cfg })
	var ts []ai.Ticket
	for _, subject := range []string{"VPN", "Invoice wrong", "Password", "Printer", "Refund", "Wifi", "Login", "Outage"} {
		ts = append(ts, ai.Ticket{ID: uuid.Must(uuid.NewV7()), OrgID: org.ID, Subject: subject, Body: "Please help."})
	}
	sugs, err := svc.TriageAll(ctx, ts)
	require.NoError(t, err)
	require.Len(t, sugs, len(ts))
	for _, s := range sugs {
		require.Equal(t, ai.ProviderOllama, s.Provider, srv.Log())
	}
	vecs, err := svc.EmbedAll(ctx, ts)
	require.NoError(t, err)
	for i, v := range vecs {
		require.Equal(t, ts[i].ID, v.TicketID)
		require.Equal(t, "ollama:"+ollamatest.ModelName, v.Model)
		require.Len(t, v.Vec, 64)
		one, _, err := svc.Embed(ctx, ts[i])
		require.NoError(t, err)
		require.InDeltaSlice(t, one, v.Vec, 1e-4, "ticket %d: its own vector", i)
	}
	require.Greater(t, flight.max, 1, "calls overlap")
	require.LessOrEqual(t, flight.max, 4, "a few at a time")
	require.Zero(t, aitest.Counter(t, reg, "atumdesk_ai_fallbacks_total", nil))
	require.EqualValues(t, len(ts), aitest.Counter(t, reg, "atumdesk_ai_requests_total", map[string]string{"provider": "ollama", "op": "triage", "outcome": "ok"}))
}
