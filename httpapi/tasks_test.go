package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/atumdesk/atumdesk/internal/auth"
	"github.com/atumdesk/atumdesk/pipeline"
	"github.com/atumdesk/atumdesk/workers"
)

// enqueueTask puts a dedup task of org on the stack's Redis and returns its id.
func (s *stack) enqueueTask(org uuid.UUID, opts ...asynq.Option) string {
	s.t.Helper()
	p, err := json.Marshal(pipeline.TaskPayload{EventID: uuid.Must(uuid.NewV7()), EventType: pipeline.EventTicketCreated, OrgID: org, TicketID: uuid.Must(uuid.NewV7())})
	require.NoError(s.t, err)
	id := "ticket:dedup:" + uuid.NewString()
	client := asynq.NewClientFromRedisClient(s.rdb)
	_, err = client.Enqueue(asynq.NewTask(pipeline.TaskDedup, p), append([]asynq.Option{asynq.Queue(pipeline.QueueDedup), asynq.TaskID(id)}, opts...)...)
	require.NoError(s.t, err)
	return id
}

// archivedTask makes an archived dedup task of org and returns its id.
func (s *stack) archivedTask(org uuid.UUID) string {
	s.t.Helper()
	id := s.enqueueTask(org)
	require.NoError(s.t, asynq.NewInspectorFromRedisClient(s.rdb).ArchiveTask(pipeline.QueueDedup, id))
	return id
}

type archivedList struct {
	Items []struct {
		ID           string     `json:"id"`
		Queue        string     `json:"queue"`
		Type         string     `json:"type"`
		LastError    string     `json:"last_error"`
		LastFailedAt *time.Time `json:"last_failed_at"`
		Retried      int        `json:"retried"`
		Payload      struct {
			TicketID uuid.UUID `json:"ticket_id"`
		} `json:"payload"`
	} `json:"items"`
	NextCursor string `json:"next_cursor"`
}

func (s *stack) archived(token, query string) archivedList {
	s.t.Helper()
	res := s.do("GET", "/api/v1/admin/tasks/dedup/archived"+query, token, nil)
	require.Equal(s.t, 200, res.status, string(res.body))
	var l archivedList
	require.NoError(s.t, json.Unmarshal(res.body, &l))
	return l
}

