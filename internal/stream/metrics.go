package stream

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/atumdesk/atumdesk/internal/metrics"
)

type hubMetrics struct {
	connections prometheus.Gauge
	events      prometheus.Counter
	deliveries  prometheus.Counter
	duplicates  prometheus.Counter
	replayed    prometheus.Counter
	resets      prometheus.Counter
	dropped     prometheus.Counter
	rejected    *prometheus.CounterVec
	lag         prometheus.Histogram
}

// newHubMetrics builds the collectors and registers them on reg (nil: kept
// unregistered, still safe to use).
func newHubMetrics(reg prometheus.Registerer) *hubMetrics {
	opts := func(name, help string) prometheus.CounterOpts {
		return prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: "sse", Name: name, Help: help}
	}
	m := &hubMetrics{
		connections: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: metrics.Namespace, Subsystem: "sse",
			Name: "connections", Help: "Open SSE streams on this process."}),
		events:     prometheus.NewCounter(opts("events_total", "Domain events read from the events topic and routed.")),
		deliveries: prometheus.NewCounter(opts("deliveries_total", "Events queued to a client (one per event and recipient).")),
		duplicates: prometheus.NewCounter(opts("duplicate_events_total", "Events read twice (same event id) and not sent again.")),
		replayed:   prometheus.NewCounter(opts("replayed_total", "Events replayed to clients resuming with Last-Event-ID.")),
		resets:     prometheus.NewCounter(opts("resets_total", "Resumptions refused with a reset (Last-Event-ID outside the replay window).")),
		dropped:    prometheus.NewCounter(opts("slow_clients_dropped_total", "Clients disconnected because their queue was full.")),
		rejected: prometheus.NewCounterVec(opts("rejected_total", "Streams refused by a connection cap, by cap."),
			[]string{"cap"}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: metrics.Namespace, Subsystem: "sse",
			Name: "event_lag_seconds", Help: "Time from an event's write to the topic to its routing by the hub.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}}),
	}
	if reg != nil {
		reg.MustRegister(m.connections, m.events, m.deliveries, m.duplicates, m.replayed, m.resets, m.dropped, m.rejected, m.lag)
	}
	return m
}
