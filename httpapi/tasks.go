package httpapi

import (
	"cmp"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/internal/apperr"
	"github.com/atumdesk/atumdesk/internal/audit"
	"github.com/atumdesk/atumdesk/pipeline"
)

// Archived (dead-lettered) asynq tasks, for an organisation's admin. Every
// task payload carries its org_id (pipeline.TaskPayload): an admin sees and
// acts on the tasks of their own organisation only; anything else is a 404.

// archivedTaskView is one archived task as the API shows it.
type archivedTaskView struct {
	ID           string     `json:"id"`
	Queue        string     `json:"queue"`
	Type         string     `json:"type"`
	Payload      taskRef    `json:"payload"`
	LastError    string     `json:"last_error"`
	LastFailedAt *time.Time `json:"last_failed_at"`
	Retried      int        `json:"retried"`
	MaxRetry     int        `json:"max_retry"`
}

// taskRef summarises a payload: what the task is about, nothing more.
type taskRef struct {
	EventID   uuid.UUID `json:"event_id"`
	EventType string    `json:"event_type"`
	TicketID  uuid.UUID `json:"ticket_id"`
}

// taskScanPage is the page size used to walk a queue's archive (asynq caps
// an archive at 10,000 tasks per queue).
const taskScanPage = 500

var errTaskNotFound = apperr.New(apperr.NotFound, "Task not found.")

// taskQueue returns the {queue} parameter if it names a known queue.
func (s *Server) taskQueue(r *http.Request) (string, error) {
	if s.tasks == nil {
		return "", apperr.New(apperr.Unavailable, "The task queue is not available.")
	}
	q := chi.URLParam(r, "queue")
	if !pipeline.KnownQueue(q) {
		return "", apperr.New(apperr.NotFound, "Queue not found.")
	}
	return q, nil
}

// ownTask reports whether t belongs to org; a payload without a readable
// org_id belongs to nobody. A batch task (archived only when its failed
// events could not be handed on) is shown by its first event.
func ownTask(t *asynq.TaskInfo, org uuid.UUID) (pipeline.TaskPayload, bool) {
	ps, err := pipeline.ParseTaskPayloads(t.Payload)
	if err != nil {
		return pipeline.TaskPayload{}, false
	}
	return ps[0], ps[0].OrgID == org
}

func viewOf(t *asynq.TaskInfo, p pipeline.TaskPayload) archivedTaskView {
	v := archivedTaskView{ID: t.ID, Queue: t.Queue, Type: t.Type, LastError: t.LastErr, Retried: t.Retried, MaxRetry: t.MaxRetry,
		Payload: taskRef{EventID: p.EventID, EventType: p.EventType, TicketID: p.TicketID}}
	if !t.LastFailedAt.IsZero() {
		at := t.LastFailedAt.UTC()
		v.LastFailedAt = &at
	}
	return v
}

// taskCursor is the keyset position in the order newest failure first, then
// id descending.
type taskCursor struct {
	at time.Time
	id string
}

func (c taskCursor) String() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.at.Unix(), 10) + "|" + c.id))
}

func parseTaskCursor(s string) (taskCursor, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return taskCursor{}, false
	}
	secs, id, ok := strings.Cut(string(b), "|")
	n, err := strconv.ParseInt(secs, 10, 64)
	if !ok || err != nil || id == "" {
		return taskCursor{}, false
	}
	return taskCursor{at: time.Unix(n, 0), id: id}, true
}

func cursorOf(v archivedTaskView) taskCursor {
	c := taskCursor{id: v.ID}
	if v.LastFailedAt != nil {
		c.at = *v.LastFailedAt
	}
	return c
}

// compareTasks orders newest failure first, then by id descending.
func compareTasks(a, b taskCursor) int {
	if c := b.at.Unix() - a.at.Unix(); c != 0 {
		return cmp.Compare(c, 0)
	}
	return strings.Compare(b.id, a.id)
}

func parseTaskPage(v url.Values) (limit int, after *taskCursor, err error) {
	limit = defaultPageSize
	fields := map[string]string{}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxPageSize {
			fields["limit"] = "must be 1.." + strconv.Itoa(maxPageSize)
		}
		limit = n
	}
	if s := v.Get("after"); s != "" {
		c, ok := parseTaskCursor(s)
		if !ok {
			fields["after"] = "must be a cursor returned as next_cursor"
		}
		after = &c
	}
	return limit, after, apperr.Fields(fields)
}

