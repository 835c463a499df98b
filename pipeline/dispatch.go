package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/segmentio/kafka-go"
)

// DispatchGroup is the consumer group of the dispatcher on TopicEvents.
const DispatchGroup = "atumdesk-dispatch"

// BatchEventTimeout is what each event adds to a batch task's timeout.
const BatchEventTimeout = 15 * time.Second

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
	// Task holds the asynq options of the stage tasks (retries, retention, timeout).
	Task TaskOptions
	// BatchSize caps the events of one organisation one batch task covers
	// (default 64; 1 enqueues a task per event).
	BatchSize int
	// Parallel is the number of concurrent enqueues per Kafka batch (default 16).
	Parallel int
}

func (c *DispatcherConfig) defaults() {
	if c.GroupID == "" {
		c.GroupID = DispatchGroup
	}
	if c.Graph == nil {
		c.Graph = Graph
	}
	c.Task.defaults()
	if c.BatchSize <= 0 {
		c.BatchSize = 64
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
// What one Kafka fetch brought is batched per stage and organisation: a
// lone event becomes a one-event task with ID Stage.TaskID(event.ID), a run
// of events one batch task (BatchPayload, ID Stage.BatchTaskID) that the
// workers split back into one-event tasks for whatever fails. So an event
// delivered twice (redelivery after a crash or rebalance, several
// dispatcher processes, the relay publishing twice) enqueues one task, or
// one more that the stage's inbox row turns into a no-op. Offsets are
// committed only after every task of the batch is in Redis; while Redis is
// down the batch is retried and nothing is committed.
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

// stageTask is one task to enqueue: a stage and the events (one
// organisation's, in topic order) it covers.
type stageTask struct {
	stage  Stage
	events []TaskPayload
}

// plan groups the events of a Kafka batch into stage tasks: per stage and
// organisation, at most BatchSize events each, each event once.
func (d *dispatcher) plan(batch []kafka.Message) []stageTask {
	type key struct {
		stage Stage
		org   uuid.UUID
	}
	var (
		order  []key
		groups = map[key][]TaskPayload{}
		seen   = map[key]map[uuid.UUID]bool{}
	)
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
			k := key{s, ev.OrgID}
			if seen[k] == nil {
				seen[k] = map[uuid.UUID]bool{}
				order = append(order, k)
			}
			if !seen[k][ev.ID] {
				seen[k][ev.ID] = true
				groups[k] = append(groups[k], PayloadOf(ev))
			}
		}
	}
	var tasks []stageTask
	for _, k := range order {
		for chunk := range slices.Chunk(groups[k], d.cfg.BatchSize) {
			tasks = append(tasks, stageTask{k.stage, chunk})
		}
	}
	return tasks
}

func (d *dispatcher) handle(ctx context.Context, batch []kafka.Message) error {
	tasks := d.plan(batch)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		sem  = make(chan struct{}, d.cfg.Parallel)
	)
	for _, t := range tasks {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := d.enqueue(ctx, t); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return fmt.Errorf("pipeline: dispatch: %d of %d tasks failed: %w", len(errs), len(tasks), errs[0])
	}
	return nil
}

func (d *dispatcher) enqueue(ctx context.Context, t stageTask) error {
	if len(t.events) == 1 {
		p := t.events[0]
		return EnqueueStageTask(ctx, d.client, t.stage, t.stage.TaskID(p.EventID), p, d.cfg.Task)
	}
	// A batch's run may take as long as its events one by one would
	// (triage and embed ask an AI provider per ticket; a slow Ollama must
	// not make a whole batch time out and start over): the one-event
	// timeout plus a share per event.
	o := d.cfg.Task
	o.defaults()
	o.Timeout += time.Duration(len(t.events)) * BatchEventTimeout
	return EnqueueStageTask(ctx, d.client, t.stage, t.stage.BatchTaskID(t.events),
		BatchPayload{OrgID: t.events[0].OrgID, Events: t.events}, o)
}

func headerValue(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
