package notify_test

import (
	"context"
	"fmt"
	"maps"
	"net"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/atumdesk/atumdesk/internal/mailer"
	slacore "github.com/atumdesk/atumdesk/internal/sla"
	"github.com/atumdesk/atumdesk/internal/testenv"
	"github.com/atumdesk/atumdesk/pipeline"
	"github.com/atumdesk/atumdesk/workers"
	"github.com/atumdesk/atumdesk/workers/notify"
)

var _ workers.BatchProcessor = (*notify.Handler)(nil)

const ghostAddr = "nobody@example.test" // refused by the test Postfix (550)

// scenario writes the same tickets, comments and events into f's
// organisation each time and returns the events, in order: several of
// one ticket, suppressed acknowledgements of every kind, the rate limit
// reached within the batch, a reply, an internal note, a status mail, a
// CSAT invitation, an escalation, a refused recipient written to twice, a
// deleted ticket, and an event notify ignores.
func scenario(f *fx) []pipeline.TaskPayload {
	f.t.Helper()
	ghost := uuid.Must(uuid.NewV7())
	f.exec(`INSERT INTO users (id, org_id, email, name, role, is_active) VALUES (?, ?, ?, 'Nobody', 'customer_user', true)`, ghost, f.org, ghostAddr)
	t1 := f.ticket(ticketSpec{status: "in_progress"})
	t2 := f.ticket(ticketSpec{duplicateOf: &t1.id})
	t3 := f.ticket(ticketSpec{autoSubmitted: true})
	t4, t5, t6 := f.ticket(ticketSpec{}), f.ticket(ticketSpec{}), f.ticket(ticketSpec{})
	t7 := f.ticket(ticketSpec{status: "waiting_customer"})
	t8 := f.ticket(ticketSpec{status: "in_progress"})
	f.exec(`UPDATE tickets SET status = 'resolved', resolved_at = now() WHERE id = ?`, t8.id)
	t9 := f.ticket(ticketSpec{status: "assigned", assignedTo: &f.manager})
	tg := f.ticket(ticketSpec{status: "cancelled", requester: ghost})
	gone := f.ticket(ticketSpec{})
	reply := f.comment(t1, f.agent, "Please restart it.", "<p>Please <strong>restart</strong> it.</p>", false)
	note := f.comment(t1, f.agent, "Customer is difficult.", "", true)
	own := f.comment(t1, f.customer, "It still smokes.", "", false)

	ack := func(tk ticket) pipeline.TaskPayload {
		return f.emit(pipeline.EventDedupPassed, tk, nil, pipeline.AudienceStaff, nil)
	}
	comment := func(tk ticket, actor uuid.UUID, id uuid.UUID) pipeline.TaskPayload {
		return f.emit(pipeline.EventCommentAdded, tk, &actor, pipeline.AudiencePublic, map[string]any{"comment_id": id})
	}
	status := func(tk ticket, from, to string) pipeline.TaskPayload {
		return f.emit(pipeline.EventStatusChanged, tk, &f.agent, pipeline.AudiencePublic, map[string]any{"from": from, "to": to})
	}
	evs := []pipeline.TaskPayload{
		ack(t1), ack(t1), ack(t2), ack(t3), ack(t4), ack(t5), ack(t6),
		comment(t1, f.agent, reply), comment(t1, f.agent, note), comment(t1, f.customer, own),
		status(t7, "in_progress", "waiting_customer"), status(t8, "in_progress", "resolved"),
		f.emit(pipeline.EventSLABreached, t9, nil, pipeline.AudienceStaff, slacore.FiredData{Metric: "first_response", Percent: 100,
			Breach: true, DueAt: time.Date(2026, 11, 26, 15, 0, 0, 0, time.UTC), PolicyName: "Gold", Notify: []string{}}),
		ack(tg), status(tg, "new", "cancelled"),
		ack(gone),
		f.emit(pipeline.EventTicketCreated, t1, nil, pipeline.AudiencePublic, nil),
	}
	f.exec(`DELETE FROM tickets WHERE id = ?`, gone.id)
	return evs
}

