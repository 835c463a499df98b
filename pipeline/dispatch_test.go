package pipeline_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/atumdesk/atumdesk/internal/testenv"
	"github.com/atumdesk/atumdesk/pipeline"
)

func TestGraphTaskIDsAreUniquePerStageAndEvent(t *testing.T) {
	seen := map[string]bool{}
	ev := uuid.New()
	for _, s := range pipeline.Graph {
		require.True(t, pipeline.KnownQueue(s.Queue), "%+v", s)
		require.NotEmpty(t, s.TaskType)
		require.NotEmpty(t, s.On)
		// An event has one type: only stages on the same type could clash.
		key := s.On + " " + s.TaskID(ev)
		require.False(t, seen[key], "two stages on %s share task id %s", s.On, s.TaskID(ev))
		seen[key] = true
	}
	require.Contains(t, pipeline.StagesFor(pipeline.Graph, pipeline.EventTicketCreated), pipeline.Graph[0])
	require.Empty(t, pipeline.StagesFor(pipeline.Graph, pipeline.EventTicketAssigned))
}

// An event delivered twice on TopicEvents, and the whole topic replayed by
// a second dispatcher, still make exactly one task.
func TestDispatcherEnqueuesOncePerEvent(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := pipeline.StartBroker(ctx, pipeline.BrokerConfig{DataDir: t.TempDir(), Logger: log})
	require.NoError(t, err)
	t.Cleanup(b.Close)
	require.NoError(t, pipeline.EnsureTopics(ctx, b.Addrs(), pipeline.DefaultTopics(1)))
	redisOpt, err := asynq.ParseRedisURI(testenv.RedisURL(t))
	require.NoError(t, err)

	ref := pipeline.TicketRef{OrgID: uuid.New(), TicketID: uuid.Must(uuid.NewV7()), RequesterID: uuid.New()}
	created, err := pipeline.NewEvent(pipeline.EventTicketCreated, ref, nil, pipeline.AudiencePublic, map[string]any{"number": 1})
	require.NoError(t, err)
	updated, err := pipeline.NewEvent(pipeline.EventTicketUpdated, ref, nil, pipeline.AudiencePublic, nil)
	require.NoError(t, err)
	msg := func(ev pipeline.Event) pipeline.Message {
		v, err := json.Marshal(ev)
		require.NoError(t, err)
		return pipeline.Message{Topic: pipeline.TopicEvents, Key: []byte(ev.TicketID.String()), Value: v,
			Headers: map[string]string{pipeline.HeaderEventID: ev.ID.String()}}
	}
	p := pipeline.NewProducer(b.Addrs())
	defer p.Close()
	garbage := pipeline.Message{Topic: pipeline.TopicEvents, Key: []byte("x"), Value: []byte("not json"), Headers: map[string]string{pipeline.HeaderEventID: "x"}}
	require.NoError(t, p.Publish(ctx, msg(created), garbage, msg(updated), msg(created)))

	run := func(group string) {
		t.Helper()
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			// The dedup stage only, so stages added to the graph later do
			// not change what this test counts.
			done <- pipeline.RunDispatcher(rctx, pipeline.DispatcherConfig{Brokers: b.Addrs(), Redis: redisOpt, Logger: log, GroupID: group,
				Graph: pipeline.Graph[:1]})
		}()
		require.Eventually(t, func() bool {
			lag, err := pipeline.GroupLag(ctx, b.Addrs(), group, pipeline.TopicEvents)
			return err == nil && lag == 0
		}, 30*time.Second, 50*time.Millisecond)
		cancel()
		require.NoError(t, <-done)
	}
	run(pipeline.DispatchGroup)
	run("replay") // a second group reads the whole topic again

	insp := asynq.NewInspector(redisOpt)
	defer insp.Close()
	tasks, err := insp.ListPendingTasks(pipeline.QueueDedup)
	require.NoError(t, err)
	require.Len(t, tasks, 1)
	task := tasks[0]
	require.Equal(t, pipeline.Graph[0].TaskID(created.ID), task.ID)
	require.Equal(t, pipeline.TaskDedup, task.Type)
	require.Equal(t, 12, task.MaxRetry)
	require.Equal(t, 24*time.Hour, task.Retention)
	require.Equal(t, 2*time.Minute, task.Timeout)
	pl, err := pipeline.ParseTaskPayload(task.Payload)
	require.NoError(t, err)
	require.Equal(t, pipeline.PayloadOf(created), pl)
	queues, err := insp.Queues()
	require.NoError(t, err)
	require.Equal(t, []string{pipeline.QueueDedup}, queues) // ticket.updated fans out to nothing

	// Once done, the task's id stays reserved for Retention: a replay
	// after completion enqueues nothing either.
	srv := asynq.NewServer(redisOpt, asynq.Config{Queues: map[string]int{pipeline.QueueDedup: 1}, TaskCheckInterval: 20 * time.Millisecond,
		Logger: nopLogger{}})
	require.NoError(t, srv.Start(asynq.HandlerFunc(func(context.Context, *asynq.Task) error { return nil })))
	require.Eventually(t, func() bool {
		done, err := insp.ListCompletedTasks(pipeline.QueueDedup)
		return err == nil && len(done) == 1
	}, 10*time.Second, 20*time.Millisecond)
	srv.Shutdown()
	run("replay-after-done")
	info, err := insp.GetQueueInfo(pipeline.QueueDedup)
	require.NoError(t, err)
	require.Equal(t, 0, info.Pending)
	require.Equal(t, 1, info.Completed)
}

type nopLogger struct{}