// A task whose handler fails is retried, archived, listed with its error
// to its own organisation's admin only, and runs again when retried.
func TestArchivedTasks(t *testing.T) {
	s := newStack(t)
	var failing atomic.Bool
	failing.Store(true)
	var succeeded atomic.Int32
	handlers := workers.Handlers{pipeline.QueueDedup: {pipeline.TaskDedup: asynq.HandlerFunc(func(context.Context, *asynq.Task) error {
		if failing.Load() {
			return errors.New("database on fire")
		}
		succeeded.Add(1)
		return nil
	})}}
	o := s.rdb.Options()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- workers.Run(ctx, workers.Config{
			Redis:  asynq.RedisClientOpt{Addr: o.Addr, DB: o.DB, Password: o.Password},
			Queues: map[string]int{pipeline.QueueDedup: 2}, Handlers: handlers,
			Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
			RetryBase: 10 * time.Millisecond, RetryMax: 20 * time.Millisecond, PollInterval: 50 * time.Millisecond, ShutdownTimeout: time.Second,
		})
	}()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })

	acme, globex := s.orgs["acme"], s.orgs["globex"]
	hash, err := auth.HashPassword(demoPassword)
	require.NoError(t, err)
	require.NoError(t, s.db.Exec(`INSERT INTO users (id, org_id, email, name, role, password_hash, is_active) VALUES (?, ?, 'admin@globex.test', 'G', 'admin', ?, true)`,
		uuid.Must(uuid.NewV7()), globex, hash).Error)
	admin, globexAdmin := s.login("admin@acme.test"), s.login("admin@globex.test")
	failed := s.enqueueTask(acme, asynq.MaxRetry(1))
	theirs := s.archivedTask(globex)

	var l archivedList
	require.Eventually(t, func() bool {
		l = s.archived(admin, "")
		return len(l.Items) == 1
	}, 10*time.Second, 50*time.Millisecond)
	it := l.Items[0]
	require.Equal(t, failed, it.ID)
	require.Equal(t, "dedup", it.Queue)
	require.Equal(t, pipeline.TaskDedup, it.Type)
	require.Equal(t, "database on fire", it.LastError)
	require.Equal(t, 1, it.Retried)
	require.NotNil(t, it.LastFailedAt)
	require.WithinDuration(t, time.Now(), *it.LastFailedAt, time.Minute)

	// the other organisation's admin sees only theirs and cannot touch ours
	gl := s.archived(globexAdmin, "")
	require.Len(t, gl.Items, 1)
	require.Equal(t, theirs, gl.Items[0].ID)
	require.Equal(t, 404, s.do("POST", "/api/v1/admin/tasks/dedup/archived/"+url.PathEscape(failed)+"/retry", globexAdmin, nil).status)
	require.Equal(t, 404, s.do("DELETE", "/api/v1/admin/tasks/dedup/archived/"+url.PathEscape(failed), globexAdmin, nil).status)

	// unknown queue, unknown task, bad paging
	require.Equal(t, 404, s.do("GET", "/api/v1/admin/tasks/mail/archived", admin, nil).status)
	require.Equal(t, 200, s.do("GET", "/api/v1/admin/tasks/triage/archived", admin, nil).status) // known, never used
	require.Equal(t, 404, s.do("POST", "/api/v1/admin/tasks/dedup/archived/nope/retry", admin, nil).status)
	require.Equal(t, 422, s.do("GET", "/api/v1/admin/tasks/dedup/archived?after=bm9wZQ", admin, nil).status)
	require.Equal(t, 422, s.do("GET", "/api/v1/admin/tasks/dedup/archived?limit=0", admin, nil).status)

	// retry: it runs again, now successfully, and leaves the archive
	failing.Store(false)
	res := s.do("POST", "/api/v1/admin/tasks/dedup/archived/"+url.PathEscape(failed)+"/retry", admin, nil)
	require.Equal(t, 202, res.status, string(res.body))
	require.Equal(t, "pending", res.json(t)["state"])
	require.Eventually(t, func() bool { return succeeded.Load() == 1 }, 10*time.Second, 20*time.Millisecond)
	require.Empty(t, s.archived(admin, "").Items)
	require.Equal(t, 404, s.do("POST", "/api/v1/admin/tasks/dedup/archived/"+url.PathEscape(failed)+"/retry", admin, nil).status)

	// paging over three archived tasks, then delete one
	ids := map[string]bool{}
	for range 3 {
		ids[s.archivedTask(acme)] = true
	}
	p1 := s.archived(admin, "?limit=2")
	require.Len(t, p1.Items, 2)
	require.NotEmpty(t, p1.NextCursor)
	p2 := s.archived(admin, "?limit=2&after="+p1.NextCursor)
	require.Len(t, p2.Items, 1)
	require.Empty(t, p2.NextCursor)
	for _, it := range append(p1.Items, p2.Items...) {
		require.True(t, ids[it.ID], it.ID)
		delete(ids, it.ID)
	}
	require.Empty(t, ids)
	require.Equal(t, 204, s.do("DELETE", "/api/v1/admin/tasks/dedup/archived/"+url.PathEscape(p2.Items[0].ID), admin, nil).status)
	require.Len(t, s.archived(admin, "").Items, 2)
	require.Len(t, s.archived(globexAdmin, "").Items, 1)

	var audits int64
	require.NoError(t, s.db.Raw(`SELECT count(*) FROM audit_log WHERE action IN ('task.retried', 'task.deleted') AND org_id = ?`, acme).Scan(&audits).Error)
	require.EqualValues(t, 2, audits)
}
