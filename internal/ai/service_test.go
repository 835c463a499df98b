package ai_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/internal/ai"
	"github.com/atumdesk/atumdesk/internal/ai/aitest"
	"github.com/atumdesk/atumdesk/internal/ai/textvec"
	"github.com/atumdesk/atumdesk/internal/apperr"
	"github.com/atumdesk/atumdesk/internal/config"
	"github.com/atumdesk/atumdesk/internal/testenv"
	"github.com/atumdesk/atumdesk/models"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

func newService(t *testing.T, db *gorm.DB, mod func(*ai.Config)) (*ai.Service, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg := ai.Config{DB: db, Redis: testenv.Redis(t), Logger: discard, Registerer: reg}
	if mod != nil {
		mod(&cfg)
	}
	svc, err := ai.New(cfg)
	require.NoError(t, err)
	return svc, reg
}

// embedAll stores every ticket's vector as the embed stage does.
func embedAll(t *testing.T, svc *ai.Service, db *gorm.DB, org uuid.UUID) {
	t.Helper()
	var rows []struct {
		ID          uuid.UUID
		Subject     string
		Description string
	}
	require.NoError(t, db.Raw(`SELECT id, subject, description FROM tickets WHERE org_id = ?`, org).Scan(&rows).Error)
	for _, r := range rows {
		vec, model, err := svc.Embed(context.Background(), ai.Ticket{ID: r.ID, OrgID: org, Subject: r.Subject, Body: r.Description})
		require.NoError(t, err)
		_, err = ai.StoreVector(context.Background(), db, org, r.ID, model, vec)
		require.NoError(t, err)
		svc.IndexTicket(context.Background(), org, r.ID, model, vec)
	}
}

// The seed's Test 5, first part, and the "too little history" rule.
func TestServerDownIsUrgentWithoutHistory(t *testing.T) {
	db, _ := testenv.DB(t)
	org := aitest.NewOrg(t, db, "urgent")
	svc, _ := newService(t, db, nil)
	s, err := svc.Triage(context.Background(), ai.Ticket{OrgID: org.ID, Subject: "Server down, urgent!", Body: ""})
	require.NoError(t, err)
	require.Equal(t, models.PriorityCritical, s.Priority) // "urgent" is the top priority, critical
	require.Greater(t, s.PriorityConfidence, 0.7)
	require.Greater(t, s.Confidence, 0.7)
	require.True(t, s.LowConfidence, "no history: rules only")
	require.Nil(t, s.ServiceID, "no history: no guessed service")
	require.Empty(t, s.Category)
	require.Equal(t, ai.ProviderBuiltin, s.Provider)

	calm, err := svc.Triage(context.Background(), ai.Ticket{OrgID: org.ID, Subject: "A question about the newsletter", Body: "No rush."})
	require.NoError(t, err)
	require.Equal(t, models.PriorityLow, calm.Priority)
	plain, err := svc.Triage(context.Background(), ai.Ticket{OrgID: org.ID, Subject: "Printer settings", Body: "Where do I change them?"})
	require.NoError(t, err)
	require.Equal(t, models.PriorityMedium, plain.Priority)
	require.Less(t, plain.Confidence, 0.5, "no cue, no history: a low-confidence suggestion")
}

func TestRetrainLearnsTheOrganisationsLabels(t *testing.T) {
	db, _ := testenv.DB(t)
	org := aitest.NewOrg(t, db, "learn")
	org.History(20)
	rdb := testenv.Redis(t)
	svc, reg := newService(t, db, func(c *ai.Config) { c.Redis = rdb })
	ctx := context.Background()
	m, err := svc.Retrain(ctx, org.ID)
	require.NoError(t, err)
	require.NotNil(t, m.Service)
	require.NotNil(t, m.Category)
	require.NotNil(t, m.Priority)
	require.Equal(t, 60, m.Examples)
	require.EqualValues(t, 1, aitest.Counter(t, reg, "atumdesk_ai_retrains_total", map[string]string{"outcome": "trained"}))

	// Another process reads the stored model.
	other, _ := newService(t, db, func(c *ai.Config) { c.Redis = rdb })
	s, err := other.Triage(ctx, ai.Ticket{OrgID: org.ID, Subject: "Forgot password", Body: "I cannot log in since I forgot my password."})
	require.NoError(t, err)
	require.Equal(t, "account", s.Category)
	require.Equal(t, org.Services["Accounts"], *s.ServiceID)
	require.False(t, s.LowConfidence)
	require.Greater(t, s.CategoryConfidence, 0.6)
	require.Equal(t, s.CategoryConfidence, s.Confidence)
	require.Contains(t, s.Model, "org-classifier@")

	b, err := other.Triage(ctx, ai.Ticket{OrgID: org.ID, Subject: "Invoice", Body: "I was charged twice for the invoice."})
	require.NoError(t, err)
	require.Equal(t, "billing", b.Category)

	// A deactivated service is never suggested.
	require.NoError(t, db.Exec(`UPDATE services SET is_active = false WHERE id = ?`, org.Services["Billing"]).Error)
	fresh, _ := newService(t, db, func(c *ai.Config) { c.Redis = rdb })
	b, err = fresh.Triage(ctx, ai.Ticket{OrgID: org.ID, Subject: "Invoice", Body: "I was charged twice for the invoice."})
	require.NoError(t, err)
	if b.ServiceID != nil {
		require.NotEqual(t, org.Services["Billing"], *b.ServiceID)
	}

	// An organisation with three resolved tickets has too little history.
	small := aitest.NewOrg(t, db, "small")
	small.History(1)
	m, err = svc.Retrain(ctx, small.ID)
	require.NoError(t, err)
	require.Nil(t, m.Service)
	require.Nil(t, m.Category)
	require.EqualValues(t, 1, aitest.Counter(t, reg, "atumdesk_ai_retrains_total", map[string]string{"outcome": "too_little_data"}))
}