// outcome is everything the scenario left behind in f's organisation, with
// events named by their index and Message-IDs by the event they belong
// to, so two organisations compare.
type outcome struct {
	Rows    []string
	Metrics map[string]float64
	Other   string
}

func (f *fx) outcome(evs []pipeline.TaskPayload) outcome {
	f.t.Helper()
	index := map[uuid.UUID]int{}
	for i, p := range evs {
		index[p.EventID] = i
	}
	var rows []struct {
		EventID                            uuid.UUID
		TicketID                           uuid.UUID
		Kind, Recipient, MessageID, Status string
		Reason                             *string
		Attempts                           int
		SentAt                             *time.Time
	}
	require.NoError(f.t, f.db.Raw(`SELECT event_id, ticket_id, kind, recipient, message_id, status, reason, attempts, sent_at
		FROM notifications WHERE org_id = ?`, f.org).Scan(&rows).Error)
	name := map[string]string{} // Message-ID → what it is
	for _, r := range rows {
		name[r.MessageID] = fmt.Sprintf("event %d", index[r.EventID])
	}
	var origs []struct {
		Number int64
		Mid    string
	}
	require.NoError(f.t, f.db.Raw(`SELECT number, trim(both '<>' from source_message_id) AS mid FROM tickets WHERE org_id = ?`, f.org).Scan(&origs).Error)
	for _, o := range origs {
		name[o.Mid] = fmt.Sprintf("ticket %d", o.Number)
	}
	var o outcome
	for _, r := range rows {
		reason := deref(r.Reason) // an SMTP reply names the Message-ID
		for mid, nm := range name {
			reason = strings.ReplaceAll(reason, mid, nm)
		}
		line := fmt.Sprintf("event %d: %s to %s: %s (%s), attempts %d, sent %v", index[r.EventID], r.Kind, r.Recipient,
			r.Status, reason, r.Attempts, r.SentAt != nil)
		if r.Status == notify.StatusSent {
			env := f.received(r.Recipient, r.MessageID)
			var thread []string
			for _, ref := range refs(env) {
				thread = append(thread, name[ref])
			}
			line += ", references " + strings.Join(thread, " < ")
		}
		o.Rows = append(o.Rows, line)
	}
	sort.Strings(o.Rows)
	o.Metrics = map[string]float64{}
	mfs, err := f.reg.Gather()
	require.NoError(f.t, err)
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetValue())
			}
			o.Metrics[mf.GetName()+"{"+strings.Join(labels, ",")+"}"] = m.GetCounter().GetValue()
		}
	}
	var other struct{ Bounced, Audits, Surveys, Invited int64 }
	require.NoError(f.t, f.db.Raw(`SELECT
		(SELECT count(*) FROM users WHERE org_id = ? AND email_bounced_at IS NOT NULL) AS bounced,
		(SELECT count(*) FROM audit_log WHERE org_id = ? AND action = 'user.email_bounced') AS audits,
		(SELECT count(*) FROM csat_surveys WHERE org_id = ?) AS surveys,
		(SELECT count(*) FROM outbox WHERE payload->>'org_id' = ?::text AND event_type = 'csat.invited') AS invited`,
		f.org, f.org, f.org, f.org).Scan(&other).Error)
	o.Other = fmt.Sprintf("%+v", other)
	return o
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// snapshot is every notifications row of f's organisation as it is.
func (f *fx) snapshot() []string {
	f.t.Helper()
	var rows []string
	require.NoError(f.t, f.db.Raw(`SELECT concat_ws('|', id, event_id, recipient, message_id, status, reason, attempts, created_at, sent_at)
		FROM notifications WHERE org_id = ? ORDER BY id`, f.org).Scan(&rows).Error)
	return rows
}

