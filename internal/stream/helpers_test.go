package stream

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/atumdesk/atumdesk/internal/apperr"
	"github.com/atumdesk/atumdesk/pipeline"
)

// Every test runs the real embedded broker on a free loopback port; events
// reach the hub through kafka-go exactly as in production.

type kafkaEnv struct {
	brokers  []string
	producer *pipeline.Producer
}

func newKafka(t testing.TB) *kafkaEnv {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, err := pipeline.StartBroker(ctx, pipeline.BrokerConfig{DataDir: t.TempDir(), Addr: "127.0.0.1:0"})
	require.NoError(t, err)
	t.Cleanup(b.Close)
	require.NoError(t, pipeline.EnsureTopics(ctx, b.Addrs(), pipeline.DefaultTopics(1)))
	p := pipeline.NewProducer(b.Addrs(), pipeline.WithBatchTimeout(time.Millisecond))
	t.Cleanup(func() { p.Close() })
	return &kafkaEnv{brokers: b.Addrs(), producer: p}
}

// publish writes one event to the events topic and returns it.
func (k *kafkaEnv) publish(t testing.TB, org, ticket, requester uuid.UUID, audience string, data any) pipeline.Event {
	t.Helper()
	ev, err := pipeline.NewEvent(pipeline.EventCommentAdded, pipeline.TicketRef{OrgID: org, TicketID: ticket, RequesterID: requester}, nil, audience, data)
	require.NoError(t, err)
	k.publishEvent(t, ev)
	return ev
}

func (k *kafkaEnv) publishEvent(t testing.TB, ev pipeline.Event) {
	t.Helper()
	v, err := json.Marshal(ev)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, k.producer.Publish(ctx, pipeline.Message{Topic: pipeline.TopicEvents, Key: []byte(ev.TicketID.String()),
		Value: v, Headers: map[string]string{pipeline.HeaderEventID: ev.ID.String()}}))
}

// startHub runs a hub on the broker and serves it; the viewer of a request
// is looked up by its X-Viewer header (the HTTP layer's authentication is
// tested in httpapi).
func startHub(t testing.TB, k *kafkaEnv, cfg Config, viewers map[string]Viewer) (*Hub, *httptest.Server) {
	t.Helper()
	cfg.Brokers = k.brokers
	h := NewHub(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("hub did not stop")
		}
	})
	select {
	case <-h.ready:
	case err := <-done:
		t.Fatalf("hub stopped: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("hub not ready")
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, ok := viewers[r.Header.Get("X-Viewer")]
		if !ok {
			http.Error(w, "unknown viewer", http.StatusUnauthorized)
			return
		}
		if err := h.Serve(w, r, v); err != nil {
			status := http.StatusInternalServerError
			switch {
			case apperr.IsKind(err, apperr.RateLimited):
				status = http.StatusTooManyRequests
			case apperr.IsKind(err, apperr.Unavailable):
				status = http.StatusServiceUnavailable
			case apperr.IsKind(err, apperr.Forbidden):
				status = http.StatusForbidden
			}
			http.Error(w, err.Error(), status)
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(h.Shutdown) // lets srv.Close finish: streams never end by themselves
	return h, srv
}

type sseEvent struct {
	id, event, data string
	comment         bool
	at              time.Time
}

// client is one open stream; its events arrive on ch, which is closed when
// the stream ends.
type client struct {
	status int
	ch     chan sseEvent
	cancel context.CancelFunc
}

func connect(t testing.TB, url, viewer, lastID string) *client {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	require.NoError(t, err)
	req.Header.Set("X-Viewer", viewer)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	c := &client{status: res.StatusCode, ch: make(chan sseEvent, 4096), cancel: cancel}
	t.Cleanup(cancel)
	if res.StatusCode != http.StatusOK {
		res.Body.Close()
		close(c.ch)
		return c
	}
	require.Equal(t, "text/event-stream", res.Header.Get("Content-Type"))
	go func() {
		defer close(c.ch)
		defer res.Body.Close()
		readEvents(bufio.NewReader(res.Body), func(e sseEvent) bool {
			select {
			case c.ch <- e:
				return true
			case <-ctx.Done():
				return false
			}
		})
	}()
	return c
}

// readEvents parses an event stream, calling emit for each event and each
// comment until the stream ends or emit returns false.
func readEvents(r *bufio.Reader, emit func(sseEvent) bool) {
	var e sseEvent
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		switch {
		case line == "":
			if e.data != "" || e.event != "" {
				e.at = time.Now()
				if !emit(e) {
					return
				}
			}
			e = sseEvent{}
		case strings.HasPrefix(line, ":"):
			if !emit(sseEvent{comment: true, data: strings.TrimSpace(line[1:]), at: time.Now()}) {
				return
			}
		default:
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "id":
				e.id = value
			case "event":
				e.event = value
			case "data":
				e.data += value
			}
		}
	}
}

var errClosed = errors.New("stream closed")

// next returns the next event that is not a comment.
func (c *client) next(t testing.TB, within time.Duration) (sseEvent, error) {
	t.Helper()
	timer := time.NewTimer(within)
	defer timer.Stop()
	for {
		select {
		case e, ok := <-c.ch:
			if !ok {
				return sseEvent{}, errClosed
			}
			if !e.comment {
				return e, nil
			}
		case <-timer.C:
			return sseEvent{}, context.DeadlineExceeded
		}
	}
}

func (c *client) mustNext(t testing.TB) sseEvent {
	t.Helper()
	e, err := c.next(t, 10*time.Second)
	require.NoError(t, err)
	return e
}

// opened waits for the opening control event and returns it.
func (c *client) opened(t testing.TB) sseEvent {
	t.Helper()
	require.Equal(t, http.StatusOK, c.status)
	e := c.mustNext(t)
	require.Contains(t, []string{"ready", "reset"}, e.event, "first event: %+v", e)
	return e
}

// eventID extracts the domain event id of a data payload.
func eventID(t testing.TB, e sseEvent) uuid.UUID {
	t.Helper()
	var ev pipeline.Event
	require.NoError(t, json.Unmarshal([]byte(e.data), &ev), e.data)
	return ev.ID
}

// collector gathers a client's domain events until stop.
type collector struct {
	mu     sync.Mutex
	events []sseEvent
	done   chan struct{}
}

func collect(c *client) *collector {
	col := &collector{done: make(chan struct{})}
	go func() {
		defer close(col.done)
		for e := range c.ch {
			if e.comment || e.event != "" {
				continue
			}
			col.mu.Lock()
			col.events = append(col.events, e)
			col.mu.Unlock()
		}
	}()
	return col
}

func (col *collector) snapshot() []sseEvent {
	col.mu.Lock()
	defer col.mu.Unlock()
	return append([]sseEvent(nil), col.events...)
}

// waitFor waits until the collector holds an event whose data contains s.
func (col *collector) waitFor(t testing.TB, s string) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, e := range col.snapshot() {
			if strings.Contains(e.data, s) {
				return true
			}
		}
		return false
	}, 10*time.Second, 5*time.Millisecond, "waiting for %q", s)
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	_ = c.Write(&m)
	return m.GetCounter().GetValue()
}
