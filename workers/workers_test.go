package workers

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/atumdesk/atumdesk/internal/testenv"
	"github.com/atumdesk/atumdesk/pipeline"
)

func TestParseQueues(t *testing.T) {
	q, err := ParseQueues(" dedup=2, triage = 8 ")
	require.NoError(t, err)
	require.Equal(t, map[string]int{"dedup": 2, "triage": 8}, q)

	for spec, want := range map[string]string{
		"":                  "no queues given",
		"dedup":             "want queue=concurrency",
		"dedup=2,,triage=1": "empty entry",
		"mail=2":            `unknown queue "mail"; known queues: dedup, triage, embed, sla, notify`,
		"dedup=0":           "not a number in 1..1000",
		"dedup=x":           "not a number in 1..1000",
		"dedup=1001":        "not a number in 1..1000",
		"dedup=1,dedup=2":   "listed twice",
	} {
		_, err := ParseQueues(spec)
		require.ErrorContains(t, err, want, spec)
	}
	require.Equal(t, map[string]int{"dedup": 4, "sla": 4, "triage": 4, "embed": 4, "notify": 4}, DefaultQueues())
}

// Every stage of the graph has a handler, and every handler a stage.
func TestRegistryMatchesGraph(t *testing.T) {
	reg := Registry(Deps{})
	inGraph := map[[2]string]bool{}
	for _, s := range pipeline.Graph {
		require.True(t, pipeline.KnownQueue(s.Queue), "stage %+v: unknown queue", s)
		require.NotNil(t, reg[s.Queue][s.TaskType], "stage %+v has no handler in the registry", s)
		inGraph[[2]string{s.Queue, s.TaskType}] = true
	}
	for q, types := range reg {
		for typ := range types {
			require.True(t, inGraph[[2]string{q, typ}], "handler %s/%s has no stage in pipeline.Graph", q, typ)
		}
	}
}

func TestRetryDelayIsExponentialWithJitter(t *testing.T) {
	f := retryDelay(time.Second, 10*time.Second)
	for n, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second} {
		for range 20 {
			d := f(n, nil, nil)
			require.GreaterOrEqual(t, d, want/2, "n=%d", n)
			require.LessOrEqual(t, d, want, "n=%d", n)
		}
	}
}

func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			return value(m)
		}
	}
	return -1
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return -1
}

