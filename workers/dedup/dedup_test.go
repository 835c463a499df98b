package dedup_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/atumdesk/atumdesk/internal/testenv"
	"github.com/atumdesk/atumdesk/pipeline"
	"github.com/atumdesk/atumdesk/workers/dedup"
)

type fixture struct {
	t       testing.TB
	db      *gorm.DB
	org     uuid.UUID
	alice   uuid.UUID
	bob     uuid.UUID
	number  int64
	handler *dedup.Handler
}

func newFixture(t testing.TB) *fixture {
	db, _ := testenv.DB(t)
	return newOrg(t, db, dedup.New(db, dedup.Config{Window: 24 * time.Hour}))
}

// newOrg makes an organisation with the customers alice and bob in db.
func newOrg(t testing.TB, db *gorm.DB, h *dedup.Handler) *fixture {
	f := &fixture{t: t, db: db, org: uuid.Must(uuid.NewV7()), handler: h}
	require.NoError(t, db.Exec(`INSERT INTO organizations (id, slug, name) VALUES (?, ?, 'Dedup Org')`, f.org, "dedup-"+f.org.String()[24:]).Error)
	f.alice, f.bob = f.customer(), f.customer()
	return f
}

// customer adds a customer to f's organisation.
func (f *fixture) customer() uuid.UUID {
	id := uuid.Must(uuid.NewV7())
	require.NoError(f.t, f.db.Exec(`INSERT INTO users (id, org_id, email, name, role, is_active) VALUES (?, ?, ?, 'U', 'customer_user', true)`,
		id, f.org, id.String()+"@example.test").Error)
	return id
}

// loaded is a fixture with 20,000 open tickets of the last hour from
// requesters customers, returned.
func loaded(b *testing.B, requesters int) (*fixture, []uuid.UUID) {
	f := newFixture(b)
	var users []uuid.UUID
	require.NoError(b, f.db.Raw(`INSERT INTO users (org_id, email, name, role, is_active)
		SELECT ?, 'load-' || n || '@example.test', 'U', 'customer_user', true FROM generate_series(1, ?) AS n
		RETURNING id`, f.org, requesters).Scan(&users).Error)
	require.NoError(b, f.db.Exec(`INSERT INTO tickets (org_id, number, subject, description, requester_id, channel, created_at)
		SELECT ?, n, 'Load test ticket ' || n, 'Body of load test ticket ' || n, (?::uuid[])[1 + n % ?], 'api',
			now() - interval '1 hour' + n * interval '1 ms'
		FROM generate_series(1, 20000) AS n`, f.org, pqArray(users), requesters).Error)
	require.NoError(b, f.db.Exec(`ANALYZE tickets`).Error)
	f.number = 20000
	return f, users
}

type ticket struct {
	requester uuid.UUID
	subject   string
	body      string
	status    string
	messageID string
	age       time.Duration // created this long before now
}

func (f *fixture) ticket(tk ticket) uuid.UUID {
	f.t.Helper()
	f.number++
	id := uuid.Must(uuid.NewV7())
	if tk.status == "" {
		tk.status = "new"
	}
	var mid *string
	if tk.messageID != "" {
		mid = &tk.messageID
	}
	require.NoError(f.t, f.db.Exec(`INSERT INTO tickets (id, org_id, number, subject, description, status, requester_id, channel, source_message_id, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, 'api', ?, ?)`,
		id, f.org, f.number, tk.subject, tk.body, tk.status, tk.requester, mid, time.Now().Add(-tk.age)).Error)
	return id
}

func (f *fixture) payload(ticketID uuid.UUID) pipeline.TaskPayload {
	var requester uuid.UUID
	require.NoError(f.t, f.db.Raw(`SELECT requester_id FROM tickets WHERE id = ?`, ticketID).Row().Scan(&requester))
	return pipeline.TaskPayload{EventID: uuid.Must(uuid.NewV7()), EventType: pipeline.EventTicketCreated, OrgID: f.org, TicketID: ticketID, RequesterID: requester}
}

