package sla

import (
	"context"
	"sync"

	"github.com/google/uuid"

	"github.com/atumdesk/atumdesk/internal/database"
	slacore "github.com/atumdesk/atumdesk/internal/sla"
	"github.com/atumdesk/atumdesk/pipeline"
)

// scheduleConcurrency bounds the timers enqueued (or deleted) at once.
// asynq has no pipelined calls (each is a Redis script call of its own),
// so a batch's timers go out side by side: the wall time of a few round
// trips, not of one per timer.
const scheduleConcurrency = 8

// ProcessBatch implements workers.BatchProcessor for the ticket.created
// and ticket.sla_changed events the dispatcher batches (timers keep their
// own tasks): the clocks of the new tickets start in one transaction, the
// changed events are read in one query, the plans of all the batch's
// tickets in a few, and the timers are scheduled. A failure of the batch
// as a whole runs its events one by one, each failing alone; the database
// being unavailable fails the batch (it is retried; what was done is a
// no-op then). An event whose timers could not be scheduled is failed.
func (h *Handler) ProcessBatch(ctx context.Context, events []pipeline.TaskPayload) (map[int]error, error) {
	failed, err := h.run(ctx, events)
	if err == nil {
		return failed, nil
	}
	if database.Unavailable(err) {
		return nil, err
	}
	h.log.WarnContext(ctx, "sla: batch failed; running its events one by one", "events", len(events), "err", err)
	failed = map[int]error{}
	for i, p := range events {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := h.process(ctx, p); err != nil {
			failed[i] = err
		}
	}
	return failed, nil
}

// run does what the events need, as a batch: err fails them all, failed
// holds the events that failed alone.
func (h *Handler) run(ctx context.Context, events []pipeline.TaskPayload) (map[int]error, error) {
	failed := map[int]error{}
	if len(events) == 0 {
		return failed, nil
	}
	orgID := events[0].OrgID
	var created, tickets []uuid.UUID
	var changed []int
	byTicket := map[uuid.UUID][]int{} // the events of each ticket
	for i, p := range events {
		switch {
		case p.OrgID != orgID:
			// Not in a batch from the dispatcher; run alone all the same.
			if err := h.process(ctx, p); err != nil {
				failed[i] = err
			}
			continue
		case p.EventType == pipeline.EventTicketCreated:
			created = append(created, p.TicketID)
		case p.EventType == pipeline.EventSLAChanged:
			changed = append(changed, i)
		default:
			if err := h.ignore(ctx, p); err != nil {
				failed[i] = err
			}
			continue
		}
		if _, ok := byTicket[p.TicketID]; !ok {
			tickets = append(tickets, p.TicketID)
		}
		byTicket[p.TicketID] = append(byTicket[p.TicketID], i)
	}
	if len(tickets) == 0 {
		return failed, nil
	}
	if len(created) > 0 {
		if _, err := slacore.StartAll(ctx, h.db, orgID, created, h.cfg.Now()); err != nil {
			return nil, err
		}
	}
	plans, err := h.changed(ctx, orgID, events, changed, tickets)
	if err != nil {
		return nil, err
	}
	if plans == nil {
		if plans, err = slacore.PendingAll(ctx, h.db, orgID, tickets); err != nil {
			return nil, err
		}
	}
	_, errs := h.scheduleAll(ctx, plans)
	for ticket, err := range errs {
		for _, i := range byTicket[ticket] {
			failed[i] = err
		}
	}
	return failed, nil
}

// changed does for the ticket.sla_changed events at idx what comes before
// scheduling: the metrics of the clocks each met (once per event, however
// often it comes) and the timers of the due times each replaced dropped.
// It returns the plans of tickets when they were read for that and are
// still current (nil: read them).
func (h *Handler) changed(ctx context.Context, orgID uuid.UUID, events []pipeline.TaskPayload, idx []int,
	tickets []uuid.UUID) (map[uuid.UUID]slacore.Plan, error) {
	if len(idx) == 0 {
		return nil, nil
	}
	ids := make([]uuid.UUID, len(idx))
	for k, i := range idx {
		ids[k] = events[i].EventID
	}
	data, err := slacore.ChangedEvents(ctx, h.db, ids)
	if err != nil {
		return nil, err
	}
	var met []uuid.UUID
	known := false
	for _, id := range ids {
		d, ok := data[id]
		switch {
		case ok && d == nil:
			h.log.WarnContext(ctx, "sla: undecodable sla_changed event", "event_id", id)
		case d != nil:
			known = true
			if len(d.Met) > 0 {
				met = append(met, id)
			}
		}
	}
	first, err := pipeline.MarkProcessed(ctx, h.db, Consumer, met)
	if err != nil {
		return nil, err
	}
	for _, id := range met {
		if first[id] {
			h.metrics.observeMet(data[id].Met)
		}
	}
	if h.insp == nil || !known {
		return nil, nil
	}
	plans, err := slacore.PendingAll(ctx, h.db, orgID, tickets)
	if err != nil {
		return nil, err
	}
	var stale []slacore.Timer
	for _, i := range idx {
		if d := data[events[i].EventID]; d != nil {
			stale = append(stale, staleTimers(events[i], d, plans[events[i].TicketID])...)
		}
	}
	if len(stale) == 0 {
		return plans, nil
	}
	h.drop(ctx, stale)
	// Read again: a due time that came back while the timers were dropped
	// is scheduled anew.
	return nil, nil
}

// scheduleAll enqueues the plans' timers, several at a time.
// It returns how many were new, and the error of each ticket whose timers
// are not all in Redis.
func (h *Handler) scheduleAll(ctx context.Context, plans map[uuid.UUID]slacore.Plan) (int, map[uuid.UUID]error) {
	var timers []slacore.Timer
	for _, p := range plans {
		timers = append(timers, p.Timers...)
	}
	errs := map[uuid.UUID]error{}
	var mu sync.Mutex
	added := 0
	eachTimer(timers, func(tm slacore.Timer) {
		ok, err := h.enqueue(ctx, tm)
		mu.Lock()
		defer mu.Unlock()
		if ok {
			added++
		}
		if err != nil && errs[tm.TicketID] == nil {
			errs[tm.TicketID] = err
		}
	})
	return added, errs
}

// eachTimer runs fn for each timer, scheduleConcurrency at a time.
func eachTimer(timers []slacore.Timer, fn func(slacore.Timer)) {
	work := make(chan slacore.Timer)
	var wg sync.WaitGroup
	for range min(len(timers), scheduleConcurrency) {
		wg.Go(func() {
			for tm := range work {
				fn(tm)
			}
		})
	}
	for _, tm := range timers {
		work <- tm
	}
	close(work)
	wg.Wait()
}
