// Package stream is the server-sent-events fan-out of domain events: a hub
// that reads every event of the events topic (each api replica reads all of
// them, without a consumer group), keeps a bounded ring of recent events for
// Last-Event-ID resumption, and pushes each event only to the connected
// users allowed to see it.
//
// Routing is indexed: subscribers are held per organisation, then by role
// class (staff, customer admins) and, for customer users, by user id, so an
// event costs work proportional to its audience, not to the number of
// connections.
//
// The wire side is github.com/r3labs/sse/v2: every connection gets its own
// sse.Stream in one sse.Server, and the hub publishes to exactly the streams
// of the audience with the non-blocking TryPublish. r3labs' own broadcast
// model (one stream shared by all subscribers) cannot filter per subscriber,
// blocks the whole stream on one slow reader, and its event log numbers
// events per stream, never trims, and replays the last seen event again; so
// AutoReplay is off and replay is the hub's.
package stream

import (
	"context"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/r3labs/sse/v2"

	"github.com/atumdesk/atumdesk/internal/apperr"
	"github.com/atumdesk/atumdesk/models"
	"github.com/atumdesk/atumdesk/pipeline"
)

// Config configures a Hub. Zero values get the defaults noted.
type Config struct {
	Brokers []string
	Topic   string // default pipeline.TopicEvents

	MaxPerUser int // open streams per user (default 5)
	MaxPerOrg  int // open streams per organisation (default 2000)
	MaxPerIP   int // open streams per client address (default 1000; negative: no cap)

	// Retention and RingEvents bound the replay ring: events older than
	// Retention or beyond the newest RingEvents are forgotten, and a client
	// resuming from before them gets a reset (default 10 min, 50,000).
	Retention  time.Duration
	RingEvents int
	// ClientBuffer is how many events may wait for one client; a client
	// that falls further behind is disconnected (it resumes with
	// Last-Event-ID). Default 256.
	ClientBuffer int
	// MaxReplay caps the events replayed on one reconnect; beyond it the
	// client gets a reset (default 3/4 of ClientBuffer, so a replay always
	// fits the client's buffer).
	MaxReplay int
	// WriteTimeout bounds the write of one event (default 10 s).
	WriteTimeout time.Duration
	// Heartbeat is the interval of keep-alive comments (default 15 s).
	Heartbeat time.Duration

	Logger     *slog.Logger          // nil: discarded
	Registerer prometheus.Registerer // nil: metrics not registered
}

