package triage

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/internal/ai"
	"github.com/atumdesk/atumdesk/internal/audit"
	"github.com/atumdesk/atumdesk/internal/database"
	"github.com/atumdesk/atumdesk/internal/sla"
	"github.com/atumdesk/atumdesk/models"
	"github.com/atumdesk/atumdesk/pipeline"
)

// ProcessBatch implements workers.BatchProcessor: the events (of one
// organisation) with a handful of statements whatever their number, the
// provider asked per ticket before one transaction writes them all. If
// the batch fails, its events run one by one and failed holds those that
// failed; err is set only when the database cannot be reached (the batch
// is retried whole; what it did is a no-op then).
func (h *Handler) ProcessBatch(ctx context.Context, events []pipeline.TaskPayload) (failed map[int]error, err error) {
	if len(events) == 0 {
		return nil, nil
	}
	if slices.ContainsFunc(events, func(p pipeline.TaskPayload) bool { return p.OrgID != events[0].OrgID }) {
		return h.oneByOne(ctx, events) // not a batch the dispatcher makes
	}
	res, err := h.run(ctx, events)
	if err == nil {
		for i, p := range events {
			h.logResult(ctx, p, res[i])
		}
		return nil, nil
	}
	if ctx.Err() != nil || database.Unavailable(err) {
		return nil, fmt.Errorf("triage: batch: %w", err)
	}
	h.log.WarnContext(ctx, "triage: batch failed; running its events one by one", "events", len(events), "err", err)
	return h.oneByOne(ctx, events)
}

// oneByOne runs each event through Process, returning the failures by index.
func (h *Handler) oneByOne(ctx context.Context, events []pipeline.TaskPayload) (map[int]error, error) {
	return pipeline.OneByOne(ctx, "triage", events, func(ctx context.Context, p pipeline.TaskPayload) error {
		res, err := h.Process(ctx, p)
		if err == nil {
			h.logResult(ctx, p, res)
		}
		return err
	})
}

type ticketRow struct {
	ID          uuid.UUID
	OrgID       uuid.UUID
	Number      int64
	Subject     string
	Description string
	Status      models.TicketStatus
	Priority    models.Priority
	ServiceID   *uuid.UUID
	Category    *string
	RequesterID uuid.UUID
}

const ticketColumns = `t.id, t.org_id, t.number, t.subject, t.description, t.status, t.priority, t.service_id, t.category, t.requester_id`

// work is one event to triage: its index in the batch, its ticket (the
// locked row, shared by the events of one ticket) and the suggestion.
type work struct {
	i   int
	t   *ticketRow
	sug ai.Suggestion
}

// run triages the tickets of events (one organisation): which events are
// new and their tickets are read in one query, the provider is asked once
// per ticket outside the transaction (it may take seconds), and one
// transaction records the events (processed_events), locks the tickets and
// writes. An event already processed is a no-op; one whose ticket is gone
// is done (nothing to do). It returns each event's Result.
func (h *Handler) run(ctx context.Context, events []pipeline.TaskPayload) ([]Result, error) {
	results := make([]Result, len(events))
	orgID := events[0].OrgID
	pre, err := pending(ctx, h.db, orgID, events)
	if err != nil {
		return nil, err
	}
	var todo []int
	var texts []ai.Ticket
	text := map[uuid.UUID]int{} // ticket → its index in texts
	for i, p := range events {
		switch r := pre[i].Ticket; {
		case pre[i].Done:
			results[i].AlreadyProcessed = true
		case r.ID == uuid.Nil:
			h.log.WarnContext(ctx, "triage: ticket not found; nothing to do", "ticket_id", p.TicketID, "org_id", p.OrgID)
		default:
			todo = append(todo, i)
			if _, ok := text[r.ID]; !ok {
				text[r.ID] = len(texts)
				texts = append(texts, ai.Ticket{ID: r.ID, OrgID: r.OrgID, Subject: r.Subject, Body: r.Description})
			}
		}
	}
	if len(todo) == 0 {
		return results, nil
	}
	sugs, err := h.ai.TriageAll(ctx, texts)
	if err != nil {
		return nil, err
	}
	settings, _, err := h.ai.Org(ctx, orgID)
	if err != nil {
		return nil, err
	}
	err = h.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		ids := make([]uuid.UUID, len(todo))
		for k, i := range todo {
			ids[k] = events[i].EventID
		}
		fresh, err := pipeline.MarkProcessed(ctx, tx, Consumer, ids)
		if err != nil {
			return err
		}
		var items []work
		var tickets []uuid.UUID
		for _, i := range todo {
			results[i] = Result{}
			id := events[i].EventID
			if !fresh[id] { // done meanwhile, or given twice in the batch
				results[i].AlreadyProcessed = true
				continue
			}
			delete(fresh, id)
			tid := events[i].TicketID
			items = append(items, work{i: i, sug: sugs[text[tid]]})
			tickets = append(tickets, tid)
		}
		locked, err := lockTickets(tx, orgID, tickets)
		if err != nil {
			return err
		}
		kept := items[:0]
		for _, it := range items {
			if it.t = locked[events[it.i].TicketID]; it.t != nil { // gone meanwhile: nothing to do
				kept = append(kept, it)
			}
		}
		return h.write(ctx, tx, orgID, kept, settings, results)
	})
	if err != nil {
		return nil, err
	}
	return results, nil
}