func TestBatchIsOneByOneAndRunsTwiceSafely(t *testing.T) {
	one, batch := newFx(t), newFx(t)
	limit3 := func(c *notify.Config) { c.AckLimit = 3 }
	ctx := context.Background()

	h := one.handler(limit3)
	evs := scenario(one)
	for _, p := range evs {
		_, err := h.Process(ctx, p)
		require.NoError(t, err)
	}
	want := one.outcome(evs)

	h = batch.handler(limit3)
	evs = scenario(batch)
	failed, err := h.ProcessBatch(ctx, evs)
	require.NoError(t, err)
	require.Empty(t, failed)
	got := batch.outcome(evs)
	require.Equal(t, want, got)
	// the scenario did what it says
	require.Contains(t, got.Rows, "event 7: agent_reply to "+customerAddr+": sent (), attempts 1, sent true, references ticket 1 < event 0",
		"the reply threads onto the acknowledgement sent before it in the same batch")
	require.Contains(t, got.Rows, "event 6: ticket_received to "+customerAddr+": suppressed (rate limited), attempts 0, sent false")
	require.Contains(t, got.Rows, "event 1: ticket_received to "+customerAddr+": suppressed (ticket already acknowledged), attempts 0, sent false")
	require.Contains(t, got.Rows, "event 14: status_changed to "+ghostAddr+": suppressed (address bounced), attempts 0, sent false")
	require.Len(t, got.Rows, 13)

	// again: nothing changes, nothing is sent twice
	before := batch.snapshot()
	failed, err = h.ProcessBatch(ctx, evs)
	require.NoError(t, err)
	require.Empty(t, failed)
	require.Equal(t, before, batch.snapshot())
	require.Equal(t, got.Metrics, batch.outcome(evs).Metrics)
	var sent []struct{ Recipient, MessageID string }
	require.NoError(t, batch.db.Raw(`SELECT recipient, message_id FROM notifications WHERE org_id = ? AND status = 'sent'`, batch.org).Scan(&sent).Error)
	require.Len(t, sent, 7)
	for _, s := range sent {
		require.Len(t, batch.copies(s.Recipient, s.MessageID), 1, s.MessageID)
	}
}

func TestBatchBadEventFailsAlone(t *testing.T) {
	f := newFx(t)
	ctx := context.Background()
	h := f.handler(func(c *notify.Config) { c.Mailer = nil })
	ack := func(tk ticket) pipeline.TaskPayload {
		return f.emit(pipeline.EventDedupPassed, tk, nil, pipeline.AudienceStaff, nil)
	}
	t1, t2, t3 := f.ticket(ticketSpec{}), f.ticket(ticketSpec{}), f.ticket(ticketSpec{})
	bad := ack(t2)
	bad.TicketID = t1.id // the task names another ticket than its event
	evs := []pipeline.TaskPayload{ack(t1), bad, ack(t3)}
	failed, err := h.ProcessBatch(ctx, evs)
	require.NoError(t, err)
	require.Len(t, failed, 1)
	require.ErrorIs(t, failed[1], asynq.SkipRetry)
	require.Equal(t, notify.ReasonSMTPOff, *f.one(evs[0].EventID).Reason)
	require.Empty(t, f.notifications(bad.EventID))
	require.Equal(t, notify.ReasonSMTPOff, *f.one(evs[2].EventID).Reason)

	// A row the database refuses fails the batch's one INSERT; the events
	// then run one by one, and only that one fails.
	poison := uuid.Must(uuid.NewV7())
	f.exec(`INSERT INTO users (id, org_id, email, name, role, is_active) VALUES (?, ?, 'poison@example.test', 'P', 'customer_user', true)`, poison, f.org)
	f.exec(`CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN IF NEW.recipient = 'poison@example.test' THEN RAISE EXCEPTION 'poisoned'; END IF; RETURN NEW; END $$`)
	f.exec(`CREATE TRIGGER poison BEFORE INSERT ON notifications FOR EACH ROW EXECUTE FUNCTION poison()`)
	evs = []pipeline.TaskPayload{ack(f.ticket(ticketSpec{})), ack(f.ticket(ticketSpec{requester: poison})), ack(f.ticket(ticketSpec{}))}
	failed, err = h.ProcessBatch(ctx, evs)
	require.NoError(t, err)
	require.Len(t, failed, 1)
	require.ErrorContains(t, failed[1], "poisoned")
	require.Equal(t, notify.StatusSuppressed, f.one(evs[0].EventID).Status)
	require.Empty(t, f.notifications(evs[1].EventID))
	require.Equal(t, notify.StatusSuppressed, f.one(evs[2].EventID).Status)
}

