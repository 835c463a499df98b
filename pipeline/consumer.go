package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"slices"
	"time"

	"github.com/segmentio/kafka-go"
)

// ConsumerConfig configures Consume. Zero values get the defaults noted.
type ConsumerConfig struct {
	Brokers []string
	GroupID string
	Topic   string
	// MaxBatch caps the messages per handler call (default 500).
	MaxBatch int
	// MaxWait is how long a batch waits for more messages once it holds one
	// (default 20 ms).
	MaxWait time.Duration
	// RetryMin and RetryMax bound the exponential backoff between attempts
	// of a failing batch (default 100 ms and 5 s).
	RetryMin, RetryMax time.Duration
	// LagInterval is how often the group's lag gauge is refreshed
	// (default 10 s; negative disables).
	LagInterval time.Duration
	Logger      *slog.Logger // nil: discarded
	Metrics     *Metrics     // nil: not recorded
}

// Handler processes one batch. It must be idempotent: a batch is handed
// again after a failure, a crash or a rebalance, and may then overlap with
// messages already processed (dedupe on the event_id/message_id header).
type Handler func(ctx context.Context, batch []kafka.Message) error

// Consume runs a member of consumer group cfg.GroupID on cfg.Topic until ctx
// is cancelled, then closes the reader (leaving the group) and returns
// ctx.Err(). It returns earlier only for an invalid configuration.
//
// Delivery is at least once and nothing is skipped: each batch's offsets are
// committed synchronously only after handle returned nil. A failing batch is
// retried, the same messages again, with exponential backoff until it
// succeeds or ctx ends; a panic in handle counts as a failure. A batch can
// span partitions; within a partition it is in offset order.
func Consume(ctx context.Context, cfg ConsumerConfig, handle Handler) error {
	if cfg.GroupID == "" || cfg.Topic == "" {
		return errors.New("pipeline: consume: GroupID and Topic are required")
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 500
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 20 * time.Millisecond
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = 100 * time.Millisecond
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = max(5*time.Second, cfg.RetryMin)
	}
	if cfg.LagInterval == 0 {
		cfg.LagInterval = 10 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("topic", cfg.Topic, "group", cfg.GroupID)

	rc := kafka.ReaderConfig{
		Brokers: cfg.Brokers,
		GroupID: cfg.GroupID,
		Topic:   cfg.Topic,
		Dialer:  &kafka.Dialer{Timeout: 10 * time.Second, DualStack: true, ClientID: "atumdesk"},
		// Never "last": a member that dies before its first commit would
		// make the next one skip everything in between (kafka-go #711).
		StartOffset:    kafka.FirstOffset,
		CommitInterval: 0, // synchronous commits; an interval can lose commits at generation end
		QueueCapacity:  cfg.MaxBatch,
		MinBytes:       1,
		MaxBytes:       10 << 20,
		MaxWait:        500 * time.Millisecond, // broker long-poll; short keeps shutdown and rebalances quick
		// A dead member's partitions move after SessionTimeout.
		SessionTimeout:    10 * time.Second,
		HeartbeatInterval: time.Second,
		// How long the coordinator waits for members to rejoin, and for
		// the leader's SyncGroup. Live members rejoin within a heartbeat.
		// Below SessionTimeout on purpose: kfake lets the session timer
		// of a member parked in SyncGroup run (Kafka keeps it alive), so
		// with a dead leader the follower must be released by the
		// rebalance timeout before its session expires, or it is dropped
		// unanswered and recovers only after its 15 s sync deadline.
		RebalanceTimeout:      5 * time.Second,
		JoinGroupBackoff:      time.Second,
		WatchPartitionChanges: true,
		ErrorLogger: kafka.LoggerFunc(func(format string, args ...any) {
			log.Warn(fmt.Sprintf(format, args...), "component", "kafka-reader")
		}),
	}
	if err := rc.Validate(); err != nil { // NewReader panics on what Validate rejects
		return fmt.Errorf("pipeline: consume: %w", err)
	}
	r := kafka.NewReader(rc)
	defer r.Close()

	if cfg.Metrics != nil && cfg.LagInterval > 0 {
		lagCtx, stop := context.WithCancel(ctx)
		defer stop()
		go reportLag(lagCtx, cfg, log)
	}

	countErr := func() {
		if cfg.Metrics != nil {
			cfg.Metrics.ConsumeErrors.WithLabelValues(cfg.Topic, cfg.GroupID).Inc()
		}
	}

	for fetchAttempt := 0; ; {
		batch, err := fetchBatch(ctx, r, cfg.MaxBatch, cfg.MaxWait)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, io.EOF) { // reader closed under us; cannot happen while we own it
				return fmt.Errorf("pipeline: consume: %w", err)
			}
			countErr()
			log.Warn("kafka fetch failed", "err", err, "attempt", fetchAttempt)
			if !sleepCtx(ctx, backoff(fetchAttempt, cfg.RetryMin, cfg.RetryMax)) {
				return ctx.Err()
			}
			fetchAttempt++
			continue
		}
		fetchAttempt = 0

		for attempt := 0; ; attempt++ {
			err := safeHandle(ctx, handle, batch)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return ctx.Err() // not committed: the batch comes back to the group
			}
			countErr()
			first, last := batch[0], batch[len(batch)-1]
			log.Warn("kafka batch handler failed; retrying the same batch",
				"err", err, "attempt", attempt+1, "messages", len(batch),
				"first_partition", first.Partition, "first_offset", first.Offset,
				"last_partition", last.Partition, "last_offset", last.Offset)
			if !sleepCtx(ctx, backoff(attempt, cfg.RetryMin, cfg.RetryMax)) {
				return ctx.Err()
			}
		}

		// The work is done: commit even if ctx was cancelled meanwhile, so
		// a clean shutdown does not redeliver it.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		err = r.CommitMessages(cctx, batch...)
		cancel()
		if err != nil {
			// Skipping nothing: the uncommitted batch is redelivered after a
			// rebalance or restart, and a later commit on the same partition
			// only covers messages that were handled too.
			countErr()
			log.Warn("kafka commit failed; batch will be redelivered", "err", err, "messages", len(batch))
		} else if cfg.Metrics != nil {
			cfg.Metrics.Consumed.WithLabelValues(cfg.Topic, cfg.GroupID).Add(float64(len(batch)))
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// fetchBatch blocks for the first message, then collects more until max
// messages or wait has elapsed. kafka-go's FetchMessage only selects on its
// internal queue and ctx, so a FetchMessage cut short by the batch deadline
// takes no message off the queue and the reader stays usable (see
// TestFetchMessageShortDeadline).
func fetchBatch(ctx context.Context, r *kafka.Reader, maxN int, wait time.Duration) ([]kafka.Message, error) {
	m, err := r.FetchMessage(ctx)
	if err != nil {
		return nil, err
	}
	batch := make([]kafka.Message, 1, maxN)
	batch[0] = m
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for len(batch) < maxN {
		m, err := r.FetchMessage(wctx)
		if err != nil {
			// Deadline, shutdown or a fetch error: hand over what we have;
			// a persistent error shows up again on the next first fetch.
			break
		}
		batch = append(batch, m)
	}
	return batch, nil
}

func safeHandle(ctx context.Context, handle Handler, batch []kafka.Message) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("handler panic: %v\n%s", p, debug.Stack())
		}
	}()
	return handle(ctx, batch)
}

