package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"
)

// Every test runs a real kfake broker on a free loopback port, reached by
// kafka-go over TCP exactly like a real cluster.

// metricValue reads a counter or gauge (testutil would need a go.sum entry
// this module does not have).
func metricValue(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		panic(err)
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}

func testLogger() *slog.Logger {
	if os.Getenv("PIPELINE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

func startBroker(t testing.TB, dir, addr string) *Broker {
	t.Helper()
	b, err := StartBroker(context.Background(), BrokerConfig{DataDir: dir, Addr: addr, Logger: testLogger()})
	require.NoError(t, err)
	t.Cleanup(b.Close)
	return b
}

// newCluster starts a broker on a fresh data directory with the pipeline's
// topics created.
func newCluster(t testing.TB) (*Broker, string) {
	t.Helper()
	dir := t.TempDir()
	b := startBroker(t, dir, "127.0.0.1:0")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, EnsureTopics(ctx, b.Addrs(), DefaultTopics(1)))
	return b, dir
}

func newProducer(t testing.TB, brokers []string, opts ...ProducerOption) *Producer {
	t.Helper()
	p := NewProducer(brokers, append([]ProducerOption{WithLogger(testLogger())}, opts...)...)
	t.Cleanup(func() { p.Close() })
	return p
}

func msg(topic, key, id string) Message {
	return Message{Topic: topic, Key: []byte(key), Value: []byte("v-" + id), Headers: map[string]string{HeaderMessageID: id}}
}

func header(m kafka.Message, k string) string {
	for _, h := range m.Headers {
		if h.Key == k {
			return string(h.Value)
		}
	}
	return ""
}

// publishN publishes n messages with ids prefix-0..n-1 to TopicInbound, one
// per call, from conc goroutines.
func publishN(t testing.TB, p *Producer, prefix string, n, conc int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, conc)
	for g := 0; g < conc; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < n; i += conc {
				id := fmt.Sprintf("%s-%d", prefix, i)
				if err := p.Publish(ctx, msg(TopicInbound, "k"+strconv.Itoa(i%32), id)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

// sink collects what a consumer handled, in order.
type sink struct {
	mu   sync.Mutex
	msgs []kafka.Message
}

func (s *sink) add(batch []kafka.Message) {
	s.mu.Lock()
	s.msgs = append(s.msgs, batch...)
	s.mu.Unlock()
}

func (s *sink) snapshot() []kafka.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]kafka.Message(nil), s.msgs...)
}

func (s *sink) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs)
}

// runConsumer starts Consume in a goroutine; the returned stop cancels it
// and waits for it to return.
func runConsumer(t testing.TB, cfg ConsumerConfig, h Handler) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Consume(ctx, cfg, h) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("Consume returned %v, want context.Canceled", err)
				}
			case <-time.After(15 * time.Second):
				t.Errorf("Consume did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func ids(msgs []kafka.Message) map[string]int {
	out := map[string]int{}
	for _, m := range msgs {
		out[header(m, HeaderMessageID)]++
	}
	return out
}

func lag(t testing.TB, brokers []string, group string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l, err := GroupLag(ctx, brokers, group, TopicInbound)
	require.NoError(t, err)
	return l
}

func TestEnsureTopicsIdempotent(t *testing.T) {
	t.Parallel()
	b, _ := newCluster(t) // first creation
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, EnsureTopics(ctx, b.Addrs(), DefaultTopics(1)))
	require.NoError(t, EnsureTopics(ctx, b.Addrs(), DefaultTopics(1)[:1]))

	conn, err := kafka.DialContext(ctx, "tcp", b.Addrs()[0])
	require.NoError(t, err)
	defer conn.Close()
	for _, topic := range []string{TopicInbound, TopicEvents} {
		parts, err := conn.ReadPartitions(topic)
		require.NoError(t, err)
		require.Len(t, parts, DefaultPartitions, topic)
	}

	require.Error(t, EnsureTopics(ctx, b.Addrs(), []TopicSpec{{Name: "x", Partitions: 0, ReplicationFactor: 1}}))
	require.Error(t, EnsureTopics(ctx, []string{freeAddr(t)}, DefaultTopics(1)), "unreachable broker")
}

