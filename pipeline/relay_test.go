package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/internal/testenv"
)

// emitTestEvents writes n events for the given tickets, round robin, one
// transaction per event, and returns their ids in outbox order.
func emitTestEvents(t testing.TB, db *gorm.DB, tickets []uuid.UUID, n int) []uuid.UUID {
	t.Helper()
	var ids []uuid.UUID
	for i := range n {
		ev, err := NewEvent(EventTicketUpdated, TicketRef{TicketID: tickets[i%len(tickets)]}, nil, AudienceStaff, map[string]int{"seq": i})
		require.NoError(t, err)
		require.NoError(t, EmitEvents(context.Background(), db, ev))
		ids = append(ids, ev.ID)
	}
	return ids
}

// startRelay runs RunRelay until the test ends.
func startRelay(t testing.TB, cfg RelayConfig) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- RunRelay(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("RunRelay returned %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("RunRelay did not return after cancel")
		}
	})
}

// eventsOf decodes what a sink collected from TopicEvents.
func eventsOf(t testing.TB, msgs []kafka.Message) []Event {
	t.Helper()
	out := make([]Event, len(msgs))
	for i, m := range msgs {
		require.NoError(t, json.Unmarshal(m.Value, &out[i]))
		require.Equal(t, out[i].ID.String(), header(m, HeaderEventID))
		require.Equal(t, out[i].TicketID.String(), string(m.Key))
	}
	return out
}

// eventsConsumer collects TopicEvents in a group of its own.
func eventsConsumer(t testing.TB, brokers []string) *sink {
	t.Helper()
	s := &sink{}
	runConsumer(t, ConsumerConfig{Brokers: brokers, GroupID: "test-" + uuid.NewString(), Topic: TopicEvents,
		MaxWait: 5 * time.Millisecond, LagInterval: -1, Logger: testLogger()},
		func(_ context.Context, batch []kafka.Message) error { s.add(batch); return nil })
	return s
}

// requireKeyOrder checks that every event in want arrived, and that each
// ticket's events arrived in outbox order (first occurrences).
func requireKeyOrder(t testing.TB, want []uuid.UUID, got []Event) {
	t.Helper()
	pos := make(map[uuid.UUID]int, len(want))
	for i, id := range want {
		pos[id] = i
	}
	seen := map[uuid.UUID]bool{}
	last := map[uuid.UUID]int{}
	for _, ev := range got {
		p, ok := pos[ev.ID]
		require.True(t, ok, "unexpected event %s", ev.ID)
		if seen[ev.ID] {
			continue
		}
		seen[ev.ID] = true
		if l, ok := last[ev.TicketID]; ok {
			require.Greater(t, p, l, "ticket %s: event out of order", ev.TicketID)
		}
		last[ev.TicketID] = p
	}
	require.Len(t, seen, len(want))
}

func TestRelayPublishesOnceInOrder(t *testing.T) {
	t.Parallel()
	db, _ := testenv.DB(t)
	b, _ := newCluster(t)
	tickets := []uuid.UUID{uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New()}
	want := emitTestEvents(t, db, tickets, 150)
	got := eventsConsumer(t, b.Addrs())

	// Another relay is active (holds the lock): these stand by.
	active := db.Begin()
	require.NoError(t, active.Exec(`SELECT pg_advisory_xact_lock(?)`, relayLockKey).Error)
	// Two relays (two pipeline processes): one works at a time.
	reg := prometheus.NewRegistry()
	for range 2 {
		startRelay(t, RelayConfig{DB: db, Producer: newProducer(t, b.Addrs()), Logger: testLogger(), BatchSize: 40, Registerer: reg})
	}
	time.Sleep(300 * time.Millisecond)
	require.Zero(t, got.len(), "standby relays publish nothing")
	require.EqualValues(t, 150, count(t, db, `SELECT count(*) FROM outbox WHERE published_at IS NULL`))
	require.NoError(t, active.Commit().Error) // the active relay stops
	// More while they run.
	want = append(want, emitTestEvents(t, db, tickets, 150)...)
	waitFor(t, "300 events", 20*time.Second, func() bool { return got.len() >= len(want) })
	time.Sleep(100 * time.Millisecond) // a duplicate would show up now

	evs := eventsOf(t, got.snapshot())
	require.Len(t, evs, len(want), "each event exactly once")
	requireKeyOrder(t, want, evs)
	require.EqualValues(t, 0, count(t, db, `SELECT count(*) FROM outbox WHERE published_at IS NULL`))
	require.EqualValues(t, 300, count(t, db, `SELECT count(*) FROM outbox WHERE attempts = 1 AND last_error IS NULL`))
	metrics, err := reg.Gather()
	require.NoError(t, err)
	names := map[string]bool{}
	for _, m := range metrics {
		names[m.GetName()] = true
	}
	require.True(t, names["atumdesk_outbox_backlog"] && names["atumdesk_outbox_published_total"], "metrics registered once, shared")
}

func TestRelaySurvivesBrokerDown(t *testing.T) {
	t.Parallel()
	db, _ := testenv.DB(t)
	dir, addr := t.TempDir(), freeAddr(t)
	b := startBroker(t, dir, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, EnsureTopics(ctx, b.Addrs(), DefaultTopics(1)))
	tickets := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
	want := emitTestEvents(t, db, tickets, 20)

	b.Close()
	want = append(want, emitTestEvents(t, db, tickets, 20)...)
	p := newProducer(t, []string{addr}, WithMaxAttempts(1), WithTimeout(300*time.Millisecond))
	startRelay(t, RelayConfig{DB: db, Producer: p, Logger: testLogger(), RetryMin: 50 * time.Millisecond, RetryMax: 200 * time.Millisecond})
	waitFor(t, "failed attempts recorded", 10*time.Second, func() bool {
		return count(t, db, `SELECT count(*) FROM outbox WHERE attempts >= 2 AND last_error IS NOT NULL`) == 40
	})
	require.EqualValues(t, 40, count(t, db, `SELECT count(*) FROM outbox WHERE published_at IS NULL`))

	b = startBroker(t, dir, addr)
	waitFor(t, "outbox drained", 20*time.Second, func() bool {
		return count(t, db, `SELECT count(*) FROM outbox WHERE published_at IS NULL`) == 0
	})
	got := eventsConsumer(t, b.Addrs())
	waitFor(t, "40 events", 20*time.Second, func() bool { return got.len() >= len(want) })
	requireKeyOrder(t, want, eventsOf(t, got.snapshot()))
}

