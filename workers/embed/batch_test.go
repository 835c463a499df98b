package embed_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/internal/ai"
	"github.com/atumdesk/atumdesk/internal/ai/aitest"
	"github.com/atumdesk/atumdesk/internal/testenv"
	"github.com/atumdesk/atumdesk/models"
	"github.com/atumdesk/atumdesk/pipeline"
	"github.com/atumdesk/atumdesk/workers/embed"
)

type batchFixture struct {
	t   *testing.T
	db  *gorm.DB
	h   *embed.Handler
	org *aitest.Org
}

func newBatchFixture(t *testing.T) *batchFixture {
	db, _ := testenv.DB(t)
	svc, err := ai.New(ai.Config{DB: db, Logger: discard})
	require.NoError(t, err)
	return &batchFixture{t: t, db: db, h: embed.New(db, svc, discard), org: aitest.NewOrg(t, db, "embed-batch")}
}

func (f *batchFixture) payload(ticket uuid.UUID) pipeline.TaskPayload {
	return pipeline.TaskPayload{EventID: uuid.Must(uuid.NewV7()), EventType: pipeline.EventTicketCreated, OrgID: f.org.ID,
		TicketID: ticket, RequesterID: f.org.Customer}
}

// scenario stores one copy of the tickets and returns them with the
// events of a batch: plain tickets, a ticket deleted before the batch, an
// event already processed, one event given twice and one ticket with two
// events.
func (f *batchFixture) scenario() (tickets []uuid.UUID, events []pipeline.TaskPayload) {
	for i := range 4 {
		tickets = append(tickets, f.org.Ticket(aitest.Ticket{Subject: fmt.Sprintf("VPN %d", i), Body: "The VPN does not connect."}))
	}
	gone := f.org.Ticket(aitest.Ticket{Subject: "Deleted", Body: "Gone before the stage."})
	require.NoError(f.t, f.db.Exec(`DELETE FROM tickets WHERE id = ?`, gone).Error)
	done := f.payload(tickets[3])
	require.NoError(f.t, f.db.Exec(`INSERT INTO processed_events (consumer, event_id) VALUES (?, ?)`, embed.Consumer, done.EventID).Error)
	twice := f.payload(tickets[1])
	return tickets, []pipeline.TaskPayload{f.payload(tickets[2]), twice, f.payload(gone), f.payload(tickets[0]), done, twice,
		f.payload(tickets[2])}
}

// dump describes what the stage left of each ticket: its stored vector
// and the events it emitted (ids and numbers left out), plus the inbox rows.
func (f *batchFixture) dump(tickets []uuid.UUID, events []pipeline.TaskPayload) []string {
	var out []string
	for _, id := range tickets {
		var row struct {
			Model     string
			Embedding models.Vector
		}
		require.NoError(f.t, f.db.Raw(`SELECT model, embedding FROM ticket_embeddings WHERE ticket_id = ?`, id).Scan(&row).Error)
		var subject, body string
		require.NoError(f.t, f.db.Raw(`SELECT subject, description FROM tickets WHERE id = ?`, id).Row().Scan(&subject, &body))
		right := len(row.Embedding) > 0 && fmt.Sprint(row.Embedding) == fmt.Sprint(models.Vector(ai.EmbedText(subject+"\n"+body)))
		var events []string
		require.NoError(f.t, f.db.Raw(`SELECT payload::text FROM outbox WHERE key = ? ORDER BY id`, id.String()).Scan(&events).Error)
		for k, p := range events {
			var ev pipeline.Event
			require.NoError(f.t, json.Unmarshal([]byte(p), &ev))
			data := map[string]any{}
			require.NoError(f.t, json.Unmarshal(ev.Data, &data))
			delete(data, "number")
			events[k] = fmt.Sprintf("%s %s %v", ev.Type, ev.Audience, data)
		}
		out = append(out, fmt.Sprintf("model %q, vector of its text: %v, events: %q", row.Model, right, events))
	}
	ids := make([]uuid.UUID, len(events))
	for i, p := range events {
		ids[i] = p.EventID
	}
	var inbox int
	require.NoError(f.t, f.db.Raw(`SELECT count(*) FROM processed_events WHERE consumer = ? AND event_id IN ?`, embed.Consumer, ids).
		Scan(&inbox).Error)
	return append(out, fmt.Sprintf("inbox rows: %d", inbox))
}