func TestStartBrokerRefusesNonLoopbackAndSharedDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, err := StartBroker(context.Background(), BrokerConfig{DataDir: dir, Addr: "0.0.0.0:0"})
	require.ErrorContains(t, err, "loopback")
	_, err = StartBroker(context.Background(), BrokerConfig{Addr: "127.0.0.1:0"})
	require.Error(t, err, "DataDir required")

	b := startBroker(t, dir, "localhost:0")
	_, err = StartBroker(context.Background(), BrokerConfig{DataDir: dir, Addr: "127.0.0.1:0"})
	require.ErrorContains(t, err, "in use")
	b.Close()
	b.Close() // idempotent
}

func TestPublishValidationPingAndUnknownTopic(t *testing.T) {
	t.Parallel()
	b, _ := newCluster(t)
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	require.NoError(t, err)
	p := newProducer(t, b.Addrs(), WithMetrics(m), WithMaxAttempts(2))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	require.NoError(t, p.Ping(ctx))
	require.ErrorContains(t, p.Publish(ctx, Message{Topic: TopicInbound, Value: []byte("x")}), "message_id")
	require.ErrorContains(t, p.Publish(ctx, Message{Value: []byte("x"), Headers: map[string]string{HeaderEventID: "1"}}), "no topic")
	require.NoError(t, p.Publish(ctx, msg(TopicInbound, "k", "a"), msg(TopicEvents, "k", "b")))
	// No auto-creation: a misspelt topic fails instead of appearing.
	require.Error(t, p.Publish(ctx, msg("atumdesk.nope.v1", "k", "c")))

	require.Equal(t, 1.0, metricValue(m.Produced.WithLabelValues(TopicInbound, "ok")))
	require.Equal(t, 1.0, metricValue(m.Produced.WithLabelValues(TopicEvents, "ok")))
	require.Equal(t, 1.0, metricValue(m.Produced.WithLabelValues("atumdesk.nope.v1", "error")))

	dead := NewProducer([]string{freeAddr(t)})
	defer dead.Close()
	require.Error(t, dead.Ping(ctx))

	_, err = NewMetrics(reg)
	require.Error(t, err, "double registration is reported, not panicked")
}

