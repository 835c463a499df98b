package sla

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/internal/metrics"
	slacore "github.com/atumdesk/atumdesk/internal/sla"
	"github.com/atumdesk/atumdesk/models"
)

// collectors are the SLA metrics the Grafana dashboards read. Labels:
// policy is the policy's name (bounded by the number of policies; equal
// names across organisations add up), kind is first_response or
// resolution.
type collectors struct {
	breaches      *prometheus.CounterVec   // atumdesk_sla_breaches_total{policy,kind}
	thresholds    *prometheus.CounterVec   // atumdesk_sla_thresholds_total{policy,kind}
	firstResponse *prometheus.HistogramVec // atumdesk_sla_first_response_business_seconds{policy}
	resolution    *prometheus.HistogramVec // atumdesk_sla_resolution_business_seconds{policy}
	lateness      prometheus.Histogram     // atumdesk_sla_timer_lateness_seconds
	scheduled     prometheus.Counter       // atumdesk_sla_timers_scheduled_total
}

// businessBuckets span a minute to two weeks of business time.
var businessBuckets = []float64{60, 300, 900, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 16 * 3600,
	24 * 3600, 48 * 3600, 5 * 24 * 3600, 14 * 24 * 3600}

func newCollectors(reg prometheus.Registerer, db *gorm.DB, log *slog.Logger) (*collectors, error) {
	m := &collectors{
		breaches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "atumdesk", Subsystem: "sla", Name: "breaches_total",
			Help: "SLA clocks that breached (fired once per ticket and clock), by policy name and kind (first_response, resolution).",
		}, []string{"policy", "kind"}),
		thresholds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "atumdesk", Subsystem: "sla", Name: "thresholds_total",
			Help: "Escalation thresholds crossed before a breach (each rule fires once per ticket and clock), by policy name and kind.",
		}, []string{"policy", "kind"}),
		firstResponse: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "atumdesk", Subsystem: "sla", Name: "first_response_business_seconds",
			Help:    "Business time from the SLA clock's start to the first public staff reply, pauses excluded, by policy name.",
			Buckets: businessBuckets,
		}, []string{"policy"}),
		resolution: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "atumdesk", Subsystem: "sla", Name: "resolution_business_seconds",
			Help:    "Business time from the SLA clock's start to resolution, pauses excluded, by policy name.",
			Buckets: businessBuckets,
		}, []string{"policy"}),
		lateness: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "atumdesk", Subsystem: "sla", Name: "timer_lateness_seconds",
			Help:    "Time from the instant an SLA threshold or due time was crossed to its event being recorded.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 15, 60, 300},
		}),
		scheduled: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "atumdesk", Subsystem: "sla", Name: "timers_scheduled_total",
			Help: "SLA timer tasks enqueued (a timer already scheduled is not counted again).",
		}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.breaches, err = metrics.Register(reg, m.breaches); err != nil {
		return nil, err
	}
	if m.thresholds, err = metrics.Register(reg, m.thresholds); err != nil {
		return nil, err
	}
	if m.firstResponse, err = metrics.Register(reg, m.firstResponse); err != nil {
		return nil, err
	}
	if m.resolution, err = metrics.Register(reg, m.resolution); err != nil {
		return nil, err
	}
	if m.lateness, err = metrics.Register(reg, m.lateness); err != nil {
		return nil, err
	}
	if m.scheduled, err = metrics.Register(reg, m.scheduled); err != nil {
		return nil, err
	}
	if db != nil {
		if _, err = metrics.Register[prometheus.Collector](reg, newAtRisk(db, log)); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// observeMet records the business time of clocks a change met.
func (m *collectors) observeMet(met []slacore.Met) {
	for _, x := range met {
		h := m.resolution
		if x.Metric == models.SLAFirstResponse {
			h = m.firstResponse
		}
		h.WithLabelValues(x.PolicyName).Observe(x.BusinessSeconds)
	}
}

// atRisk is atumdesk_sla_tickets_at_risk{kind}: queried from PostgreSQL at
// scrape time (at most every atRiskTTL), so every process reports the
// same value: aggregate with max.
type atRisk struct {
	db   *gorm.DB
	log  *slog.Logger
	desc *prometheus.Desc

	mu     sync.Mutex
	at     time.Time
	counts map[models.SLAMetric]int
}

const atRiskTTL = 10 * time.Second

func newAtRisk(db *gorm.DB, log *slog.Logger) *atRisk {
	return &atRisk{db: db, log: log, desc: prometheus.NewDesc("atumdesk_sla_tickets_at_risk",
		"Open tickets that crossed an escalation threshold of their SLA policy and are neither met nor breached, by kind. Every SLA worker reports the same value: aggregate with max.",
		[]string{"kind"}, nil)}
}

func (a *atRisk) Describe(ch chan<- *prometheus.Desc) { ch <- a.desc }

func (a *atRisk) Collect(ch chan<- prometheus.Metric) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.counts == nil || time.Since(a.at) > atRiskTTL {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		counts, err := slacore.AtRisk(ctx, a.db)
		cancel()
		if err != nil {
			a.log.Warn("sla: at-risk gauge: query failed", "err", err)
		} else {
			a.counts, a.at = counts, time.Now()
		}
	}
	for _, k := range slacore.Metrics {
		if a.counts != nil {
			ch <- prometheus.MustNewConstMetric(a.desc, prometheus.GaugeValue, float64(a.counts[k]), string(k))
		}
	}
}
