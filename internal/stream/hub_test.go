package stream

import (
	"bufio"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/atumdesk/atumdesk/models"
	"github.com/atumdesk/atumdesk/pipeline"
)

const canary = "CANARY-internal-note-7f3a"

func TestCursor(t *testing.T) {
	c := cursor{120, 0, 57}
	require.Equal(t, "k1-120.0.57", string(c.encode()))
	back, ok := parseCursor("k1-120.0.57")
	require.True(t, ok)
	require.Equal(t, c, back)
	for _, bad := range []string{"", "k1-", "7", "k1-1.x", "k1--1", "k2-1.2", "k1-1..2"} {
		_, ok := parseCursor(bad)
		require.False(t, ok, bad)
	}
	require.True(t, c.covers(cursor{100, 0, 57}))
	require.False(t, c.covers(cursor{100, 0, 58}))
	require.False(t, c.covers(cursor{0, 0, 0, 1}), "an unknown partition has seen nothing")
	require.Equal(t, cursor{120, 3, 57, 4}, c.clone().advance(cursor{5, 3, 1, 4}))
	require.Equal(t, int64(0), c.at(9))
}

// TestAudience: staff see every event of their org, a customer admin the
// public events of their org, a customer user the public events of their
// own tickets; nobody sees another org; no customer sees a staff event.
func TestAudience(t *testing.T) {
	k := newKafka(t)
	orgA, orgB := uuid.New(), uuid.New()
	u := map[string]uuid.UUID{}
	viewers := map[string]Viewer{}
	add := func(name string, org uuid.UUID, role models.Role) {
		u[name] = uuid.New()
		viewers[name] = Viewer{UserID: u[name], OrgID: org, Role: role, IP: "127.0.0.1"}
	}
	add("agentA", orgA, models.RoleAgent)
	add("adminA", orgA, models.RoleAdmin)
	add("cadminA", orgA, models.RoleCustomerAdmin)
	add("cuserA1", orgA, models.RoleCustomerUser)
	add("cuserA2", orgA, models.RoleCustomerUser)
	add("managerB", orgB, models.RoleManager)
	add("cadminB", orgB, models.RoleCustomerAdmin)
	add("cuserB", orgB, models.RoleCustomerUser)
	_, srv := startHub(t, k, Config{}, viewers)

	cols := map[string]*collector{}
	for name := range viewers {
		c := connect(t, srv.URL, name, "")
		c.opened(t)
		cols[name] = collect(c)
	}
	t1, t2, t3 := uuid.New(), uuid.New(), uuid.New()
	a1 := k.publish(t, orgA, t1, u["cuserA1"], pipeline.AudiencePublic, map[string]string{"body": "a1 public"})
	a1note := k.publish(t, orgA, t1, u["cuserA1"], pipeline.AudienceStaff, map[string]string{"body": canary})
	a2 := k.publish(t, orgA, t2, u["cuserA2"], pipeline.AudiencePublic, map[string]string{"body": "a2 public"})
	odd := k.publish(t, orgA, t2, u["cuserA2"], "something-new", map[string]string{"body": canary}) // unknown audience: staff only
	b3 := k.publish(t, orgB, t3, u["cuserB"], pipeline.AudiencePublic, map[string]string{"body": "b3 public"})
	b3note := k.publish(t, orgB, t3, u["cuserB"], pipeline.AudienceStaff, map[string]string{"body": canary})
	k.publishEvent(t, a1) // the outbox relay may publish twice: delivered once

	// Staff receive everything of their org; once they have, every event
	// was routed. A marker per customer (their own ticket, published after)
	// then proves each customer's queue was drained past those events.
	cols["agentA"].waitFor(t, odd.ID.String())
	cols["adminA"].waitFor(t, odd.ID.String())
	cols["managerB"].waitFor(t, b3note.ID.String())
	for _, name := range []string{"cadminA", "cuserA1", "cuserA2", "cadminB", "cuserB"} {
		org, ticket := orgA, uuid.New()
		if strings.HasSuffix(name, "B") {
			org = orgB
		}
		m := k.publish(t, org, ticket, u[name], pipeline.AudiencePublic, map[string]string{"marker": name})
		cols[name].waitFor(t, m.ID.String())
	}

	ids := func(name string) []uuid.UUID {
		var out []uuid.UUID
		for _, e := range cols[name].snapshot() {
			if !strings.Contains(e.data, `"marker"`) {
				out = append(out, eventID(t, e))
			}
		}
		return out
	}
	want := map[string][]uuid.UUID{
		"agentA":   {a1.ID, a1note.ID, a2.ID, odd.ID},
		"adminA":   {a1.ID, a1note.ID, a2.ID, odd.ID},
		"cadminA":  {a1.ID, a2.ID},
		"cuserA1":  {a1.ID},
		"cuserA2":  {a2.ID},
		"managerB": {b3.ID, b3note.ID},
		"cadminB":  {b3.ID},
		"cuserB":   {b3.ID},
	}
	for name, w := range want {
		got := ids(name)
		require.ElementsMatch(t, w, got, name)
	}
	for name, v := range viewers {
		if v.Role.IsCustomer() {
			for _, e := range cols[name].snapshot() {
				require.NotContains(t, e.data, canary, "%s received a staff event", name)
			}
		}
	}
	// The marker events for customers of A are public events of A: staff
	// of A got them too, staff of B did not.
	for _, e := range cols["managerB"].snapshot() {
		require.NotContains(t, e.data, orgA.String())
	}
}