// A failing task is retried with backoff, then archived; the metrics and
// queue gauges say so; Run stops on cancel.
func TestRunRetriesThenArchives(t *testing.T) {
	redisOpt, err := asynq.ParseRedisURI(testenv.RedisURL(t))
	require.NoError(t, err)
	var runs, okRuns atomic.Int32
	handlers := Handlers{pipeline.QueueDedup: {pipeline.TaskDedup: asynq.HandlerFunc(func(_ context.Context, task *asynq.Task) error {
		runs.Add(1)
		if strings.Contains(string(task.Payload()), "fail") {
			return errors.New("boom")
		}
		okRuns.Add(1)
		return nil
	})}}
	reg := prometheus.NewRegistry()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{
			Redis: redisOpt, Queues: map[string]int{"dedup": 2, "triage": 1}, Handlers: handlers,
			Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
			Registerer: reg, RetryBase: 10 * time.Millisecond, RetryMax: 20 * time.Millisecond,
			PollInterval: 50 * time.Millisecond, DepthInterval: 50 * time.Millisecond, ShutdownTimeout: time.Second,
		})
	}()
	t.Cleanup(func() { cancel(); <-done })

	client := asynq.NewClient(redisOpt)
	defer client.Close()
	failID := "ticket:dedup:" + uuid.NewString()
	_, err = client.Enqueue(asynq.NewTask(pipeline.TaskDedup, []byte(`{"x":"fail"}`)), asynq.Queue("dedup"), asynq.TaskID(failID), asynq.MaxRetry(2))
	require.NoError(t, err)
	_, err = client.Enqueue(asynq.NewTask(pipeline.TaskDedup, []byte(`{"x":"ok"}`)), asynq.Queue("dedup"), asynq.MaxRetry(2))
	require.NoError(t, err)

	insp := asynq.NewInspector(redisOpt)
	defer insp.Close()
	require.Eventually(t, func() bool {
		info, err := insp.GetTaskInfo("dedup", failID)
		return err == nil && info.State == asynq.TaskStateArchived
	}, 10*time.Second, 20*time.Millisecond)
	info, err := insp.GetTaskInfo("dedup", failID)
	require.NoError(t, err)
	require.Equal(t, 2, info.Retried)
	require.Equal(t, "boom", info.LastErr)
	require.EqualValues(t, 4, runs.Load()) // 3 failing runs + 1 good one
	require.EqualValues(t, 1, okRuns.Load())

	q := map[string]string{"queue": "dedup"}
	require.EqualValues(t, 4, metricValue(t, reg, "atumdesk_tasks_processed_total", q))
	require.EqualValues(t, 3, metricValue(t, reg, "atumdesk_tasks_failed_total", q))
	require.EqualValues(t, 4, metricValue(t, reg, "atumdesk_tasks_duration_seconds", q))
	require.Eventually(t, func() bool {
		return metricValue(t, reg, "atumdesk_queue_tasks", map[string]string{"queue": "dedup", "state": "archived"}) == 1
	}, 5*time.Second, 20*time.Millisecond)
	require.EqualValues(t, 0, metricValue(t, reg, "atumdesk_queue_tasks", map[string]string{"queue": "dedup", "state": "pending"}))
	// triage has no handlers yet: not served, so no gauges for it
	require.EqualValues(t, -1, metricValue(t, reg, "atumdesk_queue_tasks", map[string]string{"queue": "triage"}))

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
		done <- nil // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	ctx := context.Background()
	opt := asynq.RedisClientOpt{Addr: "127.0.0.1:1"}
	require.ErrorContains(t, Run(ctx, Config{Queues: map[string]int{"dedup": 1}}), "Redis is required")
	require.ErrorContains(t, Run(ctx, Config{Redis: opt, Queues: map[string]int{"mail": 1}}), `unknown queue "mail"`)
	require.ErrorContains(t, Run(ctx, Config{Redis: opt, Queues: map[string]int{"dedup": 0}}), "concurrency 0")
	// a queue whose stage has no handler here is not served
	only := Handlers{pipeline.QueueDedup: {pipeline.TaskDedup: asynq.HandlerFunc(func(context.Context, *asynq.Task) error { return nil })}}
	require.ErrorContains(t, Run(ctx, Config{Redis: opt, Queues: map[string]int{"notify": 1}, Handlers: only}), "no queue to serve")
}

