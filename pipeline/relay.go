package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"
)

// relayLockKey is the pg advisory lock that admits one relay at a time.
const relayLockKey int64 = 0x61746d6f7574 // "atmout"

// RelayConfig configures RunRelay. Zero values get the defaults noted.
type RelayConfig struct {
	DB       *gorm.DB
	Producer *Producer
	Logger   *slog.Logger // nil: discarded
	// Interval is the poll period while the outbox is empty or another
	// relay is active (default 20 ms).
	Interval time.Duration
	// BatchSize caps the rows published per transaction (default 100, the
	// producer's batch size: a round then mostly is one produce request per
	// partition, which succeeds or fails as a whole).
	BatchSize int
	// PublishTimeout bounds one Publish while the rows stay locked
	// (default 30 s).
	PublishTimeout time.Duration
	// RetryMin and RetryMax bound the backoff after a failed round
	// (default 100 ms and 5 s).
	RetryMin, RetryMax time.Duration
	// Registerer receives the relay's metrics (nil: not registered).
	Registerer prometheus.Registerer
}

type relayMetrics struct {
	backlog   prometheus.Gauge
	published prometheus.Counter
	errors    prometheus.Counter
	delay     prometheus.Histogram
}

func newRelayMetrics(reg prometheus.Registerer) (relayMetrics, error) {
	m := relayMetrics{
		backlog: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "atumdesk", Subsystem: "outbox", Name: "backlog",
			Help: "Outbox rows not yet published to Kafka (every relay reports it: aggregate with max).",
		}),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "atumdesk", Subsystem: "outbox", Name: "published_total",
			Help: "Outbox rows published to Kafka and marked.",
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "atumdesk", Subsystem: "outbox", Name: "relay_errors_total",
			Help: "Relay rounds that failed (database or Kafka); their rows stay unpublished and are retried.",
		}),
		delay: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "atumdesk", Subsystem: "outbox", Name: "publish_delay_seconds",
			Help:    "Time from an outbox row's insert to its publication.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.backlog, err = register(reg, m.backlog); err != nil {
		return m, err
	}
	if m.published, err = register(reg, m.published); err != nil {
		return m, err
	}
	if m.errors, err = register(reg, m.errors); err != nil {
		return m, err
	}
	if m.delay, err = register(reg, m.delay); err != nil {
		return m, err
	}
	return m, nil
}