// kafka-go's FetchMessage with a context that expires mid-wait returns the
// context error, takes nothing off the queue, and the reader stays usable:
// hammering it with tiny deadlines still yields every offset exactly once.
func TestFetchMessageShortDeadline(t *testing.T) {
	t.Parallel()
	b, _ := newCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, EnsureTopics(ctx, b.Addrs(), []TopicSpec{{Name: "one", Partitions: 1, ReplicationFactor: 1}}))
	p := newProducer(t, b.Addrs())
	const n = 500
	batch := make([]Message, n)
	for i := range batch {
		batch[i] = msg("one", "k", strconv.Itoa(i))
	}
	require.NoError(t, p.Publish(ctx, batch...))

	r := kafka.NewReader(kafka.ReaderConfig{Brokers: b.Addrs(), GroupID: "deadline", Topic: "one", StartOffset: kafka.FirstOffset, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	var got []int64
	timeouts := 0
	for len(got) < n && ctx.Err() == nil {
		fctx, fcancel := context.WithTimeout(ctx, time.Duration(len(got)%7)*50*time.Microsecond)
		m, err := r.FetchMessage(fctx)
		fcancel()
		if err != nil {
			require.ErrorIs(t, err, context.DeadlineExceeded)
			timeouts++
			continue
		}
		got = append(got, m.Offset)
	}
	require.Len(t, got, n)
	for i, off := range got {
		require.Equal(t, int64(i), off)
	}
	require.Positive(t, timeouts, "the test must actually cut fetches short")
	t.Logf("%d fetches cut short by their deadline, no message lost", timeouts)
}

// 2,000 keyed messages from 16 concurrent publishers; one group member reads
// each exactly once and in publish order per key.
func TestProduceConsumeExactlyOnceOrdered(t *testing.T) {
	t.Parallel()
	b, _ := newCluster(t)
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	require.NoError(t, err)
	p := newProducer(t, b.Addrs(), WithMetrics(m))

	var s sink
	runConsumer(t, ConsumerConfig{Brokers: b.Addrs(), GroupID: "order", Topic: TopicInbound, Logger: testLogger(), Metrics: m, LagInterval: 50 * time.Millisecond},
		func(_ context.Context, batch []kafka.Message) error { s.add(batch); return nil })

	const n, conc, keys = 2000, 16, 64
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var failed atomic.Value
	for g := 0; g < conc; g++ {
		wg.Add(1)
		go func() { // goroutine g owns keys g, g+16, …; each key's seq is published in order
			defer wg.Done()
			seq := map[int]int{}
			for i := 0; i < n/conc; i++ {
				k := g + conc*(i%(keys/conc))
				mm := Message{Topic: TopicInbound, Key: []byte("ticket-" + strconv.Itoa(k)), Value: []byte("x"),
					Headers: map[string]string{HeaderMessageID: fmt.Sprintf("%d-%d", k, seq[k]), "seq": strconv.Itoa(seq[k])}}
				seq[k]++
				if err := p.Publish(ctx, mm); err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatal(err)
	}

	waitFor(t, "all messages consumed", 15*time.Second, func() bool { return s.len() >= n })
	time.Sleep(100 * time.Millisecond) // let any duplicate show up
	got := s.snapshot()
	require.Len(t, got, n)
	for id, c := range ids(got) {
		require.Equal(t, 1, c, id)
	}
	next := map[string]int{}
	part := map[string]int{}
	for _, mm := range got {
		k := string(mm.Key)
		seq, _ := strconv.Atoi(header(mm, "seq"))
		require.Equal(t, next[k], seq, "order of key %s", k)
		next[k]++
		if pp, ok := part[k]; ok {
			require.Equal(t, pp, mm.Partition, "key %s moved partition", k)
		}
		part[k] = mm.Partition
	}
	require.Len(t, next, keys)
	waitFor(t, "commits", 5*time.Second, func() bool { return metricValue(m.Consumed.WithLabelValues(TopicInbound, "order")) == n })
	require.Equal(t, float64(n), metricValue(m.Produced.WithLabelValues(TopicInbound, "ok")))
	require.Zero(t, lag(t, b.Addrs(), "order"))
	waitFor(t, "lag gauge", 5*time.Second, func() bool { return metricValue(m.ConsumerLag.WithLabelValues(TopicInbound, "order")) == 0 })
}

// A failing handler gets the very same batch again after a backoff; nothing
// is committed in between and nothing is lost. A panic counts as a failure.
func TestHandlerFailureRedeliversSameBatch(t *testing.T) {
	t.Parallel()
	b, _ := newCluster(t)
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	require.NoError(t, err)
	p := newProducer(t, b.Addrs())
	publishN(t, p, "f", 300, 4)

	var (
		s        sink
		mu       sync.Mutex
		attempts [][]string // ids of each call
	)
	idsOf := func(batch []kafka.Message) []string {
		out := make([]string, len(batch))
		for i, mm := range batch {
			out[i] = header(mm, HeaderMessageID)
		}
		return out
	}
	runConsumer(t, ConsumerConfig{Brokers: b.Addrs(), GroupID: "fail", Topic: TopicInbound, MaxBatch: 50, RetryMin: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond, Logger: testLogger(), Metrics: m},
		func(_ context.Context, batch []kafka.Message) error {
			mu.Lock()
			attempts = append(attempts, idsOf(batch))
			n := len(attempts)
			mu.Unlock()
			switch n {
			case 1, 2:
				return errors.New("database down")
			case 3:
				panic("handler bug")
			}
			s.add(batch)
			return nil
		})
	waitFor(t, "all messages", 10*time.Second, func() bool { return len(ids(s.snapshot())) == 300 })

	mu.Lock()
	defer mu.Unlock()
	require.GreaterOrEqual(t, len(attempts), 4)
	for i := 1; i < 4; i++ {
		require.Equal(t, attempts[0], attempts[i], "attempt %d must be the same batch", i+1)
	}
	require.Equal(t, 3.0, metricValue(m.ConsumeErrors.WithLabelValues(TopicInbound, "fail")))
	waitFor(t, "lag 0", 5*time.Second, func() bool { return lag(t, b.Addrs(), "fail") == 0 })
}

// Close + restart on the same DataDir and port: messages, topics and the
// group's committed offsets survive, the producer reconnects, and the group
// resumes after its last commit.
func TestBrokerRestartKeepsMessagesAndOffsets(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	addr := freeAddr(t)
	b1 := startBroker(t, dir, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	require.NoError(t, EnsureTopics(ctx, b1.Addrs(), DefaultTopics(1)))
	p := newProducer(t, []string{addr})
	publishN(t, p, "before", 300, 8)

	var s1 sink
	stop := runConsumer(t, ConsumerConfig{Brokers: []string{addr}, GroupID: "restart", Topic: TopicInbound, Logger: testLogger()},
		func(_ context.Context, batch []kafka.Message) error { s1.add(batch); return nil })
	waitFor(t, "first 300", 10*time.Second, func() bool { return lag(t, []string{addr}, "restart") == 0 })
	stop()
	require.Len(t, s1.snapshot(), 300)

	publishN(t, p, "pending", 200, 8) // written, not consumed
	b1.Close()

	b2 := startBroker(t, dir, addr)
	require.NoError(t, EnsureTopics(ctx, b2.Addrs(), DefaultTopics(1)), "topics reloaded")
	require.Equal(t, int64(200), lag(t, []string{addr}, "restart"), "committed offsets and messages reloaded")
	publishN(t, p, "after", 100, 8) // the same producer reconnects

	var s2 sink
	runConsumer(t, ConsumerConfig{Brokers: []string{addr}, GroupID: "restart", Topic: TopicInbound, Logger: testLogger()},
		func(_ context.Context, batch []kafka.Message) error { s2.add(batch); return nil })
	waitFor(t, "resume", 10*time.Second, func() bool { return s2.len() >= 300 })
	time.Sleep(100 * time.Millisecond)
	got := ids(s2.snapshot())
	require.Len(t, got, 300)
	for id, c := range got {
		require.Equal(t, 1, c, id)
		require.NotContains(t, id, "before", "a committed message was redelivered")
	}
	for _, mm := range s2.snapshot() {
		require.Equal(t, "v-"+header(mm, HeaderMessageID), string(mm.Value))
	}
}

// What a crash leaves on disk: copy the data directory while the broker runs
// (after acks and commits, without Close) and start a broker on the copy.
func TestBrokerCrashImageRecovers(t *testing.T) {
	t.Parallel()
	b, dir := newCluster(t)
	p := newProducer(t, b.Addrs())
	publishN(t, p, "done", 100, 4)
	var s sink
	stop := runConsumer(t, ConsumerConfig{Brokers: b.Addrs(), GroupID: "crash", Topic: TopicInbound, Logger: testLogger()},
		func(_ context.Context, batch []kafka.Message) error { s.add(batch); return nil })
	waitFor(t, "committed", 10*time.Second, func() bool { return lag(t, b.Addrs(), "crash") == 0 })
	stop()
	publishN(t, p, "todo", 50, 4)

	img := t.TempDir()
	require.NoError(t, os.CopyFS(img, os.DirFS(dir)))
	require.NoError(t, os.Remove(filepath.Join(img, "LOCK")))
	b2 := startBroker(t, img, "127.0.0.1:0")

	require.Equal(t, int64(50), lag(t, b2.Addrs(), "crash"))
	var s2 sink
	runConsumer(t, ConsumerConfig{Brokers: b2.Addrs(), GroupID: "crash", Topic: TopicInbound, Logger: testLogger()},
		func(_ context.Context, batch []kafka.Message) error { s2.add(batch); return nil })
	waitFor(t, "uncommitted 50", 10*time.Second, func() bool { return s2.len() >= 50 })
	time.Sleep(100 * time.Millisecond)
	got := ids(s2.snapshot())
	require.Len(t, got, 50)
	for id := range got {
		require.Contains(t, id, "todo")
	}
}

// A member stopped while a batch is in flight commits nothing for it; the
// next member of the group gets every uncommitted message and none of the
// committed ones.
func TestConsumerKilledMidStreamRedelivers(t *testing.T) {
	t.Parallel()
	b, _ := newCluster(t)
	p := newProducer(t, b.Addrs())
	publishN(t, p, "m", 400, 8)

	var (
		committed sink // batches A finished (and Consume then committed)
		calls     atomic.Int32
		inFlight  = make(chan struct{})
	)
	stopA := runConsumer(t, ConsumerConfig{Brokers: b.Addrs(), GroupID: "kill", Topic: TopicInbound, MaxBatch: 50, Logger: testLogger()},
		func(ctx context.Context, batch []kafka.Message) error {
			if calls.Add(1) <= 2 {
				committed.add(batch)
				return nil
			}
			close(inFlight)
			<-ctx.Done() // "killed" mid-batch
			return ctx.Err()
		})
	<-inFlight
	stopA()
	done := ids(committed.snapshot())
	require.NotEmpty(t, done)
	require.Equal(t, int64(400-len(done)), lag(t, b.Addrs(), "kill"))

	var s sink
	runConsumer(t, ConsumerConfig{Brokers: b.Addrs(), GroupID: "kill", Topic: TopicInbound, Logger: testLogger()},
		func(_ context.Context, batch []kafka.Message) error { s.add(batch); return nil })
	waitFor(t, "the rest", 10*time.Second, func() bool { return len(done)+s.len() >= 400 })
	time.Sleep(100 * time.Millisecond)
	got := ids(s.snapshot())
	require.Len(t, got, 400-len(done))
	for id, c := range got {
		require.Equal(t, 1, c, id)
		require.NotContains(t, done, id, "committed message redelivered")
	}
}

// A batch whose handler finished is committed even when shutdown began
// while it ran, so a clean stop does not redeliver finished work.
func TestShutdownCommitsFinishedBatch(t *testing.T) {
	t.Parallel()
	b, _ := newCluster(t)
	p := newProducer(t, b.Addrs())
	publishN(t, p, "s", 100, 4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var handled atomic.Int64
	err := Consume(ctx, ConsumerConfig{Brokers: b.Addrs(), GroupID: "shutdown", Topic: TopicInbound, MaxBatch: 30, Logger: testLogger()},
		func(_ context.Context, batch []kafka.Message) error {
			handled.Add(int64(len(batch)))
			cancel() // SIGTERM arrives while the batch is being handled
			return nil
		})
	require.ErrorIs(t, err, context.Canceled)
	require.Positive(t, handled.Load())
	require.Equal(t, 100-handled.Load(), lag(t, b.Addrs(), "shutdown"))
}

func TestBackoff(t *testing.T) {
	lo, hi := 100*time.Millisecond, 5*time.Second
	require.Equal(t, lo, backoff(0, lo, hi))
	require.Equal(t, 200*time.Millisecond, backoff(1, lo, hi))
	require.Equal(t, 3200*time.Millisecond, backoff(5, lo, hi))
	require.Equal(t, hi, backoff(6, lo, hi))
	require.Equal(t, hi, backoff(1000, lo, hi))
}

// BenchmarkPublish: parallel publishers, one message per Publish call (the
// API's pattern), acks=all, fsync per batch on the embedded broker.
func BenchmarkPublish(b *testing.B) {
	for _, bc := range []struct {
		conc  int
		batch time.Duration
	}{{1, 5 * time.Millisecond}, {16, 5 * time.Millisecond}, {64, 5 * time.Millisecond}, {256, 5 * time.Millisecond}, {64, time.Millisecond}} {
		conc := bc.conc
		b.Run(fmt.Sprintf("publishers=%d/batch=%s", conc, bc.batch), func(b *testing.B) {
			br, _ := newCluster(b)
			p := newProducer(b, br.Addrs(), WithBatchTimeout(bc.batch))
			ctx := context.Background()
			require.NoError(b, p.Publish(ctx, msg(TopicInbound, "warm", "warm")))
			var seq atomic.Int64
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for g := 0; g < conc; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := seq.Add(1)
						if i > int64(b.N) {
							return
						}
						if err := p.Publish(ctx, msg(TopicInbound, "ticket-"+strconv.FormatInt(i%1000, 10), strconv.FormatInt(i, 10))); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
		})
	}
}
