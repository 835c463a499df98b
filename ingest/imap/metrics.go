package imap

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/atumdesk/atumdesk/internal/metrics"
)

// pollerMetrics are the poller's collectors; labels are bounded (no mailbox
// ids: a mailbox's state is in its row, last_error included).
type pollerMetrics struct {
	messages   *prometheus.CounterVec // result: ingested, duplicate, quarantined
	sinkErrors prometheus.Counter
	sinkTime   prometheus.Histogram
	held       prometheus.Gauge
	sessions   *prometheus.CounterVec // result: error
	leaseLost  prometheus.Counter
	resets     prometheus.Counter
	replays    *prometheus.CounterVec // result: replayed, failed
}

func newPollerMetrics(reg prometheus.Registerer) (*pollerMetrics, error) {
	const sub = "imap"
	m := &pollerMetrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: sub,
			Name: "messages_total", Help: "Fetched messages by outcome: ingested, duplicate (already ingested), quarantined."},
			[]string{"result"}),
		sinkErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: sub,
			Name: "sink_errors_total", Help: "Failed attempts to hand a message to ingest (each retry counts)."}),
		sinkTime: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: metrics.Namespace, Subsystem: sub,
			Name: "sink_seconds", Help: "Time ingest took to accept one message.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}}),
		held: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: metrics.Namespace, Subsystem: sub,
			Name: "mailboxes_held", Help: "Mailboxes whose lease this process holds (each has a poller)."}),
		sessions: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: sub,
			Name: "session_errors_total", Help: "IMAP sessions that ended in an error, by stage; each is retried with backoff."},
			[]string{"stage"}),
		leaseLost: prometheus.NewCounter(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: sub,
			Name: "lease_lost_total", Help: "Mailbox leases lost to expiry, deactivation or deletion while held."}),
		resets: prometheus.NewCounter(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: sub,
			Name: "uidvalidity_resets_total", Help: "UIDVALIDITY changes seen (the folder is rescanned, deduplicated)."}),
		replays: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: sub,
			Name: "replays_total", Help: "Quarantined messages replayed on an admin's request, by outcome."},
			[]string{"result"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.messages, err = metrics.Register(reg, m.messages); err != nil {
		return nil, err
	}
	if m.sinkErrors, err = metrics.Register(reg, m.sinkErrors); err != nil {
		return nil, err
	}
	if m.sinkTime, err = metrics.Register(reg, m.sinkTime); err != nil {
		return nil, err
	}
	if m.held, err = metrics.Register(reg, m.held); err != nil {
		return nil, err
	}
	if m.sessions, err = metrics.Register(reg, m.sessions); err != nil {
		return nil, err
	}
	if m.leaseLost, err = metrics.Register(reg, m.leaseLost); err != nil {
		return nil, err
	}
	if m.resets, err = metrics.Register(reg, m.resets); err != nil {
		return nil, err
	}
	if m.replays, err = metrics.Register(reg, m.replays); err != nil {
		return nil, err
	}
	return m, nil
}
