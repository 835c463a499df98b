package ai

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ollama/ollama/api"

	"github.com/atumdesk/atumdesk/internal/ai/textvec"
	"github.com/atumdesk/atumdesk/models"
)

// OllamaConfig configures the Ollama provider.
type OllamaConfig struct {
	URL         string // e.g. http://127.0.0.1:11434; empty: Ollama is not used
	TriageModel string
	EmbedModel  string
	DraftModel  string
	// Timeout bounds one attempt (default 20 s); Retries is how many more
	// attempts follow a timeout or a connection/server error (default 0).
	Timeout time.Duration
	Retries int
	// Options are passed to every request as model options (e.g.
	// {"num_thread": 1}); temperature 0 and num_predict are set per call.
	Options map[string]any
	// HTTPClient overrides the transport (default: a plain client; the
	// timeout comes from Timeout through the context).
	HTTPClient *http.Client
}

// Ollama is the provider backed by an Ollama server.
type Ollama struct {
	cfg    OllamaConfig
	client *api.Client
}

var _ Provider = (*Ollama)(nil)

// NewOllama returns the provider; it does not contact the server.
func NewOllama(cfg OllamaConfig) (*Ollama, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("ai: ollama: want an http(s) URL, got %q", cfg.URL)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 20 * time.Second
	}
	if cfg.Retries < 0 {
		cfg.Retries = 0
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	return &Ollama{cfg: cfg, client: api.NewClient(u, hc)}, nil
}

// Name implements Provider.
func (o *Ollama) Name() string { return ProviderOllama }

// Failure reasons (the reason label of atumdesk_ai_fallbacks_total).
const (
	ReasonTimeout     = "timeout"
	ReasonUnreachable = "unreachable"
	ReasonError       = "error"
	ReasonInvalid     = "invalid"
	ReasonDisabled    = "disabled"
)

// ProviderError is a failed provider call, classified.
type ProviderError struct {
	Reason string
	Err    error
}

func (e *ProviderError) Error() string   { return fmt.Sprintf("ai: %s: %v", e.Reason, e.Err) }
func (e *ProviderError) Unwrap() []error { return []error{ErrUnavailable, e.Err} }

// ReasonOf classifies err for the fallback metric.
func ReasonOf(err error) string {
	var pe *ProviderError
	if errors.As(err, &pe) {
		return pe.Reason
	}
	return classifyErr(err)
}

func classifyErr(err error) string {
	var ne net.Error
	var oe *net.OpError
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return ReasonTimeout
	case errors.As(err, &oe), errors.Is(err, net.ErrClosed), strings.Contains(err.Error(), "connection refused"),
		strings.Contains(err.Error(), "EOF"), strings.Contains(err.Error(), "connection reset"):
		return ReasonUnreachable
	}
	return ReasonError
}

// retryable: worth another attempt (the server may come back or catch up).
func retryable(err error) bool {
	var se api.StatusError
	if errors.As(err, &se) {
		return se.StatusCode >= 500 || se.StatusCode == http.StatusTooManyRequests
	}
	r := classifyErr(err)
	return r == ReasonTimeout || r == ReasonUnreachable
}

// call runs fn with a per-attempt timeout and retries.
func (o *Ollama) call(ctx context.Context, fn func(context.Context) error) error {
	var err error
	for attempt := 0; attempt <= o.cfg.Retries; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return &ProviderError{Reason: classifyErr(ctx.Err()), Err: ctx.Err()}
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
			}
		}
		actx, cancel := context.WithTimeout(ctx, o.cfg.Timeout)
		err = fn(actx)
		cancel()
		if err == nil {
			return nil
		}
		var pe *ProviderError
		if errors.As(err, &pe) || !retryable(err) || ctx.Err() != nil {
			break
		}
	}
	var pe *ProviderError
	if errors.As(err, &pe) {
		return err
	}
	return &ProviderError{Reason: classifyErr(err), Err: err}
}

func (o *Ollama) options(numPredict int) map[string]any {
	opts := map[string]any{"temperature": 0, "num_predict": numPredict}
	for k, v := range o.cfg.Options {
		opts[k] = v
	}
	return opts
}