func TestSimilarTicketsStayInTheOrganisation(t *testing.T) {
	db, _ := testenv.DB(t)
	ctx := context.Background()
	a, b := aitest.NewOrg(t, db, "alpha"), aitest.NewOrg(t, db, "beta")
	a.History(8)
	b.History(8)
	svc, _ := newService(t, db, nil)
	_, err := svc.Retrain(ctx, a.ID)
	require.NoError(t, err)
	q := a.Ticket(aitest.Ticket{Subject: "Password reset needed", Body: "I forgot my password and the login fails."})
	open := a.Ticket(aitest.Ticket{Subject: "Password reset needed", Body: "I forgot my password and the login fails!"})
	resolved := a.Ticket(aitest.Ticket{Subject: "Password forgotten", Body: "I forgot my password.", Status: "resolved", Category: "account"})
	a.Comment(resolved, "INTERNAL-ONLY: the customer was rude", true)
	a.Comment(resolved, "Use the reset link we just sent.", false)
	embedAll(t, svc, db, a.ID)
	embedAll(t, svc, db, b.ID)

	got, err := svc.Similar(ctx, a.ID, q, 5)
	require.NoError(t, err)
	require.Len(t, got, 5)
	var bIDs []uuid.UUID
	require.NoError(t, db.Raw(`SELECT id FROM tickets WHERE org_id = ?`, b.ID).Scan(&bIDs).Error)
	seenResolved := false
	for i, s := range got {
		require.NotContains(t, bIDs, s.TicketID, "another organisation's ticket")
		require.NotEqual(t, q, s.TicketID, "the ticket itself")
		require.Contains(t, strings.ToLower(s.Subject+" "+s.Resolution), "password", "a password ticket for a password ticket: %+v", s)
		if !s.Resolved {
			seenResolved = true
		} else {
			require.False(t, seenResolved, "resolved tickets come first (item %d)", i)
			require.NotContains(t, s.Resolution, "INTERNAL-ONLY")
		}
		if s.TicketID == resolved {
			require.Equal(t, "Use the reset link we just sent.", s.Resolution)
		}
		if s.TicketID == open {
			require.True(t, s.PossibleDuplicate, "a near-identical open ticket is flagged")
		}
	}
	// Org B asking about A's ticket: not found.
	_, err = svc.Similar(ctx, b.ID, q, 5)
	require.True(t, apperr.IsKind(err, apperr.NotFound), "%v", err)

	// A ticket not embedded yet is embedded on the fly.
	late := a.Ticket(aitest.Ticket{Subject: "VPN down", Body: "The VPN does not connect."})
	got, err = svc.Similar(ctx, a.ID, late, 3)
	require.NoError(t, err)
	require.NotEmpty(t, got)
	require.Contains(t, strings.ToLower(got[0].Subject), "vpn")
}

