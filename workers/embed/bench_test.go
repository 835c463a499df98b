package embed_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/internal/ai"
	"github.com/atumdesk/atumdesk/internal/ai/aitest"
	"github.com/atumdesk/atumdesk/internal/testenv"
	"github.com/atumdesk/atumdesk/pipeline"
	"github.com/atumdesk/atumdesk/workers/embed"
)

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

// BenchmarkProcessBatch runs 64 ticket.created events one by one (Process
// per event, what the splitter does without ProcessBatch) and as one
// batch, reporting ms, this process's CPU ms and statements (BEGIN and
// COMMIT included) per event.
//
//	go test -run '^$' -bench ProcessBatch -benchtime 20x ./workers/embed/
func BenchmarkProcessBatch(b *testing.B) {
	const size = 64
	type batcher interface {
		ProcessBatch(context.Context, []pipeline.TaskPayload) (map[int]error, error)
	}
	db, _ := testenv.DB(b)
	svc, err := ai.New(ai.Config{DB: db, Logger: discard})
	require.NoError(b, err)
	h := embed.New(db, svc, discard)
	org := aitest.NewOrg(b, db, "bench")
	// An organisation with history, and statistics, as in production.
	require.NoError(b, db.Exec(`INSERT INTO tickets (org_id, number, subject, description, requester_id, channel)
		SELECT ?, 100000 + n, 'Old ticket ' || n, 'Body', ?, 'api' FROM generate_series(1, 5000) AS n`, org.ID, org.Customer).Error)
	require.NoError(b, db.Exec(`ANALYZE`).Error)
	stmts := countStatements(b, db)
	for _, mode := range []string{"one_by_one", "batch"} {
		b.Run(mode, func(b *testing.B) {
			var took, cpu time.Duration
			var n, txs int64
			for op := range b.N {
				b.StopTimer()
				events := make([]pipeline.TaskPayload, size)
				for i := range events {
					id := org.Ticket(aitest.Ticket{Subject: fmt.Sprintf("Ticket %d of batch %d", i, op), Body: "The VPN does not connect since this morning."})
					events[i] = pipeline.TaskPayload{EventID: uuid.Must(uuid.NewV7()), EventType: pipeline.EventTicketCreated,
						OrgID: org.ID, TicketID: id, RequesterID: org.Customer}
				}
				before, cpu0 := stmts.Load(), cpuTime()
				start := time.Now()
				b.StartTimer()
				if mode == "batch" {
					bp, ok := any(h).(batcher)
					if !ok {
						b.Skip("no ProcessBatch")
					}
					failed, err := bp.ProcessBatch(context.Background(), events)
					require.NoError(b, err)
					require.Empty(b, failed)
					txs++
				} else {
					for _, p := range events {
						_, err := h.Process(context.Background(), p)
						require.NoError(b, err)
					}
					txs += size
				}
				b.StopTimer()
				took += time.Since(start)
				cpu += cpuTime() - cpu0
				n += stmts.Load() - before
			}
			b.ReportMetric(float64(n+2*txs)/float64(b.N*size), "stmts/event")
			b.ReportMetric(float64(took.Microseconds())/1000/float64(b.N*size), "ms/event")
			b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N*size), "cpu-ms/event")
		})
	}
}

// cpuTime is the CPU time this process has used (user and system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
