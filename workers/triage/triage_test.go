package triage_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/internal/ai"
	"github.com/atumdesk/atumdesk/internal/ai/aitest"
	"github.com/atumdesk/atumdesk/internal/testenv"
	"github.com/atumdesk/atumdesk/pipeline"
	"github.com/atumdesk/atumdesk/workers/triage"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

type fixture struct {
	t   *testing.T
	db  *gorm.DB
	svc *ai.Service
	h   *triage.Handler
	org *aitest.Org
}

func newFixture(t *testing.T) *fixture {
	db, _ := testenv.DB(t)
	svc, err := ai.New(ai.Config{DB: db, Redis: testenv.Redis(t), Logger: discard, CacheTTL: time.Millisecond})
	require.NoError(t, err)
	return &fixture{t: t, db: db, svc: svc, h: triage.New(db, svc, discard), org: aitest.NewOrg(t, db, "triage")}
}

func (f *fixture) payload(ticket uuid.UUID) pipeline.TaskPayload {
	return pipeline.TaskPayload{EventID: uuid.Must(uuid.NewV7()), EventType: pipeline.EventTicketCreated, OrgID: f.org.ID,
		TicketID: ticket, RequesterID: f.org.Customer}
}

type stored struct {
	Priority             string
	ServiceID            *uuid.UUID
	Category             *string
	AISuggestedPriority  *string
	AISuggestedServiceID *uuid.UUID
	AISuggestedCategory  *string
	AIConfidence         *float64
	AISuggestedAt        *time.Time
}

func (f *fixture) ticket(id uuid.UUID) stored {
	var s stored
	require.NoError(f.t, f.db.Raw(`SELECT priority, service_id, category, ai_suggested_priority, ai_suggested_service_id,
		ai_suggested_category, ai_confidence, ai_suggested_at FROM tickets WHERE id = ?`, id).Scan(&s).Error)
	return s
}

func (f *fixture) events(ticket uuid.UUID, typ string) []pipeline.Event {
	var payloads []string
	require.NoError(f.t, f.db.Raw(`SELECT payload::text FROM outbox WHERE event_type = ? ORDER BY id`, typ).Scan(&payloads).Error)
	var out []pipeline.Event
	for _, p := range payloads {
		var ev pipeline.Event
		require.NoError(f.t, json.Unmarshal([]byte(p), &ev))
		if ev.TicketID == ticket {
			out = append(out, ev)
		}
	}
	return out
}

func TestSuggestionStoredOnceWithAStaffEvent(t *testing.T) {
	f := newFixture(t)
	id := f.org.Ticket(aitest.Ticket{Subject: "Server down, urgent!", Body: "Production is down for everyone."})
	p := f.payload(id)
	res, err := f.h.Process(context.Background(), p)
	require.NoError(t, err)
	require.True(t, res.Found)
	require.Empty(t, res.Applied, "no auto-apply unless the organisation opts in")
	s := f.ticket(id)
	require.Equal(t, "medium", s.Priority, "a suggestion, not a change")
	require.Equal(t, "critical", *s.AISuggestedPriority)
	require.Greater(t, *s.AIConfidence, 0.7)
	require.NotNil(t, s.AISuggestedAt)
	evs := f.events(id, ai.EventTriaged)
	require.Len(t, evs, 1)
	require.Equal(t, pipeline.AudienceStaff, evs[0].Audience)
	var data struct {
		Suggestion ai.Suggestion `json:"suggestion"`
	}
	require.NoError(t, json.Unmarshal(evs[0].Data, &data))
	require.Equal(t, "critical", string(data.Suggestion.Priority))

	// At-least-once delivery: the same event again changes nothing.
	res, err = f.h.Process(context.Background(), p)
	require.NoError(t, err)
	require.True(t, res.AlreadyProcessed)
	require.Len(t, f.events(id, ai.EventTriaged), 1)

	// A task whose ticket is gone is done, not retried.
	res, err = f.h.Process(context.Background(), f.payload(uuid.Must(uuid.NewV7())))
	require.NoError(t, err)
	require.False(t, res.Found)
	// An unreadable payload is archived at once.
	err = f.h.ProcessTask(context.Background(), asynq.NewTask(pipeline.TaskTriage, []byte(`{}`)))
	require.ErrorIs(t, err, asynq.SkipRetry)
}

