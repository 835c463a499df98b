package ai

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/atumdesk/atumdesk/internal/ai/classify"
	"github.com/atumdesk/atumdesk/internal/ai/textvec"
	"github.com/atumdesk/atumdesk/models"
)

// BuiltinDim is the dimension of the built-in embedding.
const BuiltinDim = 256

// BuiltinModel names the built-in embedding (tickets.embedding_model). A
// change to textvec's features must change this name.
const BuiltinModel = "builtin-hash-v1-256"

// Builtin is the provider that needs no external service.
type Builtin struct{}

var _ Provider = Builtin{}

// Name implements Provider.
func (Builtin) Name() string { return ProviderBuiltin }

// EmbedText is the built-in embedding of one text.
func EmbedText(text string) []float32 {
	return textvec.Embed(make([]float32, BuiltinDim), textvec.Features(text))
}

// Embed implements Provider.
func (Builtin) Embed(_ context.Context, texts []string) ([][]float32, string, error) {
	out := make([][]float32, len(texts))
	for i, t := range texts {
		out[i] = EmbedText(t)
	}
	return out, BuiltinModel, nil
}

// Triage implements Provider: the organisation's classifiers where it has
// them, urgency cues for priority.
func (Builtin) Triage(_ context.Context, in TriageInput) (Suggestion, error) {
	return builtinTriage(in), nil
}

func builtinTriage(in TriageInput) Suggestion {
	text := in.Ticket.Text()
	feats := textvec.Features(text)
	s := Suggestion{Provider: ProviderBuiltin, Model: "urgency-rules"}
	m := in.Model
	if m != nil {
		s.Model = "org-classifier@" + m.Version()
	}
	if m != nil && m.Service != nil {
		active := map[string]bool{}
		for _, svc := range in.Services {
			active[svc.ID.String()] = true
		}
		// The most likely service that is still active.
		for _, p := range m.Service.Predict(feats) {
			if !active[p.Label] {
				continue
			}
			if id, err := uuid.Parse(p.Label); err == nil {
				s.ServiceID, s.ServiceConfidence = &id, p.Prob
			}
			break
		}
	}
	if m != nil && m.Category != nil {
		p := m.Category.Predict(feats)[0]
		s.Category, s.CategoryConfidence = p.Label, p.Prob
	}
	u := UrgencyOf(text)
	s.Priority, s.PriorityConfidence, s.Cues = u.Priority, u.Confidence, u.Cues
	if m != nil && m.Priority != nil {
		// History knows the organisation's usual priorities; urgency cues
		// may still escalate above them (history rarely holds an outage
		// like this one), never lower them.
		p := m.Priority.Predict(feats)[0]
		escalates := len(u.Cues) > 0 && u.Priority.Rank() > models.Priority(p.Label).Rank() && u.Priority.Rank() > models.PriorityMedium.Rank()
		switch pr := models.Priority(p.Label); {
		case !pr.Valid() || escalates:
		case pr == u.Priority:
			s.PriorityConfidence = max(p.Prob, u.Confidence)
		case p.Prob > u.Confidence:
			s.Priority, s.PriorityConfidence = pr, p.Prob
		}
	}
	s.LowConfidence = s.ServiceID == nil && s.Category == ""
	s.setConfidence()
	return s
}

// Draft implements Provider: the best-matching canned response as it is,
// else an excerpt of the best KB article, else an acknowledgement.
func (Builtin) Draft(_ context.Context, in DraftInput) (Draft, error) {
	return builtinDraft(in), nil
}

// minDraftScore: grounding less similar than this is not offered.
const minDraftScore = 0.12

func builtinDraft(in DraftInput) Draft {
	d := Draft{Provider: ProviderBuiltin, Model: BuiltinModel, Sources: []Source{}}
	var best *Grounding
	for i := range in.Grounding {
		g := &in.Grounding[i]
		if g.Score < minDraftScore || (g.Kind != "canned_response" && g.Kind != "kb_article") {
			continue
		}
		// A canned response is written to be sent; prefer it unless an
		// article is clearly closer.
		if best == nil || score(g) > score(best) {
			best = g
		}
	}
	subject := strings.TrimSpace(in.Ticket.Subject)
	switch {
	case best == nil:
		d.Text = fmt.Sprintf("Hello,\n\nThank you for contacting us about %q. We are looking into it and will get back to you as soon as possible.\n\nBest regards", subject)
	case best.Kind == "canned_response":
		d.Text = strings.TrimSpace(best.Text)
		d.Sources = append(d.Sources, Source{Kind: best.Kind, ID: best.ID, Title: best.Title})
	default:
		d.Text = fmt.Sprintf("Hello,\n\nThank you for contacting us. This article from our knowledge base should help:\n\n%s\n\n%s\n\nIf it does not solve the problem, reply to this message and we will look into it further.\n\nBest regards",
			best.Title, excerpt(best.Text, 700))
		d.Sources = append(d.Sources, Source{Kind: best.Kind, ID: best.ID, Title: best.Title})
	}
	return d
}

func score(g *Grounding) float32 {
	if g.Kind == "canned_response" {
		return g.Score + 0.05
	}
	return g.Score
}

// excerpt cuts s to about n bytes at a paragraph or sentence end (or a
// word boundary), never inside a UTF-8 sequence.
func excerpt(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	cut := s[:n]
	for _, sep := range []string{"\n\n", ". ", "\n"} {
		if i := strings.LastIndex(cut, sep); i > n/2 {
			return strings.TrimSpace(cut[:i+len(sep)])
		}
	}
	if i := strings.LastIndex(cut, " "); i > n/2 {
		return strings.TrimSpace(cut[:i]) + " …"
	}
	return cut + " …"
}

// labelProb returns P(label) under m for text features, 0 when m is nil or
// the label unknown (used to re-rank similar tickets).
func labelProb(m *classify.Model, probs []float64, label string) float64 {
	if m == nil || label == "" {
		return 0
	}
	for i, l := range m.Labels {
		if l == label {
			return probs[i]
		}
	}
	return 0
}
