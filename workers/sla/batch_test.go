package sla_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	slacore "github.com/atumdesk/atumdesk/internal/sla"
	"github.com/atumdesk/atumdesk/models"
	"github.com/atumdesk/atumdesk/pipeline"
	"github.com/atumdesk/atumdesk/workers/sla"
)

// createdEvent is the ticket.created task payload for ticket id.
func (f *fixture) createdEvent(id uuid.UUID) pipeline.TaskPayload {
	return pipeline.TaskPayload{EventID: uuid.Must(uuid.NewV7()), EventType: pipeline.EventTicketCreated,
		OrgID: f.org, TicketID: id, RequesterID: f.customer}
}

// change sets columns of ticket id and syncs its clock at now for reason,
// as the ticket service does, returning the ticket.sla_changed event's task
// payload.
func (f *fixture) change(id uuid.UUID, now time.Time, reason slacore.Reason, set string, args ...any) pipeline.TaskPayload {
	f.t.Helper()
	var evs []pipeline.Event
	require.NoError(f.t, f.db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(`UPDATE tickets SET `+set+` WHERE id = ?`, append(args, id)...).Error; err != nil {
			return err
		}
		var err error
		if evs, err = slacore.Sync(f.ctx, tx, f.org, id, now, reason); err != nil {
			return err
		}
		return pipeline.EmitEvents(f.ctx, tx, evs...)
	}))
	require.Len(f.t, evs, 1)
	return pipeline.PayloadOf(evs[0])
}

// scenario makes, at times fixed by base, the tickets of each role and the
// events a batch of the stage carries for them, in topic order:
//
//   - fast: a ticket.created whose clock starts at creation (timers at 50
//     and 100 % of both clocks);
//   - standard: one whose policy starts at acceptance (nothing to do);
//   - gone: one whose ticket does not exist;
//   - paused: a started clock paused and resumed (two sla_changed events
//     moving the resolution due time), after a repeated ticket.created;
//   - met: a first response (sla_changed meeting the clock: a metric).
func (f *fixture) scenario(base time.Time) ([]pipeline.TaskPayload, map[string]uuid.UUID) {
	f.t.Helper()
	roles := map[string]uuid.UUID{"fast": f.ticket(base), "gone": models.NewID(), "paused": f.ticket(base), "met": f.ticket(base)}
	roles["standard"] = models.NewID()
	require.NoError(f.t, f.db.Exec(`INSERT INTO tickets (id, org_id, number, subject, requester_id, channel, created_at)
		VALUES (?, ?, next_ticket_number(?), 'standard', ?, 'web', ?)`, roles["standard"], f.org, f.org, f.customer, base).Error)
	for _, r := range []string{"paused", "met"} {
		_, err := slacore.Start(f.ctx, f.db, f.org, roles[r], base)
		require.NoError(f.t, err)
	}
	pause := f.change(roles["paused"], base.Add(2*time.Minute), slacore.ReasonStatus, "status = ?", models.StatusWaitingCustomer)
	resume := f.change(roles["paused"], base.Add(3*time.Minute), slacore.ReasonStatus, "status = ?", models.StatusInProgress)
	met := f.change(roles["met"], base.Add(30*time.Second), slacore.ReasonFirstResponse, "first_responded_at = ?", base.Add(30*time.Second))
	return []pipeline.TaskPayload{f.createdEvent(roles["fast"]), f.createdEvent(roles["standard"]), f.createdEvent(roles["gone"]),
		f.createdEvent(roles["paused"]), pause, resume, met}, roles
}