// triageSchema is the JSON schema the reply must match; Ollama turns it
// into a grammar, so even a weak model answers with valid JSON.
type triageSchema struct {
	Type       string         `json:"type"`
	Properties map[string]any `json:"properties"`
	Required   []string       `json:"required"`
}

type triageReply struct {
	Service    string   `json:"service"`
	Category   string   `json:"category"`
	Priority   string   `json:"priority"`
	Confidence *float64 `json:"confidence"`
}

const noneLabel = "none"

// TriageFormat returns the JSON schema for a triage reply.
func TriageFormat(services []OrgService, categories []string) json.RawMessage {
	names := []string{noneLabel}
	for _, s := range services {
		names = append(names, s.Name)
	}
	// A free-text category is bounded: a weak model may never close the
	// string, and the grammar then ends it.
	cat := map[string]any{"type": "string", "maxLength": 40}
	if len(categories) > 0 {
		cat["enum"] = append([]string{noneLabel}, categories...)
	}
	prios := make([]string, len(models.Priorities))
	for i, p := range models.Priorities {
		prios[i] = string(p)
	}
	b, _ := json.Marshal(triageSchema{
		Type: "object",
		Properties: map[string]any{
			"service":    map[string]any{"type": "string", "enum": names},
			"category":   cat,
			"priority":   map[string]any{"type": "string", "enum": prios},
			"confidence": map[string]any{"type": "number"},
		},
		Required: []string{"service", "category", "priority", "confidence"},
	})
	return b
}

// Triage implements Provider with a schema-constrained chat.
func (o *Ollama) Triage(ctx context.Context, in TriageInput) (Suggestion, error) {
	if o.cfg.TriageModel == "" {
		return Suggestion{}, &ProviderError{Reason: ReasonDisabled, Err: errors.New("no triage model configured")}
	}
	var names []string
	for _, s := range in.Services {
		names = append(names, s.Name)
	}
	system := "You triage helpdesk tickets. Answer with JSON only: the service the ticket is about (or \"none\"), " +
		"its category (or \"none\"), its priority (low, medium, high or critical; critical only for outages, data loss or security), " +
		"and your confidence between 0 and 1."
	user := fmt.Sprintf("Services: %s\nCategories: %s\n\nSubject: %s\n\n%s",
		strings.Join(names, ", "), strings.Join(in.Categories, ", "), in.Ticket.Subject, truncateRunes(in.Ticket.Body, 4000))
	stream := false
	var content, doneReason string
	err := o.call(ctx, func(ctx context.Context) error {
		content, doneReason = "", ""
		return o.client.Chat(ctx, &api.ChatRequest{
			Model:    o.cfg.TriageModel,
			Messages: []api.Message{{Role: "system", Content: system}, {Role: "user", Content: user}},
			Stream:   &stream,
			Format:   TriageFormat(in.Services, in.Categories),
			Options:  o.options(256),
		}, func(r api.ChatResponse) error {
			content += r.Message.Content
			if r.Done {
				doneReason = r.DoneReason
			}
			return nil
		})
	})
	if err != nil {
		return Suggestion{}, err
	}
	var rep triageReply
	if err := json.Unmarshal([]byte(content), &rep); err != nil || rep.Confidence == nil {
		return Suggestion{}, &ProviderError{Reason: ReasonInvalid,
			Err: fmt.Errorf("triage reply is not the schema's JSON (done_reason %q): %q", doneReason, truncateRunes(content, 200))}
	}
	prio := models.Priority(rep.Priority)
	if !prio.Valid() {
		return Suggestion{}, &ProviderError{Reason: ReasonInvalid, Err: fmt.Errorf("triage reply: priority %q", rep.Priority)}
	}
	// The model's own confidence is not calibrated; it is kept (clamped)
	// because it is all there is, and marked by the provider name.
	conf := clamp01(*rep.Confidence)
	s := Suggestion{Provider: ProviderOllama, Model: o.cfg.TriageModel, Priority: prio, PriorityConfidence: conf}
	for _, svc := range in.Services {
		if svc.Name == rep.Service {
			id := svc.ID
			s.ServiceID, s.ServiceConfidence = &id, conf
			break
		}
	}
	if rep.Category != noneLabel && rep.Category != "" && (len(in.Categories) == 0 || slices.Contains(in.Categories, rep.Category)) {
		s.Category, s.CategoryConfidence = truncateRunes(rep.Category, 100), conf
	}
	s.Cues = UrgencyOf(in.Ticket.Text()).Cues
	s.setConfidence()
	return s, nil
}

