package embed_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/atumdesk/atumdesk/internal/ai"
	"github.com/atumdesk/atumdesk/internal/ai/aitest"
	"github.com/atumdesk/atumdesk/internal/testenv"
	"github.com/atumdesk/atumdesk/models"
	"github.com/atumdesk/atumdesk/pipeline"
	"github.com/atumdesk/atumdesk/workers"
	"github.com/atumdesk/atumdesk/workers/embed"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestVectorStoredOnceWithAStaffEvent(t *testing.T) {
	db, _ := testenv.DB(t)
	ctx := context.Background()
	svc, err := ai.New(ai.Config{DB: db, Logger: discard})
	require.NoError(t, err)
	org := aitest.NewOrg(t, db, "embed")
	id := org.Ticket(aitest.Ticket{Subject: "VPN", Body: "The VPN does not connect."})
	h := embed.New(db, svc, discard)
	p := pipeline.TaskPayload{EventID: uuid.Must(uuid.NewV7()), EventType: pipeline.EventTicketCreated, OrgID: org.ID, TicketID: id}
	res, err := h.Process(ctx, p)
	require.NoError(t, err)
	require.Equal(t, ai.BuiltinModel, res.Model)
	require.Equal(t, ai.BuiltinDim, res.Dims)
	var row models.TicketEmbedding
	require.NoError(t, db.Take(&row, "ticket_id = ?", id).Error)
	require.Equal(t, org.ID, row.OrgID)
	require.Equal(t, ai.BuiltinModel, row.Model)
	require.Len(t, row.Embedding, ai.BuiltinDim)
	require.Equal(t, models.Vector(ai.EmbedText("VPN\nThe VPN does not connect.")), row.Embedding)
	var hot struct{ UpdatedAt, CreatedAt time.Time }
	require.NoError(t, db.Raw(`SELECT updated_at, created_at FROM tickets WHERE id = ?`, id).Scan(&hot).Error)
	require.Equal(t, hot.CreatedAt, hot.UpdatedAt, "storing the vector does not update the ticket")
	var audience []string
	require.NoError(t, db.Raw(`SELECT payload->>'audience' FROM outbox WHERE event_type = ?`, ai.EventEmbedded).Scan(&audience).Error)
	require.Equal(t, []string{pipeline.AudienceStaff}, audience)

	res, err = h.Process(ctx, p)
	require.NoError(t, err)
	require.True(t, res.AlreadyProcessed)
	require.ErrorIs(t, h.ProcessTask(ctx, asynq.NewTask(pipeline.TaskEmbed, []byte(`nope`))), asynq.SkipRetry)
}

