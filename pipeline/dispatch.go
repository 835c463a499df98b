package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/segmentio/kafka-go"
)

// DispatchGroup is the consumer group of the dispatcher on TopicEvents.
const DispatchGroup = "atumdesk-dispatch"

// DispatcherConfig configures RunDispatcher. Zero values get the defaults noted.
type DispatcherConfig struct {
	Brokers []string
	Redis   asynq.RedisConnOpt // e.g. asynq.ParseRedisURI(cfg.RedisURL)
	Logger  *slog.Logger       // nil: discarded
	Metrics *Metrics           // Kafka consumer metrics; nil: not recorded
	// GroupID defaults to DispatchGroup.
	GroupID string
	// Graph defaults to the package's Graph.
	Graph []Stage
	// MaxRetry per task (default 12: with the workers' backoff of 2 s
	// doubling to 10 min, about 47 min of retrying before the task is
	// archived).
	MaxRetry int
	// Retention keeps a finished task, and so its TaskID, for this long
	// (default 24 h): an event redelivered within it enqueues nothing.
	Retention time.Duration
	// Timeout bounds one run of a task (default 2 min).
	Timeout time.Duration
	// Parallel is the number of concurrent enqueues per batch (default 16).
	Parallel int
}

func (c *DispatcherConfig) defaults() {
	if c.GroupID == "" {
		c.GroupID = DispatchGroup
	}
	if c.Graph == nil {
		c.Graph = Graph
	}
	if c.MaxRetry <= 0 {
		c.MaxRetry = 12
	}
	if c.Retention <= 0 {
		c.Retention = 24 * time.Hour
	}
	if c.Timeout <= 0 {
		c.Timeout = 2 * time.Minute
	}
	if c.Parallel <= 0 {
		c.Parallel = 16
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// RunDispatcher consumes TopicEvents in group cfg.GroupID and enqueues, for
// every event, the tasks the stage graph lists for its type. It blocks until
// ctx is cancelled and then returns nil.
//
// Each task's ID is Stage.TaskID(event.ID), so an event delivered twice
// (redelivery after a crash or rebalance, several dispatcher processes, the
// relay publishing twice) enqueues one task: asynq answers
// ErrTaskIDConflict, which counts as done. Offsets are committed only after
// every task of the batch is in Redis; while Redis is down the batch is
// retried and nothing is committed.
func RunDispatcher(ctx context.Context, cfg DispatcherConfig) error {
	cfg.defaults()
	if cfg.Redis == nil {
		return errors.New("pipeline: dispatcher: Redis is required")
	}
	client := asynq.NewClient(cfg.Redis)
	defer client.Close()
	d := &dispatcher{cfg: cfg, client: client}
	err := Consume(ctx, ConsumerConfig{
		Brokers: cfg.Brokers, GroupID: cfg.GroupID, Topic: TopicEvents,
		Logger: cfg.Logger, Metrics: cfg.Metrics,
	}, d.handle)
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return nil
	}
	return err
}

type dispatcher struct {
	cfg    DispatcherConfig
	client *asynq.Client
}

type enqueueJob struct {
	stage Stage
	ev    Event
}

func (d *dispatcher) handle(ctx context.Context, batch []kafka.Message) error {
	var jobs []enqueueJob
	for _, m := range batch {
		var ev Event
		if err := json.Unmarshal(m.Value, &ev); err != nil || ev.ID == uuid.Nil {
			// A message that can never be decoded would block its
			// partition forever if retried; it is a bug upstream.
			d.cfg.Logger.Error("dispatcher: undecodable event skipped", "err", err,
				"partition", m.Partition, "offset", m.Offset, "event_id", headerValue(m, HeaderEventID))
			continue
		}
		for _, s := range StagesFor(d.cfg.Graph, ev.Type) {
			jobs = append(jobs, enqueueJob{s, ev})
		}
	}
	if len(jobs) == 0 {
		return nil
	}

	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		sem  = make(chan struct{}, d.cfg.Parallel)
	)
	for _, j := range jobs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := d.enqueue(ctx, j.stage, j.ev); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return fmt.Errorf("pipeline: dispatch: %d of %d tasks failed: %w", len(errs), len(jobs), errs[0])
	}
	return nil
}

func (d *dispatcher) enqueue(ctx context.Context, s Stage, ev Event) error {
	payload, err := json.Marshal(PayloadOf(ev))
	if err != nil {
		return err
	}
	task := asynq.NewTask(s.TaskType, payload)
	_, err = d.client.EnqueueContext(ctx, task,
		asynq.Queue(s.Queue),
		asynq.TaskID(s.TaskID(ev.ID)),
		asynq.MaxRetry(d.cfg.MaxRetry),
		asynq.Retention(d.cfg.Retention),
		asynq.Timeout(d.cfg.Timeout),
	)
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		return nil // already enqueued (or done, within retention)
	}
	if err != nil {
		return fmt.Errorf("enqueue %s for event %s: %w", s.TaskType, ev.ID, err)
	}
	return nil
}

func headerValue(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