func (f *fixture) run(ticketID uuid.UUID) dedup.Result {
	f.t.Helper()
	res, err := f.handler.Process(context.Background(), f.payload(ticketID))
	require.NoError(f.t, err)
	return res
}

func (f *fixture) duplicateOf(id uuid.UUID) *uuid.UUID {
	f.t.Helper()
	var d *uuid.UUID
	require.NoError(f.t, f.db.Raw(`SELECT is_duplicate_of FROM tickets WHERE id = ?`, id).Row().Scan(&d))
	return d
}

// event reads the outbox event of type typ.
func (f *fixture) event(typ string) pipeline.Event {
	f.t.Helper()
	var payload []byte
	require.NoError(f.t, f.db.Raw(`SELECT payload FROM outbox WHERE event_type = ?`, typ).Row().Scan(&payload))
	var ev pipeline.Event
	require.NoError(f.t, json.Unmarshal(payload, &ev))
	return ev
}

func (f *fixture) count(query string, args ...any) int64 {
	f.t.Helper()
	var n int64
	require.NoError(f.t, f.db.Raw(query, args...).Row().Scan(&n))
	return n
}

func TestDuplicateLinkedOnceEvenWhenRunTwice(t *testing.T) {
	f := newFixture(t)
	orig := f.ticket(ticket{requester: f.alice, subject: "Printer broken", body: "It does not print.\nAt all.", age: time.Hour})
	dup := f.ticket(ticket{requester: f.alice, subject: "RE: Fwd:  printer   BROKEN ", body: "it does not print. at   all."})

	p := f.payload(dup)
	raw, err := json.Marshal(p)
	require.NoError(t, err)
	task := asynq.NewTask(pipeline.TaskDedup, raw)

	// the same task, delivered four times at once and once more later
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { require.NoError(t, f.handler.ProcessTask(context.Background(), task)) })
	}
	wg.Wait()
	res, err := f.handler.Process(context.Background(), p)
	require.NoError(t, err)
	require.True(t, res.AlreadyProcessed)

	require.Equal(t, &orig, f.duplicateOf(dup))
	require.Nil(t, f.duplicateOf(orig))
	require.EqualValues(t, 1, f.count(`SELECT count(*) FROM ticket_relationships WHERE source_ticket_id = ? AND target_ticket_id = ? AND kind = 'duplicate_of' AND org_id = ?`, dup, orig, f.org))
	require.EqualValues(t, 1, f.count(`SELECT count(*) FROM audit_log WHERE action = 'ticket.duplicate_marked' AND ticket_id = ? AND actor_kind = 'system' AND org_id = ?`, dup, f.org))
	require.EqualValues(t, 1, f.count(`SELECT count(*) FROM outbox WHERE event_type = ? AND key = ?`, pipeline.EventDuplicateMarked, dup.String()))

	ev := f.event(pipeline.EventDuplicateMarked)
	require.Equal(t, pipeline.AudienceStaff, ev.Audience)
	require.Equal(t, dup, ev.TicketID)
	require.Equal(t, f.alice, ev.RequesterID)
	require.JSONEq(t, `{"original_ticket_id":"`+orig.String()+`","original_number":1,"number":2,"reason":"subject_body"}`, string(ev.Data))

	// a later, different event about the same ticket changes nothing more
	require.Nil(t, f.run(dup).DuplicateOf)
	require.EqualValues(t, 1, f.count(`SELECT count(*) FROM ticket_relationships`))

	// a duplicate is never acknowledged: no ticket.dedup_passed for it
	require.EqualValues(t, 0, f.count(`SELECT count(*) FROM outbox WHERE event_type = ?`, pipeline.EventDedupPassed))
}

