package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/segmentio/kafka-go"

	"github.com/atumdesk/atumdesk/pipeline"
)

// Run feeds the hub from the events topic until ctx is done, then ends every
// stream and returns ctx.Err().
//
// Every replica must see every event, so there is no consumer group (a
// shared group would split the partitions between replicas, and a group per
// process would leave one abandoned group behind per restart): one
// partition reader per partition, nothing committed. A starting hub reads
// from the first offset written within the retention window, so a client
// that reconnects to a freshly started replica (a rolling deploy) still
// resumes without a gap.
func (h *Hub) Run(ctx context.Context) error {
	if len(h.cfg.Brokers) == 0 {
		return errors.New("stream: no Kafka brokers configured")
	}
	defer h.Shutdown()
	var from cursor
	for attempt := 0; ; attempt++ {
		var err error
		if from, err = h.startPositions(ctx); err == nil {
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		h.log.Warn("sse: reading the events topic's positions failed; retrying", "err", err, "attempt", attempt+1)
		if !sleep(ctx, min(time.Duration(attempt+1)*time.Second, 10*time.Second)) {
			return ctx.Err()
		}
	}
	h.start(from)
	h.log.Info("sse hub reading events", "topic", h.cfg.Topic, "partitions", len(from), "from", string(from.encode()))

	msgs := make(chan kafka.Message, 1024)
	rctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	for p, off := range from {
		wg.Go(func() { h.readPartition(rctx, p, off, msgs) })
	}
	known := len(from)

	hb := time.NewTicker(h.cfg.Heartbeat / heartbeatSlots)
	defer hb.Stop()
	refresh := time.NewTicker(time.Minute)
	defer refresh.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case m := <-msgs:
			h.handle(m)
		case <-hb.C:
			h.heartbeat()
		case <-refresh.C:
			// Partitions are added rarely (it remaps keys), but an added
			// one must not go unread.
			n, err := h.partitionCount(ctx)
			if err != nil {
				h.log.Debug("sse: partition refresh failed", "err", err)
				continue
			}
			if n > known {
				h.addPartitions(n)
				for p := known; p < n; p++ {
					wg.Go(func() { h.readPartition(rctx, p, 0, msgs) })
				}
				h.log.Info("sse: new partitions", "from", known, "to", n)
				known = n
			}
		}
	}
}

// handle decodes one message and routes it. A message that is not a valid
// event is logged and skipped; the position moves past it.
func (h *Hub) handle(m kafka.Message) {
	now := time.Now()
	if !m.Time.IsZero() {
		h.m.lag.Observe(now.Sub(m.Time).Seconds())
	}
	var ev pipeline.Event
	err := json.Unmarshal(m.Value, &ev)
	if err == nil && (ev.ID == uuid.Nil || ev.OrgID == uuid.Nil) {
		err = errors.New("event without id or org_id")
	}
	var data []byte
	if err == nil {
		// Re-encoded rather than passed through: json.Marshal output has no
		// raw newline, which would end the SSE data field and let the
		// payload forge fields of its own.
		data, err = json.Marshal(ev)
	}
	if err != nil {
		h.log.Warn("sse: skipping unreadable event", "partition", m.Partition, "offset", m.Offset, "err", err)
		h.dispatch(m.Partition, m.Offset, nil, nil, now)
		return
	}
	h.dispatch(m.Partition, m.Offset, &ev, data, now)
}

// readPartition reads partition p from offset off into out until ctx ends.
func (h *Hub) readPartition(ctx context.Context, p int, off int64, out chan<- kafka.Message) {
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:   h.cfg.Brokers,
		Topic:     h.cfg.Topic,
		Partition: p,
		Dialer:    h.dialer(),
		MinBytes:  1,
		MaxBytes:  10 << 20,
		// The broker answers as soon as a message arrives; MaxWait only
		// bounds an idle long poll.
		MaxWait: 500 * time.Millisecond,
		ErrorLogger: kafka.LoggerFunc(func(format string, args ...any) {
			h.log.Warn(fmt.Sprintf(format, args...), "component", "kafka-reader", "partition", p)
		}),
	})
	defer r.Close()
	if err := r.SetOffset(off); err != nil {
		h.log.Error("sse: set partition offset", "partition", p, "offset", off, "err", err)
		return
	}
	for attempt := 0; ; {
		m, err := r.ReadMessage(ctx) // no group: nothing is committed
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			attempt++
			h.log.Warn("sse: kafka read failed", "partition", p, "err", err, "attempt", attempt)
			if !sleep(ctx, min(time.Duration(attempt)*100*time.Millisecond, 5*time.Second)) {
				return
			}
			continue
		}
		attempt = 0
		select {
		case out <- m:
		case <-ctx.Done():
			return
		}
	}
}

func (h *Hub) dialer() *kafka.Dialer {
	return &kafka.Dialer{Timeout: 10 * time.Second, DualStack: true, ClientID: "atumdesk-sse"}
}

// startPositions returns, per partition, the first offset written within
// the retention window (the high watermark when nothing was).
func (h *Hub) startPositions(ctx context.Context) (cursor, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	n, err := h.partitionCount(ctx)
	if err != nil {
		return nil, err
	}
	since := time.Now().Add(-h.cfg.Retention)
	from := make(cursor, n)
	for p := range n {
		if from[p], err = h.offsetAt(ctx, p, since); err != nil {
			return nil, err
		}
	}
	return from, nil
}

func (h *Hub) partitionCount(ctx context.Context) (int, error) {
	conn, err := h.dialAny(ctx, func(addr string) (*kafka.Conn, error) { return h.dialer().DialContext(ctx, "tcp", addr) })
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	parts, err := conn.ReadPartitions(h.cfg.Topic)
	if err != nil {
		return 0, fmt.Errorf("stream: partitions of %s: %w", h.cfg.Topic, err)
	}
	n := 0
	for _, p := range parts {
		if p.Topic == h.cfg.Topic {
			n = max(n, p.ID+1)
		}
	}
	if n == 0 {
		return 0, fmt.Errorf("stream: topic %s has no partitions", h.cfg.Topic)
	}
	return n, nil
}

func (h *Hub) offsetAt(ctx context.Context, p int, t time.Time) (int64, error) {
	conn, err := h.dialAny(ctx, func(addr string) (*kafka.Conn, error) {
		return h.dialer().DialLeader(ctx, "tcp", addr, h.cfg.Topic, p)
	})
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	off, err := conn.ReadOffset(t)
	if err == nil && off < 0 { // nothing written since t
		off, err = conn.ReadLastOffset()
	}
	if err != nil {
		return 0, fmt.Errorf("stream: offset of %s/%d: %w", h.cfg.Topic, p, err)
	}
	return off, nil
}

// dialAny connects through the first broker that answers, with ctx's
// deadline on the connection.
func (h *Hub) dialAny(ctx context.Context, dial func(addr string) (*kafka.Conn, error)) (*kafka.Conn, error) {
	var errs []error
	for _, b := range h.cfg.Brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			errs = append(errs, fmt.Errorf("broker %q: %w", b, err))
			continue
		}
		conn, err := dial(b)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if dl, ok := ctx.Deadline(); ok {
			_ = conn.SetDeadline(dl)
		}
		return conn, nil
	}
	return nil, fmt.Errorf("stream: dial kafka: %w", errors.Join(errs...))
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
