package dedup_test

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
	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

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
	f := &fixture{t: t, db: db, org: uuid.Must(uuid.NewV7()), alice: uuid.Must(uuid.NewV7()), bob: uuid.Must(uuid.NewV7())}
	require.NoError(t, db.Exec(`INSERT INTO organizations (id, slug, name) VALUES (?, ?, 'Dedup Org')`, f.org, "dedup-"+f.org.String()[:8]).Error)
	for _, u := range []uuid.UUID{f.alice, f.bob} {
		require.NoError(t, db.Exec(`INSERT INTO users (id, org_id, email, name, role, is_active) VALUES (?, ?, ?, 'U', 'customer_user', true)`,
			u, f.org, u.String()+"@example.test").Error)
	}
	f.handler = dedup.New(db, dedup.Config{Window: 24 * time.Hour})
	return f
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

// BenchmarkProcess: 20,000 open tickets of the last day, from one
// requester (a load generator's pattern) or from 200; each op stores a new
// unique ticket of one of them and runs the stage on it.
func BenchmarkProcess(b *testing.B) {
	for _, requesters := range []int{1, 200} {
		b.Run(fmt.Sprintf("requesters=%d", requesters), func(b *testing.B) {
			f := newFixture(b)
			users := make([]uuid.UUID, requesters)
			for i := range users {
				users[i] = uuid.Must(uuid.NewV7())
				require.NoError(b, f.db.Exec(`INSERT INTO users (id, org_id, email, name, role, is_active) VALUES (?, ?, ?, 'U', 'customer_user', true)`,
					users[i], f.org, users[i].String()+"@example.test").Error)
			}
			require.NoError(b, f.db.Exec(`INSERT INTO tickets (org_id, number, subject, description, requester_id, channel, created_at)
				SELECT ?, n, 'Load test ticket ' || n, 'Body of load test ticket ' || n, (?::uuid[])[1 + n % ?], 'api',
					now() - interval '1 hour' + n * interval '1 ms'
				FROM generate_series(1, 20000) AS n`, f.org, pqArray(users), requesters).Error)
			require.NoError(b, f.db.Exec(`ANALYZE tickets`).Error)
			f.number = 20000
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