// pendingRow is an event of the batch: already processed, or the ticket
// it is about (ID nil when there is none).
type pendingRow struct {
	N      int
	Done   bool
	Ticket ticketRow `gorm:"embedded"`
}

// pending reads, in one query, whether each event was processed and the
// tickets of those that were not (unlocked: the provider is asked before
// the transaction). The rows are in the order of events.
func pending(ctx context.Context, db *gorm.DB, orgID uuid.UUID, events []pipeline.TaskPayload) ([]pendingRow, error) {
	eventIDs, ticketIDs := make([]uuid.UUID, len(events)), make([]uuid.UUID, len(events))
	for i, p := range events {
		eventIDs[i], ticketIDs[i] = p.EventID, p.TicketID
	}
	var rows []pendingRow
	// Arrays, not JSON: the planner sees how many rows unnest gives (a
	// function over JSON counts as 100, and small tables get scanned whole).
	err := db.WithContext(ctx).Raw(`SELECT e.n, p.event_id IS NOT NULL AS done, `+ticketColumns+`
		FROM unnest(?::uuid[], ?::uuid[]) WITH ORDINALITY AS e(event_id, ticket_id, n)
		LEFT JOIN processed_events p ON p.consumer = ? AND p.event_id = e.event_id
		LEFT JOIN tickets t ON t.org_id = ? AND t.id = e.ticket_id AND p.event_id IS NULL
		ORDER BY e.n`, database.UUIDArray(eventIDs), database.UUIDArray(ticketIDs), Consumer, orgID).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("triage: load %d ticket(s): %w", len(events), err)
	}
	if len(rows) != len(events) {
		return nil, fmt.Errorf("triage: load tickets: %d rows for %d events", len(rows), len(events))
	}
	return rows, nil
}

// lockTickets loads and locks the tickets in id order (the order every
// multi-ticket lock takes, so two batches cannot deadlock on them).
func lockTickets(tx *gorm.DB, orgID uuid.UUID, ids []uuid.UUID) (map[uuid.UUID]*ticketRow, error) {
	out := map[uuid.UUID]*ticketRow{}
	if len(ids) == 0 {
		return out, nil
	}
	var rows []ticketRow
	err := tx.Raw(`SELECT `+ticketColumns+` FROM tickets t WHERE t.org_id = ? AND t.id = ANY(?::uuid[])
		ORDER BY t.id FOR NO KEY UPDATE`, orgID, database.UUIDArray(ids)).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("triage: lock %d ticket(s): %w", len(ids), err)
	}
	for i := range rows {
		out[rows[i].ID] = &rows[i]
	}
	return out, nil
}

