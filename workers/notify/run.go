package notify

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	gomail "github.com/wneessen/go-mail"

	"github.com/atumdesk/atumdesk/internal/database"
	"github.com/atumdesk/atumdesk/pipeline"
)

// stateRetry: a transient failure; the row stays pending for the retry.
const stateRetry = "retry"

// outcome is what a run did for one of its events.
type outcome struct {
	res Result
	err error // retry the event
}

// run handles events of one organisation in a few statements whatever
// their number: the events are read back from the outbox at once, what
// their plans need is loaded with one query per kind (loadFacts), each is
// planned, and all their notifications rows are written in one statement
// (claim). Only then is anything sent: each pending row on its own, under
// its lock, marked in the same transaction (deliver), so a run that dies
// anywhere leaves rows that a later run (the task's retry) settles
// exactly as a single event's would be.
//
// out[i] is what happened to events[i]. err means the run as a whole
// failed: nothing was claimed (loading or writing failed), or ctx ended
// while sending; running it again is safe.
func (h *Handler) run(ctx context.Context, events []pipeline.TaskPayload) ([]outcome, error) {
	if h.db == nil {
		return nil, errors.New("notify: no database")
	}
	out := make([]outcome, len(events))
	if len(events) == 0 {
		return out, nil
	}
	orgID := events[0].OrgID
	// An event twice in one run is handled once; the copy shares its outcome.
	first := make(map[uuid.UUID]int, len(events))
	for i, p := range events {
		if _, ok := first[p.EventID]; !ok {
			first[p.EventID] = i
		}
	}
	defer func() {
		for i, p := range events {
			if j := first[p.EventID]; j != i {
				out[i] = out[j]
			}
		}
	}()

	evs, err := h.loadEvents(ctx, orgID, events, out)
	if err != nil {
		return nil, err
	}
	f, err := h.loadFacts(ctx, orgID, evs)
	if err != nil {
		return nil, err
	}
	var ps []planned
	for i, ev := range evs {
		if ev == nil || first[events[i].EventID] != i {
			continue
		}
		pl, err := h.plan(ctx, ev, f)
		if err != nil {
			out[i].err = err
			continue
		}
		if pl != nil {
			out[i].res.Kind = pl.kind
			ps = append(ps, planned{at: i, ev: ev, pl: pl})
		}
	}
	cs, err := h.claim(ctx, orgID, ps)
	if err != nil {
		return nil, err
	}

	var smtpDown error              // a transient SMTP failure: the rest waits for its retry
	bounced := map[uuid.UUID]bool{} // users the server refused earlier in this run
	for _, c := range cs {
		o := &out[c.at]
		if c.row.Status != StatusPending {
			if !c.inserted {
				o.res.Done++ // settled by an earlier run
				continue
			}
			h.count(c.pl.kind, StatusSuppressed)
			h.log.InfoContext(ctx, "notification suppressed", "event_id", c.ev.ID, "ticket_id", c.pl.t.ID,
				"kind", c.pl.kind, "recipient", c.r.user.Email, "reason", c.r.suppress)
			o.res.Suppressed++
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if smtpDown != nil {
			o.err = cmp.Or(o.err, fmt.Errorf("notify: %s to %s not tried after an SMTP failure: %w", c.pl.kind, c.r.user.Email, smtpDown))
			continue
		}
		if c.r.suppress == "" && bounced[c.r.user.ID] {
			c.r.suppress = ReasonBounced // as it would be had the bounce been seen when planning
		}
		st, refused, err := h.deliver(ctx, c)
		switch st {
		case StatusSent:
			o.res.Sent++
		case StatusSuppressed:
			o.res.Suppressed++
		case StatusFailed:
			o.res.Failed++
		case "":
			o.res.Done++
		}
		if refused {
			bounced[c.r.user.ID] = true
		}
		if err != nil {
			o.err = cmp.Or(o.err, err)
			if st == stateRetry && !recipientDeferred(err) {
				smtpDown = err
			}
		}
	}
	return out, nil
}

// loadEvents reads the events back from the outbox (evs[i] for
// events[i]): nil when it was swept (a task more than a week old: nothing
// sensible to send); an event that cannot be right gets
// its error in out (archived at once: retrying cannot fix it).
func (h *Handler) loadEvents(ctx context.Context, orgID uuid.UUID, events []pipeline.TaskPayload, out []outcome) ([]*pipeline.Event, error) {
	ids := make([]uuid.UUID, len(events))
	for i, p := range events {
		ids[i] = p.EventID
	}
	var rows []struct {
		EventID uuid.UUID
		Payload []byte
	}
	err := h.db.WithContext(ctx).Raw(`SELECT event_id, payload FROM outbox WHERE event_id = ANY(?::uuid[])`, database.UUIDArray(ids)).
		Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("notify: read events: %w", err)
	}
	payloads := make(map[uuid.UUID][]byte, len(rows))
	for _, r := range rows {
		payloads[r.EventID] = r.Payload
	}
	evs := make([]*pipeline.Event, len(events))
	for i, p := range events {
		b, ok := payloads[p.EventID]
		if !ok {
			h.log.WarnContext(ctx, "notify: event no longer in the outbox; nothing sent", "event_id", p.EventID, "ticket_id", p.TicketID)
			continue
		}
		var ev pipeline.Event
		if err := json.Unmarshal(b, &ev); err != nil {
			out[i].err = fmt.Errorf("notify: event %s: %w: %w", p.EventID, err, asynq.SkipRetry)
			continue
		}
		if p.OrgID != orgID || ev.ID != p.EventID || ev.OrgID != p.OrgID || ev.TicketID != p.TicketID {
			out[i].err = fmt.Errorf("notify: event %s names another ticket than its task: %w", p.EventID, asynq.SkipRetry)
			continue
		}
		evs[i] = &ev
	}
	return evs, nil
}

// recipientDeferred reports whether a transient SMTP error concerns the
// recipient alone (RCPT TO answered 4xx: greylisting, a full mailbox), not
// the server: the rest of the run may still go out.
func recipientDeferred(err error) bool {
	var se *gomail.SendError
	return errors.As(err, &se) && se.Reason == gomail.ErrSMTPRcptTo
}