func TestSweep(t *testing.T) {
	t.Parallel()
	db, _ := testenv.DB(t)
	f := newFixture(t, db, "sweep")
	emitTestEvents(t, db, []uuid.UUID{uuid.New()}, 5)
	// Two published long ago, one published recently, two unpublished.
	require.NoError(t, db.Exec(`UPDATE outbox SET published_at = now() - interval '8 days' WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT 2)`).Error)
	require.NoError(t, db.Exec(`UPDATE outbox SET published_at = now() - interval '1 day' WHERE id = (SELECT max(id) FROM outbox)`).Error)
	for i, age := range []string{"72 hours", "49 hours", "47 hours"} {
		require.NoError(t, db.Exec(`INSERT INTO idempotency_keys (org_id, scope, key, request_hash, created_at) VALUES (?, 's', ?, '\x00', now() - ?::interval)`,
			f.org, fmt.Sprint("k", i), age).Error)
	}
	outbox, keys, err := Sweep(context.Background(), SweeperConfig{DB: db})
	require.NoError(t, err)
	require.EqualValues(t, 2, outbox)
	require.EqualValues(t, 2, keys)
	require.EqualValues(t, 3, count(t, db, `SELECT count(*) FROM outbox`))
	require.EqualValues(t, 1, count(t, db, `SELECT count(*) FROM idempotency_keys`))
}

// TestPipelineEndToEnd: intakes produced to TopicInbound become tickets and
// ticket.created events on TopicEvents, each exactly once, across a
// PostgreSQL outage during which the persister commits no offset.
func TestPipelineEndToEnd(t *testing.T) {
	t.Parallel()
	via, direct, proxy := proxiedDB(t)
	b, _ := newCluster(t)
	brokers := b.Addrs()
	fa, fb := newFixture(t, direct, "e2e-a"), newFixture(t, direct, "e2e-b")
	prod := newProducer(t, brokers)
	produce := func(from, to int) []uuid.UUID {
		var ids []uuid.UUID
		var msgs []Message
		for i := from; i < to; i++ {
			f := fa
			if i%3 == 0 {
				f = fb
			}
			in := f.intake(i, fmt.Sprintf("c%d@x.test", i%7))
			v, err := json.Marshal(in)
			require.NoError(t, err)
			msgs = append(msgs, Message{Topic: TopicInbound, Key: []byte(in.TicketID.String()), Value: v,
				Headers: map[string]string{HeaderMessageID: in.TicketID.String()}})
			ids = append(ids, in.TicketID)
		}
		require.NoError(t, prod.Publish(context.Background(), msgs...))
		return ids
	}

	reg := prometheus.NewRegistry()
	p, err := NewPersister(via, testLogger(), reg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		err := RunPersister(ctx, ConsumerConfig{Brokers: brokers, MaxBatch: 100, RetryMin: 20 * time.Millisecond,
			RetryMax: 100 * time.Millisecond, LagInterval: -1, Logger: testLogger()}, p)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("RunPersister: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	startRelay(t, RelayConfig{DB: direct, Producer: prod, Logger: testLogger(), Registerer: reg})
	events := eventsConsumer(t, brokers)
	tickets := func() int64 { return count(t, direct, `SELECT count(*) FROM tickets`) }

	want := produce(0, 150)
	waitFor(t, "first tickets", 20*time.Second, func() bool { return tickets() == 150 })

	proxy.down()
	want = append(want, produce(150, 300)...)
	time.Sleep(300 * time.Millisecond)
	require.EqualValues(t, 150, tickets())
	require.Positive(t, lag(t, brokers, PersisterGroupID), "nothing committed while PostgreSQL is away")
	proxy.up()

	waitFor(t, "all events", 30*time.Second, func() bool { return events.len() >= len(want) })
	time.Sleep(100 * time.Millisecond)
	evs := eventsOf(t, events.snapshot())
	require.Len(t, evs, len(want))
	seen := map[uuid.UUID]bool{}
	for _, ev := range evs {
		require.Equal(t, EventTicketCreated, ev.Type)
		seen[ev.TicketID] = true
	}
	for _, id := range want {
		require.True(t, seen[id], "event for ticket %s", id)
	}
	require.EqualValues(t, 300, tickets())
	require.EqualValues(t, 200, count(t, direct, `SELECT last_number FROM ticket_counters WHERE org_id = ?`, fa.org))
	require.EqualValues(t, 100, count(t, direct, `SELECT last_number FROM ticket_counters WHERE org_id = ?`, fb.org))
	waitFor(t, "offsets committed", 10*time.Second, func() bool { return lag(t, brokers, PersisterGroupID) == 0 })
}

func TestEmitEventsRefusesHugeEvent(t *testing.T) {
	ev, err := NewEvent(EventCommentAdded, TicketRef{TicketID: uuid.New()}, nil, AudiencePublic, map[string]string{"content": strings.Repeat("x", MaxEventBytes)})
	require.NoError(t, err)
	require.ErrorContains(t, EmitEvents(context.Background(), nil, ev), "more than")
}