// snapshot is what the stage leaves of the roles' tickets: the clock
// columns, the events' data in outbox order, the timers in Redis and the
// inbox rows, keyed by role (ticket ids apart, two runs of a scenario at
// the same base leave the same).
func (f *fixture) snapshot(roles map[string]uuid.UUID) map[string][]string {
	f.t.Helper()
	insp := asynq.NewInspector(f.redis)
	defer insp.Close()
	var tasks []*asynq.TaskInfo
	for _, list := range []func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){insp.ListPendingTasks, insp.ListScheduledTasks} {
		ts, err := list(pipeline.QueueSLA, asynq.PageSize(10_000))
		if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
			require.NoError(f.t, err)
		}
		tasks = append(tasks, ts...)
	}
	out := map[string][]string{}
	for role, id := range roles {
		var row []string
		var cols struct {
			Cols string
		}
		require.NoError(f.t, f.db.Raw(`SELECT concat_ws('|', sla_policy_id, sla_started_at, first_response_due_at, resolution_due_at,
			sla_paused_at, sla_paused_intervals::text, first_response_breached, resolution_breached) AS cols FROM tickets WHERE id = ?`, id).
			Scan(&cols).Error)
		row = append(row, "row "+cols.Cols)
		var evs []struct{ EventType, Data string }
		require.NoError(f.t, f.db.Raw(`SELECT event_type, (payload->'data')::text AS data FROM outbox WHERE key = ? ORDER BY id`, id.String()).
			Scan(&evs).Error)
		for _, e := range evs {
			row = append(row, "event "+e.EventType+" "+e.Data)
		}
		var inbox int64
		require.NoError(f.t, f.db.Raw(`SELECT count(*) FROM processed_events p JOIN outbox o ON o.event_id = p.event_id
			WHERE p.consumer = ? AND o.key = ?`, sla.Consumer, id.String()).Scan(&inbox).Error)
		row = append(row, fmt.Sprintf("inbox %d", inbox))
		var timers []string
		for _, tk := range tasks {
			var p struct{ Timer slacore.Timer }
			require.NoError(f.t, json.Unmarshal(tk.Payload, &p))
			if p.Timer.TicketID == id {
				timers = append(timers, fmt.Sprintf("timer %s %d %s %s %s", p.Timer.Metric, p.Timer.Percent,
					p.Timer.DueAt.UTC().Format(time.RFC3339Nano), p.Timer.At.UTC().Format(time.RFC3339Nano), tk.State))
			}
		}
		slices.Sort(timers)
		out[role] = append(row, timers...)
	}
	return out
}

// histogramCount is the number of observations of a histogram (all series).
func (f *fixture) histogramCount(name string) uint64 {
	f.t.Helper()
	mfs, err := f.reg.Gather()
	require.NoError(f.t, err)
	var n uint64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				n += m.GetHistogram().GetSampleCount()
			}
		}
	}
	return n
}

// A batch leaves exactly what the same events one by one leave (rows,
// events, timers, inbox, metrics); the same batch again changes nothing.
func TestBatchSameAsOneByOne(t *testing.T) {
	f := newFixture(t, []map[string]any{{"at_percent": 50, "notify": []string{"manager"}}})
	base := time.Now().Add(-10 * time.Minute).UTC().Truncate(time.Second)
	const met = "atumdesk_sla_first_response_business_seconds"

	events, roles := f.scenario(base)
	for _, p := range events {
		b, err := json.Marshal(p)
		require.NoError(t, err)
		require.NoError(t, f.h.ProcessTask(f.ctx, asynq.NewTask(pipeline.TaskSLA, b)))
	}
	one := f.snapshot(roles)
	require.EqualValues(t, 1, f.histogramCount(met))

	events, roles = f.scenario(base)
	failed, err := f.h.ProcessBatch(f.ctx, events)
	require.NoError(t, err)
	require.Empty(t, failed)
	batch := f.snapshot(roles)
	require.Equal(t, one, batch)
	require.EqualValues(t, 2, f.histogramCount(met))

	// What the scenario should leave, beyond being the same both ways.
	require.Len(t, batch["fast"], 1+1+1+4, "row, sla_changed, inbox, 4 timers: %v", batch["fast"])
	require.Len(t, batch["standard"], 1+0+1+0)
	require.Equal(t, []string{"row ", "inbox 0"}, batch["gone"])
	require.Contains(t, batch["met"], "inbox 1")
	var staleFound bool
	for _, s := range batch["paused"] {
		staleFound = staleFound || strings.HasPrefix(s, "timer") && strings.Contains(s, base.Add(time.Hour).Format(time.RFC3339Nano))
	}
	require.False(t, staleFound, "the resolution timers of the due time before the pause are dropped: %v", batch["paused"])

	// The same batch again (at-least-once) changes nothing.
	failed, err = f.h.ProcessBatch(f.ctx, events)
	require.NoError(t, err)
	require.Empty(t, failed)
	require.Equal(t, batch, f.snapshot(roles))
	require.EqualValues(t, 2, f.histogramCount(met), "a met clock is observed once per event")
}

