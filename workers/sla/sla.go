// Package sla is the sla stage: it turns SLA clocks into asynq timers and
// fires them. One task type (pipeline.TaskSLA on queue "sla") carries three
// kinds of task:
//
//   - ticket.created (from the stage graph): starts a clock_start=created
//     clock (internal/sla.Start) and schedules its timers;
//   - ticket.sla_changed (from the stage graph, emitted through the outbox
//     by every change of a clock): drops the timers of due times that moved
//     and schedules the ticket's timers (internal/sla.Pending);
//   - a timer (event_type "sla.timer", enqueued here with ProcessAt): one
//     escalation percent or the breach (100 %) of one clock, which re-reads
//     the ticket under its row lock (internal/sla.Check) and, if the
//     threshold was crossed and still holds, records it once
//     (internal/sla.Fire).
//
// The dispatcher hands the first two over in batches (several events of
// one organisation in one task): ProcessBatch starts the new tickets'
// clocks in one transaction and reads and schedules for all the batch's
// tickets at once; a one-event task (a retry) runs as a batch of one, so
// both do the same. Timers always run alone.
//
// # Why timers are never lost
//
// A clock's change and its ticket.sla_changed event commit in one
// transaction (the outbox), so no timer is scheduled for a change that
// rolled back and none is missing for one that committed. The relay
// publishes the event at least once, the dispatcher enqueues the
// scheduling task before it commits its Kafka offset, and the scheduling
// task is retried until every timer is in Redis. Timers are asynq
// scheduled tasks, kept in Redis (AOF, noeviction) across restarts of every
// process; one that is running when its worker dies goes back to the queue
// when its lease expires. Enqueueing from the API after the commit would
// lose the timers of a process that dies in between, and enqueueing inside
// the transaction would schedule timers for changes that roll back.
// Reconcile re-creates the timers of every running clock (after a Redis
// loss, say); it is harmless to run at any time.
//
// # Exactly once, on time
//
// A timer's task id encodes (ticket, clock, percent, due time), so
// scheduling twice makes one task and a due time that moves makes new
// ones; the old ones are deleted when the move is seen and, if they run
// anyway, find another due time and do nothing. What a timer records is
// guarded in PostgreSQL (sla_breaches and sla_escalations keys, ON
// CONFLICT DO NOTHING, in the transaction that writes the event), so a
// timer run twice, or two timers of one threshold, fire it once.
//
// asynq keeps a scheduled task's time to the second and looks for due
// tasks every poll interval, so a timer is made due TimerLead (1 s) before
// its instant and waits in the handler, holding a worker slot but no lock
// or connection, until the exact instant (at most MaxWait). Give the sla
// queue a poll interval of at most ~500 ms (100 ms here) and a concurrency
// above the number of timers due within two seconds.
package sla

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"

	slacore "github.com/atumdesk/atumdesk/internal/sla"
	"github.com/atumdesk/atumdesk/pipeline"
)

// Consumer is the stage's name in processed_events.
const Consumer = "sla"

// TimerEventType is the event_type of a timer task's payload.
const TimerEventType = "sla.timer"

// timerNamespace derives a timer task's event_id (which the admin task
// endpoints and logs show) from its task id.
var timerNamespace = uuid.MustParse("6f1d2c1e-5a7b-4c1f-9d59-3c6b1d7e0a51")

// TimerLead is how long before its instant a timer is due in asynq. asynq
// keeps a task's time to the whole second and forwards due tasks every
// poll interval, so a timer due at its instant would run up to a second
// early or a poll interval (and a dequeue poll) late; due a second ahead
// it is in a worker's hands in time and waits there for the instant.
const TimerLead = time.Second

// Config configures the stage. Zero values get the defaults noted.
type Config struct {
	// Redis is where timers are scheduled; without it scheduling fails
	// (and is retried).
	Redis      asynq.RedisConnOpt
	Logger     *slog.Logger          // nil: discarded
	Registerer prometheus.Registerer // nil: metrics not exported
	// MaxWait is how early a timer may start and still wait for its
	// instant in the handler (default 5 s); an earlier one is retried.
	MaxWait time.Duration
	// MaxRetry per timer task (default 25).
	MaxRetry int
	// Now is the clock (tests).
	Now func() time.Time
}

// Handler is the asynq handler of pipeline.TaskSLA.
type Handler struct {
	db      *gorm.DB
	cfg     Config
	log     *slog.Logger
	client  *asynq.Client
	insp    *asynq.Inspector
	metrics *collectors
	cache   *slacore.Cache
}

