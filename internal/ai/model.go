package ai

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/atumdesk/atumdesk/internal/ai/classify"
	"github.com/atumdesk/atumdesk/internal/ai/textvec"
)

// OrgModel is one organisation's trained built-in classifiers. A nil
// classifier means too little labelled history for that field.
type OrgModel struct {
	TrainedAt time.Time
	Examples  int // resolved tickets it was trained on
	Service   *classify.Model
	Category  *classify.Model
	Priority  *classify.Model
}

// Version identifies a trained model (its training time).
func (m *OrgModel) Version() string {
	if m == nil {
		return ""
	}
	return m.TrainedAt.UTC().Format(time.RFC3339Nano)
}

// LabelledTicket is one resolved ticket as training data.
type LabelledTicket struct {
	Subject   string
	Body      string
	ServiceID *uuid.UUID
	Category  string
	Priority  string
}

// TrainOptions tune TrainOrgModel.
type TrainOptions struct {
	// MinExamples: a field's classifier needs at least this many labelled
	// tickets (default 30); fewer, and the field is not suggested.
	MinExamples int
	Classify    classify.Options
}

// TrainOrgModel trains the service, category and priority classifiers.
// It returns a model even when every field has too little data (all three
// nil): triage then falls back to urgency cues.
func TrainOrgModel(tickets []LabelledTicket, opt TrainOptions, now time.Time) (*OrgModel, error) {
	if opt.MinExamples <= 0 {
		opt.MinExamples = 30
	}
	feats := make([][]textvec.Feature, len(tickets))
	for i, t := range tickets {
		feats[i] = textvec.Features(t.Subject + "\n" + t.Body)
	}
	train := func(label func(LabelledTicket) string) (*classify.Model, error) {
		var ex []classify.Example
		for i, t := range tickets {
			if l := label(t); l != "" {
				ex = append(ex, classify.Example{Features: feats[i], Label: l})
			}
		}
		if len(ex) < opt.MinExamples {
			return nil, nil
		}
		m, err := classify.Train(ex, opt.Classify)
		if errors.Is(err, classify.ErrTooLittleData) {
			return nil, nil
		}
		return m, err
	}
	m := &OrgModel{TrainedAt: now.UTC(), Examples: len(tickets)}
	var err error
	if m.Service, err = train(func(t LabelledTicket) string {
		if t.ServiceID == nil {
			return ""
		}
		return t.ServiceID.String()
	}); err != nil {
		return nil, fmt.Errorf("ai: train service: %w", err)
	}
	if m.Category, err = train(func(t LabelledTicket) string { return t.Category }); err != nil {
		return nil, fmt.Errorf("ai: train category: %w", err)
	}
	if m.Priority, err = train(func(t LabelledTicket) string { return t.Priority }); err != nil {
		return nil, fmt.Errorf("ai: train priority: %w", err)
	}
	return m, nil
}

type modelWire struct {
	TrainedAt time.Time `json:"trained_at"`
	Examples  int       `json:"examples"`
	Service   []byte    `json:"service,omitempty"`
	Category  []byte    `json:"category,omitempty"`
	Priority  []byte    `json:"priority,omitempty"`
}

// MarshalBinary encodes the model for the model store.
func (m *OrgModel) MarshalBinary() ([]byte, error) {
	w := modelWire{TrainedAt: m.TrainedAt, Examples: m.Examples}
	for _, f := range []struct {
		c   *classify.Model
		dst *[]byte
	}{{m.Service, &w.Service}, {m.Category, &w.Category}, {m.Priority, &w.Priority}} {
		if f.c == nil {
			continue
		}
		b, err := f.c.MarshalBinary()
		if err != nil {
			return nil, err
		}
		*f.dst = b
	}
	return json.Marshal(w)
}

// UnmarshalBinary decodes what MarshalBinary wrote.
func (m *OrgModel) UnmarshalBinary(data []byte) error {
	var w modelWire
	if err := json.Unmarshal(data, &w); err != nil {
		return fmt.Errorf("ai: decode model: %w", err)
	}
	out := OrgModel{TrainedAt: w.TrainedAt, Examples: w.Examples}
	for _, f := range []struct {
		src []byte
		dst **classify.Model
	}{{w.Service, &out.Service}, {w.Category, &out.Category}, {w.Priority, &out.Priority}} {
		if len(f.src) == 0 {
			continue
		}
		c := new(classify.Model)
		if err := c.UnmarshalBinary(f.src); err != nil {
			return err
		}
		*f.dst = c
	}
	*m = out
	return nil
}