// A batch leaves exactly what its events one by one leave; run again, it
// changes nothing.
func TestBatchMatchesOneByOne(t *testing.T) {
	f := newBatchFixture(t)
	ctx := context.Background()
	oneTickets, oneEvents := f.scenario()
	batchTickets, batchEvents := f.scenario()
	for _, p := range oneEvents {
		_, err := f.h.Process(ctx, p)
		require.NoError(t, err)
	}
	failed, err := f.h.ProcessBatch(ctx, batchEvents)
	require.NoError(t, err)
	require.Empty(t, failed)
	want, got := f.dump(oneTickets, oneEvents), f.dump(batchTickets, batchEvents)
	require.Equal(t, want, got)
	require.Equal(t, []string{
		fmt.Sprintf(`model %q, vector of its text: true, events: ["ticket.embedded staff map[dims:256 embedding_model:%s]"]`, ai.BuiltinModel, ai.BuiltinModel),
		fmt.Sprintf(`model %q, vector of its text: true, events: ["ticket.embedded staff map[dims:256 embedding_model:%s]"]`, ai.BuiltinModel, ai.BuiltinModel),
		fmt.Sprintf(`model %q, vector of its text: true, events: ["ticket.embedded staff map[dims:256 embedding_model:%s]" "ticket.embedded staff map[dims:256 embedding_model:%s]"]`,
			ai.BuiltinModel, ai.BuiltinModel, ai.BuiltinModel),
		`model "", vector of its text: false, events: []`,
		"inbox rows: 5",
	}, got)

	var xmin []string
	versions := func() []string {
		require.NoError(t, f.db.Raw(`SELECT xmin::text FROM ticket_embeddings WHERE ticket_id IN ? ORDER BY ticket_id`, batchTickets).
			Scan(&xmin).Error)
		return xmin
	}
	before := versions()
	failed, err = f.h.ProcessBatch(ctx, batchEvents)
	require.NoError(t, err)
	require.Empty(t, failed)
	require.Equal(t, got, f.dump(batchTickets, batchEvents), "the same batch again changes nothing")
	require.Equal(t, before, versions(), "not even a row version")
}

// One event that fails fails alone: the batch runs one by one and only its
// index comes back.
func TestBatchWithAFailingEvent(t *testing.T) {
	f := newBatchFixture(t)
	ctx := context.Background()
	var events []pipeline.TaskPayload
	for i := range 5 {
		events = append(events, f.payload(f.org.Ticket(aitest.Ticket{Subject: fmt.Sprintf("Printer %d", i), Body: "It jams."})))
	}
	bad := events[3].TicketID
	require.NoError(t, f.db.Exec(`CREATE FUNCTION fail_one() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN IF NEW.ticket_id = '`+bad.String()+`' THEN RAISE EXCEPTION 'this vector cannot be stored'; END IF; RETURN NEW; END $$`).Error)
	require.NoError(t, f.db.Exec(`CREATE TRIGGER fail_one BEFORE INSERT ON ticket_embeddings FOR EACH ROW EXECUTE FUNCTION fail_one()`).Error)

	failed, err := f.h.ProcessBatch(ctx, events)
	require.NoError(t, err)
	require.Len(t, failed, 1)
	require.ErrorContains(t, failed[3], "this vector cannot be stored")
	var stored []uuid.UUID
	require.NoError(t, f.db.Raw(`SELECT ticket_id FROM ticket_embeddings ORDER BY ticket_id`).Scan(&stored).Error)
	require.ElementsMatch(t, []uuid.UUID{events[0].TicketID, events[1].TicketID, events[2].TicketID, events[4].TicketID}, stored)
}
