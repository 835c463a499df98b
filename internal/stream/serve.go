package stream

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"
)

// Serve streams v's events over SSE until the client leaves, v.Expires
// passes, the client is dropped as too slow, or the hub shuts down. It
// returns an error (an *apperr.Error: 429 for a cap, 503 while the hub
// starts) only when it has written nothing; the caller renders it.
//
// Wire protocol: every event's id is the client's cursor (see cursor.go),
// which the browser sends back as Last-Event-ID when it reconnects (a new
// EventSource cannot set headers: it may pass ?last_event_id= instead).
// The stream opens with one control event:
//   - event "ready", data {"status":"live"}: a fresh stream, or
//     {"status":"resumed","replayed":n} after the missed events were sent;
//   - event "reset": the Last-Event-ID is older than the replay window (or
//     unreadable): the client must refetch its state; live events follow.
//
// Domain events follow as unnamed ("message") events whose data is the
// pipeline.Event envelope. A ": hb" comment is written every Heartbeat.
func (h *Hub) Serve(w http.ResponseWriter, r *http.Request, v Viewer) error {
	lastID := r.Header.Get("Last-Event-ID")
	if lastID == "" {
		lastID = r.URL.Query().Get("last_event_id")
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	if !v.Expires.IsZero() {
		var stop context.CancelFunc
		ctx, stop = context.WithDeadline(ctx, v.Expires)
		defer stop()
	}
	sub, err := h.reserve(v, lastID, cancel)
	if err != nil {
		return err
	}
	defer h.release(sub)

	rc := http.NewResponseController(innermost(w))
	// The server's ReadTimeout would end the stream: when it passes,
	// net/http's background read fails and cancels the request. A global
	// WriteTimeout would too; the deadline is set per event instead.
	if err := rc.SetReadDeadline(time.Time{}); err != nil && !errors.Is(err, http.ErrNotSupported) {
		h.log.Debug("sse: clear read deadline", "err", err)
	}
	_ = rc.SetWriteDeadline(time.Time{})

	h.sse.CreateStream(sub.key)
	// After ServeHTTP returned its subscriber is deregistered, so removing
	// the stream cannot strand r3labs' unsubscribe.
	defer h.sse.RemoveStream(sub.key)

	// r3labs reads the stream id from the query and rejects a non-numeric
	// Last-Event-ID: hand it a request with only what it needs.
	req := r.WithContext(ctx)
	req.URL = &url.URL{Path: r.URL.Path, RawQuery: "stream=" + sub.key}
	req.Header = http.Header{}
	h.sse.ServeHTTP(&eventWriter{w: w, rc: rc, timeout: h.cfg.WriteTimeout, cancel: cancel}, req)
	return nil
}

// eventWriter puts a deadline on the write of each event: armed by the
// event's first write, cleared after its flush, so an idle stream has none
// and a client that stops reading frees its goroutines within timeout. A
// failed write ends the stream.
type eventWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	cancel  context.CancelFunc
	armed   bool
	failed  bool
}

var errStreamBroken = errors.New("stream: write failed earlier")

func (e *eventWriter) Header() http.Header { return e.w.Header() }

func (e *eventWriter) WriteHeader(code int) { e.w.WriteHeader(code) }

func (e *eventWriter) Write(p []byte) (int, error) {
	if e.failed {
		return 0, errStreamBroken
	}
	e.arm()
	n, err := e.w.Write(p)
	if err != nil {
		e.fail()
	}
	return n, err
}

func (e *eventWriter) Flush() {
	if e.failed {
		return
	}
	e.arm()
	if err := e.rc.Flush(); err != nil {
		e.fail()
		return
	}
	e.armed = false
	_ = e.rc.SetWriteDeadline(time.Time{})
}

func (e *eventWriter) arm() {
	if !e.armed {
		_ = e.rc.SetWriteDeadline(time.Now().Add(e.timeout))
		e.armed = true
	}
}

func (e *eventWriter) fail() {
	e.failed = true
	e.cancel()
}

// innermost unwraps middleware writers down to net/http's own, whose
// FlushError reports a failed write (a wrapper's plain Flush hides it).
func innermost(w http.ResponseWriter) http.ResponseWriter {
	for {
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return w
		}
		w = u.Unwrap()
	}
}
