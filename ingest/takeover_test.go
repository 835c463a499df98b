package ingest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/atumdesk/atumdesk/internal/apperr"
	"github.com/atumdesk/atumdesk/internal/seed"
	"github.com/atumdesk/atumdesk/internal/testenv"
	"github.com/atumdesk/atumdesk/pipeline"
)

// TestTakeOverPending: a reservation left "in progress" by a process that
// died mid-submit answers 409 to the API's clients, but the mail poller
// (TakeOverPending) goes ahead instead of quarantining the mail.
func TestTakeOverPending(t *testing.T) {
	ctx := context.Background()
	db, _ := testenv.DB(t)
	_, err := seed.Demo(ctx, db, "")
	require.NoError(t, err)
	_, producer := testBroker(t)
	s := New(db, testenv.Redis(t), producer, slog.New(slog.DiscardHandler))
	var org uuid.UUID
	require.NoError(t, db.Raw(`SELECT id FROM organizations WHERE slug = 'acme'`).Row().Scan(&org))

	sub := Submission{Channel: pipeline.ChannelEmail, OrgID: org, Requester: pipeline.Requester{Email: "c@example.test"},
		Subject: "s", Description: "d", IdempotencyKey: "mail:x:mid:1@example.test", IdempotencyScope: "mailbox:x",
		MessageID: "1@example.test"}
	// the predecessor reserved the key for the same mail and was killed
	// before producing
	in, err := s.normalise(ctx, sub)
	require.NoError(t, err)
	require.NoError(t, s.rdb.Set(ctx, idempotencyKey(org, sub.IdempotencyScope, sub.IdempotencyKey),
		"pending|"+uuid.NewString()+"|"+requestHash(in), time.Minute).Err())

	_, err = s.Submit(ctx, sub)
	require.True(t, apperr.IsKind(err, apperr.Conflict), "%v", err)
	sub.TakeOverPending = true
	rec, err := s.Submit(ctx, sub)
	require.NoError(t, err)
	require.False(t, rec.Replayed)
	again, err := s.Submit(ctx, sub)
	require.NoError(t, err)
	require.Equal(t, rec.TicketID, again.TicketID, "done: the same receipt")
	require.True(t, again.Replayed)
}