// The stages through the real pipeline: tickets created with their
// ticket.created event go through the outbox relay, the broker, the
// dispatcher and asynq to the triage and embed workers; an API process's
// index (another ai.Service, fed by the events topic) then answers
// similar-ticket queries, never with another organisation's tickets.
func TestStagesThroughThePipeline(t *testing.T) {
	db, _ := testenv.DB(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	broker, err := pipeline.StartBroker(ctx, pipeline.BrokerConfig{DataDir: t.TempDir(), Addr: "127.0.0.1:0", Logger: discard})
	require.NoError(t, err)
	t.Cleanup(broker.Close)
	require.NoError(t, pipeline.EnsureTopics(ctx, broker.Addrs(), pipeline.DefaultTopics(1)))
	producer := pipeline.NewProducer(broker.Addrs())
	t.Cleanup(func() { _ = producer.Close() })
	redisURL := testenv.RedisURL(t)
	redisOpt, err := asynq.ParseRedisURI(redisURL)
	require.NoError(t, err)

	workerAI, err := ai.New(ai.Config{DB: db, Logger: discard})
	require.NoError(t, err)
	apiAI, err := ai.New(ai.Config{DB: db, Logger: discard})
	require.NoError(t, err)

	done := make(chan struct{}, 4)
	run := func(fn func() error) {
		go func() {
			if err := fn(); err != nil && ctx.Err() == nil {
				t.Errorf("pipeline piece failed: %v", err)
			}
			done <- struct{}{}
		}()
	}
	run(func() error {
		return pipeline.RunRelay(ctx, pipeline.RelayConfig{DB: db, Producer: producer, Logger: discard, Interval: 10 * time.Millisecond})
	})
	run(func() error {
		return pipeline.RunDispatcher(ctx, pipeline.DispatcherConfig{Brokers: broker.Addrs(), Redis: redisOpt, Logger: discard})
	})
	run(func() error {
		return workers.Run(ctx, workers.Config{Redis: redisOpt, Queues: map[string]int{pipeline.QueueTriage: 2, pipeline.QueueEmbed: 2},
			Deps: workers.Deps{DB: db, Logger: discard, AI: workerAI}, Logger: discard, PollInterval: 50 * time.Millisecond,
			ShutdownTimeout: time.Second})
	})
	run(func() error { return apiAI.RunIndexSync(ctx, ai.SyncConfig{Brokers: broker.Addrs()}) })
	t.Cleanup(func() {
		cancel()
		for range 4 {
			<-done
		}
	})

	a, b := aitest.NewOrg(t, db, "pipe-a"), aitest.NewOrg(t, db, "pipe-b")
	arrive := func(o *aitest.Org, tk aitest.Ticket) uuid.UUID {
		id := o.Ticket(tk)
		ev, err := pipeline.NewEvent(pipeline.EventTicketCreated, pipeline.TicketRef{OrgID: o.ID, TicketID: id, RequesterID: o.Customer},
			nil, pipeline.AudiencePublic, map[string]any{"id": id})
		require.NoError(t, err)
		require.NoError(t, pipeline.EmitEvents(ctx, db, ev))
		return id
	}
	var aIDs, bIDs []uuid.UUID
	for _, o := range []*aitest.Org{a, b} {
		for _, tk := range []aitest.Ticket{
			{Subject: "Password reset", Body: "I forgot my password and cannot log in."},
			{Subject: "Cannot log in", Body: "The login page rejects my password."},
			{Subject: "Wrong invoice", Body: "The invoice amount is wrong."},
			{Subject: "VPN down, urgent!", Body: "The VPN is down for everyone."},
		} {
			id := arrive(o, tk)
			if o == a {
				aIDs = append(aIDs, id)
			} else {
				bIDs = append(bIDs, id)
			}
		}
	}
	waitProcessed := func(ids ...uuid.UUID) {
		t.Helper()
		require.Eventually(t, func() bool {
			var n int64
			require.NoError(t, db.Raw(`SELECT count(*) FROM tickets t JOIN ticket_embeddings e ON e.ticket_id = t.id
				WHERE t.id IN ? AND t.ai_suggested_at IS NOT NULL`, ids).
				Scan(&n).Error)
			return n == int64(len(ids))
		}, 60*time.Second, 50*time.Millisecond)
	}
	waitProcessed(append(aIDs, bIDs...)...)

	var urgent struct {
		AISuggestedPriority string
		AIConfidence        float64
	}
	require.NoError(t, db.Raw(`SELECT ai_suggested_priority, ai_confidence FROM tickets WHERE id = ?`, aIDs[3]).Scan(&urgent).Error)
	require.Equal(t, "critical", urgent.AISuggestedPriority)
	require.Greater(t, urgent.AIConfidence, 0.7)

	similar := func() []ai.SimilarTicket {
		got, err := apiAI.Similar(ctx, a.ID, aIDs[0], 5)
		require.NoError(t, err)
		for _, s := range got {
			require.NotContains(t, bIDs, s.TicketID, "org B's ticket shown to org A")
		}
		return got
	}
	got := similar()
	require.Len(t, got, 3)
	require.Equal(t, aIDs[1], got[0].TicketID, "the other login ticket is the nearest: %+v", got)

	// A ticket that arrives now reaches the API's (already loaded) index
	// through the ticket.embedded event.
	late := arrive(a, aitest.Ticket{Subject: "Password forgotten", Body: "I forgot my password again, cannot log in."})
	waitProcessed(late)
	require.Eventually(t, func() bool {
		for _, s := range similar() {
			if s.TicketID == late {
				return strings.Contains(s.Subject, "Password")
			}
		}
		return false
	}, 30*time.Second, 50*time.Millisecond)
}