// Vectors live in ticket_embeddings: the upsert writes nothing when the
// vector is unchanged, refuses another organisation's ticket, and a fresh
// process's index loads what was stored.
func TestStoreVectorUpsertsOnce(t *testing.T) {
	db, _ := testenv.DB(t)
	ctx := context.Background()
	a, b := aitest.NewOrg(t, db, "store"), aitest.NewOrg(t, db, "storeother")
	id := a.Ticket(aitest.Ticket{Subject: "VPN down", Body: "The VPN does not connect."})
	other := a.Ticket(aitest.Ticket{Subject: "VPN broken", Body: "The VPN does not connect at all."})
	vec := ai.EmbedText("VPN down\nThe VPN does not connect.")
	store := func(org, ticket uuid.UUID, vec []float32) bool {
		t.Helper()
		wrote, err := ai.StoreVector(ctx, db, org, ticket, ai.BuiltinModel, vec)
		require.NoError(t, err)
		return wrote
	}
	require.True(t, store(a.ID, id, vec))
	version := func() (xmin string) {
		require.NoError(t, db.Raw(`SELECT xmin::text FROM ticket_embeddings WHERE ticket_id = ?`, id).Scan(&xmin).Error)
		return xmin
	}
	first := version()
	require.False(t, store(a.ID, id, vec))
	require.Equal(t, first, version(), "the same vector again writes no new row version")

	var got models.TicketEmbedding
	require.NoError(t, db.Take(&got, "ticket_id = ?", id).Error)
	require.Equal(t, a.ID, got.OrgID)
	require.Equal(t, ai.BuiltinModel, got.Model)
	require.Equal(t, models.Vector(vec), got.Embedding, "float32 values round-trip exactly")

	require.False(t, store(b.ID, other, vec), "org B cannot attach a vector to A's ticket")
	require.False(t, store(a.ID, uuid.Must(uuid.NewV7()), vec), "no such ticket: nothing stored, no error")

	vec2 := ai.EmbedText("VPN broken\nThe VPN does not connect at all.")
	require.True(t, store(a.ID, other, vec2))
	fresh, _ := newService(t, db, nil)
	require.NoError(t, fresh.LoadIndex(ctx))
	sim, err := fresh.Similar(ctx, a.ID, id, 3)
	require.NoError(t, err)
	require.Len(t, sim, 1)
	require.Equal(t, other, sim[0].TicketID)
}

func TestSuggestKBAndDraftUsePublicMaterialOnly(t *testing.T) {
	db, _ := testenv.DB(t)
	ctx := context.Background()
	a, b := aitest.NewOrg(t, db, "kb"), aitest.NewOrg(t, db, "kbother")
	kb := a.Article("How to reset your password", "Open the login page, click \"Forgot password\" and follow the link we e-mail you. The link is valid for one hour.")
	a.Article("Paying an invoice", "Invoices can be paid by bank transfer or credit card.")
	b.Article("How to reset your password at Beta", "Beta's own secret procedure.")
	login := a.Ticket(aitest.Ticket{Subject: "Cannot log in", Body: "I forgot my password and cannot log in."})
	a.Comment(login, "SECRET-NOTE-4711: customer owes us money", true)
	a.Comment(login, "Which browser do you use?", false)
	svc, _ := newService(t, db, nil)

	got, err := svc.SuggestKB(ctx, a.ID, login, 5)
	require.NoError(t, err)
	require.NotEmpty(t, got)
	require.Equal(t, kb, got[0].ArticleID)
	for _, s := range got {
		require.NotContains(t, s.Title, "Beta")
	}

	// The seed's Test 5: a login ticket gets a helpful draft.
	d, err := svc.DraftFor(ctx, a.ID, login, a.Agent)
	require.NoError(t, err)
	require.Equal(t, ai.ProviderBuiltin, d.Provider)
	require.Contains(t, d.Text, "Forgot password")
	require.NotContains(t, d.Text, "SECRET-NOTE-4711")
	require.Equal(t, kb, d.Sources[0].ID)

	// A canned response that fits is preferred, as written.
	canned := a.Canned("Password reset", "Hello, please use the \"Forgot password\" link on the login page to reset your password. Best regards")
	d, err = svc.DraftFor(ctx, a.ID, login, a.Agent)
	require.NoError(t, err)
	require.Equal(t, canned, d.Sources[0].ID)
	require.NotContains(t, d.Text, "SECRET-NOTE-4711")

	_, err = svc.DraftFor(ctx, b.ID, login, b.Agent)
	require.True(t, apperr.IsKind(err, apperr.NotFound), "%v", err)
}

