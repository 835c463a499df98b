package ai

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/atumdesk/atumdesk/internal/ai/vecindex"
)

type metrics struct {
	fallbacks *prometheus.CounterVec   // op, reason
	requests  *prometheus.CounterVec   // provider, op, outcome
	duration  *prometheus.HistogramVec // provider, op
	retrains  *prometheus.CounterVec   // outcome
}

// newMetrics registers the AI metrics on reg (nil: unregistered). A
// collector already registered (a second Service in one process) is
// reused rather than refused.
func newMetrics(reg prometheus.Registerer, index vecindex.Searcher) (*metrics, error) {
	m := &metrics{
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "atumdesk_ai_fallbacks_total",
			Help: "AI calls answered by the built-in provider because the configured one failed or was too slow, by operation and reason.",
		}, []string{"op", "reason"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "atumdesk_ai_requests_total",
			Help: "AI provider calls by provider, operation and outcome (ok, error).",
		}, []string{"provider", "op", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "atumdesk_ai_request_duration_seconds",
			Help:    "Duration of AI provider calls by provider and operation.",
			Buckets: []float64{0.0001, 0.0005, 0.001, 0.005, 0.02, 0.1, 0.5, 1, 2.5, 5, 10, 30},
		}, []string{"provider", "op"}),
		retrains: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "atumdesk_ai_retrains_total",
			Help: "Per-organisation classifier trainings by outcome (trained, too_little_data, error).",
		}, []string{"outcome"}),
	}
	if reg == nil {
		return m, nil
	}
	vectors := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "atumdesk_ai_index_vectors",
		Help: "Ticket vectors held by this process's similar-ticket index.",
	}, func() float64 { return float64(index.Stats().Vectors) })
	bytes := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "atumdesk_ai_index_bytes",
		Help: "Estimated memory held by this process's similar-ticket index.",
	}, func() float64 { return float64(index.Stats().Bytes) })
	var err error
	if m.fallbacks, err = register(reg, m.fallbacks); err != nil {
		return nil, err
	}
	if m.requests, err = register(reg, m.requests); err != nil {
		return nil, err
	}
	if m.duration, err = register(reg, m.duration); err != nil {
		return nil, err
	}
	if m.retrains, err = register(reg, m.retrains); err != nil {
		return nil, err
	}
	for _, g := range []prometheus.Collector{vectors, bytes} {
		if _, err := register(reg, g); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
			return c, nil // a gauge of another Service: keep ours unregistered
		}
		return c, err
	}
	return c, nil
}
