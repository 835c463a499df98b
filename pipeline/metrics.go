package pipeline

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the Kafka client collectors of one process. Create them once
// with NewMetrics and hand the same value to every Producer and Consume call;
// a nil *Metrics records nothing.
type Metrics struct {
	Produced       *prometheus.CounterVec   // atumdesk_kafka_produced_total{topic,result}
	ProduceSeconds *prometheus.HistogramVec // atumdesk_kafka_produce_seconds{topic}
	Consumed       *prometheus.CounterVec   // atumdesk_kafka_consumed_total{topic,group}
	ConsumeErrors  *prometheus.CounterVec   // atumdesk_kafka_consume_errors_total{topic,group}
	ConsumerLag    *prometheus.GaugeVec     // atumdesk_kafka_consumer_lag{topic,group}
}

// NewMetrics creates the Kafka collectors and registers them on reg
// (usually the process registry, metrics.Registry.Reg).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		Produced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "atumdesk", Subsystem: "kafka", Name: "produced_total",
			Help: "Messages handed to Kafka, by topic and result (ok, error).",
		}, []string{"topic", "result"}),
		ProduceSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "atumdesk", Subsystem: "kafka", Name: "produce_seconds",
			Help:    "Time from Publish to the broker's acknowledgement (acks=all), by topic.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"topic"}),
		Consumed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "atumdesk", Subsystem: "kafka", Name: "consumed_total",
			Help: "Messages handled and committed by a consumer group.",
		}, []string{"topic", "group"}),
		ConsumeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "atumdesk", Subsystem: "kafka", Name: "consume_errors_total",
			Help: "Failed fetches, handler attempts and commits of a consumer group.",
		}, []string{"topic", "group"}),
		ConsumerLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "atumdesk", Subsystem: "kafka", Name: "consumer_lag",
			Help: "Messages not yet committed by the group (high watermark minus committed offset, summed over partitions). Every member reports the same value: aggregate with max.",
		}, []string{"topic", "group"}),
	}
	for _, c := range []prometheus.Collector{m.Produced, m.ProduceSeconds, m.Consumed, m.ConsumeErrors, m.ConsumerLag} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