// New returns the handler. A metrics registration error is logged and
// the metrics are then not exported.
func New(db *gorm.DB, cfg Config) *Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 5 * time.Second
	}
	if cfg.MaxRetry <= 0 {
		cfg.MaxRetry = 25
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	h := &Handler{db: db, cfg: cfg, log: cfg.Logger, cache: slacore.NewCache()}
	if cfg.Redis != nil {
		h.client, h.insp = asynq.NewClient(cfg.Redis), asynq.NewInspector(cfg.Redis)
	}
	m, err := newCollectors(cfg.Registerer, db, cfg.Logger)
	if err != nil {
		cfg.Logger.Error("sla: metrics not registered", "err", err)
		m, _ = newCollectors(nil, nil, cfg.Logger)
	}
	h.metrics = m
	return h
}

// Close releases the Redis connections.
func (h *Handler) Close() error {
	if h.client == nil {
		return nil
	}
	return errors.Join(h.client.Close(), h.insp.Close())
}

// timerPayload is a timer task's payload: a pipeline.TaskPayload (so the
// admin task endpoints can scope it to its organisation) plus the timer.
type timerPayload struct {
	pipeline.TaskPayload
	Timer slacore.Timer `json:"timer"`
}

// ProcessTask implements asynq.Handler. A payload that cannot be read is
// archived at once (retrying cannot fix it).
func (h *Handler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	p, err := pipeline.ParseTaskPayload(t.Payload())
	if err != nil {
		return fmt.Errorf("sla: %w: %w", err, asynq.SkipRetry)
	}
	if p.EventType != TimerEventType {
		return h.process(ctx, p)
	}
	var tp timerPayload
	if err := json.Unmarshal(t.Payload(), &tp); err != nil || !tp.Timer.Metric.Valid() || tp.Timer.TicketID != p.TicketID || tp.Timer.OrgID != p.OrgID {
		return fmt.Errorf("sla: bad timer payload: %w", asynq.SkipRetry)
	}
	return h.Fire(ctx, tp.Timer)
}

// process runs one event that is not a timer: a batch of one (batch.go),
// so the one-event path (retries) and batches do the same.
func (h *Handler) process(ctx context.Context, p pipeline.TaskPayload) error {
	failed, err := h.run(ctx, []pipeline.TaskPayload{p})
	if err != nil {
		return err
	}
	return failed[0]
}

// ignore answers an event this stage does not run: a timer without its
// timer (only a timer task's own payload has it) cannot run, anything
// else is not for this stage.
func (h *Handler) ignore(ctx context.Context, p pipeline.TaskPayload) error {
	if p.EventType == TimerEventType {
		return fmt.Errorf("sla: timer event %s without its timer: %w", p.EventID, asynq.SkipRetry)
	}
	h.log.WarnContext(ctx, "sla: task for an event this stage does not handle; ignored", "event_type", p.EventType, "event_id", p.EventID)
	return nil
}

// staleTimers lists the timers of the due times a ticket.sla_changed
// event (p, data) replaced, unless the ticket has that due time again
// (plan, read after the change): those to drop.
func staleTimers(p pipeline.TaskPayload, data *slacore.ChangedData, plan slacore.Plan) []slacore.Timer {
	prev := []*time.Time{data.Previous.FirstResponseDueAt, data.Previous.ResolutionDueAt}
	var stale [2]*time.Time
	for i, m := range slacore.Metrics {
		if cur := plan.Due(m); prev[i] != nil && (cur == nil || !cur.Equal(*prev[i])) {
			stale[i] = prev[i]
		}
	}
	percents := plan.Percents
	if percents == nil {
		percents = []int{slacore.BreachPercent}
	}
	return slacore.TimersFor(p.OrgID, p.TicketID, percents, stale[0], stale[1])
}

// drop deletes timers from Redis, several at a time. Best effort: a timer
// left behind finds another due time when it runs and does nothing.
func (h *Handler) drop(ctx context.Context, timers []slacore.Timer) {
	eachTimer(timers, func(tm slacore.Timer) {
		err := h.insp.DeleteTask(pipeline.QueueSLA, tm.TaskID())
		if err != nil && !errors.Is(err, asynq.ErrTaskNotFound) && !errors.Is(err, asynq.ErrQueueNotFound) {
			h.log.DebugContext(ctx, "sla: stale timer not deleted", "task_id", tm.TaskID(), "err", err)
		}
	})
}

// Schedule enqueues the timers the ticket's clocks need now (see
// internal/sla.Pending), each under its deterministic task id, so calling
// it again adds nothing. It returns how many were new.
func (h *Handler) Schedule(ctx context.Context, orgID, ticketID uuid.UUID) (int, error) {
	plans, err := slacore.PendingAll(ctx, h.db, orgID, []uuid.UUID{ticketID})
	if err != nil {
		return 0, err
	}
	n, errs := h.scheduleAll(ctx, plans)
	return n, errs[ticketID]
}