func TestNotLinked(t *testing.T) {
	f := newFixture(t)
	const subject, body = "VPN down", "Cannot connect since this morning."

	// another requester's identical ticket
	f.ticket(ticket{requester: f.bob, subject: subject, body: body, age: time.Hour})
	// the same requester's, but closed, resolved or cancelled
	for _, st := range []string{"closed", "resolved", "cancelled"} {
		f.ticket(ticket{requester: f.alice, subject: subject, body: body, status: st, age: 2 * time.Hour})
	}
	// open but older than the window
	f.ticket(ticket{requester: f.alice, subject: subject, body: body, age: 25 * time.Hour})
	// open and recent, but another text
	f.ticket(ticket{requester: f.alice, subject: subject, body: body + " Please help.", age: time.Minute})
	f.ticket(ticket{requester: f.alice, subject: "VPN down again", body: body, age: time.Minute})

	n := f.ticket(ticket{requester: f.alice, subject: subject, body: body})
	p := f.payload(n)
	res, err := f.handler.Process(context.Background(), p)
	require.NoError(t, err)
	require.False(t, res.AlreadyProcessed)
	require.Nil(t, res.DuplicateOf)
	require.Nil(t, f.duplicateOf(n))
	require.EqualValues(t, 0, f.count(`SELECT count(*) FROM ticket_relationships`))
	// not a duplicate: one staff ticket.dedup_passed, which notify acknowledges
	require.EqualValues(t, 1, f.count(`SELECT count(*) FROM outbox`))
	ev := f.event(pipeline.EventDedupPassed)
	require.Equal(t, pipeline.AudienceStaff, ev.Audience)
	require.Equal(t, n, ev.TicketID)
	require.Equal(t, f.alice, ev.RequesterID)
	// the event redelivered: nothing more
	res, err = f.handler.Process(context.Background(), p)
	require.NoError(t, err)
	require.True(t, res.AlreadyProcessed)
	require.EqualValues(t, 1, f.count(`SELECT count(*) FROM outbox`))
}

func TestOriginalIsEarliestOpenTicket(t *testing.T) {
	f := newFixture(t)
	const subject, body = "Über-Drucker kaputt", "Der Drucker druckt nicht." // non-ASCII: no full-text narrowing
	f.ticket(ticket{requester: f.alice, subject: subject, body: body, status: "closed", age: 3 * time.Hour})
	first := f.ticket(ticket{requester: f.alice, subject: subject, body: body, age: 2 * time.Hour})
	second := f.ticket(ticket{requester: f.alice, subject: "Re: " + subject, body: body, age: time.Hour})
	third := f.ticket(ticket{requester: f.alice, subject: subject, body: body})

	// processed out of order: the first is nobody's duplicate
	require.Equal(t, &first, f.run(third).DuplicateOf)
	require.Nil(t, f.run(first).DuplicateOf)
	require.Equal(t, &first, f.run(second).DuplicateOf)
	require.Equal(t, &first, f.duplicateOf(third))

	// a subject without a word still compares
	q1 := f.ticket(ticket{requester: f.bob, subject: "???", body: "!!", age: time.Minute})
	q2 := f.ticket(ticket{requester: f.bob, subject: "Re: ???", body: "!!"})
	require.Equal(t, &q1, f.run(q2).DuplicateOf)
}

func TestMessageIDMatch(t *testing.T) {
	f := newFixture(t)
	orig := f.ticket(ticket{requester: f.alice, subject: "Invoice", body: "See attached.", messageID: "<CAF123@mail.example>", age: 72 * time.Hour})
	// the same e-mail seen again: other subject and body, beyond the window
	dup := f.ticket(ticket{requester: f.alice, subject: "Fwd: Invoice (resent)", body: "See attached. Sent from my phone", messageID: " CAF123@mail.example "})
	res := f.run(dup)
	require.Equal(t, &orig, res.DuplicateOf)
	require.Equal(t, dedup.ReasonMessageID, res.Reason)

	// another requester's ticket with that Message-ID is not linked
	other := f.ticket(ticket{requester: f.bob, subject: "Invoice", body: "See attached.", messageID: "CAF123@mail.example>"})
	require.Nil(t, f.run(other).DuplicateOf)
}