// One event that cannot be done fails alone: the others of its batch are
// done. Timers that cannot be scheduled fail the events of their ticket.
func TestBatchFailsOnlyTheBadEvent(t *testing.T) {
	f := newFixture(t, nil)
	base := time.Now().Add(-30 * time.Second).UTC().Truncate(time.Second)
	good1, bad, good2 := f.ticket(base), f.ticket(base), f.ticket(base)
	// A clock whose pauses cannot be read: its sync fails.
	require.NoError(t, f.db.Exec(`UPDATE tickets SET sla_paused_intervals = '[{"from": "not a time"}]' WHERE id = ?`, bad).Error)
	events := []pipeline.TaskPayload{f.createdEvent(good1), f.createdEvent(bad), f.createdEvent(good2)}
	failed, err := f.h.ProcessBatch(f.ctx, events)
	require.NoError(t, err)
	require.Len(t, failed, 1)
	require.Error(t, failed[1])
	roles := map[string]uuid.UUID{"good1": good1, "good2": good2, "bad": bad}
	snap := f.snapshot(roles)
	for _, r := range []string{"good1", "good2"} {
		require.Len(t, snap[r], 1+1+1+2, "%s started and scheduled: %v", r, snap[r])
	}
	require.Len(t, snap["bad"], 2, "bad: nothing done: %v", snap["bad"])

	// No Redis: the tickets that need timers fail, the others are done.
	noRedis := sla.New(f.db, sla.Config{})
	standard := models.NewID()
	require.NoError(t, f.db.Exec(`INSERT INTO tickets (id, org_id, number, subject, requester_id, channel, created_at)
		VALUES (?, ?, next_ticket_number(?), 'standard', ?, 'web', ?)`, standard, f.org, f.org, f.customer, base).Error)
	fresh := f.ticket(base)
	failed, err = noRedis.ProcessBatch(f.ctx, []pipeline.TaskPayload{f.createdEvent(standard), f.createdEvent(fresh)})
	require.NoError(t, err)
	require.Len(t, failed, 1)
	require.ErrorContains(t, failed[1], "no Redis")
	require.Len(t, f.snapshot(map[string]uuid.UUID{"fresh": fresh})["fresh"], 1+1+1, "the clock started; the timers are left to the retry")
}

// countingPool counts the statements (and BEGIN, COMMIT, ROLLBACK) gorm
// sends: each is one round trip to PostgreSQL.
type countingPool struct {
	db *sql.DB
	n  *atomic.Int64
}

func (p countingPool) PrepareContext(ctx context.Context, q string) (*sql.Stmt, error) {
	p.n.Add(1)
	return p.db.PrepareContext(ctx, q)
}

func (p countingPool) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	p.n.Add(1)
	return p.db.ExecContext(ctx, q, args...)
}

func (p countingPool) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	p.n.Add(1)
	return p.db.QueryContext(ctx, q, args...)
}

func (p countingPool) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	p.n.Add(1)
	return p.db.QueryRowContext(ctx, q, args...)
}

func (p countingPool) BeginTx(ctx context.Context, opts *sql.TxOptions) (gorm.ConnPool, error) {
	p.n.Add(1)
	tx, err := p.db.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &countingTx{tx: tx, n: p.n}, nil
}

type countingTx struct {
	tx *sql.Tx
	n  *atomic.Int64
}

func (t *countingTx) PrepareContext(ctx context.Context, q string) (*sql.Stmt, error) {
	t.n.Add(1)
	return t.tx.PrepareContext(ctx, q)
}

func (t *countingTx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	t.n.Add(1)
	return t.tx.ExecContext(ctx, q, args...)
}

func (t *countingTx) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	t.n.Add(1)
	return t.tx.QueryContext(ctx, q, args...)
}

func (t *countingTx) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	t.n.Add(1)
	return t.tx.QueryRowContext(ctx, q, args...)
}

func (t *countingTx) Commit() error   { t.n.Add(1); return t.tx.Commit() }
func (t *countingTx) Rollback() error { t.n.Add(1); return t.tx.Rollback() }

// countingDB is a gorm handle on sqlDB that counts its round trips in n.
func countingDB(tb testing.TB, sqlDB *sql.DB) (*gorm.DB, *atomic.Int64) {
	n := new(atomic.Int64)
	db, err := gorm.Open(postgres.New(postgres.Config{Conn: countingPool{db: sqlDB, n: n}}),
		&gorm.Config{Logger: logger.Discard, SkipDefaultTransaction: true, NowFunc: func() time.Time { return time.Now().UTC() }})
	require.NoError(tb, err)
	return db, n
}