func (h *Handler) enqueue(ctx context.Context, tm slacore.Timer) (bool, error) {
	if h.client == nil {
		return false, errors.New("sla: no Redis to schedule timers in")
	}
	id := tm.TaskID()
	b, err := json.Marshal(timerPayload{TaskPayload: pipeline.TaskPayload{
		EventID: uuid.NewSHA1(timerNamespace, []byte(id)), EventType: TimerEventType, OrgID: tm.OrgID, TicketID: tm.TicketID,
	}, Timer: tm})
	if err != nil {
		return false, err
	}
	// No retention: once a timer has run its id is free again, so a clock
	// paused and resumed without moving its due time gets the timer anew.
	_, err = h.client.EnqueueContext(ctx, asynq.NewTask(pipeline.TaskSLA, b),
		asynq.Queue(pipeline.QueueSLA), asynq.TaskID(id), asynq.ProcessAt(tm.At.Add(-TimerLead)),
		asynq.MaxRetry(h.cfg.MaxRetry), asynq.Timeout(h.cfg.MaxWait+30*time.Second))
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("sla: schedule %s: %w", id, err)
	}
	h.metrics.scheduled.Inc()
	return true, nil
}

// Fire runs one timer: it checks the threshold under the ticket's lock and
// records it if it holds. A timer that starts before its instant (asynq
// keeps times to the second) waits for it, up to MaxWait.
func (h *Handler) Fire(ctx context.Context, tm slacore.Timer) error {
	// Wait for the instant the timer was made for before touching the
	// database: timers due in one second all start at its beginning.
	if d := tm.At.Sub(h.cfg.Now()); d > 0 && d <= h.cfg.MaxWait {
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
	for {
		var v slacore.Verdict
		var fired *slacore.Fired
		err := h.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			now := h.cfg.Now()
			var err error
			if v, err = slacore.Check(ctx, tx, tm, now, h.cache); err != nil || !v.Fire {
				return err
			}
			fired, err = slacore.Fire(ctx, tx, v, tm, now)
			return err
		})
		if err != nil {
			return fmt.Errorf("sla: timer %s: %w", tm.TaskID(), err)
		}
		if v.Why == "early" {
			if v.Wait > h.cfg.MaxWait {
				return fmt.Errorf("sla: timer %s ran %s early", tm.TaskID(), v.Wait)
			}
			if err := sleep(ctx, v.Wait); err != nil {
				return err
			}
			continue
		}
		if fired != nil {
			h.recordFired(ctx, tm, fired)
		}
		return nil
	}
}

// sleep waits d, or until ctx ends (a worker shutting down hands the
// timer back to the queue).
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (h *Handler) recordFired(ctx context.Context, tm slacore.Timer, f *slacore.Fired) {
	d := f.Data
	h.metrics.lateness.Observe(max(d.FiredAt.Sub(d.CrossedAt), 0).Seconds())
	if d.Breach {
		h.metrics.breaches.WithLabelValues(d.PolicyName, string(d.Metric)).Inc()
		h.log.InfoContext(ctx, "sla breached", "ticket_id", tm.TicketID, "metric", d.Metric, "due_at", d.DueAt, "policy", d.PolicyName)
	} else {
		h.metrics.thresholds.WithLabelValues(d.PolicyName, string(d.Metric)).Inc()
		h.log.InfoContext(ctx, "sla threshold crossed", "ticket_id", tm.TicketID, "metric", d.Metric, "percent", d.Percent, "policy", d.PolicyName)
	}
}

// Reconcile schedules the timers of every running clock, across
// organisations, in pages: it re-creates timers Redis lost and adds
// nothing otherwise. It returns how many timers were new.
func (h *Handler) Reconcile(ctx context.Context) (int, error) {
	total := 0
	after := uuid.Nil
	for {
		keys, err := slacore.Running(ctx, h.db, after, 500)
		if err != nil {
			return total, err
		}
		byOrg := map[uuid.UUID][]uuid.UUID{}
		for _, k := range keys {
			byOrg[k.OrgID] = append(byOrg[k.OrgID], k.ID)
		}
		for orgID, ids := range byOrg {
			plans, err := slacore.PendingAll(ctx, h.db, orgID, ids)
			if err != nil {
				return total, err
			}
			n, errs := h.scheduleAll(ctx, plans)
			total += n
			if err := errors.Join(slices.Collect(maps.Values(errs))...); err != nil {
				return total, err
			}
		}
		if len(keys) < 500 {
			return total, nil
		}
		after = keys[len(keys)-1].ID
	}
}

// RunReconciler runs Reconcile at start and then every interval until ctx
// ends (then it returns nil): a worker process serving the sla queue runs
// it beside the queue, so timers lost with Redis data come back. A failed
// pass is logged and tried again at the next interval.
func RunReconciler(ctx context.Context, db *gorm.DB, redis asynq.RedisConnOpt, log *slog.Logger, interval time.Duration) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := New(db, Config{Redis: redis, Logger: log})
	defer h.Close()
	for {
		n, err := h.Reconcile(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			log.Warn("sla: reconcile failed; will retry", "err", err, "scheduled", n)
		case n > 0:
			log.Info("sla: reconcile re-created timers", "scheduled", n)
		}
		if err := sleep(ctx, interval); err != nil {
			return nil
		}
	}
}