func TestUnreachableOllamaFallsBackToBuiltin(t *testing.T) {
	db, _ := testenv.DB(t)
	ctx := context.Background()
	org := aitest.NewOrg(t, db, "fallback")
	org.Settings(map[string]any{"provider": "ollama"})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := "http://" + l.Addr().String()
	require.NoError(t, l.Close()) // nothing listens there now
	svc, reg := newService(t, db, func(c *ai.Config) {
		c.Ollama = ai.OllamaConfig{URL: dead, TriageModel: "m", EmbedModel: "m", DraftModel: "m", Timeout: time.Second, Retries: 1}
	})
	s, err := svc.Triage(ctx, ai.Ticket{OrgID: org.ID, Subject: "Server down, urgent!"})
	require.NoError(t, err, "a ticket never fails because of AI")
	require.Equal(t, ai.ProviderBuiltin, s.Provider)
	require.Equal(t, models.PriorityCritical, s.Priority)
	vec, model, err := svc.Embed(ctx, ai.Ticket{OrgID: org.ID, Subject: "x", Body: "y"})
	require.NoError(t, err)
	require.Equal(t, ai.BuiltinModel, model)
	require.Len(t, vec, ai.BuiltinDim)
	require.EqualValues(t, 1, aitest.Counter(t, reg, "atumdesk_ai_fallbacks_total", map[string]string{"op": "triage", "reason": "unreachable"}))
	require.EqualValues(t, 1, aitest.Counter(t, reg, "atumdesk_ai_fallbacks_total", map[string]string{"op": "embed", "reason": "unreachable"}))
	require.EqualValues(t, 2, aitest.Counter(t, reg, "atumdesk_ai_requests_total", map[string]string{"provider": "ollama", "outcome": "error"}))

	// Asking for Ollama on a server without one: the built-in provider,
	// counted as "disabled".
	plain, reg2 := newService(t, db, nil)
	s, err = plain.Triage(ctx, ai.Ticket{OrgID: org.ID, Subject: "hello"})
	require.NoError(t, err)
	require.Equal(t, ai.ProviderBuiltin, s.Provider)
	require.EqualValues(t, 1, aitest.Counter(t, reg2, "atumdesk_ai_fallbacks_total", map[string]string{"op": "triage", "reason": "disabled"}))
}

func TestBuiltinEmbeddingIsStableAndRobustToTypos(t *testing.T) {
	a := ai.EmbedText("I forgot my password and cannot log in")
	b := ai.EmbedText("i forgott my pasword and cant login")
	c := ai.EmbedText("The invoice shows the wrong amount")
	require.Len(t, a, ai.BuiltinDim)
	require.InDelta(t, 1.0, textvec.Dot(a, a), 1e-5)
	require.Greater(t, textvec.Dot(a, b), textvec.Dot(a, c)+0.2)
	require.Equal(t, a, ai.EmbedText("I forgot my password and cannot log in"), "deterministic")
}

// Triage and embedding with the built-in provider must never hold the
// pipeline back: well under a millisecond per ticket.
func BenchmarkBuiltinTriageAndEmbed(b *testing.B) {
	var ex []ai.LabelledTicket
	for i := range 300 {
		ex = append(ex, ai.LabelledTicket{Subject: "Password reset " + string(rune('a'+i%26)), Body: "I forgot my password",
			Category: []string{"account", "billing", "network"}[i%3], Priority: "medium"})
	}
	m, err := ai.TrainOrgModel(ex, ai.TrainOptions{}, time.Now())
	require.NoError(b, err)
	in := ai.TriageInput{Ticket: ai.Ticket{Subject: "Cannot log in", Body: "I forgot my password and the reset link does not arrive. Please help, it is urgent."}, Model: m}
	var p ai.Builtin
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		if _, err := p.Triage(ctx, in); err != nil {
			b.Fatal(err)
		}
		if _, _, err := p.Embed(ctx, []string{in.Ticket.Text()}); err != nil {
			b.Fatal(err)
		}
	}
}

func TestNewFromConfig(t *testing.T) {
	db, _ := testenv.DB(t)
	cfg, err := config.Load(map[string]string{"ATUMDESK_OLLAMA_URL": "http://127.0.0.1:1", "ATUMDESK_AI_PROVIDER": "ollama"})
	require.NoError(t, err)
	svc, err := ai.NewFromConfig(cfg, db, nil, discard, prometheus.NewRegistry())
	require.NoError(t, err)
	org := aitest.NewOrg(t, db, "cfg")
	s, err := svc.Triage(context.Background(), ai.Ticket{OrgID: org.ID, Subject: "hello"})
	require.NoError(t, err)
	require.Equal(t, ai.ProviderBuiltin, s.Provider, "the default provider is Ollama, unreachable: fallback")
	_, err = config.Load(map[string]string{"ATUMDESK_OLLAMA_URL": "ftp://x", "ATUMDESK_AI_PROVIDER": "gpt", "ATUMDESK_OLLAMA_RETRIES": "9"})
	require.ErrorContains(t, err, "ATUMDESK_OLLAMA_URL")
	require.ErrorContains(t, err, "ATUMDESK_AI_PROVIDER")
	require.ErrorContains(t, err, "ATUMDESK_OLLAMA_RETRIES")
}
