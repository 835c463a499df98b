package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/segmentio/kafka-go"
)

// Header names that identify a message. Every published message carries one
// of them: kafka-go has no idempotent producer, so a retried write can land
// twice and consumers dedupe on this ID.
const (
	HeaderEventID   = "event_id"   // domain events (TopicEvents)
	HeaderMessageID = "message_id" // inbound submissions (TopicInbound)
)

// Message is what Publish writes. Key selects the partition (one ticket's
// messages keep their order); Headers must hold HeaderEventID or
// HeaderMessageID.
type Message struct {
	Topic   string
	Key     []byte
	Value   []byte
	Headers map[string]string
}

// ProducerOption tunes NewProducer.
type ProducerOption func(*producerConfig)

type producerConfig struct {
	batchTimeout time.Duration
	batchSize    int
	maxAttempts  int
	timeout      time.Duration
	metrics      *Metrics
	logger       *slog.Logger
}

// WithBatchTimeout sets how long a partial batch waits for more messages
// (default 5 ms). Each synchronous Publish waits up to this long, so one
// publisher tops out near 1/BatchTimeout calls per second: kafka-go's 1 s
// default would cap the whole API at concurrency ÷ 1 s.
func WithBatchTimeout(d time.Duration) ProducerOption {
	return func(c *producerConfig) { c.batchTimeout = d }
}

// WithBatchSize sets the messages per produce request and partition (default 100).
func WithBatchSize(n int) ProducerOption { return func(c *producerConfig) { c.batchSize = n } }

// WithMaxAttempts sets the attempts per batch on retriable errors (default 6,
// backing off 100 ms doubling to 1 s, i.e. ~2.5 s before giving up).
func WithMaxAttempts(n int) ProducerOption { return func(c *producerConfig) { c.maxAttempts = n } }

// WithTimeout bounds each network write and each wait for the broker's
// answer (default 5 s).
func WithTimeout(d time.Duration) ProducerOption { return func(c *producerConfig) { c.timeout = d } }

// WithMetrics records atumdesk_kafka_produced_total and _produce_seconds.
func WithMetrics(m *Metrics) ProducerOption { return func(c *producerConfig) { c.metrics = m } }

// WithLogger receives kafka-go's error log lines (retries, reconnects).
func WithLogger(l *slog.Logger) ProducerOption { return func(c *producerConfig) { c.logger = l } }

// Producer is the one Kafka producer of a process: share it between
// goroutines, so that concurrent Publish calls share produce requests.
type Producer struct {
	w         *kafka.Writer
	transport *kafka.Transport
	brokers   []string
	metrics   *Metrics
}

// NewProducer returns a producer writing to brokers with acks=all, the Hash
// balancer on the key, and no automatic topic creation. It connects lazily;
// use Ping for readiness.
func NewProducer(brokers []string, opts ...ProducerOption) *Producer {
	cfg := producerConfig{batchTimeout: 5 * time.Millisecond, batchSize: 100, maxAttempts: 6, timeout: 5 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	transport := &kafka.Transport{
		DialTimeout: cfg.timeout,
		ClientID:    "atumdesk",
	}
	w := &kafka.Writer{
		Addr:      kafka.TCP(brokers...),
		Transport: transport,
		// Per-key order needs one key -> one partition. kafka.Hash (FNV-1a)
		// is not the Java client's murmur2: other producers writing the same
		// keys to these topics must use kafka-go's Hash too.
		Balancer:               &kafka.Hash{},
		RequiredAcks:           kafka.RequireAll, // kafka-go defaults to RequireNone
		Async:                  false,            // Async drops errors
		AllowAutoTopicCreation: false,
		BatchTimeout:           cfg.batchTimeout,
		BatchSize:              cfg.batchSize,
		MaxAttempts:            cfg.maxAttempts,
		WriteBackoffMin:        100 * time.Millisecond,
		WriteBackoffMax:        time.Second,
		WriteTimeout:           cfg.timeout,
		ReadTimeout:            cfg.timeout,
	}
	if cfg.logger != nil {
		l := cfg.logger.With("component", "kafka-writer")
		w.ErrorLogger = kafka.LoggerFunc(func(format string, args ...any) {
			l.Warn(fmt.Sprintf(format, args...))
		})
	}
	return &Producer{w: w, transport: transport, brokers: slices.Clone(brokers), metrics: cfg.metrics}
}

// Publish writes msgs and returns once the broker has acknowledged all of
// them (acks=all) or they failed. Messages with the same key and topic are
// written in the order given; for order across calls, publish a key's next
// message after the previous Publish returned.
//
// On error the caller must assume any subset was written (a retry can
// duplicate; a cancelled ctx stops the wait, not the write already queued)
// and may publish again with the same IDs. A kafka.WriteErrors error tells
// which messages failed.
func (p *Producer) Publish(ctx context.Context, msgs ...Message) error {
	if len(msgs) == 0 {
		return nil
	}
	now := time.Now()
	km := make([]kafka.Message, len(msgs))
	for i, m := range msgs {
		if m.Topic == "" {
			return fmt.Errorf("pipeline: publish: message %d has no topic", i)
		}
		if m.Headers[HeaderEventID] == "" && m.Headers[HeaderMessageID] == "" {
			return fmt.Errorf("pipeline: publish: message %d to %s has no %s or %s header", i, m.Topic, HeaderEventID, HeaderMessageID)
		}
		km[i] = kafka.Message{Topic: m.Topic, Key: m.Key, Value: m.Value, Time: now, Headers: toHeaders(m.Headers)}
	}

	err := p.w.WriteMessages(ctx, km...)

	if p.metrics != nil {
		elapsed := time.Since(now).Seconds()
		var werrs kafka.WriteErrors
		perMsg := errors.As(err, &werrs) && len(werrs) == len(msgs)
		observed := map[string]bool{}
		for i, m := range msgs {
			result := "ok"
			if (perMsg && werrs[i] != nil) || (!perMsg && err != nil) {
				result = "error"
			}
			p.metrics.Produced.WithLabelValues(m.Topic, result).Inc()
			if !observed[m.Topic] {
				observed[m.Topic] = true
				p.metrics.ProduceSeconds.WithLabelValues(m.Topic).Observe(elapsed)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("pipeline: publish %d message(s): %w", len(msgs), err)
	}
	return nil
}

func toHeaders(h map[string]string) []kafka.Header {
	if len(h) == 0 {
		return nil
	}
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]kafka.Header, len(keys))
	for i, k := range keys {
		out[i] = kafka.Header{Key: k, Value: []byte(h[k])}
	}
	return out
}

// Ping dials a broker and reads the cluster metadata: the readiness check.
// It uses a fresh connection because the writer's transport answers
// metadata from its cache.
func (p *Producer) Ping(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	conn, err := dialAny(ctx, p.brokers)
	if err != nil {
		return fmt.Errorf("pipeline: kafka ping: %w", err)
	}
	defer conn.Close()
	bs, err := conn.Brokers()
	if err != nil {
		return fmt.Errorf("pipeline: kafka ping: metadata: %w", err)
	}
	if len(bs) == 0 {
		return errors.New("pipeline: kafka ping: metadata lists no broker")
	}
	return nil
}

// Close flushes pending batches, waits for them and closes connections.
func (p *Producer) Close() error {
	err := p.w.Close()
	p.transport.CloseIdleConnections()
	return err
}
