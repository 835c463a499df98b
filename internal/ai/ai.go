// Package ai holds the helpdesk's AI: triage suggestions (service,
// category, priority with a calibrated confidence), ticket embeddings and
// the similar-ticket index, knowledge-base suggestions and reply drafts.
//
// Two providers sit behind one small interface, chosen per organisation
// (organizations.settings {"ai": {"provider": "builtin"|"ollama"}}):
//   - Builtin, the default, needs no external service: hashed word and
//     character n-gram embeddings (textvec), a per-organisation classifier
//     trained on the organisation's own resolved tickets (classify), and
//     urgency cues for priority.
//   - Ollama talks to an Ollama server: chat with a JSON-schema format for
//     triage, the embed endpoint, generate for drafts. When Ollama fails or
//     is slow, the Service degrades to Builtin with a logged warning and
//     atumdesk_ai_fallbacks_total; a ticket never fails because of AI.
//
// AI is advisory. Suggestions are stored beside the ticket's own fields and
// only applied when an organisation opts in (auto-apply above a threshold),
// never over a human's choice. Everything is scoped to one organisation,
// and drafts are grounded only on public comments, published KB articles
// and canned responses, never on internal notes.
package ai

import (
	"context"
	"errors"

	"github.com/google/uuid"

	"github.com/atumdesk/atumdesk/models"
)

// Provider names (organizations.settings.ai.provider).
const (
	ProviderBuiltin = "builtin"
	ProviderOllama  = "ollama"
)

// Event types the AI stages emit (staff audience).
const (
	EventTriaged  = "ticket.ai_triaged"
	EventEmbedded = "ticket.embedded"
)

// Ticket is the text and labels a provider sees of one ticket.
type Ticket struct {
	ID      uuid.UUID
	OrgID   uuid.UUID
	Subject string
	Body    string
}

// Text is what is classified and embedded: subject and body.
func (t Ticket) Text() string { return t.Subject + "\n" + t.Body }

// OrgService is a service of the organisation a triage may suggest.
type OrgService struct {
	ID   uuid.UUID `json:"id"`
	Name string    `json:"name"`
}

// TriageInput is a ticket with what the organisation's suggestions may be.
type TriageInput struct {
	Ticket     Ticket
	Services   []OrgService // active services
	Categories []string     // categories in use
	Model      *OrgModel    // the organisation's trained model (nil: none yet)
}

// Suggestion is a triage result. Fields left empty were not suggested
// (too little history, or nothing fitted); each confidence is the
// probability that the field's suggestion is right.
type Suggestion struct {
	ServiceID          *uuid.UUID      `json:"service_id,omitempty"`
	ServiceConfidence  float64         `json:"service_confidence,omitempty"`
	Category           string          `json:"category,omitempty"`
	CategoryConfidence float64         `json:"category_confidence,omitempty"`
	Priority           models.Priority `json:"priority"`
	PriorityConfidence float64         `json:"priority_confidence"`
	// Confidence is the primary suggestion's: the category's if one was
	// made, else the service's, else the priority's (tickets.ai_confidence).
	Confidence float64 `json:"confidence"`
	// LowConfidence: the organisation has too little history for a
	// classifier; only urgency cues were used.
	LowConfidence bool     `json:"low_confidence"`
	Cues          []string `json:"cues,omitempty"` // urgency cues found
	Provider      string   `json:"provider"`
	Model         string   `json:"model"`
}

func (s *Suggestion) setConfidence() {
	switch {
	case s.Category != "":
		s.Confidence = s.CategoryConfidence
	case s.ServiceID != nil:
		s.Confidence = s.ServiceConfidence
	default:
		s.Confidence = s.PriorityConfidence
	}
	s.Confidence = clamp01(s.Confidence)
}

// Source is one piece of grounding a draft used.
type Source struct {
	Kind  string    `json:"kind"` // "kb_article", "canned_response", "ticket"
	ID    uuid.UUID `json:"id"`
	Title string    `json:"title"`
}

// Grounding is public material a draft may draw on. Internal notes are
// never part of it.
type Grounding struct {
	Kind  string // as Source.Kind
	ID    uuid.UUID
	Title string
	Text  string
	Score float32 // similarity to the ticket, higher is closer
}

// DraftInput is what a reply draft is written from.
type DraftInput struct {
	Ticket Ticket
	// Conversation holds the ticket's public comments, oldest first.
	Conversation []string
	// Grounding: KB articles, canned responses and resolutions of similar
	// resolved tickets, best first.
	Grounding []Grounding
}

// Draft is a suggested reply for an agent to edit and send.
type Draft struct {
	Text     string   `json:"text"`
	Sources  []Source `json:"sources"`
	Provider string   `json:"provider"`
	Model    string   `json:"model"`
}

// Provider is one AI backend.
type Provider interface {
	Name() string
	Triage(ctx context.Context, in TriageInput) (Suggestion, error)
	// Embed returns one vector per text and the model name that made them
	// (vectors of different models are never compared).
	Embed(ctx context.Context, texts []string) ([][]float32, string, error)
	Draft(ctx context.Context, in DraftInput) (Draft, error)
}

// ErrUnavailable wraps a provider failure that the Service answers by
// falling back to the built-in provider.
var ErrUnavailable = errors.New("ai: provider unavailable")

func clamp01(x float64) float64 {
	switch {
	case x != x: // NaN
		return 0
	case x < 0:
		return 0
	case x > 1:
		return 1
	}
	return x
}