// suggestionRow is what one UPDATE row writes to a ticket: the suggestion,
// and the fields auto-applied (nil: kept).
type suggestionRow struct {
	ID           uuid.UUID        `json:"id"`
	AIServiceID  *uuid.UUID       `json:"ai_service_id"`
	AIPriority   models.Priority  `json:"ai_priority"`
	AICategory   *string          `json:"ai_category"`
	AIConfidence float64          `json:"ai_confidence"`
	ServiceID    *uuid.UUID       `json:"service_id"`
	Category     *string          `json:"category"`
	Priority     *models.Priority `json:"priority"`
}

// write stores the suggestions of items (events in batch order, their
// tickets locked), applies the confident ones where the organisation opted
// in, and emits the events: one statement each for the ticket rows, the
// audit rows, the SLA clocks and the outbox.
func (h *Handler) write(ctx context.Context, tx *gorm.DB, orgID uuid.UUID, items []work, st ai.Settings, results []Result) error {
	if len(items) == 0 {
		return nil
	}
	now := h.now().UTC()
	chosen, err := prioritiesChosen(ctx, tx, orgID, items, st)
	if err != nil {
		return err
	}
	rows := map[uuid.UUID]*suggestionRow{}
	var order []uuid.UUID
	var events []pipeline.Event
	var entries []audit.Entry
	var resync []uuid.UUID // tickets whose priority or service the AI set
	for _, it := range items {
		t, sug := it.t, it.sug
		res := &results[it.i]
		*res = Result{Found: true, Suggestion: sug}
		row := rows[t.ID]
		if row == nil {
			row = &suggestionRow{ID: t.ID}
			rows[t.ID] = row
			order = append(order, t.ID)
		}
		row.AIServiceID, row.AIPriority, row.AICategory, row.AIConfidence = sug.ServiceID, sug.Priority, nil, sug.Confidence
		if sug.Category != "" {
			row.AICategory = &sug.Category
		}
		ref := pipeline.TicketRef{OrgID: t.OrgID, TicketID: t.ID, RequesterID: t.RequesterID}
		ev, err := pipeline.NewEvent(ai.EventTriaged, ref, nil, pipeline.AudienceStaff,
			map[string]any{"number": t.Number, "suggestion": sug, "suggested_at": now})
		if err != nil {
			return err
		}
		events = append(events, ev)
		if !st.AutoApply || !isOpen(t.Status) {
			continue
		}
		ch := autoApply(t, sug, st.AutoApplyThreshold, chosen[t.ID])
		if ch.empty() {
			continue
		}
		entry, ev, err := ch.record(t, sug)
		if err != nil {
			return err
		}
		entries = append(entries, entry)
		events = append(events, ev)
		res.Applied = ch.fields()
		// Later events of the ticket see it changed, as one by one.
		if ch.service != nil {
			t.ServiceID, row.ServiceID = ch.service, ch.service
		}
		if ch.category != nil {
			t.Category, row.Category = ch.category, ch.category
		}
		if ch.priority != nil {
			t.Priority, row.Priority = *ch.priority, ch.priority
		}
		if (ch.priority != nil || ch.service != nil) && !slices.Contains(resync, t.ID) {
			resync = append(resync, t.ID)
		}
	}
	list := make([]*suggestionRow, len(order))
	for k, id := range order {
		list[k] = rows[id]
	}
	if err := storeSuggestions(ctx, tx, orgID, list, now); err != nil {
		return err
	}
	if err := audit.WriteMany(ctx, tx, entries); err != nil {
		return err
	}
	if len(resync) > 0 {
		clocks, err := sla.SyncAll(ctx, tx, orgID, resync, now, sla.ReasonScope)
		if err != nil {
			return fmt.Errorf("triage: sla: %w", err)
		}
		events = afterUpdates(events, clocks)
	}
	return pipeline.EmitEvents(ctx, tx, events...)
}