// TestResume: a client reconnecting with its Last-Event-ID gets exactly the
// events it missed, on the same replica or on another one reading the same
// topic.
func TestResume(t *testing.T) {
	k := newKafka(t)
	org, agent := uuid.New(), uuid.New()
	viewers := map[string]Viewer{"agent": {UserID: agent, OrgID: org, Role: models.RoleAgent}}
	_, srv1 := startHub(t, k, Config{}, viewers)
	_, srv2 := startHub(t, k, Config{}, viewers)

	c := connect(t, srv1.URL, "agent", "")
	ready := c.opened(t)
	require.Equal(t, "ready", ready.event)
	require.JSONEq(t, `{"status":"live"}`, ready.data)
	var sent []uuid.UUID
	for i := range 3 {
		sent = append(sent, k.publish(t, org, uuid.New(), uuid.New(), pipeline.AudiencePublic, map[string]int{"n": i}).ID)
	}
	var last sseEvent
	var got []uuid.UUID
	for range 3 { // three tickets, maybe three partitions: any order
		last = c.mustNext(t)
		got = append(got, eventID(t, last))
	}
	require.ElementsMatch(t, sent, got)
	c.cancel()

	// Missed while disconnected: on several tickets, so several partitions.
	var missed []uuid.UUID
	for i := range 12 {
		missed = append(missed, k.publish(t, org, uuid.New(), uuid.New(), pipeline.AudiencePublic, map[string]int{"m": i}).ID)
	}
	var resumed []*client
	for _, srv := range []string{srv1.URL, srv2.URL} {
		r := connect(t, srv, "agent", last.id)
		got, ready := r.domainEvents(t, len(missed))
		require.ElementsMatch(t, missed, got, "no gap, no duplicate")
		// A replica still behind on the topic replays what it has and sends
		// the rest live.
		require.Contains(t, ready.data, `"status":"resumed"`)
		resumed = append(resumed, r)
	}
	// Live events continue on both; nothing older comes again.
	live := k.publish(t, org, uuid.New(), uuid.New(), pipeline.AudiencePublic, nil)
	for _, r := range resumed {
		require.Equal(t, live.ID, eventID(t, r.mustNext(t)))
		r.cancel()
	}

	// The ready event's id resumes too: a client that saw no event yet
	// misses nothing either.
	q := connect(t, srv2.URL, "agent", "")
	fresh := q.opened(t)
	q.cancel()
	gap := k.publish(t, org, uuid.New(), uuid.New(), pipeline.AudiencePublic, nil)
	r := connect(t, srv1.URL, "agent", fresh.id)
	got, _ = r.domainEvents(t, 1)
	require.Equal(t, []uuid.UUID{gap.ID}, got)
}