// handleListArchivedTasks lists the caller's organisation's archived tasks
// of a queue, newest failure first.
func (s *Server) handleListArchivedTasks(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	q, err := s.taskQueue(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	limit, after, err := parseTaskPage(r.URL.Query())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// The archive is shared by all organisations and ordered by asynq, so
	// walk it, keep our own tasks and apply the keyset to them.
	var own []archivedTaskView
	for page := 1; ; page++ {
		tasks, err := s.tasks.ListArchivedTasks(q, asynq.Page(page), asynq.PageSize(taskScanPage))
		if errors.Is(err, asynq.ErrQueueNotFound) {
			break // the queue never held a task
		}
		if err != nil {
			s.writeError(w, r, apperr.Wrap(apperr.Unavailable, "The task queue is not available.", err))
			return
		}
		for _, t := range tasks {
			if pl, ok := ownTask(t, p.OrgID); ok {
				own = append(own, viewOf(t, pl))
			}
		}
		if len(tasks) < taskScanPage || r.Context().Err() != nil {
			break
		}
	}
	slices.SortFunc(own, func(a, b archivedTaskView) int { return compareTasks(cursorOf(a), cursorOf(b)) })
	if after != nil {
		i, _ := slices.BinarySearchFunc(own, *after, func(v archivedTaskView, c taskCursor) int { return compareTasks(cursorOf(v), c) })
		for i < len(own) && compareTasks(cursorOf(own[i]), *after) <= 0 {
			i++
		}
		own = own[i:]
	}
	res := pageResult[archivedTaskView]{Items: own}
	if len(own) > limit {
		res.Items = own[:limit]
		res.NextCursor = cursorOf(own[limit-1]).String()
	}
	if res.Items == nil {
		res.Items = []archivedTaskView{}
	}
	writeJSON(w, http.StatusOK, res)
}

// archivedTask finds an archived task of the caller's organisation.
func (s *Server) archivedTask(r *http.Request) (*asynq.TaskInfo, pipeline.TaskPayload, error) {
	q, err := s.taskQueue(r)
	if err != nil {
		return nil, pipeline.TaskPayload{}, err
	}
	id, err := url.PathUnescape(chi.URLParam(r, "taskID"))
	if err != nil || id == "" || len(id) > 200 {
		return nil, pipeline.TaskPayload{}, errTaskNotFound
	}
	t, err := s.tasks.GetTaskInfo(q, id)
	if errors.Is(err, asynq.ErrQueueNotFound) || errors.Is(err, asynq.ErrTaskNotFound) {
		return nil, pipeline.TaskPayload{}, errTaskNotFound
	}
	if err != nil {
		return nil, pipeline.TaskPayload{}, apperr.Wrap(apperr.Unavailable, "The task queue is not available.", err)
	}
	pl, ok := ownTask(t, mustPrincipal(r).OrgID)
	if !ok || t.State != asynq.TaskStateArchived {
		return nil, pipeline.TaskPayload{}, errTaskNotFound
	}
	return t, pl, nil
}

// taskAction audits and performs act on an archived task: the audit row
// commits only if act succeeded.
func (s *Server) taskAction(r *http.Request, action string, act func(queue, id string) error) (*asynq.TaskInfo, pipeline.TaskPayload, error) {
	p := mustPrincipal(r)
	t, pl, err := s.archivedTask(r)
	if err != nil {
		return nil, pl, err
	}
	err = s.db.WithContext(r.Context()).Transaction(func(tx *gorm.DB) error {
		e := s.auditEntry(r, p, action, "task", pl.TicketID, nil, map[string]any{"queue": t.Queue, "task_id": t.ID, "type": t.Type, "event_id": pl.EventID})
		e.EntityID, e.TicketID = nil, &pl.TicketID
		if err := audit.Write(r.Context(), tx, e); err != nil {
			return err
		}
		if err := act(t.Queue, t.ID); err != nil {
			if errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound) {
				return errTaskNotFound // retried or deleted meanwhile
			}
			return apperr.Wrap(apperr.Unavailable, "The task queue is not available.", err)
		}
		return nil
	})
	return t, pl, err
}

// handleRetryArchivedTask moves an archived task back to pending: it runs again.
func (s *Server) handleRetryArchivedTask(w http.ResponseWriter, r *http.Request) {
	t, pl, err := s.taskAction(r, "task.retried", func(q, id string) error { return s.tasks.RunTask(q, id) })
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	v := viewOf(t, pl)
	writeJSON(w, http.StatusAccepted, map[string]any{"id": v.ID, "queue": v.Queue, "type": v.Type, "state": "pending", "payload": v.Payload})
}

// handleDeleteArchivedTask deletes an archived task for good.
func (s *Server) handleDeleteArchivedTask(w http.ResponseWriter, r *http.Request) {
	if _, _, err := s.taskAction(r, "task.deleted", func(q, id string) error { return s.tasks.DeleteTask(q, id) }); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