// crashing stands for a process that dies in the middle of a batch: it
// sends left messages, then cancels the run (as a shutdown would) before
// the next one reaches the server.
type crashing struct {
	notify.Sender
	left   atomic.Int32
	cancel context.CancelFunc
}

func (c *crashing) Send(ctx context.Context, msgs ...*mailer.Message) error {
	if c.left.Add(-1) < 0 {
		c.cancel()
		return ctx.Err()
	}
	return c.Sender.Send(ctx, msgs...)
}

func TestBatchDyingBetweenClaimAndSend(t *testing.T) {
	f := newFx(t)
	var evs []pipeline.TaskPayload
	for range 4 {
		tk := f.ticket(ticketSpec{})
		evs = append(evs, f.emit(pipeline.EventDedupPassed, tk, nil, pipeline.AudienceStaff, nil))
	}
	statuses := func() []string {
		var out []string
		for _, p := range evs {
			out = append(out, f.one(p.EventID).Status)
		}
		return out
	}

	// dies after two mails: the rest are claimed (pending) but not sent;
	// the batch fails as a whole and runs again
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	crash := &crashing{Sender: f.smtp, cancel: cancel}
	crash.left.Store(2)
	_, err := f.handler(func(c *notify.Config) { c.Mailer = crash }).ProcessBatch(ctx, evs)
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, []string{"sent", "sent", "pending", "pending"}, statuses())
	pendingID := f.one(evs[2].EventID).MessageID

	// the SMTP server is down when it runs again: the first mail fails,
	// the rest are not tried; each event is handed on (failed)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	down := l.Addr().String()
	require.NoError(t, l.Close())
	failed, err := f.handler(func(c *notify.Config) { c.Mailer = sender(t, down) }).ProcessBatch(context.Background(), evs)
	require.NoError(t, err)
	require.Equal(t, []int{2, 3}, slices.Sorted(maps.Keys(failed)))
	require.Equal(t, 1, f.one(evs[2].EventID).Attempts)
	require.Equal(t, 0, f.one(evs[3].EventID).Attempts, "not tried after the server failed")

	// the handed-on events run alone once it is back: each mail once, with
	// the Message-ID claimed before the crash
	h := f.handler(nil)
	for i := range failed {
		_, err := h.Process(context.Background(), evs[i])
		require.NoError(t, err)
	}
	require.Equal(t, []string{"sent", "sent", "sent", "sent"}, statuses())
	require.Equal(t, pendingID, f.one(evs[2].EventID).MessageID)
	failed, err = h.ProcessBatch(context.Background(), evs)
	require.NoError(t, err)
	require.Empty(t, failed)
	for _, p := range evs {
		n := f.one(p.EventID)
		f.received(customerAddr, n.MessageID)
		require.Len(t, f.copies(customerAddr, n.MessageID), 1)
	}
}

// --- round trips and time ---------------------------------------------------

// counter counts the statements sent to PostgreSQL, BEGIN and COMMIT
// included.
type counter struct{ n atomic.Int64 }