func TestAutoApplyNeverOverridesAHuman(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.org.Settings(map[string]any{"auto_apply": true, "auto_apply_threshold": 0.85})
	f.org.History(12)
	_, err := f.svc.Retrain(ctx, f.org.ID)
	require.NoError(t, err)

	// Nobody chose priority or service: both applied, audited as the AI.
	free := f.org.Ticket(aitest.Ticket{Subject: "VPN down, urgent!", Body: "The VPN disconnects for everyone, production is down."})
	res, err := f.h.Process(ctx, f.payload(free))
	require.NoError(t, err)
	require.Contains(t, res.Applied, "priority")
	s := f.ticket(free)
	require.Equal(t, "critical", s.Priority)
	var audit struct {
		ActorKind string
		UserID    *uuid.UUID
		After     string
	}
	require.NoError(t, f.db.Raw(`SELECT actor_kind, user_id, after::text FROM audit_log WHERE ticket_id = ? AND action = 'ticket.ai_applied'`, free).
		Scan(&audit).Error)
	require.Equal(t, "ai", audit.ActorKind)
	require.Nil(t, audit.UserID)
	require.Contains(t, audit.After, `"priority": "critical"`)
	upd := f.events(free, pipeline.EventTicketUpdated)
	require.Len(t, upd, 1)
	var changes struct {
		By      string                    `json:"by"`
		Changes map[string]map[string]any `json:"changes"`
	}
	require.NoError(t, json.Unmarshal(upd[0].Data, &changes))
	require.Equal(t, "ai", changes.By)
	require.Equal(t, "critical", changes.Changes["priority"]["to"])

	// The requester chose a priority (not the default): only a suggestion.
	chosen := f.org.Ticket(aitest.Ticket{Subject: "Server down, urgent!", Body: "Production is down.", Priority: "low"})
	res, err = f.h.Process(ctx, f.payload(chosen))
	require.NoError(t, err)
	require.NotContains(t, res.Applied, "priority")
	s = f.ticket(chosen)
	require.Equal(t, "low", s.Priority)
	require.Equal(t, "critical", *s.AISuggestedPriority)

	// Staff set it back to the default: still a human's choice.
	staff := f.org.Ticket(aitest.Ticket{Subject: "Server down, urgent!", Body: "Production is down."})
	require.NoError(t, f.db.Exec(`INSERT INTO audit_log (org_id, ticket_id, user_id, actor_kind, action, entity_type, entity_id, before, after)
		VALUES (?, ?, ?, 'user', 'ticket.updated', 'ticket', ?, '{"priority":"high"}', '{"priority":"medium"}')`,
		f.org.ID, staff, f.org.Agent, staff).Error)
	res, err = f.h.Process(ctx, f.payload(staff))
	require.NoError(t, err)
	require.NotContains(t, res.Applied, "priority")
	require.Equal(t, "medium", f.ticket(staff).Priority)

	// A service set at intake stays.
	svc := f.org.Ticket(aitest.Ticket{Subject: "Forgot my password", Body: "I cannot log in.", Service: "Billing"})
	res, err = f.h.Process(ctx, f.payload(svc))
	require.NoError(t, err)
	require.NotContains(t, res.Applied, "service_id")
	s = f.ticket(svc)
	require.Equal(t, f.org.Services["Billing"], *s.ServiceID)
	require.Equal(t, f.org.Services["Accounts"], *s.AISuggestedServiceID)
}

func TestResolutionSchedulesARetrainThatTrains(t *testing.T) {
	db, _ := testenv.DB(t)
	rdb := testenv.Redis(t)
	svc, err := ai.New(ai.Config{DB: db, Redis: rdb, Logger: discard, RetrainInterval: time.Hour})
	require.NoError(t, err)
	org := aitest.NewOrg(t, db, "retrain")
	org.History(12)
	h := triage.NewRetrain(db, svc, discard)
	open := org.Ticket(aitest.Ticket{Subject: "x", Body: "y"})
	done := org.Ticket(aitest.Ticket{Subject: "x", Body: "y", Status: "resolved"})
	task := func(ticket uuid.UUID) *asynq.Task {
		b, err := json.Marshal(pipeline.TaskPayload{EventID: uuid.Must(uuid.NewV7()), EventType: pipeline.EventStatusChanged,
			OrgID: org.ID, TicketID: ticket, RequesterID: org.Customer})
		require.NoError(t, err)
		return asynq.NewTask(pipeline.TaskAIRetrain, b)
	}
	insp := asynq.NewInspectorFromRedisClient(rdb)
	require.NoError(t, h.ProcessTask(context.Background(), task(open)))
	scheduled, err := insp.ListScheduledTasks(pipeline.QueueTriage)
	require.Error(t, err, "nothing scheduled for a ticket that is not resolved") // the queue does not exist yet
	require.Empty(t, scheduled)
	for range 3 { // three resolutions in one window: one training
		require.NoError(t, h.ProcessTask(context.Background(), task(done)))
	}
	scheduled, err = insp.ListScheduledTasks(pipeline.QueueTriage)
	require.NoError(t, err)
	require.Len(t, scheduled, 1)
	require.Equal(t, pipeline.TaskAIRetrain, scheduled[0].Type)
	require.WithinDuration(t, time.Now().Truncate(time.Hour).Add(time.Hour), scheduled[0].NextProcessAt, time.Second)

	// When due, it trains and stores the model for every process.
	require.NoError(t, h.ProcessTask(context.Background(), asynq.NewTask(pipeline.TaskAIRetrain, scheduled[0].Payload)))
	other, err := ai.New(ai.Config{DB: db, Redis: rdb, Logger: discard})
	require.NoError(t, err)
	m, err := other.Model(context.Background(), org.ID)
	require.NoError(t, err)
	require.NotNil(t, m)
	require.NotNil(t, m.Category)
}
