package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/internal/database"
	"github.com/atumdesk/atumdesk/internal/testenv"
)

// fixture is an organisation with a signed-in customer, a service with a
// default priority and a custom field.
type fixture struct {
	org, user, service, field uuid.UUID
}

func newFixture(t testing.TB, db *gorm.DB, slug string) fixture {
	t.Helper()
	f := fixture{org: uuid.Must(uuid.NewV7()), user: uuid.Must(uuid.NewV7()), service: uuid.Must(uuid.NewV7()), field: uuid.Must(uuid.NewV7())}
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO organizations (id, slug, name) VALUES (?, ?, ?)`, []any{f.org, slug, "Org " + slug}},
		{`INSERT INTO users (id, org_id, email, name, role) VALUES (?, ?, ?, 'Known', 'customer_user')`, []any{f.user, f.org, "known@" + slug + ".test"}},
		{`INSERT INTO services (id, org_id, name, default_priority) VALUES (?, ?, 'Network', 'high')`, []any{f.service, f.org}},
		{`INSERT INTO custom_fields (id, org_id, key, label, field_type) VALUES (?, ?, 'asset', 'Asset', 'text')`, []any{f.field, f.org}},
	} {
		require.NoError(t, db.Exec(q.sql, q.args...).Error)
	}
	return f
}

// intake is a web-form style submission by e-mail address.
func (f fixture) intake(i int, email string) Intake {
	sum := sha256.Sum256([]byte(fmt.Sprint(f.org, i)))
	return Intake{
		Version: IntakeVersion, TicketID: uuid.Must(uuid.NewV7()), OrgID: f.org, Channel: ChannelForm,
		Requester: Requester{Email: email, Name: "Customer " + email},
		Subject:   fmt.Sprintf("Printer %d is on fire", i), Text: "Please help.",
		IdempotencyKey: fmt.Sprintf("key-%d", i), IdempotencyScope: "email:" + strings.ToLower(email),
		RequestHash: hex.EncodeToString(sum[:]), ReceivedAt: time.Now().UTC(),
		ClientIP: "192.0.2.1", UserAgent: "test", RequestID: fmt.Sprintf("req-%d", i),
	}
}

func messages(t testing.TB, ins ...Intake) []kafka.Message {
	t.Helper()
	out := make([]kafka.Message, len(ins))
	for i, in := range ins {
		v, err := json.Marshal(in)
		require.NoError(t, err)
		out[i] = kafka.Message{Topic: TopicInbound, Key: []byte(in.TicketID.String()), Value: v, Offset: int64(i)}
	}
	return out
}

func newTestPersister(t testing.TB, db *gorm.DB) (*Persister, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	p, err := NewPersister(db, testLogger(), reg)
	require.NoError(t, err)
	return p, reg
}

func count(t testing.TB, db *gorm.DB, q string, args ...any) int64 {
	t.Helper()
	var n int64
	require.NoError(t, db.Raw(q, args...).Scan(&n).Error)
	return n
}

func TestPersisterBatch(t *testing.T) {
	t.Parallel()
	db, _ := testenv.DB(t)
	a, b := newFixture(t, db, "alpha"), newFixture(t, db, "beta")
	// An unclaimed upload of a's known customer.
	att := uuid.Must(uuid.NewV7())
	require.NoError(t, db.Exec(`INSERT INTO attachments (id, org_id, uploaded_by, filename, mime_type, size_bytes, sha256, storage_key)
		VALUES (?, ?, ?, 'a.png', 'image/png', 1, ?, ?)`, att, a.org, a.user, make([]byte, 32), att.String()).Error)

	var ins []Intake
	emails := map[uuid.UUID]map[string]bool{a.org: {}, b.org: {}}
	for i := range 200 {
		f := a
		if i%5 >= 3 { // 80 for b, 120 for a
			f = b
		}
		// Ten addresses per org, in varying case: each becomes one user.
		email := fmt.Sprintf("Person%d@Example.test", i%10)
		if i%2 == 0 {
			email = strings.ToLower(email)
		}
		in := f.intake(i, email)
		if i > 0 {
			emails[f.org][strings.ToLower(email)] = true
		}
		switch i {
		case 0: // signed in, service default priority, custom field, attachment
			in.Channel, in.Requester = ChannelAPI, Requester{UserID: &a.user, Email: "known@alpha.test"}
			in.IdempotencyScope = a.user.String()
			in.ServiceID = &a.service
			in.CustomFields = map[string]json.RawMessage{"asset": json.RawMessage(`"PRN-7"`), "gone": json.RawMessage(`1`)}
			in.AttachmentIDs = []uuid.UUID{att}
		case 1:
			in.Priority = "critical"
		}
		ins = append(ins, in)
	}
	p, _ := newTestPersister(t, db)
	ctx := context.Background()
	batch := messages(t, ins...)
	require.NoError(t, p.Handle(ctx, batch))

	require.EqualValues(t, 200, count(t, db, `SELECT count(*) FROM tickets`))
	for _, f := range []struct {
		org uuid.UUID
		n   int64
	}{{a.org, 120}, {b.org, 80}} {
		var nums []int64
		require.NoError(t, db.Raw(`SELECT number FROM tickets WHERE org_id = ? ORDER BY number`, f.org).Scan(&nums).Error)
		require.Len(t, nums, int(f.n))
		for i, n := range nums {
			require.EqualValues(t, i+1, n, "numbers 1..n without gaps")
		}
		require.EqualValues(t, f.n, count(t, db, `SELECT last_number FROM ticket_counters WHERE org_id = ?`, f.org))
		// The known customer plus one user per address.
		require.EqualValues(t, 1+len(emails[f.org]), count(t, db, `SELECT count(*) FROM users WHERE org_id = ?`, f.org))
	}
	require.EqualValues(t, 0, count(t, db, `SELECT count(*) FROM users WHERE password_hash IS NOT NULL OR role <> 'customer_user'`))
	require.EqualValues(t, 200, count(t, db, `SELECT count(*) FROM audit_log WHERE action = 'ticket.created' AND entity_id = ticket_id`))
	// only the submission that chose a priority is recorded as a human's choice (triage never overrides it)
	require.EqualValues(t, 1, count(t, db, `SELECT count(*) FROM audit_log WHERE action = 'ticket.created' AND (after->>'priority_explicit')::boolean`))
	require.EqualValues(t, 200, count(t, db, `SELECT count(*) FROM outbox WHERE event_type = ? AND published_at IS NULL`, EventTicketCreated))
	require.EqualValues(t, 200, count(t, db, `SELECT count(*) FROM idempotency_keys`))
	require.EqualValues(t, 200, count(t, db, `SELECT count(*) FROM tickets WHERE status = 'new'`))
	require.EqualValues(t, 199, count(t, db, `SELECT count(*) FROM tickets t JOIN users u ON u.id = t.requester_id AND u.org_id = t.org_id
		WHERE u.email LIKE 'person%@example.test' AND u.name LIKE 'Customer %'`), "requesters by e-mail, stored lower-case")

	var t0 struct {
		Priority       string
		ServiceID      *uuid.UUID
		RequesterID    uuid.UUID
		Channel        string
		IdempotencyKey string
		Number         int64
	}
	require.NoError(t, db.Raw(`SELECT priority, service_id, requester_id, channel, idempotency_key, number FROM tickets WHERE id = ?`, ins[0].TicketID).Scan(&t0).Error)
	require.Equal(t, "high", t0.Priority, "service default priority")
	require.Equal(t, a.service, *t0.ServiceID)
	require.Equal(t, a.user, t0.RequesterID)
	require.Equal(t, a.user.String()+":key-0", t0.IdempotencyKey, "scoped key")
	require.Equal(t, "critical", func() string {
		var s string
		require.NoError(t, db.Raw(`SELECT priority FROM tickets WHERE id = ?`, ins[1].TicketID).Scan(&s).Error)
		return s
	}())
	require.EqualValues(t, 198, count(t, db, `SELECT count(*) FROM tickets WHERE priority = 'medium'`))
	require.EqualValues(t, 1, count(t, db, `SELECT count(*) FROM custom_field_values WHERE ticket_id = ? AND field_id = ? AND value = '"PRN-7"'`, ins[0].TicketID, a.field))
	require.EqualValues(t, 1, count(t, db, `SELECT count(*) FROM custom_field_values`), "unknown key dropped")
	require.EqualValues(t, 1, count(t, db, `SELECT count(*) FROM attachments WHERE id = ? AND ticket_id = ?`, att, ins[0].TicketID))

	// The audit row and the event of ticket 0.
	var au struct {
		ActorKind, IP, UserAgent, RequestID string
		UserID                              *uuid.UUID
	}
	require.NoError(t, db.Raw(`SELECT actor_kind, ip, user_agent, request_id, user_id FROM audit_log WHERE ticket_id = ?`, ins[0].TicketID).Scan(&au).Error)
	require.Equal(t, "user", au.ActorKind)
	require.Equal(t, a.user, *au.UserID)
	require.Equal(t, "192.0.2.1", au.IP)
	require.Equal(t, "req-0", au.RequestID)
	require.EqualValues(t, 199, count(t, db, `SELECT count(*) FROM audit_log WHERE actor_kind = 'system' AND user_id IS NULL`))

	var payload string
	require.NoError(t, db.Raw(`SELECT payload::text FROM outbox WHERE key = ?`, ins[0].TicketID.String()).Scan(&payload).Error)
	var ev Event
	require.NoError(t, json.Unmarshal([]byte(payload), &ev))
	require.Equal(t, EventTicketCreated, ev.Type)
	require.Equal(t, AudiencePublic, ev.Audience)
	require.Equal(t, a.user, ev.RequesterID)
	var data TicketCreatedData
	require.NoError(t, json.Unmarshal(ev.Data, &data))
	require.Equal(t, TicketCreatedData{ID: ins[0].TicketID, Number: t0.Number, Subject: ins[0].Subject, Status: "new", Priority: "high",
		Channel: ChannelAPI, ServiceID: &a.service, RequesterID: a.user, CreatedAt: data.CreatedAt}, data)
	require.WithinDuration(t, ins[0].ReceivedAt, data.CreatedAt, time.Microsecond)

	require.Equal(t, 200.0, metricValue(p.m.persisted))

	// The whole batch again, and again shuffled into new batches: nothing new.
	require.NoError(t, p.Handle(ctx, batch))
	require.NoError(t, p.Handle(ctx, append(batch[150:], batch[:10]...)))
	require.EqualValues(t, 200, count(t, db, `SELECT count(*) FROM tickets`))
	require.EqualValues(t, 200, count(t, db, `SELECT count(*) FROM outbox`))
	require.EqualValues(t, 200, count(t, db, `SELECT count(*) FROM audit_log`))
	require.EqualValues(t, 120, count(t, db, `SELECT last_number FROM ticket_counters WHERE org_id = ?`, a.org))
	require.Equal(t, 200.0, metricValue(p.m.persisted))
	require.Equal(t, 260.0, metricValue(p.m.duplicates.WithLabelValues(dupTicketID)))

	// After the idempotency keys expired, a replay still creates nothing.
	require.NoError(t, db.Exec(`DELETE FROM idempotency_keys`).Error)
	require.NoError(t, p.Handle(ctx, batch))
	require.EqualValues(t, 200, count(t, db, `SELECT count(*) FROM tickets`))
	require.EqualValues(t, 120, count(t, db, `SELECT last_number FROM ticket_counters WHERE org_id = ?`, a.org))
}

func TestPersisterIdempotencyKeyAndMessageID(t *testing.T) {
	t.Parallel()
	db, _ := testenv.DB(t)
	f := newFixture(t, db, "gamma")
	p, _ := newTestPersister(t, db)
	ctx := context.Background()

	// The same key twice (a retry after a failed produce gets a new ticket
	// id), within one batch and across batches.
	first := f.intake(1, "a@x.test")
	retry := first
	retry.TicketID = uuid.Must(uuid.NewV7())
	later := first
	later.TicketID = uuid.Must(uuid.NewV7())
	// The same key from another submitter is another ticket.
	other := f.intake(1, "b@x.test")
	require.Equal(t, first.IdempotencyKey, other.IdempotencyKey)

	// E-mail: the same Message-ID fetched twice, with different keys.
	mail1 := f.intake(2, "c@x.test")
	mail1.Channel, mail1.MessageID, mail1.IdempotencyKey = ChannelEmail, "<m1@mail.test>", "imap:1"
	mail2 := f.intake(3, "c@x.test")
	mail2.Channel, mail2.MessageID, mail2.IdempotencyKey = ChannelEmail, "<m1@mail.test>", "imap:2"
	mail3 := f.intake(4, "c@x.test")
	mail3.Channel, mail3.MessageID, mail3.IdempotencyKey = ChannelEmail, "<m1@mail.test>", "imap:3"

	require.NoError(t, p.Handle(ctx, messages(t, first, retry, other, mail1, mail2)))
	require.NoError(t, p.Handle(ctx, messages(t, later, mail3)))

	var got []uuid.UUID
	require.NoError(t, db.Raw(`SELECT id FROM tickets ORDER BY number`).Scan(&got).Error)
	require.Equal(t, []uuid.UUID{first.TicketID, other.TicketID, mail1.TicketID}, got)
	require.EqualValues(t, 3, count(t, db, `SELECT last_number FROM ticket_counters WHERE org_id = ?`, f.org), "no number gaps")
	require.Equal(t, "<m1@mail.test>", func() string {
		var s string
		require.NoError(t, db.Raw(`SELECT source_message_id FROM tickets WHERE id = ?`, mail1.TicketID).Scan(&s).Error)
		return s
	}())
	var stored struct {
		TicketID    uuid.UUID
		RequestHash []byte
	}
	require.NoError(t, db.Raw(`SELECT ticket_id, request_hash FROM idempotency_keys WHERE org_id = ? AND scope = ? AND key = ?`,
		f.org, first.IdempotencyScope, first.IdempotencyKey).Scan(&stored).Error)
	require.Equal(t, first.TicketID, stored.TicketID)
	require.Equal(t, first.RequestHash, hex.EncodeToString(stored.RequestHash), "ingest compares the hex hash")
	require.Equal(t, 2.0, metricValue(p.m.duplicates.WithLabelValues(dupIdempotency)))
	require.Equal(t, 2.0, metricValue(p.m.duplicates.WithLabelValues(dupMessageID)))
}

func TestPersisterSkipsBadMessages(t *testing.T) {
	t.Parallel()
	db, _ := testenv.DB(t)
	f := newFixture(t, db, "delta")
	p, _ := newTestPersister(t, db)

	good1, good2 := f.intake(1, "a@x.test"), f.intake(2, "b@x.test")
	badVersion := f.intake(3, "c@x.test")
	badVersion.Version = 99
	unknownOrg := f.intake(4, "d@x.test")
	unknownOrg.OrgID = uuid.Must(uuid.NewV7())
	stranger := uuid.Must(uuid.NewV7())
	unknownUser := f.intake(5, "e@x.test")
	unknownUser.Requester.UserID = &stranger
	longSubject := f.intake(6, "f@x.test")
	longSubject.Subject = strings.Repeat("é", 1001)
	badEmail := f.intake(7, "not an address")
	// JSON that jsonb refuses is cleaned, not rejected.
	oddValue := f.intake(8, "g@x.test")
	oddValue.CustomFields = map[string]json.RawMessage{"asset": json.RawMessage(`"a\u0000b\ud800"`), "gone\u0000": json.RawMessage(`1`)}
	// Something no check here foresees fails the batch in the database:
	// the persister isolates the message and stores the others.
	require.NoError(t, db.Exec(`ALTER TABLE tickets ADD CONSTRAINT test_unforeseen CHECK (subject <> 'poison')`).Error)
	poison := f.intake(9, "h@x.test")
	poison.Subject = "poison"

	batch := messages(t, good1, badVersion, unknownOrg, unknownUser, longSubject, badEmail, poison, oddValue, good2)
	batch = append(batch[:1], append([]kafka.Message{{Value: []byte("{not json")}}, batch[1:]...)...)
	require.NoError(t, p.Handle(context.Background(), batch))

	var got []uuid.UUID
	require.NoError(t, db.Raw(`SELECT id FROM tickets ORDER BY number`).Scan(&got).Error)
	require.Equal(t, []uuid.UUID{good1.TicketID, oddValue.TicketID, good2.TicketID}, got)
	require.EqualValues(t, 1, count(t, db, `SELECT count(*) FROM custom_field_values WHERE value = '"ab\uFFFD"'`))
	for reason, n := range map[string]float64{RejectMalformed: 1, RejectVersion: 1, RejectUnknownOrg: 1, RejectUnknownUser: 1,
		RejectInvalid: 2, RejectDatabase: 1} {
		require.Equal(t, n, metricValue(p.m.rejected.WithLabelValues(reason)), reason)
	}
	require.EqualValues(t, 3, count(t, db, `SELECT last_number FROM ticket_counters WHERE org_id = ?`, f.org))
}

// tcpProxy forwards to PostgreSQL and can be cut and restored, which is
// what the persister sees when the database goes away and comes back.
type tcpProxy struct {
	t      testing.TB
	target string
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]bool
}

func startProxy(t testing.TB, target string) *tcpProxy {
	p := &tcpProxy{t: t, target: target, addr: "127.0.0.1:0", conns: map[net.Conn]bool{}}
	p.up()
	t.Cleanup(p.down)
	return p
}

func (p *tcpProxy) up() {
	p.mu.Lock()
	defer p.mu.Unlock()
	ln, err := net.Listen("tcp", p.addr)
	require.NoError(p.t, err)
	p.ln, p.addr = ln, ln.Addr().String()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.forward(c)
		}
	}()
}

func (p *tcpProxy) forward(c net.Conn) {
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[c], p.conns[s] = true, true
	p.mu.Unlock()
	go func() { _, _ = io.Copy(s, c); s.Close() }()
	_, _ = io.Copy(c, s)
	c.Close()
}

// down refuses new connections and resets the open ones.
func (p *tcpProxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

// proxiedDB opens a fresh migrated database through a proxy.
func proxiedDB(t testing.TB) (*gorm.DB, *gorm.DB, *tcpProxy) {
	t.Helper()
	raw := testenv.DatabaseURL(t)
	u, err := url.Parse(raw)
	require.NoError(t, err)
	proxy := startProxy(t, u.Host)
	u.Host = proxy.addr
	via, viaSQL, err := database.Open(context.Background(), u.String(), 4)
	require.NoError(t, err)
	t.Cleanup(func() { viaSQL.Close() })
	direct, directSQL, err := database.Open(context.Background(), raw, 4)
	require.NoError(t, err)
	t.Cleanup(func() { directSQL.Close() })
	return via, direct, proxy
}

func TestPersisterDatabaseDown(t *testing.T) {
	t.Parallel()
	via, direct, proxy := proxiedDB(t)
	f := newFixture(t, direct, "epsilon")
	p, _ := newTestPersister(t, via)
	ctx := context.Background()
	require.NoError(t, p.Handle(ctx, messages(t, f.intake(0, "a@x.test")))) // pool warm

	batch := messages(t, f.intake(1, "a@x.test"), f.intake(2, "b@x.test"))
	proxy.down()
	require.Error(t, p.Handle(ctx, batch))
	require.Error(t, p.Handle(ctx, batch))
	proxy.up()
	require.NoError(t, p.Handle(ctx, batch))
	require.EqualValues(t, 3, count(t, direct, `SELECT count(*) FROM tickets`))
	require.EqualValues(t, 3, count(t, direct, `SELECT last_number FROM ticket_counters WHERE org_id = ?`, f.org))
}

// BenchmarkPersister measures Handle on batches like those Consume hands
// over: two organisations, requesters by e-mail from a pool of 2,000 known
// addresses plus one new address per 50 tickets.
func BenchmarkPersister(b *testing.B) {
	for _, size := range []int{100, 500} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			db, _ := testenv.DB(b)
			fs := []fixture{newFixture(b, db, "bench-a"), newFixture(b, db, "bench-b")}
			p, _ := newTestPersister(b, db)
			ctx := context.Background()
			batch := func(first, n int) []kafka.Message {
				ins := make([]Intake, n)
				for j := range ins {
					k := first + j
					email := fmt.Sprintf("user%d@bench.test", k%2000)
					if k%50 == 49 {
						email = fmt.Sprintf("new%d@bench.test", k)
					}
					ins[j] = fs[k%2].intake(k, email)
				}
				return messages(b, ins...)
			}
			// Known customers and analysed tables, as in production: on a
			// never-analysed users table the foreign-key checks' cached
			// plans scan it sequentially.
			if err := p.Handle(ctx, batch(1<<30, 2000)); err != nil {
				b.Fatal(err)
			}
			require.NoError(b, db.Exec(`ANALYZE`).Error)
			var batches [][]kafka.Message
			for i := range b.N {
				batches = append(batches, batch(i*size, size))
			}
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				if err := p.Handle(ctx, batches[i]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*size)/time.Since(start).Seconds(), "tickets/s")
			b.StopTimer()
			if n := count(b, db, `SELECT count(*) FROM tickets`); n != int64(b.N*size+2000) {
				b.Fatalf("%d tickets, want %d", n, b.N*size+2000)
			}
		})
	}
}

// BenchmarkPersisterFromTopic drains intakes already on TopicInbound with
// RunPersister (one pipeline process, batches of up to 500) and reports
// tickets/s from the first fetch to the last commit.
func BenchmarkPersisterFromTopic(b *testing.B) {
	db, _ := testenv.DB(b)
	fs := []fixture{newFixture(b, db, "drain-a"), newFixture(b, db, "drain-b")}
	cluster, _ := newCluster(b)
	brokers := cluster.Addrs()
	prod := newProducer(b, brokers)
	p, _ := newTestPersister(b, db)
	produce := func(first, n int) {
		msgs := make([]Message, 0, n)
		for k := first; k < first+n; k++ {
			in := fs[k%2].intake(k, fmt.Sprintf("user%d@bench.test", k%2000))
			v, err := json.Marshal(in)
			require.NoError(b, err)
			msgs = append(msgs, Message{Topic: TopicInbound, Key: []byte(in.TicketID.String()), Value: v,
				Headers: map[string]string{HeaderMessageID: in.TicketID.String()}})
		}
		for len(msgs) > 0 {
			n := min(len(msgs), 1000)
			require.NoError(b, prod.Publish(context.Background(), msgs[:n]...))
			msgs = msgs[n:]
		}
	}
	produce(1<<30, 2000) // known customers; also lets the group join
	stop := runConsumer(b, ConsumerConfig{Brokers: brokers, GroupID: PersisterGroupID, Topic: TopicInbound, LagInterval: -1,
		Logger: testLogger()}, p.Handle)
	defer stop()
	waitFor(b, "warm-up", 60*time.Second, func() bool { return count(b, db, `SELECT count(*) FROM tickets`) == 2000 })
	require.NoError(b, db.Exec(`ANALYZE`).Error)

	n := b.N * 500
	produce(0, n)
	b.ResetTimer()
	start := time.Now()
	waitFor(b, "drained", 10*time.Minute, func() bool { return count(b, db, `SELECT count(*) FROM tickets`) == int64(2000+n) })
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "tickets/s")
}