// A batch task runs each of its events through the one-event handler; the
// event that fails is handed on as its own task under its usual ID, retried
// and archived alone, while the others are done once.
func TestBatchTaskSplitsFailedEvents(t *testing.T) {
	redisOpt, err := asynq.ParseRedisURI(testenv.RedisURL(t))
	require.NoError(t, err)
	org := uuid.New()
	events := make([]pipeline.TaskPayload, 5)
	for i := range events {
		events[i] = pipeline.TaskPayload{EventID: uuid.Must(uuid.NewV7()), EventType: pipeline.EventTicketCreated, OrgID: org, TicketID: uuid.Must(uuid.NewV7())}
	}
	bad := events[2]
	runs := map[uuid.UUID]*atomic.Int32{}
	for _, e := range events {
		runs[e.EventID] = &atomic.Int32{}
	}
	handlers := Handlers{pipeline.QueueDedup: {pipeline.TaskDedup: asynq.HandlerFunc(func(_ context.Context, task *asynq.Task) error {
		p, err := pipeline.ParseTaskPayload(task.Payload()) // the handler sees one event
		if err != nil {
			return err
		}
		runs[p.EventID].Add(1)
		if p.EventID == bad.EventID {
			return errors.New("this ticket is broken")
		}
		return nil
	})}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{
			Redis: redisOpt, Queues: map[string]int{"dedup": 2}, Handlers: handlers,
			Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
			RetryBase: 10 * time.Millisecond, RetryMax: 20 * time.Millisecond,
			PollInterval: 50 * time.Millisecond, ShutdownTimeout: time.Second,
			Task: pipeline.TaskOptions{MaxRetry: 2},
		})
	}()
	t.Cleanup(func() { cancel(); <-done })

	stage := pipeline.Graph[0]
	client := asynq.NewClient(redisOpt)
	defer client.Close()
	require.NoError(t, pipeline.EnqueueStageTask(ctx, client, stage, stage.BatchTaskID(events),
		pipeline.BatchPayload{OrgID: org, Events: events}, pipeline.TaskOptions{}))

	insp := asynq.NewInspector(redisOpt)
	defer insp.Close()
	require.Eventually(t, func() bool {
		info, err := insp.GetTaskInfo("dedup", stage.TaskID(bad.EventID))
		return err == nil && info.State == asynq.TaskStateArchived
	}, 10*time.Second, 20*time.Millisecond)
	info, err := insp.GetTaskInfo("dedup", stage.TaskID(bad.EventID))
	require.NoError(t, err)
	require.Equal(t, "this ticket is broken", info.LastErr)
	p, err := pipeline.ParseTaskPayload(info.Payload) // what the archived-task endpoints read
	require.NoError(t, err)
	require.Equal(t, bad, p)
	for _, e := range events {
		want := int32(1)
		if e.EventID == bad.EventID {
			want = 4 // in the batch, then its own task: a first run and 2 retries
		}
		require.Equal(t, want, runs[e.EventID].Load(), "event %s", e.EventID)
	}
	batch, err := insp.GetTaskInfo("dedup", stage.BatchTaskID(events))
	require.NoError(t, err)
	require.Equal(t, asynq.TaskStateCompleted, batch.State)
}

// batchStage is a stage handler with a ProcessBatch: the splitter calls it
// once per batch task and hands on only what it reports failed.
type batchStage struct {
	batches atomic.Int32
	single  atomic.Int32
	bad     uuid.UUID
}

func (b *batchStage) ProcessTask(context.Context, *asynq.Task) error {
	b.single.Add(1)
	return nil // the handed-on event succeeds on its own
}

func (b *batchStage) ProcessBatch(_ context.Context, events []pipeline.TaskPayload) (map[int]error, error) {
	b.batches.Add(1)
	failed := map[int]error{}
	for i, e := range events {
		if e.EventID == b.bad {
			failed[i] = errors.New("bad event")
		}
	}
	return failed, nil
}

func TestBatchProcessorRunsOncePerBatch(t *testing.T) {
	redisOpt, err := asynq.ParseRedisURI(testenv.RedisURL(t))
	require.NoError(t, err)
	org := uuid.New()
	events := make([]pipeline.TaskPayload, 3)
	for i := range events {
		events[i] = pipeline.TaskPayload{EventID: uuid.Must(uuid.NewV7()), OrgID: org, TicketID: uuid.Must(uuid.NewV7())}
	}
	h := &batchStage{bad: events[1].EventID}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{Redis: redisOpt, Queues: map[string]int{"dedup": 1}, Handlers: Handlers{pipeline.QueueDedup: {pipeline.TaskDedup: h}},
			RetryBase: 10 * time.Millisecond, PollInterval: 50 * time.Millisecond, ShutdownTimeout: time.Second})
	}()
	t.Cleanup(func() { cancel(); <-done })
	stage := pipeline.Graph[0]
	client := asynq.NewClient(redisOpt)
	defer client.Close()
	require.NoError(t, pipeline.EnqueueStageTask(ctx, client, stage, stage.BatchTaskID(events),
		pipeline.BatchPayload{OrgID: org, Events: events}, pipeline.TaskOptions{}))
	insp := asynq.NewInspector(redisOpt)
	defer insp.Close()
	require.Eventually(t, func() bool {
		info, err := insp.GetTaskInfo("dedup", stage.TaskID(events[1].EventID))
		return err == nil && info.State == asynq.TaskStateCompleted
	}, 10*time.Second, 20*time.Millisecond)
	require.EqualValues(t, 1, h.batches.Load())
	require.EqualValues(t, 1, h.single.Load())
}