// RunRelay publishes the transactional outbox to Kafka until ctx ends, then
// returns ctx.Err(). It returns earlier only for an invalid configuration.
//
// Each round, in one transaction: take the advisory lock relayLockKey (or
// stand by if another relay holds it), lock the oldest unpublished rows in
// id order (FOR UPDATE SKIP LOCKED), publish them with acks=all keyed by
// ticket, mark them published, commit.
//
// Guarantees:
//   - Every committed outbox row is published at least once. A publish that
//     succeeded but whose mark did not commit (crash, PostgreSQL gone) is
//     published again with the same event_id header: consumers dedupe on
//     the event id (processed_events).
//   - One ticket's events reach TopicEvents in outbox id order. Several
//     relays may run (one per pipeline process); the transaction-scoped
//     advisory lock lets exactly one work at a time, the others poll every
//     Interval and take over within one Interval when it stops (its locks go
//     with its transaction or connection). SKIP LOCKED alone would let two
//     relays publish consecutive batches concurrently and interleave a key's
//     events. A republished row comes after its first copy, so the first
//     occurrences of event ids stay in order.
//   - Ids follow insert order, not commit order: per-key order rests on the
//     writers of one ticket serialising on its row (every change locks the
//     ticket before emitting), so a later event of a ticket is inserted
//     after the earlier one committed.
//   - One exception: kafka-go writes a partition's batches one after the
//     other, so if a round needs several produce requests for one partition
//     (more than the producer's batch size or 1 MB) and an earlier one fails
//     while a later one succeeds, the failed events are republished after
//     the later ones. Event ids are UUIDv7 (time-ordered): a consumer that
//     needs strict order can tell.
//   - An event Kafka refuses for good blocks the relay (retried with
//     backoff, last_error saying why, atumdesk_outbox_backlog growing) until
//     an operator deals with the row; EmitEvents refuses events above
//     MaxEventBytes, so that the likely cause, size, cannot happen.
//
// While Kafka is down rounds fail and back off, rows stay unpublished
// (attempts and last_error record it) and atumdesk_outbox_backlog grows.
// Idle, it polls: a 20 ms poll of the partial index costs little, while
// NOTIFY would take a server-wide lock at every writer's commit.
func RunRelay(ctx context.Context, cfg RelayConfig) error {
	if cfg.DB == nil || cfg.Producer == nil {
		return errors.New("pipeline: relay: DB and Producer are required")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 20 * time.Millisecond
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 100
	}
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = 30 * time.Second
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = 100 * time.Millisecond
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = max(5*time.Second, cfg.RetryMin)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newRelayMetrics(cfg.Registerer)
	if err != nil {
		return err
	}
	var lastBacklog time.Time
	for attempt := 0; ; {
		n, err := relayRound(ctx, cfg, m)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Since(lastBacklog) >= time.Second {
			var backlog int64
			if err := cfg.DB.WithContext(ctx).Raw(`SELECT count(*) FROM outbox WHERE published_at IS NULL`).Scan(&backlog).Error; err == nil {
				m.backlog.Set(float64(backlog))
				lastBacklog = time.Now()
			}
		}
		var wait time.Duration
		switch {
		case err != nil:
			m.errors.Inc()
			wait = backoff(attempt, cfg.RetryMin, cfg.RetryMax)
			attempt++
			log.Warn("outbox relay round failed; rows stay unpublished", "err", err, "attempt", attempt, "retry_in", wait)
		case n == cfg.BatchSize:
			attempt = 0 // more waiting: go on at once
		default:
			attempt = 0
			wait = cfg.Interval
		}
		if wait > 0 && !sleepCtx(ctx, wait) {
			return ctx.Err()
		}
	}
}

type outboxRow struct {
	ID        int64     `gorm:"column:id"`
	EventID   uuid.UUID `gorm:"column:event_id"`
	Topic     string    `gorm:"column:topic"`
	Key       string    `gorm:"column:key"`
	Payload   string    `gorm:"column:payload"`
	CreatedAt time.Time `gorm:"column:created_at"`
}

// relayRound publishes one batch; it returns how many rows it published
// (0 when another relay holds the lock or nothing waits).
func relayRound(ctx context.Context, cfg RelayConfig, m relayMetrics) (int, error) {
	var rows []outboxRow
	var pubErr error
	// The transaction outlives a cancelled ctx (database/sql would roll it
	// back): a shutdown during Publish still marks what was published. Only
	// Publish itself watches ctx.
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.PublishTimeout+10*time.Second)
	defer cancel()
	err := cfg.DB.WithContext(tctx).Transaction(func(tx *gorm.DB) error {
		var leader bool
		if err := tx.Raw(`SELECT pg_try_advisory_xact_lock(?)`, relayLockKey).Scan(&leader).Error; err != nil {
			return fmt.Errorf("pipeline: relay: lock: %w", err)
		}
		if !leader {
			return nil
		}
		err := tx.Raw(`SELECT id, event_id, topic, key, payload::text AS payload, created_at FROM outbox
			WHERE published_at IS NULL ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED`, cfg.BatchSize).Scan(&rows).Error
		if err != nil {
			return fmt.Errorf("pipeline: relay: select: %w", err)
		}
		if len(rows) == 0 {
			return nil
		}
		msgs := make([]Message, len(rows))
		ids := make([]int64, len(rows))
		for i, r := range rows {
			msgs[i] = Message{Topic: r.Topic, Key: []byte(r.Key), Value: []byte(r.Payload),
				Headers: map[string]string{HeaderEventID: r.EventID.String()}}
			ids[i] = r.ID
		}
		// In id order in one call: the producer keeps a key's messages in
		// the order given.
		pctx, cancel := context.WithTimeout(ctx, cfg.PublishTimeout)
		pubErr = cfg.Producer.Publish(pctx, msgs...)
		cancel()
		if pubErr != nil {
			// Record the failure and commit that; the rows stay unpublished.
			return tx.Exec(`UPDATE outbox SET attempts = attempts + 1, last_error = left(?, 1000) WHERE id IN ?`,
				pubErr.Error(), ids).Error
		}
		return tx.Exec(`UPDATE outbox SET published_at = now(), attempts = attempts + 1, last_error = NULL WHERE id IN ?`, ids).Error
	})
	if pubErr != nil {
		return 0, pubErr
	}
	if err != nil {
		// If the publish went through, the rows are published again next
		// round: consumers dedupe by event id.
		return 0, fmt.Errorf("pipeline: relay: %w", err)
	}
	now := time.Now()
	for _, r := range rows {
		m.delay.Observe(now.Sub(r.CreatedAt).Seconds())
	}
	m.published.Add(float64(len(rows)))
	return len(rows), nil
}