func TestBadPayloadIsNotRetried(t *testing.T) {
	f := newFixture(t)
	err := f.handler.ProcessTask(context.Background(), asynq.NewTask(pipeline.TaskDedup, []byte(`{"event_id":"x"}`)))
	require.True(t, errors.Is(err, asynq.SkipRetry), "%v", err)
	// a ticket that no longer exists: done, nothing written
	p := pipeline.TaskPayload{EventID: uuid.New(), OrgID: f.org, TicketID: uuid.New()}
	res, err := f.handler.Process(context.Background(), p)
	require.NoError(t, err)
	require.Nil(t, res.DuplicateOf)
}

func TestNormalise(t *testing.T) {
	for in, want := range map[string]string{
		"Printer broken":               "printer broken",
		"  RE:  re: Fwd: FW: Printer ": "printer",
		"Re[2]: AW: x":                 "aw: x", // only re/fw/fwd are reply prefixes
		"Re:Printer\tbroken\n":         "printer broken",
		"Réunion: agenda":              "réunion: agenda",
		"Fwd:":                         "",
	} {
		require.Equal(t, want, dedup.NormaliseSubject(in), in)
	}
	require.Equal(t, "a b c", dedup.NormaliseBody(" A\n\nb \t C "))
	require.Equal(t, "abc@x", dedup.NormaliseMessageID(" <abc@x> "))
}