// domainEvents reads n domain events of a resumed stream and its ready
// event, which may come before, among or after them.
func (c *client) domainEvents(t *testing.T, n int) (ids []uuid.UUID, ready sseEvent) {
	t.Helper()
	for len(ids) < n || ready.event == "" {
		e := c.mustNext(t)
		if e.event != "" {
			require.Equal(t, "ready", e.event)
			require.Empty(t, ready.event, "a second ready")
			ready = e
			continue
		}
		ids = append(ids, eventID(t, e))
	}
	return ids, ready
}

// TestReset: a Last-Event-ID older than the replay ring (or unreadable)
// gets a reset, then live events.
func TestReset(t *testing.T) {
	k := newKafka(t)
	org, agent, customer := uuid.New(), uuid.New(), uuid.New()
	viewers := map[string]Viewer{
		"agent":    {UserID: agent, OrgID: org, Role: models.RoleAgent},
		"customer": {UserID: customer, OrgID: org, Role: models.RoleCustomerUser},
	}
	h, srv := startHub(t, k, Config{RingEvents: 4, ClientBuffer: 16, MaxReplay: 5}, viewers)

	c := connect(t, srv.URL, "agent", "")
	start := c.opened(t)
	c.cancel()
	for i := range 6 { // more than the ring holds
		k.publish(t, org, uuid.New(), customer, pipeline.AudiencePublic, map[string]int{"n": i})
	}
	require.Eventually(t, func() bool { return counterValue(h.m.events) == 6 }, 10*time.Second, 5*time.Millisecond)

	for _, id := range []string{start.id, "not-a-cursor", "42"} {
		r := connect(t, srv.URL, "agent", id)
		e := r.opened(t)
		require.Equal(t, "reset", e.event, id)
		// The reset's id is the live head: resuming from it replays nothing.
		r.cancel()
		again := connect(t, srv.URL, "agent", e.id)
		require.JSONEq(t, `{"status":"resumed","replayed":0}`, again.opened(t).data)
		again.cancel()
	}

	// Query parameter instead of the header (a new EventSource cannot set
	// headers).
	req, _ := http.NewRequest("GET", srv.URL+"?last_event_id="+start.id, nil)
	req.Header.Set("X-Viewer", "agent")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var first sseEvent
	readEvents(bufio.NewReader(res.Body), func(e sseEvent) bool { first = e; return e.comment })
	require.Equal(t, "reset", first.event)

	// Too many missed for one replay: reset as well (MaxReplay 5, ClientBuffer 16).
	h2, srv2 := startHub(t, k, Config{RingEvents: 100, ClientBuffer: 16, MaxReplay: 5}, viewers)
	c2 := connect(t, srv2.URL, "agent", "")
	pos := c2.opened(t)
	c2.cancel()
	for range 6 {
		k.publish(t, org, uuid.New(), customer, pipeline.AudiencePublic, nil)
	}
	require.Eventually(t, func() bool {
		h2.mu.Lock()
		defer h2.mu.Unlock()
		return h2.ring.n >= 6+6 // the six before h2 started are within its retention window
	}, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, "reset", connect(t, srv2.URL, "agent", pos.id).opened(t).event)
}