func (c *Config) defaults() {
	if c.Topic == "" {
		c.Topic = pipeline.TopicEvents
	}
	if c.MaxPerUser <= 0 {
		c.MaxPerUser = 5
	}
	if c.MaxPerOrg <= 0 {
		c.MaxPerOrg = 2000
	}
	if c.MaxPerIP == 0 {
		c.MaxPerIP = 1000
	}
	if c.Retention <= 0 {
		c.Retention = 10 * time.Minute
	}
	if c.RingEvents <= 0 {
		c.RingEvents = 50_000
	}
	if c.ClientBuffer <= 0 {
		c.ClientBuffer = 256
	}
	if c.MaxReplay <= 0 || c.MaxReplay > c.ClientBuffer*3/4 {
		c.MaxReplay = max(1, c.ClientBuffer*3/4)
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = 15 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Viewer is the authenticated user opening a stream.
type Viewer struct {
	UserID uuid.UUID
	OrgID  uuid.UUID
	Role   models.Role
	IP     string
	// Expires ends the stream (the access token's expiry), so that a
	// deactivated or demoted user keeps no stream beyond it; zero: never.
	Expires time.Time
}

// class is what routing needs of a role.
type class uint8

const (
	classStaff         class = iota + 1 // every event of the org
	classCustomerAdmin                  // public events of every ticket of the org
	classCustomerUser                   // public events of tickets they requested
)

func classOf(r models.Role) (class, bool) {
	switch {
	case r.IsStaff():
		return classStaff, true
	case r == models.RoleCustomerAdmin:
		return classCustomerAdmin, true
	case r == models.RoleCustomerUser:
		return classCustomerUser, true
	}
	return 0, false
}

// heartbeatSlots spreads heartbeats: each tick serves one slot, so 10,000
// connections are not all written in the same millisecond.
const heartbeatSlots = 64

type subscriber struct {
	key   string // the sse stream id
	v     Viewer
	class class
	// cursor is the client's position: its Last-Event-ID, then advanced
	// with every event sent. fresh: it sent none; stale: an unreadable one.
	cursor       cursor
	fresh, stale bool
	cancel       context.CancelFunc
	slot         int
	active       bool // indexed and receiving
	dropped      bool // disconnected as too slow or on shutdown
	released     bool
}

// orgSubs indexes one organisation's subscribers by what they may see.
type orgSubs struct {
	staff      map[*subscriber]struct{}
	admins     map[*subscriber]struct{}
	requesters map[uuid.UUID]map[*subscriber]struct{}
	conns      int
}

// entry is one event in the ring, ready to send.
type entry struct {
	part      int
	off       int64
	pos       cursor // the hub's head just after this event
	id        uuid.UUID
	org       uuid.UUID
	requester uuid.UUID
	public    bool
	data      []byte // the JSON sent as the SSE data field
	at        time.Time
}

// Hub fans events out to SSE subscribers. Create it with NewHub, feed it
// with Run, serve clients with Serve.
type Hub struct {
	cfg Config
	log *slog.Logger
	sse *sse.Server
	m   *hubMetrics

	ready chan struct{} // closed once the start positions are known

	mu       sync.Mutex
	closing  bool
	nextID   uint64
	pending  map[string]*subscriber // reserved; its sse stream not yet subscribed
	subs     map[string]*subscriber // every reserved subscriber by key
	orgs     map[uuid.UUID]*orgSubs
	perUser  map[uuid.UUID]int
	perIP    map[string]int
	slots    [heartbeatSlots]map[*subscriber]struct{}
	nextSlot int
	head     cursor // next offset per partition
	floor    cursor // lowest offset per partition still replayable
	ring     ring
	seen     map[uuid.UUID]struct{} // event ids in the ring (the relay may publish twice)
}

// NewHub returns a hub; it serves no events until Run has found the topic.
func NewHub(cfg Config) *Hub {
	cfg.defaults()
	h := &Hub{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "sse"),
		m:       newHubMetrics(cfg.Registerer),
		ready:   make(chan struct{}),
		pending: map[string]*subscriber{},
		subs:    map[string]*subscriber{},
		orgs:    map[uuid.UUID]*orgSubs{},
		perUser: map[uuid.UUID]int{},
		perIP:   map[string]int{},
		ring:    newRing(cfg.RingEvents),
		seen:    map[uuid.UUID]struct{}{},
	}
	for i := range h.slots {
		h.slots[i] = map[*subscriber]struct{}{}
	}
	s := sse.New()
	s.AutoReplay = false // the hub replays, filtered; see the package comment
	s.AutoStream = false
	s.BufferSize = cfg.ClientBuffer
	s.Headers = map[string]string{"X-Accel-Buffering": "no"} // nginx: do not buffer the stream
	s.OnSubscribe = func(key string, _ *sse.Subscriber) { h.activate(key) }
	h.sse = s
	return h
}

var (
	errNotReady = &apperr.Error{Kind: apperr.Unavailable, Msg: "The event stream is starting; retry shortly.", RetryAfter: 5 * time.Second}
	errClosing  = &apperr.Error{Kind: apperr.Unavailable, Msg: "The server is shutting down; reconnect.", RetryAfter: time.Second}
)

// reserve checks the caps and registers a subscriber that receives nothing
// yet. lastEventID is the client's Last-Event-ID ("" for none); cancel ends
// the client's stream.
func (h *Hub) reserve(v Viewer, lastEventID string, cancel context.CancelFunc) (*subscriber, error) {
	cl, ok := classOf(v.Role)
	if !ok || v.UserID == uuid.Nil || v.OrgID == uuid.Nil {
		return nil, apperr.New(apperr.Forbidden, "Your role may not open an event stream.")
	}
	select {
	case <-h.ready:
	default:
		return nil, errNotReady
	}
	sub := &subscriber{v: v, class: cl, cancel: cancel}
	switch c, ok := parseCursor(lastEventID); {
	case lastEventID == "":
		sub.fresh = true
	case !ok:
		sub.stale = true
	default:
		sub.cursor = c
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing {
		return nil, errClosing
	}
	o := h.orgs[v.OrgID]
	switch {
	case h.perUser[v.UserID] >= h.cfg.MaxPerUser:
		h.m.rejected.WithLabelValues("user").Inc()
		return nil, tooMany("Too many open event streams for this user.")
	case o != nil && o.conns >= h.cfg.MaxPerOrg:
		h.m.rejected.WithLabelValues("org").Inc()
		return nil, tooMany("Too many open event streams for this organisation.")
	case h.cfg.MaxPerIP > 0 && h.perIP[v.IP] >= h.cfg.MaxPerIP:
		h.m.rejected.WithLabelValues("ip").Inc()
		return nil, tooMany("Too many open event streams from this address.")
	}
	if o == nil {
		o = &orgSubs{staff: map[*subscriber]struct{}{}, admins: map[*subscriber]struct{}{}, requesters: map[uuid.UUID]map[*subscriber]struct{}{}}
		h.orgs[v.OrgID] = o
	}
	o.conns++
	h.perUser[v.UserID]++
	h.perIP[v.IP]++
	h.nextID++
	sub.key = strconv.FormatUint(h.nextID, 36)
	sub.slot = int(h.nextID % heartbeatSlots)
	h.pending[sub.key] = sub
	h.subs[sub.key] = sub
	h.m.connections.Inc()
	return sub, nil
}

func tooMany(msg string) error {
	return &apperr.Error{Kind: apperr.RateLimited, Msg: msg, RetryAfter: 30 * time.Second}
}

// activate runs once the subscriber's sse stream has its reader: it sends
// the opening event (ready, or reset) and the replay, then indexes the
// subscriber for live events, all under the lock so that no event falls
// between replay and live.
func (h *Hub) activate(key string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	sub := h.pending[key]
	if sub == nil || sub.released || sub.dropped {
		return
	}
	delete(h.pending, key)

	switch {
	case sub.fresh:
		sub.cursor = h.head.clone()
		h.open(sub, "ready", `{"status":"live"}`)
	case sub.stale || !sub.cursor.covers(h.floor):
		h.resetLocked(sub, "the last event id is older than the replay window")
	default:
		replay := h.replayFor(sub, h.cfg.MaxReplay+1)
		if len(replay) > h.cfg.MaxReplay {
			h.resetLocked(sub, "too many events missed")
			break
		}
		for _, e := range replay {
			if !h.send(sub, e) {
				return
			}
		}
		h.m.replayed.Add(float64(len(replay)))
		h.open(sub, "ready", `{"status":"resumed","replayed":`+strconv.Itoa(len(replay))+`}`)
	}
	if sub.dropped { // too slow already
		return
	}
	sub.active = true
	o := h.orgs[sub.v.OrgID]
	switch sub.class {
	case classStaff:
		o.staff[sub] = struct{}{}
	case classCustomerAdmin:
		o.admins[sub] = struct{}{}
	case classCustomerUser:
		set := o.requesters[sub.v.UserID]
		if set == nil {
			set = map[*subscriber]struct{}{}
			o.requesters[sub.v.UserID] = set
		}
		set[sub] = struct{}{}
	}
	h.slots[sub.slot][sub] = struct{}{}
}

// resetLocked tells the client to refetch its state and moves it to the
// live head.
func (h *Hub) resetLocked(sub *subscriber, reason string) {
	sub.cursor = h.head.clone()
	h.m.resets.Inc()
	h.open(sub, "reset", `{"reason":"`+reason+`"}`)
}

// open sends a control event carrying the subscriber's cursor as its id,
// so that even a client that receives no domain event can resume.
func (h *Hub) open(sub *subscriber, typ, data string) {
	h.publish(sub, &sse.Event{ID: sub.cursor.encode(), Event: []byte(typ), Data: []byte(data)})
}

// replayFor returns up to limit of the ring's events after sub's cursor
// that sub may see. Entries' positions only grow, so the events the client
// has seen form a prefix of the ring, found by binary search: a reconnect
// costs the events since the disconnect, not the whole ring.
func (h *Hub) replayFor(sub *subscriber, limit int) []*entry {
	seen := func(e *entry) bool { // e and everything before it
		for p, n := range e.pos {
			if n > sub.cursor.at(p) {
				return false
			}
		}
		return true
	}
	var out []*entry
	for i := sort.Search(h.ring.n, func(i int) bool { return !seen(h.ring.at(i)) }); i < h.ring.n && len(out) < limit; i++ {
		e := h.ring.at(i)
		if e.off >= sub.cursor.at(e.part) && visible(sub, e) {
			out = append(out, e)
		}
	}
	return out
}

// visible is the audience rule, used for replay; live routing applies the
// same rule through the indexes.
func visible(sub *subscriber, e *entry) bool {
	if e.org != sub.v.OrgID {
		return false
	}
	switch sub.class {
	case classStaff:
		return true
	case classCustomerAdmin:
		return e.public
	case classCustomerUser:
		return e.public && e.requester == sub.v.UserID
	}
	return false
}

// send delivers e to sub unless sub has seen it (it may come from a replica
// further ahead); false if sub was dropped as too slow.
func (h *Hub) send(sub *subscriber, e *entry) bool {
	if sub.dropped {
		return false
	}
	if e.off < sub.cursor.at(e.part) {
		return true
	}
	sub.cursor = sub.cursor.advance(e.pos)
	return h.publish(sub, &sse.Event{ID: sub.cursor.encode(), Data: e.data})
}

// publish queues ev for sub without blocking; a full queue means the client
// does not keep up, and it is disconnected (it resumes with Last-Event-ID).
func (h *Hub) publish(sub *subscriber, ev *sse.Event) bool {
	if h.sse.TryPublish(sub.key, ev) {
		return true
	}
	if !sub.dropped {
		h.m.dropped.Inc()
		h.log.Info("sse client too slow; disconnecting", "user_id", sub.v.UserID, "org_id", sub.v.OrgID)
		h.dropLocked(sub)
	}
	return false
}

// release forgets a subscriber whose connection ended.
func (h *Hub) release(sub *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if sub.released {
		return
	}
	h.unindexLocked(sub)
	sub.released = true
	delete(h.pending, sub.key)
	delete(h.subs, sub.key)
	if o := h.orgs[sub.v.OrgID]; o != nil {
		if o.conns--; o.conns <= 0 {
			delete(h.orgs, sub.v.OrgID)
		}
	}
	if h.perUser[sub.v.UserID]--; h.perUser[sub.v.UserID] <= 0 {
		delete(h.perUser, sub.v.UserID)
	}
	if h.perIP[sub.v.IP]--; h.perIP[sub.v.IP] <= 0 {
		delete(h.perIP, sub.v.IP)
	}
	h.m.connections.Dec()
}

// unindexLocked stops live delivery to sub.
func (h *Hub) unindexLocked(sub *subscriber) {
	if !sub.active {
		return
	}
	sub.active = false
	delete(h.slots[sub.slot], sub)
	o := h.orgs[sub.v.OrgID]
	if o == nil {
		return
	}
	delete(o.staff, sub)
	delete(o.admins, sub)
	if set := o.requesters[sub.v.UserID]; set != nil {
		delete(set, sub)
		if len(set) == 0 {
			delete(o.requesters, sub.v.UserID)
		}
	}
}

// dispatch adds one message of partition part at offset off to the ring and
// sends it to its audience. ev is nil for a message that is not a readable
// event: the position still advances.
func (h *Hub) dispatch(part int, off int64, ev *pipeline.Event, data []byte, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for len(h.head) <= part {
		h.head = append(h.head, 0)
		h.floor = append(h.floor, 0)
	}
	if off < h.head[part] { // a reader restarted behind us
		return
	}
	h.head[part] = off + 1
	if ev == nil {
		return
	}
	if _, dup := h.seen[ev.ID]; dup {
		h.m.duplicates.Inc()
		return
	}
	e := &entry{part: part, off: off, pos: h.head.clone(), id: ev.ID, org: ev.OrgID, requester: ev.RequesterID,
		public: ev.Audience == pipeline.AudiencePublic, data: data, at: now}
	h.evictLocked(now)
	h.ring.push(e)
	h.seen[e.id] = struct{}{}
	h.m.events.Inc()

	o := h.orgs[e.org]
	if o == nil {
		return
	}
	n := 0
	for sub := range o.staff {
		h.send(sub, e)
		n++
	}
	// Anything not explicitly public is staff-only: fail closed.
	if e.public {
		for sub := range o.admins {
			h.send(sub, e)
			n++
		}
		for sub := range o.requesters[e.requester] {
			h.send(sub, e)
			n++
		}
	}
	h.m.deliveries.Add(float64(n))
}

// evictLocked makes room for one more event and drops events older than the
// retention window, raising the floor past them.
func (h *Hub) evictLocked(now time.Time) {
	limit := now.Add(-h.cfg.Retention)
	for h.ring.n > 0 && (h.ring.n >= len(h.ring.buf) || h.ring.oldest().at.Before(limit)) {
		e := h.ring.pop()
		delete(h.seen, e.id)
		if e.off+1 > h.floor[e.part] {
			h.floor[e.part] = e.off + 1
		}
	}
}

// heartbeat writes a keep-alive comment to one slot of subscribers.
func (h *Hub) heartbeat() {
	h.mu.Lock()
	defer h.mu.Unlock()
	slot := h.slots[h.nextSlot]
	h.nextSlot = (h.nextSlot + 1) % heartbeatSlots
	for sub := range slot {
		h.publish(sub, heartbeatEvent)
	}
}

var heartbeatEvent = &sse.Event{Comment: []byte("hb")}

// Shutdown ends every stream and refuses new ones, so that the HTTP server
// can drain (register it with http.Server.RegisterOnShutdown). Clients
// reconnect, with Last-Event-ID, to another replica.
func (h *Hub) Shutdown() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closing = true
	for _, sub := range h.subs {
		h.dropLocked(sub)
	}
}

// dropLocked stops delivery to sub and ends its connection.
func (h *Hub) dropLocked(sub *subscriber) {
	sub.dropped = true
	h.unindexLocked(sub)
	sub.cancel()
}

// start sets the positions the hub reads from: the floor and head of every
// partition, and opens the hub to clients.
func (h *Hub) start(from cursor) {
	h.mu.Lock()
	h.head = from.clone()
	h.floor = from.clone()
	h.mu.Unlock()
	close(h.ready)
}

// addPartitions extends the positions with partitions created after start.
func (h *Hub) addPartitions(n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for len(h.head) < n {
		h.head = append(h.head, 0)
		h.floor = append(h.floor, 0)
	}
}

// ring is a bounded FIFO of entries.
type ring struct {
	buf   []*entry
	start int
	n     int
}

func newRing(capacity int) ring { return ring{buf: make([]*entry, capacity)} }

func (r *ring) push(e *entry) {
	r.buf[(r.start+r.n)%len(r.buf)] = e
	r.n++
}

func (r *ring) oldest() *entry { return r.buf[r.start] }

func (r *ring) pop() *entry {
	e := r.buf[r.start]
	r.buf[r.start] = nil
	r.start = (r.start + 1) % len(r.buf)
	r.n--
	return e
}

// at returns the i-th oldest entry.
func (r *ring) at(i int) *entry { return r.buf[(r.start+i)%len(r.buf)] }