// EmbedModelName is the tickets.embedding_model of an Ollama model.
func EmbedModelName(model string) string { return "ollama:" + model }

// Embed implements Provider with /api/embed (vectors L2-normalised).
func (o *Ollama) Embed(ctx context.Context, texts []string) ([][]float32, string, error) {
	if o.cfg.EmbedModel == "" {
		return nil, "", &ProviderError{Reason: ReasonDisabled, Err: errors.New("no embed model configured")}
	}
	in := make([]string, len(texts))
	for i, t := range texts {
		in[i] = truncateRunes(t, 8000)
	}
	var res *api.EmbedResponse
	err := o.call(ctx, func(ctx context.Context) error {
		var err error
		res, err = o.client.Embed(ctx, &api.EmbedRequest{Model: o.cfg.EmbedModel, Input: in, Options: o.options(0)})
		return err
	})
	if err != nil {
		return nil, "", err
	}
	if len(res.Embeddings) != len(texts) {
		return nil, "", &ProviderError{Reason: ReasonInvalid, Err: fmt.Errorf("embed: %d vectors for %d texts", len(res.Embeddings), len(texts))}
	}
	for _, v := range res.Embeddings {
		if len(v) == 0 || len(v) != len(res.Embeddings[0]) {
			return nil, "", &ProviderError{Reason: ReasonInvalid, Err: errors.New("embed: empty or ragged vectors")}
		}
		textvec.Normalize(v)
	}
	return res.Embeddings, EmbedModelName(o.cfg.EmbedModel), nil
}

// Draft implements Provider with /api/generate, grounded on the public
// material in in (never internal notes: the caller does not pass them).
func (o *Ollama) Draft(ctx context.Context, in DraftInput) (Draft, error) {
	if o.cfg.DraftModel == "" {
		return Draft{}, &ProviderError{Reason: ReasonDisabled, Err: errors.New("no draft model configured")}
	}
	system := "You are a helpdesk agent writing a reply to a customer. Use only the reference material given; " +
		"if it does not answer the question, say that the team is looking into it. Be brief and polite. " +
		"Never mention other customers or other tickets."
	var b strings.Builder
	fmt.Fprintf(&b, "Ticket subject: %s\n\nCustomer's message:\n%s\n", in.Ticket.Subject, truncateRunes(in.Ticket.Body, 3000))
	for i, c := range in.Conversation {
		fmt.Fprintf(&b, "\nEarlier public message %d:\n%s\n", i+1, truncateRunes(c, 1000))
	}
	d := Draft{Provider: ProviderOllama, Model: o.cfg.DraftModel, Sources: []Source{}}
	for i, g := range in.Grounding {
		if i == 5 {
			break
		}
		fmt.Fprintf(&b, "\nReference %d (%s: %s):\n%s\n", i+1, g.Kind, g.Title, truncateRunes(g.Text, 1500))
		d.Sources = append(d.Sources, Source{Kind: g.Kind, ID: g.ID, Title: g.Title})
	}
	b.WriteString("\nWrite the reply.")
	stream := false
	var text string
	err := o.call(ctx, func(ctx context.Context) error {
		text = ""
		return o.client.Generate(ctx, &api.GenerateRequest{
			Model: o.cfg.DraftModel, System: system, Prompt: b.String(), Stream: &stream, Options: o.options(512),
		}, func(r api.GenerateResponse) error {
			text += r.Response
			return nil
		})
	})
	if err != nil {
		return Draft{}, err
	}
	if d.Text = strings.TrimSpace(text); d.Text == "" {
		return Draft{}, &ProviderError{Reason: ReasonInvalid, Err: errors.New("draft: empty reply")}
	}
	return d, nil
}

// Ping checks the server answers (its version endpoint).
func (o *Ollama) Ping(ctx context.Context) error {
	return o.call(ctx, func(ctx context.Context) error {
		_, err := o.client.Version(ctx)
		return err
	})
}

func truncateRunes(s string, n int) string {
	i := 0
	for j := range s {
		if i == n {
			return s[:j]
		}
		i++
	}
	return s
}