// BenchmarkProcess: 20,000 open tickets of the last hour, from one
// requester (a load generator's pattern) or from 200; each op stores a new
// unique ticket of one of them and runs the stage on it.
func BenchmarkProcess(b *testing.B) {
	for _, requesters := range []int{1, 200} {
		b.Run(fmt.Sprintf("requesters=%d", requesters), func(b *testing.B) {
			f, users := loaded(b, requesters)
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				id := f.ticket(ticket{requester: users[i%requesters], subject: fmt.Sprintf("Load test ticket x%d", i), body: fmt.Sprintf("Body x%d", i)})
				p := f.payload(id)
				b.StartTimer()
				if _, err := f.handler.Process(context.Background(), p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func pqArray(ids []uuid.UUID) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = id.String()
	}
	return "{" + strings.Join(s, ",") + "}"
}

// countStatements counts the statements db sends from now on (BEGIN and
// COMMIT are not seen by gorm's callbacks: the caller adds them).
func countStatements(tb testing.TB, db *gorm.DB) *atomic.Int64 {
	var n atomic.Int64
	count := func(*gorm.DB) { n.Add(1) }
	cb := db.Callback()
	require.NoError(tb, cb.Query().After("gorm:query").Register("test:count", count))
	require.NoError(tb, cb.Row().After("gorm:row").Register("test:count", count))
	require.NoError(tb, cb.Raw().After("gorm:raw").Register("test:count", count))
	return &n
}

// BenchmarkProcessBatch: batches of 64 new tickets (every eighth repeats
// the one before it), on top of 20,000 open tickets of the last hour from
// one requester, 200 or 2,000 (the load test's pattern), run one by one (Process per event, as before
// batching) or as one batch (ProcessBatch). Reports ms and statements
// (BEGIN and COMMIT included) per event.
func BenchmarkProcessBatch(b *testing.B) {
	const size = 64
	for _, mode := range []string{"one-by-one", "batch"} {
		for _, requesters := range []int{1, 200, 2000} {
			b.Run(fmt.Sprintf("%s/requesters=%d", mode, requesters), func(b *testing.B) {
				f, users := loaded(b, requesters)
				stmts := countStatements(b, f.db)
				var counted, txs int64
				var elapsed time.Duration
				for op := range b.N {
					events := make([]pipeline.TaskPayload, size)
					for i := range events {
						k, requester := op*size+i, users[(op*size+i)%requesters]
						if i%8 == 7 {
							k, requester = k-1, users[(op*size+i-1)%requesters]
						}
						id := f.ticket(ticket{requester: requester, subject: fmt.Sprintf("Load test ticket x%d", k), body: fmt.Sprintf("Body x%d", k)})
						events[i] = pipeline.TaskPayload{EventID: uuid.Must(uuid.NewV7()), EventType: pipeline.EventTicketCreated, OrgID: f.org, TicketID: id, RequesterID: requester}
					}
					before := stmts.Load()
					start := time.Now()
					switch mode {
					case "one-by-one":
						for _, p := range events {
							if _, err := f.handler.Process(context.Background(), p); err != nil {
								b.Fatal(err)
							}
						}
						txs += size
					case "batch":
						failed, err := f.handler.ProcessBatch(context.Background(), events)
						if err != nil || len(failed) > 0 {
							b.Fatal(err, failed)
						}
						txs++
					}
					elapsed += time.Since(start)
					counted += stmts.Load() - before
				}
				b.ReportMetric(float64(elapsed.Microseconds())/1000/float64(b.N*size), "ms/event")
				b.ReportMetric(float64(counted+2*txs)/float64(b.N*size), "stmts/event")
			})
		}
	}
}

// sibling is another organisation (with its own alice and bob) in f's
// database.
func (f *fixture) sibling() *fixture { return newOrg(f.t, f.db, f.handler) }

// scenario stores, in f's organisation, tickets covering every rule and
// returns the events of a batch (not in creation order), the tickets'
// labels and the verdict expected for each ticket of the batch.
type scenario struct {
	events []pipeline.TaskPayload
	label  map[uuid.UUID]string
	want   map[string]string // ticket → original ("" for none)
}

func buildScenario(f *fixture) scenario {
	s := scenario{label: map[uuid.UUID]string{f.alice: "alice", f.bob: "bob"}, want: map[string]string{}}
	add := func(label string, tk ticket) uuid.UUID {
		id := f.ticket(tk)
		s.label[id] = label
		return id
	}
	event := func(id uuid.UUID) {
		s.events = append(s.events, pipeline.TaskPayload{EventID: uuid.Must(uuid.NewV7()), EventType: pipeline.EventTicketCreated,
			OrgID: f.org, TicketID: id, RequesterID: f.alice})
	}
	// Before the batch. Bob has more open tickets than one page holds, so
	// his lookups page on, narrowed by the full-text index where the
	// subject is ASCII.
	require.NoError(f.t, f.db.Exec(`INSERT INTO tickets (org_id, number, subject, description, requester_id, channel, created_at)
		SELECT ?, 1000 + n, 'Noise ' || n, 'Noise body ' || n, ?, 'api', now() - interval '5 hours' + n * interval '1 s'
		FROM generate_series(1, 600) AS n`, f.org, f.bob).Error)
	// Carol's backup ticket finds its original only on its second page;
	// her later one has that original out of its window but repeats the
	// first, so it must wait for the first one's verdict (duplicate).
	carol := f.customer()
	s.label[carol] = "carol"
	require.NoError(f.t, f.db.Exec(`INSERT INTO tickets (org_id, number, subject, description, requester_id, channel, created_at)
		SELECT ?, 2000 + n, 'Carol noise ' || n, 'Noise', ?, 'api', now() - interval '24 hours 29 minutes' + n * interval '2 s'
		FROM generate_series(1, 500) AS n`, f.org, carol).Error)
	add("c-orig", ticket{requester: carol, subject: "Backup failed", body: "Job 7 failed.", age: 24*time.Hour + 5*time.Minute})
	aOrig := add("a-orig", ticket{requester: f.alice, subject: "Printer broken", body: "It does not print.", age: 3 * time.Hour})
	add("x-orig", ticket{requester: f.alice, subject: "Invoice", body: "See attached.", messageID: "<M1@mail.example>", age: 2 * time.Hour})
	add("b-orig", ticket{requester: f.bob, subject: "Disk full", body: "No space left.", age: 70 * time.Minute})
	add("u-orig", ticket{requester: f.bob, subject: "Überlauf", body: "Speicher voll.", age: 65 * time.Minute})
	closed := add("closed", ticket{requester: f.alice, subject: "Printer broken", body: "It does not print.", status: "closed", age: time.Hour})
	agentDup := add("agent-dup", ticket{requester: f.alice, subject: "Printer broken", body: "It does not print.", age: 55 * time.Minute})
	require.NoError(f.t, f.db.Exec(`UPDATE tickets SET is_duplicate_of = ? WHERE id = ?`, aOrig, agentDup).Error)

	// The batch's tickets, in creation order, and their expected verdicts.
	for _, tc := range []struct {
		label, want string
		tk          ticket
	}{
		{"a-dup", "a-orig", ticket{requester: f.alice, subject: "Re: printer  BROKEN", body: "it does not print.", age: 50 * time.Minute}},
		{"x-dup", "x-orig", ticket{requester: f.alice, subject: "Hello", body: "Hi there", messageID: " M1@mail.example ", age: 40 * time.Minute}},
		{"c-dup", "c-orig", ticket{requester: carol, subject: "Backup failed", body: "Job 7 failed.", age: 35 * time.Minute}},
		// repeats x-dup, which the batch marks duplicate before: no original
		{"x-dup2", "", ticket{requester: f.alice, subject: "Hello", body: "Hi there", age: 30 * time.Minute}},
		{"n1", "", ticket{requester: f.alice, subject: "New thing", body: "Body", age: 20 * time.Minute}},
		{"n2", "n1", ticket{requester: f.alice, subject: "new   THING", body: "body", age: 10 * time.Minute}},
		{"n3", "n1", ticket{requester: f.alice, subject: "Fwd: new thing", body: "Body", age: 5 * time.Minute}},
		{"b-dup", "b-orig", ticket{requester: f.bob, subject: "Disk full", body: "No space left.", age: 4 * time.Minute}},
		{"q1", "", ticket{requester: f.bob, subject: "Quota", body: "Over quota.", age: 3 * time.Minute}},
		{"q2", "q1", ticket{requester: f.bob, subject: "Quota", body: "Over quota.", age: 2 * time.Minute}},
		{"c-dup2", "", ticket{requester: carol, subject: "Backup failed", body: "Job 7 failed.", age: 90 * time.Second}},
		{"u-dup", "u-orig", ticket{requester: f.bob, subject: "Überlauf", body: "Speicher voll.", age: time.Minute}},
	} {
		event(add(tc.label, tc.tk))
		s.want[tc.label] = tc.want
	}
	event(closed)
	event(agentDup)
	event(uuid.Must(uuid.NewV7())) // its ticket is gone
	// n1 and a-dup again (other events), and one event twice
	for id, l := range s.label {
		if l == "n1" || l == "a-dup" {
			event(id)
		}
	}
	s.events = append(s.events, s.events[4])
	slices.Reverse(s.events)
	return s
}

// snapshot is what the stage wrote in f's organisation, with ticket IDs
// replaced by their labels.
func snapshot(f *fixture, s scenario) map[string]any {
	f.t.Helper()
	name := func(id string) string {
		if l, ok := s.label[uuid.MustParse(id)]; ok {
			return l
		}
		return id
	}
	relabel := func(text string) string {
		for id, l := range s.label {
			text = strings.ReplaceAll(text, id.String(), l)
		}
		return text
	}
	var dups []string
	rows, err := f.db.Raw(`SELECT id::text, coalesce(is_duplicate_of::text, '') FROM tickets WHERE org_id = ? AND number < 1000 ORDER BY number`, f.org).Rows()
	require.NoError(f.t, err)
	for rows.Next() {
		var id, orig string
		require.NoError(f.t, rows.Scan(&id, &orig))
		if orig != "" {
			orig = name(orig)
		}
		dups = append(dups, name(id)+"→"+orig)
	}
	require.NoError(f.t, rows.Err())
	var links, audits, events []string
	require.NoError(f.t, f.db.Raw(`SELECT source_ticket_id::text || ' ' || kind || ' ' || target_ticket_id::text FROM ticket_relationships
		WHERE org_id = ? ORDER BY 1`, f.org).Scan(&links).Error)
	require.NoError(f.t, f.db.Raw(`SELECT concat_ws(' ', ticket_id, actor_kind, action, entity_type, entity_id, before, after) FROM audit_log
		WHERE org_id = ? ORDER BY id`, f.org).Scan(&audits).Error)
	require.NoError(f.t, f.db.Raw(`SELECT concat_ws(' ', topic, key, event_type, payload->>'ticket_id', payload->>'requester_id', payload->>'audience', payload->'data')
		FROM outbox WHERE payload->>'org_id' = ? ORDER BY id`, f.org.String()).Scan(&events).Error)
	var inbox int64
	require.NoError(f.t, f.db.Raw(`SELECT count(*) FROM processed_events WHERE consumer = ? AND event_id = ANY(?::uuid[])`,
		dedup.Consumer, pqArray(eventIDs(s.events))).Row().Scan(&inbox))
	for _, l := range [][]string{links, audits, events} {
		for i := range l {
			l[i] = relabel(l[i])
		}
	}
	return map[string]any{"duplicate_of": dups, "links": links, "audit": audits, "events": events, "inbox": inbox}
}

func eventIDs(events []pipeline.TaskPayload) []uuid.UUID {
	ids := make([]uuid.UUID, len(events))
	for i, p := range events {
		ids[i] = p.EventID
	}
	return ids
}

// createdOrder is the events in their tickets' creation order (as the
// batch takes them), events of gone tickets first.
func createdOrder(f *fixture, events []pipeline.TaskPayload) []pipeline.TaskPayload {
	out := slices.Clone(events)
	created := map[uuid.UUID]time.Time{}
	for _, p := range out {
		var at time.Time
		_ = f.db.Raw(`SELECT created_at FROM tickets WHERE id = ?`, p.TicketID).Row().Scan(&at)
		created[p.TicketID] = at
	}
	slices.SortStableFunc(out, func(a, b pipeline.TaskPayload) int { return created[a.TicketID].Compare(created[b.TicketID]) })
	return out
}

func TestBatchSameAsOneByOne(t *testing.T) {
	one := newFixture(t)
	batch := one.sibling()
	s1, s2 := buildScenario(one), buildScenario(batch)

	// one by one, in creation order
	for _, p := range createdOrder(one, s1.events) {
		_, err := one.handler.Process(context.Background(), p)
		require.NoError(t, err)
	}
	// one batch
	failed, err := batch.handler.ProcessBatch(context.Background(), s2.events)
	require.NoError(t, err)
	require.Empty(t, failed)

	want := snapshot(one, s1)
	got := snapshot(batch, s2)
	require.Equal(t, want, got)

	// and both follow the rules
	for _, s := range []scenario{s1, s2} {
		for id, l := range s.label {
			orig, ok := s.want[l]
			if !ok {
				continue
			}
			var d *uuid.UUID
			require.NoError(t, one.db.Raw(`SELECT is_duplicate_of FROM tickets WHERE id = ?`, id).Row().Scan(&d))
			if orig == "" {
				require.Nil(t, d, l)
			} else {
				require.NotNil(t, d, l)
				require.Equal(t, orig, s.label[*d], l)
			}
		}
	}
	require.Contains(t, got["audit"], "x-dup system ticket.duplicate_marked ticket x-dup {\"is_duplicate_of\": null} {\"reason\": \"message_id\", \"is_duplicate_of\": \"x-orig\", \"original_number\": 3}")

	// the same batch again (at-least-once): nothing more
	failed, err = batch.handler.ProcessBatch(context.Background(), s2.events)
	require.NoError(t, err)
	require.Empty(t, failed)
	require.Equal(t, got, snapshot(batch, s2))
}

func TestBatchOneEventFails(t *testing.T) {
	f := newFixture(t)
	orig := f.ticket(ticket{requester: f.alice, subject: "Printer broken", body: "It does not print.", age: time.Hour})
	var events []pipeline.TaskPayload
	var ids []uuid.UUID
	for i := range 4 {
		id := f.ticket(ticket{requester: f.alice, subject: "Printer broken", body: "It does not print.", age: time.Duration(4-i) * time.Minute})
		ids = append(ids, id)
		events = append(events, f.payload(id))
	}
	// the third cannot be linked (as a constraint or a trigger of a later
	// migration might refuse)
	require.NoError(t, f.db.Exec(`CREATE FUNCTION refuse_link() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN IF NEW.source_ticket_id = '`+ids[2].String()+`' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$`).Error)
	require.NoError(t, f.db.Exec(`CREATE TRIGGER refuse_link BEFORE INSERT ON ticket_relationships FOR EACH ROW EXECUTE FUNCTION refuse_link()`).Error)

	failed, err := f.handler.ProcessBatch(context.Background(), events)
	require.NoError(t, err)
	require.Len(t, failed, 1)
	require.ErrorContains(t, failed[2], "refused")
	for i, id := range ids {
		if i == 2 {
			require.Nil(t, f.duplicateOf(id))
			continue
		}
		require.Equal(t, &orig, f.duplicateOf(id), i)
	}
	require.EqualValues(t, 3, f.count(`SELECT count(*) FROM outbox WHERE event_type = ?`, pipeline.EventDuplicateMarked))
	// its retry, once the cause is gone, does it
	require.NoError(t, f.db.Exec(`DROP TRIGGER refuse_link ON ticket_relationships`).Error)
	res, err := f.handler.Process(context.Background(), events[2])
	require.NoError(t, err)
	require.Equal(t, &orig, res.DuplicateOf)
	require.EqualValues(t, 4, f.count(`SELECT count(*) FROM audit_log WHERE action = 'ticket.duplicate_marked'`))
}

func TestBatchDatabaseDown(t *testing.T) {
	// nothing listens on port 1
	sqlDB, err := sql.Open("pgx", "postgres://atumdesk@127.0.0.1:1/none?connect_timeout=2")
	require.NoError(t, err)
	t.Cleanup(func() { _ = sqlDB.Close() })
	db, err := gorm.Open(postgres.New(postgres.Config{Conn: sqlDB}), &gorm.Config{DisableAutomaticPing: true, Logger: logger.Discard})
	require.NoError(t, err)
	p := pipeline.TaskPayload{EventID: uuid.New(), OrgID: uuid.New(), TicketID: uuid.New()}
	failed, err := dedup.New(db, dedup.Config{}).ProcessBatch(context.Background(), []pipeline.TaskPayload{p, p})
	require.Error(t, err)
	require.Nil(t, failed)
}

func TestBatchWaitsForAgentsChange(t *testing.T) {
	f := newFixture(t)
	orig := f.ticket(ticket{requester: f.alice, subject: "Printer broken", body: "It does not print.", age: time.Hour})
	d1 := f.ticket(ticket{requester: f.alice, subject: "Printer broken", body: "It does not print.", age: 2 * time.Minute})
	d2 := f.ticket(ticket{requester: f.alice, subject: "Printer broken", body: "It does not print.", age: time.Minute})

	// an agent closes d2, not committed yet
	agent := f.db.Begin()
	require.NoError(t, agent.Exec(`UPDATE tickets SET status = 'closed' WHERE id = ?`, d2).Error)
	done := make(chan error, 1)
	go func() {
		failed, err := f.handler.ProcessBatch(context.Background(), []pipeline.TaskPayload{f.payload(d1), f.payload(d2)})
		if err == nil && len(failed) > 0 {
			err = fmt.Errorf("failed: %v", failed)
		}
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("the batch did not wait for the agent's change: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	require.NoError(t, agent.Commit().Error)
	require.NoError(t, <-done)

	require.Equal(t, &orig, f.duplicateOf(d1))
	require.Nil(t, f.duplicateOf(d2)) // closed meanwhile: left alone
	require.EqualValues(t, 0, f.count(`SELECT count(*) FROM outbox WHERE key = ?`, d2.String()))
}
