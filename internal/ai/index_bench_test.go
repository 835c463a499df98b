package ai

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/internal/ai/aitest"
	"github.com/atumdesk/atumdesk/internal/testenv"
	"github.com/atumdesk/atumdesk/pipeline"
)

// BenchmarkIndexSync applies what the index sync reads of a partition for
// 64 new tickets: each ticket's ticket.embedded event among four events of
// other types. It reports statements, ms and CPU ms per ticket.
//
//	go test -run '^$' -bench IndexSync -benchtime 50x ./internal/ai/
func BenchmarkIndexSync(b *testing.B) {
	const tickets = 64
	db, _ := testenv.DB(b)
	ctx := context.Background()
	org := aitest.NewOrg(b, db, "bench")
	s, err := New(Config{DB: db})
	require.NoError(b, err)
	var vecs []TicketVector
	var values [][]byte
	event := func(id uuid.UUID, typ string) []byte {
		ev, err := pipeline.NewEvent(typ, pipeline.TicketRef{OrgID: org.ID, TicketID: id, RequesterID: org.Customer}, nil,
			pipeline.AudienceStaff, map[string]any{"embedding_model": BuiltinModel, "dims": BuiltinDim, "number": 1})
		require.NoError(b, err)
		v, err := json.Marshal(ev)
		require.NoError(b, err)
		return v
	}
	for i := range tickets {
		id := org.Ticket(aitest.Ticket{Subject: fmt.Sprintf("Ticket %d", i), Body: "Body"})
		vecs = append(vecs, TicketVector{TicketID: id, Model: BuiltinModel, Vec: EmbedText(fmt.Sprintf("Ticket %d", i))})
		for _, typ := range []string{pipeline.EventTicketCreated, pipeline.EventDedupPassed, pipeline.EventSLAChanged, EventTriaged, EventEmbedded} {
			values = append(values, event(id, typ))
		}
	}
	_, err = StoreVectors(ctx, db, org.ID, vecs)
	require.NoError(b, err)
	require.NoError(b, s.LoadIndex(ctx))
	var stmts atomic.Int64
	count := func(*gorm.DB) { stmts.Add(1) }
	require.NoError(b, db.Callback().Query().After("gorm:query").Register("bench:count", count))
	require.NoError(b, db.Callback().Row().After("gorm:row").Register("bench:count", count))
	log := slog.New(slog.DiscardHandler)
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	for range b.N {
		applyAll(ctx, s, log, values)
	}
	took, cpu := time.Since(start), cpuTime()-cpu0
	n := float64(b.N * tickets)
	b.ReportMetric(float64(stmts.Load())/n, "stmts/ticket")
	b.ReportMetric(float64(took.Microseconds())/1000/n, "ms/ticket")
	b.ReportMetric(float64(cpu.Microseconds())/1000/n, "cpu-ms/ticket")
}

func applyAll(ctx context.Context, s *Service, log *slog.Logger, values [][]byte) {
	s.applyEvents(ctx, log, values)
}

// cpuTime is the CPU time this process has used (user and system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