func (c *counter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.n.Add(1)
	return ctx
}
func (c *counter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// countedFx is a fixture whose database connections count statements.
func countedFx(t testing.TB) (*fx, *counter) {
	t.Helper()
	cfg, err := pgx.ParseConfig(testenv.DatabaseURL(t))
	require.NoError(t, err)
	c := &counter{}
	cfg.Tracer = c
	sqlDB := stdlib.OpenDB(*cfg)
	t.Cleanup(func() { _ = sqlDB.Close() })
	db, err := gorm.Open(postgres.New(postgres.Config{Conn: sqlDB}), &gorm.Config{Logger: logger.Discard, SkipDefaultTransaction: true})
	require.NoError(t, err)
	return newFxDB(t, db), c
}

// acks writes n new tickets and their dedup_passed events (a load test's
// intake), a few statements in all.
func (f *fx) acks(n int) []pipeline.TaskPayload {
	f.t.Helper()
	evs := make([]pipeline.Event, n)
	ps := make([]pipeline.TaskPayload, n)
	for i := range evs {
		f.number++
		id := uuid.Must(uuid.NewV7())
		f.exec(`INSERT INTO tickets (id, org_id, number, subject, description, status, priority, requester_id, channel)
			VALUES (?, ?, ?, 'Load', 'x', 'new', 'high', ?, 'email')`, id, f.org, f.number, f.customer)
		ev, err := pipeline.NewEvent(pipeline.EventDedupPassed, pipeline.TicketRef{OrgID: f.org, TicketID: id, RequesterID: f.customer},
			nil, pipeline.AudienceStaff, map[string]any{"number": f.number})
		require.NoError(f.t, err)
		evs[i], ps[i] = ev, pipeline.PayloadOf(ev)
	}
	require.NoError(f.t, pipeline.EmitEvents(context.Background(), f.db, evs...))
	return ps
}

// TestBatchRoundTrips: a batch of 64 costs a few statements, not 64 × a
// few; printed with -v.
func TestBatchRoundTrips(t *testing.T) {
	f, c := countedFx(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		mod  func(*notify.Config)
		n    int
	}{
		{"no mailer (load test)", func(c *notify.Config) { c.Mailer = nil }, 64},
		{"mailer, sent", func(c *notify.Config) { c.AckLimit = 1000 }, 8},
	} {
		h := f.handler(tc.mod)
		ps := f.acks(tc.n)
		c.n.Store(0)
		for _, p := range ps {
			_, err := h.Process(ctx, p)
			require.NoError(t, err)
		}
		oneByOne := c.n.Load()

		ps = f.acks(tc.n)
		c.n.Store(0)
		failed, err := h.ProcessBatch(ctx, ps)
		require.NoError(t, err)
		require.Empty(t, failed)
		batched := c.n.Load()
		t.Logf("%s: %d events: one by one %d statements (%.2f per event), batch %d (%.2f per event)",
			tc.name, tc.n, oneByOne, float64(oneByOne)/float64(tc.n), batched, float64(batched)/float64(tc.n))
		if tc.n == 64 {
			require.LessOrEqual(t, batched, int64(6), "a batch without mail is a handful of statements")
		}
	}
}

// BenchmarkProcessBatch: 64 acknowledgements without a mailer (the load
// test's case), as one batch and one by one; ms/event is the handler's
// time per event.
func BenchmarkProcessBatch(b *testing.B) {
	f, c := countedFx(b)
	h := f.handler(func(c *notify.Config) { c.Mailer = nil })
	ctx := context.Background()
	const n = 64
	for _, mode := range []string{"batch", "one_by_one"} {
		b.Run(mode, func(b *testing.B) {
			var stmts int64
			var spent time.Duration
			for range b.N {
				b.StopTimer()
				ps := f.acks(n)
				c.n.Store(0)
				start := time.Now()
				b.StartTimer()
				if mode == "batch" {
					failed, err := h.ProcessBatch(ctx, ps)
					if err != nil || len(failed) > 0 {
						b.Fatal(err, failed)
					}
				} else {
					for _, p := range ps {
						if _, err := h.Process(ctx, p); err != nil {
							b.Fatal(err)
						}
					}
				}
				b.StopTimer()
				spent += time.Since(start)
				stmts += c.n.Load()
				b.StartTimer()
			}
			b.ReportMetric(float64(spent.Microseconds())/1000/float64(b.N*n), "ms/event")
			b.ReportMetric(float64(stmts)/float64(b.N*n), "stmts/event")
		})
	}
}
