package workers

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/atumdesk/atumdesk/internal/metrics"
)

// taskMetrics are the task and queue collectors. Label values are queue names
// and task states: bounded.
type taskMetrics struct {
	processed *prometheus.CounterVec   // atumdesk_tasks_processed_total{queue}
	failed    *prometheus.CounterVec   // atumdesk_tasks_failed_total{queue}
	duration  *prometheus.HistogramVec // atumdesk_tasks_duration_seconds{queue}
	depth     *prometheus.GaugeVec     // atumdesk_queue_tasks{queue,state}
	latency   *prometheus.GaugeVec     // atumdesk_queue_latency_seconds{queue}
}

// queueStates are the task states reported by atumdesk_queue_tasks.
var queueStates = []string{"pending", "active", "scheduled", "retry", "archived"}

func newMetrics(reg prometheus.Registerer) (*taskMetrics, error) {
	m := &taskMetrics{
		processed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "atumdesk", Subsystem: "tasks", Name: "processed_total",
			Help: "Task runs finished by this process (successful or not), by queue.",
		}, []string{"queue"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "atumdesk", Subsystem: "tasks", Name: "failed_total",
			Help: "Task runs that returned an error (they are retried, then archived), by queue.",
		}, []string{"queue"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "atumdesk", Subsystem: "tasks", Name: "duration_seconds",
			Help:    "Time a task run took in its handler, by queue.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"queue"}),
		depth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "atumdesk", Subsystem: "queue", Name: "tasks",
			Help: "Tasks in an asynq queue by state (pending, active, scheduled, retry, archived). Every worker process serving the queue reports the same value: aggregate with max.",
		}, []string{"queue", "state"}),
		latency: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "atumdesk", Subsystem: "queue", Name: "latency_seconds",
			Help: "Age of the oldest pending task of a queue (0 when empty). Aggregate with max.",
		}, []string{"queue"}),
	}
	var err error
	if m.processed, err = metrics.Register(reg, m.processed); err != nil {
		return nil, err
	}
	if m.failed, err = metrics.Register(reg, m.failed); err != nil {
		return nil, err
	}
	if m.duration, err = metrics.Register(reg, m.duration); err != nil {
		return nil, err
	}
	if m.depth, err = metrics.Register(reg, m.depth); err != nil {
		return nil, err
	}
	if m.latency, err = metrics.Register(reg, m.latency); err != nil {
		return nil, err
	}
	return m, nil
}

// middleware records one run of a task of queue q.
func (m *taskMetrics) middleware(q string) asynq.MiddlewareFunc {
	processed, failed, duration := m.processed.WithLabelValues(q), m.failed.WithLabelValues(q), m.duration.WithLabelValues(q)
	return func(next asynq.Handler) asynq.Handler {
		return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
			start := time.Now()
			err := next.ProcessTask(ctx, t)
			duration.Observe(time.Since(start).Seconds())
			processed.Inc()
			if err != nil {
				failed.Inc()
			}
			return err
		})
	}
}

// reportDepth refreshes the queue gauges of queues every interval until
// ctx ends.
func (m *taskMetrics) reportDepth(ctx context.Context, insp *asynq.Inspector, queues []string, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		m.refreshDepth(insp, queues, log)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (m *taskMetrics) refreshDepth(insp *asynq.Inspector, queues []string, log *slog.Logger) {
	existing, err := insp.Queues()
	if err != nil {
		log.Debug("queue depth: list queues failed", "err", err)
		return
	}
	for _, q := range queues {
		var info asynq.QueueInfo // zero: a queue that never held a task
		if slices.Contains(existing, q) {
			qi, err := insp.GetQueueInfo(q)
			if err != nil {
				log.Debug("queue depth: queue info failed", "queue", q, "err", err)
				continue
			}
			info = *qi
		}
		for _, s := range queueStates {
			var n int
			switch s {
			case "pending":
				n = info.Pending
			case "active":
				n = info.Active
			case "scheduled":
				n = info.Scheduled
			case "retry":
				n = info.Retry
			case "archived":
				n = info.Archived
			}
			m.depth.WithLabelValues(q, s).Set(float64(n))
		}
		m.latency.WithLabelValues(q).Set(info.Latency.Seconds())
	}
}