// cpuTime is the CPU time this process has used (user and system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// pauseAll starts the clocks of tickets ids, pauses them and resumes them
// 5 s later (the resolution due times move), and returns the resumes'
// ticket.sla_changed events.
func (f *fixture) pauseAll(ids []uuid.UUID) []pipeline.TaskPayload {
	f.t.Helper()
	now := time.Now()
	_, err := slacore.StartAll(f.ctx, f.db, f.org, ids, now)
	require.NoError(f.t, err)
	var out []pipeline.TaskPayload
	for i, status := range []models.TicketStatus{models.StatusWaitingCustomer, models.StatusInProgress} {
		require.NoError(f.t, f.db.Transaction(func(tx *gorm.DB) error {
			if err := tx.Exec(`UPDATE tickets SET status = ? WHERE id IN ?`, status, ids).Error; err != nil {
				return err
			}
			evs, err := slacore.SyncAll(f.ctx, tx, f.org, ids, now.Add(time.Duration(i)*5*time.Second), slacore.ReasonStatus)
			if err != nil {
				return err
			}
			out = out[:0]
			for _, ev := range evs {
				out = append(out, pipeline.PayloadOf(ev))
			}
			return pipeline.EmitEvents(f.ctx, tx, evs...)
		}))
	}
	require.Len(f.t, out, len(ids))
	return out
}

// BenchmarkProcessBatch runs 64 events as one batch and one by one (what
// the splitter does without ProcessBatch): ticket.created with a policy
// whose clock starts at creation (a write, an event and 4 timers per
// ticket), ticket.created with the demo's policy, whose clock starts at
// acceptance (nothing to do: what a load test's new tickets cost), and
// ticket.sla_changed of resumed clocks (stale timers dropped, 4 new ones). It reports statements and ms per event.
//
//	go test -run '^$' -bench ProcessBatch -benchtime 20x ./workers/sla/
func BenchmarkProcessBatch(b *testing.B) {
	const size = 64
	f := newFixture(b, []map[string]any{{"at_percent": 50, "notify": []string{"manager"}}})
	db, stmts := countingDB(b, f.sqlDB)
	h := sla.New(db, sla.Config{Redis: f.redis})
	b.Cleanup(func() { _ = h.Close() })
	for _, clock := range []string{"clock", "no_clock", "changed"} {
		service := &f.service
		if clock == "no_clock" {
			service = nil
		}
		for _, mode := range []string{"batch", "one_by_one"} {
			b.Run(clock+"/"+mode, func(b *testing.B) {
				var took, cpu time.Duration
				var n int64
				for range b.N {
					b.StopTimer()
					var ids []uuid.UUID
					require.NoError(b, f.db.Raw(`INSERT INTO tickets (org_id, number, subject, requester_id, channel, service_id, created_at)
						SELECT ?, next_ticket_number(?), 'bench', ?, 'web', ?, now() - interval '10 seconds' FROM generate_series(1, ?)
						RETURNING id`, f.org, f.org, f.customer, service, size).Scan(&ids).Error)
					events := make([]pipeline.TaskPayload, len(ids))
					for i, id := range ids {
						events[i] = f.createdEvent(id)
					}
					if clock == "changed" {
						events = f.pauseAll(ids)
					}
					before, cpu0 := stmts.Load(), cpuTime()
					start := time.Now()
					b.StartTimer()
					if mode == "batch" {
						failed, err := h.ProcessBatch(f.ctx, events)
						require.NoError(b, err)
						require.Empty(b, failed)
					} else {
						for _, p := range events {
							body, err := json.Marshal(p)
							require.NoError(b, err)
							require.NoError(b, h.ProcessTask(f.ctx, asynq.NewTask(pipeline.TaskSLA, body)))
						}
					}
					b.StopTimer()
					took += time.Since(start)
					cpu += cpuTime() - cpu0
					n += stmts.Load() - before
				}
				b.ReportMetric(float64(n)/float64(b.N*size), "stmts/event")
				b.ReportMetric(float64(took.Microseconds())/1000/float64(b.N*size), "ms/event")
				b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N*size), "cpu-ms/event")
			})
		}
	}
}