// TestCaps: connections per user and per organisation are capped with 429;
// a closed stream frees its slot.
func TestCaps(t *testing.T) {
	k := newKafka(t)
	org, other := uuid.New(), uuid.New()
	viewers := map[string]Viewer{}
	for i := range 4 {
		viewers[fmt.Sprint("u", i)] = Viewer{UserID: uuid.New(), OrgID: org, Role: models.RoleAgent, IP: "10.0.0.1"}
	}
	viewers["other"] = Viewer{UserID: uuid.New(), OrgID: other, Role: models.RoleCustomerUser, IP: "10.0.0.1"}
	h, srv := startHub(t, k, Config{MaxPerUser: 2, MaxPerOrg: 3, Heartbeat: 160 * time.Millisecond}, viewers)

	a := connect(t, srv.URL, "u0", "")
	a.opened(t)
	b := connect(t, srv.URL, "u0", "")
	b.opened(t)
	require.Equal(t, http.StatusTooManyRequests, connect(t, srv.URL, "u0", "").status, "per user")
	c := connect(t, srv.URL, "u1", "")
	c.opened(t)
	require.Equal(t, http.StatusTooManyRequests, connect(t, srv.URL, "u2", "").status, "per org")
	require.Equal(t, http.StatusOK, connect(t, srv.URL, "other", "").status, "another org is not affected")

	// Heartbeats keep idle streams alive.
	select {
	case e := <-a.ch:
		require.True(t, e.comment)
		require.Equal(t, "hb", e.data)
	case <-time.After(5 * time.Second):
		t.Fatal("no heartbeat")
	}

	b.cancel()
	require.Eventually(t, func() bool { return connect(t, srv.URL, "u3", "").status == http.StatusOK }, 5*time.Second, 20*time.Millisecond)
	require.Len(t, activeSubs(h), 4) // a, c, other, u3
}

func activeSubs(h *Hub) []*subscriber {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []*subscriber
	for _, s := range h.subs {
		out = append(out, s)
	}
	return out
}

func viewerNames(viewers map[string]Viewer, subs []*subscriber) []string {
	var out []string
	for _, s := range subs {
		for name, v := range viewers {
			if v.UserID == s.v.UserID {
				out = append(out, name)
			}
		}
	}
	slices.Sort(out)
	return out
}

func between(s, from, to string) string {
	_, rest, _ := strings.Cut(s, from)
	v, _, _ := strings.Cut(rest, to)
	return v
}

// TestReplayFor: the replay skips exactly what a cursor has seen, whatever
// the interleaving of partitions, and applies the audience rule.
func TestReplayFor(t *testing.T) {
	h := NewHub(Config{RingEvents: 10})
	h.start(cursor{0, 0})
	org, requester := uuid.New(), uuid.New()
	type at struct {
		p   int
		off int64
	}
	order := []at{{0, 0}, {1, 0}, {0, 1}, {1, 1}, {0, 2}}
	ids := map[at]uuid.UUID{}
	for _, a := range order {
		ev := pipeline.Event{ID: uuid.New(), OrgID: org, RequesterID: requester, Audience: pipeline.AudiencePublic}
		if a == (at{1, 1}) {
			ev.Audience = pipeline.AudienceStaff
		}
		ids[a] = ev.ID
		h.dispatch(a.p, a.off, &ev, []byte("{}"), time.Now())
	}
	replay := func(role models.Role, c cursor) []uuid.UUID {
		cl, _ := classOf(role)
		sub := &subscriber{v: Viewer{UserID: requester, OrgID: org, Role: role}, class: cl, cursor: c}
		var out []uuid.UUID
		for _, e := range h.replayFor(sub, 100) {
			out = append(out, e.id)
		}
		return out
	}
	require.Equal(t, []uuid.UUID{ids[at{1, 1}], ids[at{0, 2}]}, replay(models.RoleAgent, cursor{2, 1}))
	require.Equal(t, []uuid.UUID{ids[at{0, 0}], ids[at{0, 1}], ids[at{0, 2}]}, replay(models.RoleAgent, cursor{0, 2}))
	require.Equal(t, []uuid.UUID{ids[at{1, 0}], ids[at{1, 1}]}, replay(models.RoleAgent, cursor{3, 0}))
	require.Equal(t, []uuid.UUID{ids[at{1, 0}]}, replay(models.RoleCustomerUser, cursor{3, 0}), "the staff event is not replayed to a customer")
	require.Empty(t, replay(models.RoleAgent, cursor{3, 2}))
	require.Len(t, replay(models.RoleAgent, nil), 5)
}