// backoff returns min·2^attempt capped at max.
func backoff(attempt int, lo, hi time.Duration) time.Duration {
	d := lo
	for i := 0; i < attempt && d < hi; i++ {
		d *= 2
	}
	return min(d, hi)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func reportLag(ctx context.Context, cfg ConsumerConfig, log *slog.Logger) {
	t := time.NewTicker(cfg.LagInterval)
	defer t.Stop()
	for {
		lag, err := GroupLag(ctx, cfg.Brokers, cfg.GroupID, cfg.Topic)
		if err == nil {
			cfg.Metrics.ConsumerLag.WithLabelValues(cfg.Topic, cfg.GroupID).Set(float64(lag))
		} else if ctx.Err() == nil {
			log.Debug("kafka lag query failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// GroupLag returns the messages of topic not yet committed by group: the sum
// over partitions of high watermark minus committed offset (minus the log
// start where the group has not committed yet).
func GroupLag(ctx context.Context, brokers []string, group, topic string) (int64, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	transport := &kafka.Transport{ClientID: "atumdesk"}
	defer transport.CloseIdleConnections()
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Transport: transport}

	md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return 0, err
	}
	var parts []int
	for _, t := range md.Topics {
		if t.Name != topic {
			continue
		}
		if t.Error != nil {
			return 0, t.Error
		}
		for _, p := range t.Partitions {
			parts = append(parts, p.ID)
		}
	}
	if len(parts) == 0 {
		return 0, fmt.Errorf("topic %s not found", topic)
	}
	slices.Sort(parts)

	hwm, err := listOffsets(ctx, c, topic, parts, false)
	if err != nil {
		return 0, err
	}
	of, err := c.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
	if err != nil {
		return 0, err
	}
	committed := map[int]int64{}
	var uncommitted []int
	switch {
	case errors.Is(of.Error, kafka.GroupIdNotFound):
		// A group that never joined: Kafka answers "no offsets", kfake
		// answers GROUP_ID_NOT_FOUND. Both mean nothing is committed.
		uncommitted = parts
	case of.Error != nil:
		return 0, of.Error
	default:
		for _, p := range of.Topics[topic] {
			if p.Error != nil {
				return 0, p.Error
			}
			if p.CommittedOffset >= 0 {
				committed[p.Partition] = p.CommittedOffset
			}
		}
		for _, p := range parts {
			if _, ok := committed[p]; !ok {
				uncommitted = append(uncommitted, p)
			}
		}
	}
	if len(uncommitted) > 0 { // the group starts there (StartOffset FirstOffset)
		start, err := listOffsets(ctx, c, topic, uncommitted, true)
		if err != nil {
			return 0, err
		}
		for p, o := range start {
			committed[p] = o
		}
	}
	var lag int64
	for _, p := range parts {
		lag += max(0, hwm[p]-committed[p])
	}
	return lag, nil
}

// listOffsets returns the log start (first) or high watermark of each
// partition. One kind per request: kafka-go's Client.ListOffsets sorts the
// answers by the timestamp the broker echoes, and brokers echo -1 for both
// "earliest" and "latest" (v1+), so the earliest offset lands in LastOffset;
// asking both for one partition in one request is INVALID_REQUEST anyway.
func listOffsets(ctx context.Context, c *kafka.Client, topic string, parts []int, first bool) (map[int]int64, error) {
	reqs := make([]kafka.OffsetRequest, len(parts))
	for i, p := range parts {
		if first {
			reqs[i] = kafka.FirstOffsetOf(p)
		} else {
			reqs[i] = kafka.LastOffsetOf(p)
		}
	}
	res, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, err
	}
	out := make(map[int]int64, len(parts))
	for _, p := range res.Topics[topic] {
		if p.Error != nil {
			return nil, fmt.Errorf("list offsets %s/%d: %w", topic, p.Partition, p.Error)
		}
		v := p.LastOffset
		if first && p.LastOffset < 0 { // a broker that echoes -2
			v = p.FirstOffset
		}
		out[p.Partition] = v
	}
	if len(out) != len(parts) {
		return nil, fmt.Errorf("list offsets %s: %d of %d partitions answered", topic, len(out), len(parts))
	}
	return out, nil
}