// afterUpdates puts each ticket's SLA events right after its (last)
// ticket.updated event, where running the events one by one puts them.
func afterUpdates(events, clocks []pipeline.Event) []pipeline.Event {
	last := map[uuid.UUID]int{}
	for k, ev := range events {
		if ev.Type == pipeline.EventTicketUpdated {
			last[ev.TicketID] = k
		}
	}
	byTicket := map[uuid.UUID][]pipeline.Event{}
	for _, ev := range clocks {
		byTicket[ev.TicketID] = append(byTicket[ev.TicketID], ev)
	}
	out := make([]pipeline.Event, 0, len(events)+len(clocks))
	for k, ev := range events {
		out = append(out, ev)
		if ev.Type == pipeline.EventTicketUpdated && last[ev.TicketID] == k {
			out = append(out, byTicket[ev.TicketID]...)
		}
	}
	return out
}

// storeSuggestions writes rows in one UPDATE. It names no indexed column
// it does not change (a field not applied is set to itself), so a ticket
// that only gets a suggestion is a HOT update and keeps its updated_at.
func storeSuggestions(ctx context.Context, tx *gorm.DB, orgID uuid.UUID, rows []*suggestionRow, now time.Time) error {
	param, err := json.Marshal(rows)
	if err != nil {
		return fmt.Errorf("triage: store suggestions: %w", err)
	}
	// The id array tells the planner how few tickets are meant (it counts
	// a function over JSON as 100 rows).
	ids := make([]uuid.UUID, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	// ai_confidence arrives as float8 (the shortest decimal of the
	// float64) and is rounded to real as a float8 parameter would be.
	err = tx.WithContext(ctx).Exec(`UPDATE tickets t SET ai_suggested_service_id = s.ai_service_id,
			ai_suggested_priority = s.ai_priority, ai_suggested_category = s.ai_category,
			ai_confidence = s.ai_confidence, ai_suggested_at = ?,
			service_id = coalesce(s.service_id, t.service_id), category = coalesce(s.category, t.category),
			priority = coalesce(s.priority, t.priority)
		FROM jsonb_to_recordset(?::jsonb) AS s(id uuid, ai_service_id uuid, ai_priority text, ai_category text,
			ai_confidence float8, service_id uuid, category text, priority text)
		WHERE t.org_id = ? AND t.id = ANY(?::uuid[]) AND t.id = s.id`, now, string(param), orgID, database.UUIDArray(ids)).Error
	if err != nil {
		return fmt.Errorf("triage: store %d suggestion(s): %w", len(rows), err)
	}
	return nil
}

// change is what auto-apply sets on one ticket (nil: not that field).
type change struct {
	service  *uuid.UUID
	category *string
	priority *models.Priority
	from     models.Priority // the priority replaced
}

// wantsPriority: the suggestion would change the ticket's priority with
// enough confidence, if no human chose it.
func wantsPriority(t *ticketRow, sug ai.Suggestion, threshold float64) bool {
	return sug.Priority.Valid() && sug.Priority != t.Priority && sug.PriorityConfidence >= threshold
}

// autoApply decides which confident suggestions go on fields no human
// chose (priorityChosen: a human chose the ticket's priority).
func autoApply(t *ticketRow, sug ai.Suggestion, threshold float64, priorityChosen bool) change {
	var ch change
	if sug.ServiceID != nil && t.ServiceID == nil && sug.ServiceConfidence >= threshold {
		id := *sug.ServiceID
		ch.service = &id
	}
	if sug.Category != "" && (t.Category == nil || *t.Category == "") && sug.CategoryConfidence >= threshold {
		c := sug.Category
		ch.category = &c
	}
	if wantsPriority(t, sug, threshold) && !priorityChosen {
		p := sug.Priority
		ch.priority, ch.from = &p, t.Priority
	}
	return ch
}

func (ch change) empty() bool { return ch.service == nil && ch.category == nil && ch.priority == nil }

// fields lists the fields changed, sorted.
func (ch change) fields() []string {
	var out []string
	if ch.category != nil {
		out = append(out, "category")
	}
	if ch.priority != nil {
		out = append(out, "priority")
	}
	if ch.service != nil {
		out = append(out, "service_id")
	}
	return out
}

// record returns the change's audit row (actor ai) and ticket.updated
// event (each field's value before and after).
func (ch change) record(t *ticketRow, sug ai.Suggestion) (audit.Entry, pipeline.Event, error) {
	before := map[string]any{}
	after := map[string]any{"confidence": sug.Confidence, "provider": sug.Provider}
	if ch.service != nil {
		before["service_id"], after["service_id"] = nil, *ch.service
	}
	if ch.category != nil {
		before["category"], after["category"] = nil, *ch.category
	}
	if ch.priority != nil {
		before["priority"], after["priority"] = ch.from, *ch.priority
	}
	diff := map[string]any{}
	for k, v := range before {
		diff[k] = map[string]any{"from": v, "to": after[k]}
	}
	entry := audit.Entry{OrgID: &t.OrgID, TicketID: &t.ID, ActorKind: audit.ActorAI,
		Action: "ticket.ai_applied", EntityType: "ticket", EntityID: &t.ID, Before: before, After: after}
	ev, err := pipeline.NewEvent(pipeline.EventTicketUpdated,
		pipeline.TicketRef{OrgID: t.OrgID, TicketID: t.ID, RequesterID: t.RequesterID}, nil, pipeline.AudiencePublic,
		map[string]any{"changes": diff, "by": audit.ActorAI})
	return entry, ev, err
}

// prioritiesChosen asks, for the tickets of items whose priority a
// confident suggestion would change, whether a human chose it (see
// chosenFrom), in one query.
func prioritiesChosen(ctx context.Context, tx *gorm.DB, orgID uuid.UUID, items []work, st ai.Settings) (map[uuid.UUID]bool, error) {
	type q struct {
		ID        uuid.UUID  `json:"id"`
		ServiceID *uuid.UUID `json:"service_id"`
	}
	var ask []q
	current := map[uuid.UUID]models.Priority{}
	for _, it := range items {
		if _, ok := current[it.t.ID]; ok || !st.AutoApply || !isOpen(it.t.Status) ||
			!wantsPriority(it.t, it.sug, st.AutoApplyThreshold) {
			continue
		}
		current[it.t.ID] = it.t.Priority
		ask = append(ask, q{ID: it.t.ID, ServiceID: it.t.ServiceID})
	}
	out := map[uuid.UUID]bool{}
	if len(ask) == 0 {
		return out, nil
	}
	param, err := json.Marshal(ask)
	if err != nil {
		return nil, fmt.Errorf("triage: priority origin: %w", err)
	}
	var rows []struct {
		ID     uuid.UUID
		Origin origin `gorm:"embedded"`
	}
	err = tx.WithContext(ctx).Raw(`SELECT q.id,
		EXISTS (SELECT 1 FROM audit_log a WHERE a.ticket_id = q.id AND a.org_id = ? AND a.actor_kind = 'user'
			AND a.action = 'ticket.updated' AND a.after->'priority' IS NOT NULL) AS staff_changed,
		(SELECT (a.after->>'priority_explicit')::boolean FROM audit_log a WHERE a.ticket_id = q.id AND a.org_id = ?
			AND a.action = 'ticket.created' ORDER BY a.created_at LIMIT 1) AS explicit,
		(SELECT s.default_priority FROM services s WHERE s.org_id = ? AND s.id = q.service_id) AS default
		FROM jsonb_to_recordset(?::jsonb) AS q(id uuid, service_id uuid)`, orgID, orgID, orgID, string(param)).
		Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("triage: priority origin: %w", err)
	}
	for _, r := range rows {
		out[r.ID] = r.Origin.chosen(current[r.ID])
	}
	return out, nil
}

// origin is what the records say of a ticket's priority.
type origin struct {
	StaffChanged bool    // staff changed it (an audited ticket.updated by a user)
	Explicit     *bool   // the ticket.created audit row's priority_explicit
	Default      *string // the default priority of the ticket's service
}

// chosen reports whether a human chose the priority current: staff
// changed it, the submitter chose it, or, when the creation record does
// not say, it differs from the default the ticket would have had (its
// service's default priority, else medium).
func (o origin) chosen(current models.Priority) bool {
	if o.StaffChanged {
		return true
	}
	if o.Explicit != nil {
		return *o.Explicit
	}
	def := models.PriorityMedium
	if o.Default != nil {
		def = models.Priority(*o.Default)
	}
	return current != def
}
