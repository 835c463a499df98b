package ai_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/internal/ai"
	"github.com/atumdesk/atumdesk/internal/ai/aitest"
	"github.com/atumdesk/atumdesk/internal/testenv"
	"github.com/atumdesk/atumdesk/models"
	"github.com/atumdesk/atumdesk/pipeline"
)

// StoreVectors writes several vectors in one statement: a ticket given
// twice keeps its last vector, unchanged vectors and other organisations'
// tickets write nothing.
func TestStoreVectorsInOneStatement(t *testing.T) {
	db, _ := testenv.DB(t)
	ctx := context.Background()
	a, b := aitest.NewOrg(t, db, "vecs"), aitest.NewOrg(t, db, "vecsother")
	var ids []uuid.UUID
	var vecs []ai.TicketVector
	for i := range 5 {
		id := a.Ticket(aitest.Ticket{Subject: fmt.Sprintf("Ticket %d", i), Body: "Body"})
		ids = append(ids, id)
		vecs = append(vecs, ai.TicketVector{TicketID: id, Model: ai.BuiltinModel, Vec: ai.EmbedText(fmt.Sprintf("text %d", i))})
	}
	short := []float32{0.6, 0.8} // another model, another dimension
	vecs = append(vecs, ai.TicketVector{TicketID: ids[1], Model: "other", Vec: short},
		ai.TicketVector{TicketID: b.Ticket(aitest.Ticket{Subject: "B's", Body: "Body"}), Model: ai.BuiltinModel, Vec: short})
	n, err := ai.StoreVectors(ctx, db, a.ID, vecs)
	require.NoError(t, err)
	require.EqualValues(t, 5, n, "B's ticket is not A's to store")
	var rows []models.TicketEmbedding
	require.NoError(t, db.Order("ticket_id").Find(&rows).Error)
	require.Len(t, rows, 5)
	for i, r := range rows {
		require.Equal(t, ids[i], r.TicketID)
		if i == 1 {
			require.Equal(t, "other", r.Model, "the last vector given wins")
			require.Equal(t, models.Vector(short), r.Embedding)
			continue
		}
		require.Equal(t, models.Vector(vecs[i].Vec), r.Embedding)
	}
	n, err = ai.StoreVectors(ctx, db, a.ID, vecs)
	require.NoError(t, err)
	require.Zero(t, n, "the same vectors again write nothing")
	n, err = ai.StoreVectors(ctx, db, a.ID, nil)
	require.NoError(t, err)
	require.Zero(t, n)
}

// The index sync reads the vectors of a burst of ticket.embedded events
// with one query per partition's batch, not one per event, and
// ignores the other events (and partitions this process has not loaded).
func TestIndexSyncReadsVectorsPerBatch(t *testing.T) {
	db, _ := testenv.DB(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	org, other := aitest.NewOrg(t, db, "sync"), aitest.NewOrg(t, db, "syncother")
	first := org.Ticket(aitest.Ticket{Subject: "First", Body: "Indexed at start."})
	_, err := ai.StoreVector(ctx, db, org.ID, first, ai.BuiltinModel, ai.EmbedText("First"))
	require.NoError(t, err)
	svc, _ := newService(t, db, nil)
	require.NoError(t, svc.LoadIndex(ctx))
	require.Equal(t, 1, svc.Index().Stats().Vectors)

	// Vectors stored by another process's embed stage, with their events.
	const burst = 60
	var vecs []ai.TicketVector
	var msgs []pipeline.Message
	event := func(o *aitest.Org, id uuid.UUID, typ string) pipeline.Message {
		ev, err := pipeline.NewEvent(typ, pipeline.TicketRef{OrgID: o.ID, TicketID: id, RequesterID: o.Customer}, nil,
			pipeline.AudienceStaff, map[string]any{"embedding_model": ai.BuiltinModel, "dims": ai.BuiltinDim})
		require.NoError(t, err)
		b, err := json.Marshal(ev)
		require.NoError(t, err)
		return pipeline.Message{Topic: pipeline.TopicEvents, Key: []byte(id.String()), Value: b,
			Headers: map[string]string{pipeline.HeaderEventID: ev.ID.String()}}
	}
	for i := range burst {
		id := org.Ticket(aitest.Ticket{Subject: fmt.Sprintf("Burst %d", i), Body: "Body"})
		vecs = append(vecs, ai.TicketVector{TicketID: id, Model: ai.BuiltinModel, Vec: ai.EmbedText(fmt.Sprintf("Burst %d", i))})
		msgs = append(msgs, event(org, id, pipeline.EventTicketCreated), event(org, id, ai.EventEmbedded))
	}
	_, err = ai.StoreVectors(ctx, db, org.ID, vecs)
	require.NoError(t, err)
	unloaded := other.Ticket(aitest.Ticket{Subject: "Other", Body: "Body"})
	_, err = ai.StoreVector(ctx, db, other.ID, unloaded, ai.BuiltinModel, ai.EmbedText("Other"))
	require.NoError(t, err)
	msgs = append(msgs, event(other, unloaded, ai.EventEmbedded))

	broker, err := pipeline.StartBroker(ctx, pipeline.BrokerConfig{DataDir: t.TempDir(), Addr: "127.0.0.1:0", Logger: discard})
	require.NoError(t, err)
	t.Cleanup(broker.Close)
	require.NoError(t, pipeline.EnsureTopics(ctx, broker.Addrs(), pipeline.DefaultTopics(1)))
	producer := pipeline.NewProducer(broker.Addrs())
	t.Cleanup(func() { _ = producer.Close() })
	require.NoError(t, producer.Publish(ctx, msgs...))

	reads := countVectorReads(t, db)
	done := make(chan error, 1)
	go func() { done <- svc.RunIndexSync(ctx, ai.SyncConfig{Brokers: broker.Addrs()}) }()
	require.Eventually(t, func() bool { return svc.Index().Stats().Vectors == 1+burst }, 30*time.Second, 20*time.Millisecond)
	time.Sleep(100 * time.Millisecond) // anything more would come now
	require.Equal(t, 1+burst, svc.Index().Stats().Vectors, "the other organisation's partition is not loaded here")
	parts, err := kafka.LookupPartitions(ctx, "tcp", broker.Addrs()[0], pipeline.TopicEvents)
	require.NoError(t, err)
	require.Less(t, len(parts), burst/4)
	// A slow fetch may split a partition's burst in two: still far from one read per event.
	require.Less(t, reads.Load(), int64(burst/2), "vectors read once per batch of a partition, not per event")
	cancel()
	require.NoError(t, <-done)
}

// countVectorReads counts the queries db sends that read ticket_embeddings.
func countVectorReads(tb testing.TB, db *gorm.DB) *atomic.Int64 {
	var n atomic.Int64
	count := func(d *gorm.DB) {
		if strings.Contains(d.Statement.SQL.String(), "ticket_embeddings") {
			n.Add(1)
		}
	}
	require.NoError(tb, db.Callback().Query().After("gorm:query").Register("test:vector_reads", count))
	require.NoError(tb, db.Callback().Row().After("gorm:row").Register("test:vector_reads", count))
	return &n
}