func (nopLogger) Debug(...any) {}
func (nopLogger) Info(...any)  {}
func (nopLogger) Warn(...any)  {}
func (nopLogger) Error(...any) {}
func (nopLogger) Fatal(...any) {}

func TestDispatcherNeedsRedis(t *testing.T) {
	require.ErrorContains(t, pipeline.RunDispatcher(context.Background(), pipeline.DispatcherConfig{}), "Redis is required")
}

// What one fetch brings is batched per stage and organisation: one task for
// org A's five new tickets (a repeat dropped),
// one for org B's lone ticket under the one-event ID.
func TestDispatcherBatchesPerStageAndOrganisation(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := pipeline.StartBroker(ctx, pipeline.BrokerConfig{DataDir: t.TempDir(), Logger: log})
	require.NoError(t, err)
	t.Cleanup(b.Close)
	require.NoError(t, pipeline.EnsureTopics(ctx, b.Addrs(), pipeline.DefaultTopics(1)))
	redisOpt, err := asynq.ParseRedisURI(testenv.RedisURL(t))
	require.NoError(t, err)

	orgA, orgB := uuid.New(), uuid.New()
	var msgs []pipeline.Message
	var wantA []pipeline.TaskPayload
	add := func(org uuid.UUID) pipeline.Event {
		ev, err := pipeline.NewEvent(pipeline.EventTicketCreated, pipeline.TicketRef{OrgID: org, TicketID: uuid.Must(uuid.NewV7()), RequesterID: uuid.New()},
			nil, pipeline.AudiencePublic, nil)
		require.NoError(t, err)
		v, err := json.Marshal(ev)
		require.NoError(t, err)
		msgs = append(msgs, pipeline.Message{Topic: pipeline.TopicEvents, Key: []byte(ev.TicketID.String()), Value: v,
			Headers: map[string]string{pipeline.HeaderEventID: ev.ID.String()}})
		return ev
	}
	for i := range 5 {
		ev := add(orgA)
		wantA = append(wantA, pipeline.PayloadOf(ev))
		if i == 1 {
			msgs = append(msgs, msgs[len(msgs)-1]) // delivered twice
		}
	}
	evB := add(orgB)
	p := pipeline.NewProducer(b.Addrs())
	defer p.Close()
	require.NoError(t, p.Publish(ctx, msgs...))

	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- pipeline.RunDispatcher(rctx, pipeline.DispatcherConfig{Brokers: b.Addrs(), Redis: redisOpt, Logger: log, Graph: pipeline.Graph[:1]})
	}()
	require.Eventually(t, func() bool {
		lag, err := pipeline.GroupLag(ctx, b.Addrs(), pipeline.DispatchGroup, pipeline.TopicEvents)
		return err == nil && lag == 0
	}, 30*time.Second, 50*time.Millisecond)
	cancel()
	require.NoError(t, <-done)

	insp := asynq.NewInspector(redisOpt)
	defer insp.Close()
	tasks, err := insp.ListPendingTasks(pipeline.QueueDedup)
	require.NoError(t, err)
	// One fetch normally brings all seven messages (two tasks: a batch of
	// org A's five, org B's lone event); a loaded machine may split them
	// over fetches, so what is fixed is: every event in a task of its own
	// organisation, batches under their batch ID and timeout, a lone event
	// under its one-event ID.
	stage := pipeline.Graph[0]
	covered := map[uuid.UUID]pipeline.TaskPayload{}
	batches := 0
	for _, task := range tasks {
		got, err := pipeline.ParseTaskPayloads(task.Payload)
		require.NoError(t, err)
		if pipeline.IsBatchPayload(task.Payload) {
			batches++
			require.Equal(t, stage.BatchTaskID(got), task.ID)
			require.Equal(t, 2*time.Minute+time.Duration(len(got))*pipeline.BatchEventTimeout, task.Timeout)
			require.Equal(t, orgA, got[0].OrgID)
		} else {
			require.Len(t, got, 1)
			require.Equal(t, stage.TaskID(got[0].EventID), task.ID)
			require.Equal(t, 2*time.Minute, task.Timeout)
		}
		for _, p := range got {
			covered[p.EventID] = p
		}
	}
	want := map[uuid.UUID]pipeline.TaskPayload{evB.ID: pipeline.PayloadOf(evB)}
	for _, p := range wantA {
		want[p.EventID] = p
	}
	require.Equal(t, want, covered)
	require.Positive(t, batches, "org A's events batched")
	require.Less(t, len(tasks), 1+len(wantA), "fewer tasks than events")
}

func TestParseTaskPayloadsRejectsMixedBatches(t *testing.T) {
	a := pipeline.TaskPayload{EventID: uuid.New(), OrgID: uuid.New(), TicketID: uuid.New()}
	b := a
	b.OrgID = uuid.New()
	for body, want := range map[string]any{
		"mixed": pipeline.BatchPayload{OrgID: a.OrgID, Events: []pipeline.TaskPayload{a, b}},
		"empty": pipeline.BatchPayload{OrgID: a.OrgID, Events: []pipeline.TaskPayload{}},
		"bad":   pipeline.BatchPayload{OrgID: a.OrgID, Events: []pipeline.TaskPayload{{OrgID: a.OrgID}}},
	} {
		v, err := json.Marshal(want)
		require.NoError(t, err)
		_, err = pipeline.ParseTaskPayloads(v)
		require.Error(t, err, body)
	}
	v, err := json.Marshal(a)
	require.NoError(t, err)
	got, err := pipeline.ParseTaskPayloads(v)
	require.NoError(t, err)
	require.Equal(t, []pipeline.TaskPayload{a}, got)
}