// SweeperConfig configures RunSweeper and Sweep. Zero values get the
// defaults noted.
type SweeperConfig struct {
	DB     *gorm.DB
	Logger *slog.Logger // nil: discarded
	// Interval between sweeps (default 1 h).
	Interval time.Duration
	// OutboxRetention keeps published outbox rows this long, for
	// inspection and replays (default 7 days).
	OutboxRetention time.Duration
	// IdempotencyRetention keeps idempotency keys this long (default 48 h,
	// twice ingest's 24 h answer cache).
	IdempotencyRetention time.Duration
}

func (c *SweeperConfig) defaults() {
	if c.Interval <= 0 {
		c.Interval = time.Hour
	}
	if c.OutboxRetention <= 0 {
		c.OutboxRetention = 7 * 24 * time.Hour
	}
	if c.IdempotencyRetention <= 0 {
		c.IdempotencyRetention = 48 * time.Hour
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// sweepChunk bounds each DELETE so that no statement holds many locks or
// writes a huge WAL burst.
const sweepChunk = 10_000

// RunSweeper runs Sweep every Interval (the first one at once) until ctx
// ends, then returns ctx.Err(). Several sweepers may run: they only delete.
func RunSweeper(ctx context.Context, cfg SweeperConfig) error {
	if cfg.DB == nil {
		return errors.New("pipeline: sweeper: DB is required")
	}
	cfg.defaults()
	for {
		outbox, keys, err := Sweep(ctx, cfg)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			cfg.Logger.Warn("outbox sweep failed", "err", err)
		} else if outbox+keys > 0 {
			cfg.Logger.Info("outbox sweep", "outbox_deleted", outbox, "idempotency_keys_deleted", keys)
		}
		if !sleepCtx(ctx, cfg.Interval) {
			return ctx.Err()
		}
	}
}

// Sweep deletes published outbox rows older than OutboxRetention and
// idempotency keys older than IdempotencyRetention, sweepChunk rows per
// statement, and returns how many of each it deleted.
func Sweep(ctx context.Context, cfg SweeperConfig) (outbox, keys int64, err error) {
	cfg.defaults()
	now := time.Now()
	outbox, err = deleteChunks(ctx, cfg.DB, `DELETE FROM outbox WHERE id IN (
		SELECT id FROM outbox WHERE published_at < ? ORDER BY published_at LIMIT ?)`, now.Add(-cfg.OutboxRetention))
	if err != nil {
		return outbox, 0, fmt.Errorf("pipeline: sweep outbox: %w", err)
	}
	keys, err = deleteChunks(ctx, cfg.DB, `DELETE FROM idempotency_keys WHERE (org_id, scope, key) IN (
		SELECT org_id, scope, key FROM idempotency_keys WHERE created_at < ? ORDER BY created_at LIMIT ?)`, now.Add(-cfg.IdempotencyRetention))
	if err != nil {
		return outbox, keys, fmt.Errorf("pipeline: sweep idempotency keys: %w", err)
	}
	return outbox, keys, nil
}

func deleteChunks(ctx context.Context, db *gorm.DB, stmt string, before time.Time) (int64, error) {
	var total int64
	for {
		res := db.WithContext(ctx).Exec(stmt, before, sweepChunk)
		if res.Error != nil {
			return total, res.Error
		}
		total += res.RowsAffected
		if res.RowsAffected < sweepChunk {
			return total, nil
		}
	}
}
