package dedup

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/internal/audit"
	"github.com/atumdesk/atumdesk/internal/database"
	"github.com/atumdesk/atumdesk/models"
	"github.com/atumdesk/atumdesk/pipeline"
)

// pageSize is how many candidates of one ticket a lookup reads at a time.
const pageSize = 500

// ProcessBatch implements workers.BatchProcessor: the events (of one
// organisation) in one transaction, with a handful of statements whatever
// their number. The verdicts are those of running the events one by one in
// the order their tickets were created. If the transaction fails, the
// events run one by one and failed holds those that failed; err is set
// only when the database is unreachable (the batch is then retried whole).
func (h *Handler) ProcessBatch(ctx context.Context, events []pipeline.TaskPayload) (failed map[int]error, err error) {
	if len(events) == 0 {
		return nil, nil
	}
	if slices.ContainsFunc(events, func(p pipeline.TaskPayload) bool { return p.OrgID != events[0].OrgID }) {
		return h.oneByOne(ctx, events, nil) // not a batch the dispatcher makes
	}
	var res []Result
	var order []int
	err = h.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		res, order, err = h.run(ctx, tx, events[0].OrgID, events)
		return err
	})
	if err == nil {
		for i, p := range events {
			h.logResult(ctx, p, res[i])
		}
		return nil, nil
	}
	if ctx.Err() != nil || database.Unavailable(err) {
		return nil, fmt.Errorf("dedup: batch: %w", err)
	}
	h.log.WarnContext(ctx, "dedup: batch failed; running its events one by one", "events", len(events), "err", err)
	return h.oneByOne(ctx, events, order)
}

// oneByOne runs events through Process in order (all of them when order is
// nil), returning the failures by index.
func (h *Handler) oneByOne(ctx context.Context, events []pipeline.TaskPayload, order []int) (map[int]error, error) {
	if order == nil {
		order = make([]int, len(events))
		for i := range order {
			order[i] = i
		}
	}
	failed := map[int]error{}
	for _, i := range order {
		res, err := h.Process(ctx, events[i])
		switch {
		case err == nil:
			h.logResult(ctx, events[i], res)
		case ctx.Err() != nil || database.Unavailable(err):
			return nil, fmt.Errorf("dedup: event %s: %w", events[i].EventID, err)
		default:
			failed[i] = err
		}
	}
	return failed, nil
}

// work is one ticket to decide and where its lookup stands.
type work struct {
	t             *ticketRow
	subject, body string   // normalised
	messageIDs    []string // the stored spellings of its Message-ID, if any

	byMessageID []*candidate // every Message-ID match, earliest first
	byContent   []*candidate // content matches on the pages read so far
	after       *candidate   // last candidate read
	narrowed    bool         // later pages use the full-text index
	exhausted   bool         // every page read

	decided bool
	orig    *candidate // nil: repeats no open ticket
	reason  string
}

// candidate is a ticket another may repeat.
type candidate struct {
	ID              uuid.UUID
	Number          int64
	Subject         string
	RequesterID     uuid.UUID
	SourceMessageID *string
	CreatedAt       time.Time
}

// before orders tickets as the lookups do: by (created_at, id).
func before(at time.Time, id uuid.UUID, at2 time.Time, id2 uuid.UUID) bool {
	if c := at.Compare(at2); c != 0 {
		return c < 0
	}
	return bytes.Compare(id[:], id2[:]) < 0
}

// run is the stage for events of organisation org in transaction tx. It
// returns each event's Result and the order the events were taken in
// (their tickets' creation order), which a fallback repeats.
func (h *Handler) run(ctx context.Context, tx *gorm.DB, org uuid.UUID, events []pipeline.TaskPayload) ([]Result, []int, error) {
	results := make([]Result, len(events))
	ids := make([]uuid.UUID, len(events))
	for i, p := range events {
		ids[i] = p.EventID
	}
	fresh, err := pipeline.MarkProcessed(ctx, tx, Consumer, ids)
	if err != nil {
		return nil, nil, err
	}
	var ticketIDs []uuid.UUID
	seenEvent := map[uuid.UUID]bool{}
	isNew := make([]bool, len(events))
	for i, p := range events {
		// The same event twice in a batch counts once, as it would one by one.
		isNew[i] = fresh[p.EventID] && !seenEvent[p.EventID]
		seenEvent[p.EventID] = true
		if !isNew[i] {
			results[i].AlreadyProcessed = true
			continue
		}
		ticketIDs = append(ticketIDs, p.TicketID)
	}
	tickets, err := lockTickets(tx, org, ticketIDs)
	if err != nil {
		return nil, nil, err
	}

	// Creation order; events of one ticket keep theirs.
	order := make([]int, len(events))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		ta, tb := tickets[events[a].TicketID], tickets[events[b].TicketID]
		switch {
		case ta == nil || tb == nil:
			return cmp.Compare(btoi(ta != nil), btoi(tb != nil))
		case ta == tb:
			return 0
		case before(ta.CreatedAt, ta.ID, tb.CreatedAt, tb.ID):
			return -1
		default:
			return 1
		}
	})

	// The first event of each open, undecided ticket decides it.
	var works []*work
	workOf := map[uuid.UUID]*work{}
	for _, i := range order {
		t := tickets[events[i].TicketID]
		if !isNew[i] || t == nil || workOf[t.ID] != nil || t.IsDuplicateOf != nil || !isOpen(t.Status) {
			continue
		}
		w := &work{t: t, subject: NormaliseSubject(t.Subject), body: NormaliseBody(t.Description)}
		if mid := NormaliseMessageID(deref(t.SourceMessageID)); mid != "" {
			w.messageIDs = []string{mid, "<" + mid + ">"}
		}
		works = append(works, w)
		workOf[t.ID] = w
	}
	if err := h.decide(tx, org, works, workOf, tickets); err != nil {
		return nil, order, err
	}

	var w writes
	done := map[uuid.UUID]bool{}
	for _, i := range order {
		p := events[i]
		t := tickets[p.TicketID]
		switch {
		case !isNew[i]:
		case t == nil:
			// The event commits with its ticket, so the ticket was deleted since.
			h.log.WarnContext(ctx, "dedup: ticket not found; nothing to do", "ticket_id", p.TicketID, "org_id", p.OrgID)
		case workOf[t.ID] == nil:
			// decided already (e.g. by an agent) or no longer open
		case workOf[t.ID].orig == nil:
			// Repeats no open ticket: so does a later event of it.
			if err := w.passed(t); err != nil {
				return nil, order, err
			}
		case !done[t.ID]:
			wk := workOf[t.ID]
			if err := w.duplicate(t, wk.orig, wk.reason); err != nil {
				return nil, order, err
			}
			results[i].DuplicateOf, results[i].Reason = &wk.orig.ID, wk.reason
		}
		if t != nil {
			done[t.ID] = true
		}
	}
	return results, order, w.flush(ctx, tx, org)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// lockTickets loads and locks the tickets (in id order, so two batches
// cannot deadlock on them): an agent's concurrent change either lands
// before and is seen, or waits for the verdict.
func lockTickets(tx *gorm.DB, org uuid.UUID, ids []uuid.UUID) (map[uuid.UUID]*ticketRow, error) {
	out := map[uuid.UUID]*ticketRow{}
	if len(ids) == 0 {
		return out, nil
	}
	var rows []ticketRow
	err := tx.Raw(`SELECT id, org_id, number, subject, description, status, requester_id, source_message_id, is_duplicate_of, created_at
		FROM tickets WHERE org_id = ? AND id = ANY(?::uuid[]) ORDER BY id FOR NO KEY UPDATE`, org, database.UUIDArray(ids)).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("dedup: load %d ticket(s): %w", len(ids), err)
	}
	for i := range rows {
		out[rows[i].ID] = &rows[i]
	}
	return out, nil
}

// decide finds the original of each of works (in creation order). A
// ticket of the batch marked duplicate is no longer a candidate for the
// tickets after it, exactly as if each had committed before the next ran;
// a ticket waits for the verdict of a batch ticket it may repeat.
func (h *Handler) decide(tx *gorm.DB, org uuid.UUID, works []*work, workOf map[uuid.UUID]*work, tickets map[uuid.UUID]*ticketRow) error {
	if len(works) == 0 {
		return nil
	}
	if err := messageIDMatches(tx, org, works); err != nil {
		return err
	}
	bodies := map[uuid.UUID]string{} // normalised; the batch's own are at hand
	for _, t := range tickets {
		bodies[t.ID] = NormaliseBody(t.Description)
	}
	subjects := map[uuid.UUID]string{} // normalised, by candidate
	marked := map[uuid.UUID]bool{}
	for {
		var need []*work
		for _, w := range works {
			if w.decided {
				continue
			}
			orig, reason, wait := w.pick(marked, workOf)
			switch {
			case wait:
			case orig != nil:
				w.decided, w.orig, w.reason = true, orig, reason
				marked[w.t.ID] = true
			case w.exhausted:
				w.decided = true
			default:
				need = append(need, w)
			}
		}
		if len(need) == 0 {
			// The earliest undecided ticket never waits (what it may repeat
			// was created before it, so is decided): all are decided.
			if slices.ContainsFunc(works, func(w *work) bool { return !w.decided }) {
				return errors.New("dedup: tickets left undecided") // a bug; the events run one by one
			}
			return nil
		}
		if err := h.nextPages(tx, org, need, subjects, bodies); err != nil {
			return err
		}
	}
}

// pick returns w's original among the candidates read so far, or wait
// when that depends on a batch ticket not decided yet. Neither: w needs
// its next page, or repeats nothing once all are read.
func (w *work) pick(marked map[uuid.UUID]bool, workOf map[uuid.UUID]*work) (orig *candidate, reason string, wait bool) {
	for _, l := range []struct {
		cands  []*candidate
		reason string
	}{{w.byMessageID, ReasonMessageID}, {w.byContent, ReasonContent}} {
		for _, c := range l.cands {
			if marked[c.ID] {
				continue // marked duplicate earlier in this batch
			}
			if cw := workOf[c.ID]; cw != nil && !cw.decided {
				return nil, "", true
			}
			return c, l.reason, false
		}
	}
	return nil, "", false
}

// candidatesWhere selects the open, non-duplicate tickets of the
// organisation (alias c).
const candidatesWhere = `c.org_id = ? AND c.status NOT IN ? AND c.is_duplicate_of IS NULL`

// messageIDMatches fills byMessageID: the earlier open tickets of the same
// requester stored with one of w's Message-ID spellings (the unique index
// on (org_id, source_message_id) answers each).
func messageIDMatches(tx *gorm.DB, org uuid.UUID, works []*work) error {
	var spellings []string
	for _, w := range works {
		spellings = append(spellings, w.messageIDs...)
	}
	if len(spellings) == 0 {
		return nil
	}
	param, err := json.Marshal(spellings)
	if err != nil {
		return fmt.Errorf("dedup: message-id lookup: %w", err)
	}
	var rows []candidate
	err = tx.Raw(`SELECT c.id, c.number, c.subject, c.requester_id, c.source_message_id, c.created_at FROM tickets c
		WHERE `+candidatesWhere+` AND c.source_message_id = ANY(ARRAY(SELECT jsonb_array_elements_text(?::jsonb)))
		ORDER BY c.created_at, c.id`, org, closedStatuses, string(param)).Scan(&rows).Error
	if err != nil {
		return fmt.Errorf("dedup: message-id lookup: %w", err)
	}
	for _, w := range works {
		for i := range rows {
			c := &rows[i]
			if c.RequesterID == w.t.RequesterID && c.ID != w.t.ID && before(c.CreatedAt, c.ID, w.t.CreatedAt, w.t.ID) &&
				slices.Contains(w.messageIDs, deref(c.SourceMessageID)) {
				w.byMessageID = append(w.byMessageID, c)
			}
		}
	}
	return nil
}

// nextPages reads the next page of candidates of each of need: the open,
// non-duplicate tickets of its requester created before it and at most
// Window earlier, in creation order, after the last one read. Only the
// bodies of candidates whose subject matches are read.
func (h *Handler) nextPages(tx *gorm.DB, org uuid.UUID, need []*work, subjects, bodies map[uuid.UUID]string) error {
	pages := make([][]*candidate, len(need))
	if err := h.plainPages(tx, org, need, pages); err != nil {
		return err
	}
	if err := h.narrowedPages(tx, org, need, pages); err != nil {
		return err
	}

	var unread []uuid.UUID
	toRead := map[uuid.UUID]bool{}
	for n, page := range pages {
		for _, c := range page {
			s, ok := subjects[c.ID]
			if !ok {
				s = NormaliseSubject(c.Subject)
				subjects[c.ID] = s
			}
			if _, ok := bodies[c.ID]; !ok && s == need[n].subject && !toRead[c.ID] {
				toRead[c.ID] = true
				unread = append(unread, c.ID)
			}
		}
	}
	if err := readBodies(tx, org, unread, bodies); err != nil {
		return err
	}
	for n, w := range need {
		page := pages[n]
		for _, c := range page {
			if subjects[c.ID] == w.subject && bodies[c.ID] == w.body {
				w.byContent = append(w.byContent, c)
			}
		}
		if len(page) < pageSize {
			w.exhausted = true
			continue
		}
		w.after = page[len(page)-1]
		// A requester with this many open tickets is an integration or a
		// load generator: narrow the rest with the full-text index (every
		// word of the normalised subject is a word of a matching ticket).
		// Not the first choice: each query reads the GIN index's whole
		// pending list, milliseconds under heavy inserts. Only for ASCII,
		// where Go's and PostgreSQL's lower-casing agree, and with a word
		// (an empty tsquery matches nothing).
		w.narrowed = w.narrowed || hasWord(w.subject)
	}
	return nil
}

// plainPages reads the pages of the tickets of need not narrowed: one
// statement, an index scan per ticket on its requester's tickets.
func (h *Handler) plainPages(tx *gorm.DB, org uuid.UUID, need []*work, pages [][]*candidate) error {
	type param struct {
		N           int        `json:"n"`
		ID          uuid.UUID  `json:"id"`
		RequesterID uuid.UUID  `json:"requester_id"`
		CreatedAt   time.Time  `json:"created_at"`
		Since       time.Time  `json:"since"`
		AfterAt     *time.Time `json:"after_at"`
		AfterID     *uuid.UUID `json:"after_id"`
	}
	var params []param
	for n, w := range need {
		if w.narrowed {
			continue
		}
		p := param{N: n, ID: w.t.ID, RequesterID: w.t.RequesterID, CreatedAt: w.t.CreatedAt, Since: w.t.CreatedAt.Add(-h.window)}
		if w.after != nil {
			p.AfterAt, p.AfterID = &w.after.CreatedAt, &w.after.ID
		}
		params = append(params, p)
	}
	if len(params) == 0 {
		return nil
	}
	b, err := json.Marshal(params)
	if err != nil {
		return fmt.Errorf("dedup: content lookup: %w", err)
	}
	// The inner ORDER BY is the index's (org_id, requester_id, created_at),
	// ties included, so that even the generic plan of this prepared
	// statement (which cannot tell a requester with 20,000 tickets) reads
	// about a page, never all the requester's tickets to sort them.
	return scanPages(tx.Raw(`SELECT x.n, c.id, c.number, c.subject, c.created_at
		FROM jsonb_to_recordset(?::jsonb) AS x(n int, id uuid, requester_id uuid,
			created_at timestamptz, since timestamptz, after_at timestamptz, after_id uuid)
		CROSS JOIN LATERAL (
			SELECT * FROM (
				SELECT c.id, c.number, c.subject, c.created_at FROM tickets c
				WHERE `+candidatesWhere+` AND c.requester_id = x.requester_id AND c.id <> x.id
					AND (c.created_at, c.id) < (x.created_at, x.id) AND c.created_at >= x.since
					AND (c.created_at, c.id) > (coalesce(x.after_at, '-infinity'), coalesce(x.after_id, '00000000-0000-0000-0000-000000000000'))
				ORDER BY c.created_at FETCH FIRST `+strconv.Itoa(pageSize)+` ROWS WITH TIES) AS c
			ORDER BY c.created_at, c.id LIMIT `+strconv.Itoa(pageSize)+`) AS c
		ORDER BY x.n, c.created_at, c.id`, string(b), org, closedStatuses), need, pages)
}

// narrowedPages reads the pages of the narrowed tickets of need: one
// statement, but a branch per ticket with its own query text, so that the
// planner sees each query (and picks the full-text index) as it would for
// that ticket alone.
func (h *Handler) narrowedPages(tx *gorm.DB, org uuid.UUID, need []*work, pages [][]*candidate) error {
	var branches []string
	var args []any
	for n, w := range need {
		if !w.narrowed {
			continue
		}
		branches = append(branches, `(SELECT ?::int AS n, c.id, c.number, c.subject, c.created_at FROM tickets c
			WHERE `+candidatesWhere+` AND c.requester_id = ? AND c.id <> ?
				AND (c.created_at, c.id) < (?, ?) AND c.created_at >= ? AND (c.created_at, c.id) > (?, ?)
				AND c.search @@ plainto_tsquery('simple', ?)
			ORDER BY c.created_at, c.id LIMIT ?)`)
		args = append(args, n, org, closedStatuses, w.t.RequesterID, w.t.ID, w.t.CreatedAt, w.t.ID,
			w.t.CreatedAt.Add(-h.window), w.after.CreatedAt, w.after.ID, w.subject, pageSize)
	}
	if len(branches) == 0 {
		return nil
	}
	// The statement's text repeats (a prepared statement, cached per
	// connection), and its generic plan cannot see the query's words: it
	// filters all the requester's tickets (tens of milliseconds for
	// 20,000). Plan it for its values, from here to the commit.
	if err := tx.Exec(`SET LOCAL plan_cache_mode = force_custom_plan`).Error; err != nil {
		return fmt.Errorf("dedup: content lookup: %w", err)
	}
	return scanPages(tx.Raw(`SELECT * FROM (`+strings.Join(branches, " UNION ALL ")+`) AS p ORDER BY n, created_at, id`, args...), need, pages)
}

// scanPages appends the rows of q, (n, id, number, subject, created_at),
// to pages[n]; plain database/sql scanning, pages can be long.
func scanPages(q *gorm.DB, need []*work, pages [][]*candidate) error {
	rows, err := q.Rows()
	if err != nil {
		return fmt.Errorf("dedup: content lookup: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var n int
		c := &candidate{}
		if err := rows.Scan(&n, &c.ID, &c.Number, &c.Subject, &c.CreatedAt); err != nil {
			return fmt.Errorf("dedup: content lookup: %w", err)
		}
		if n < 0 || n >= len(need) {
			return fmt.Errorf("dedup: content lookup: row for ticket %d of %d", n, len(need))
		}
		c.RequesterID = need[n].t.RequesterID
		pages[n] = append(pages[n], c)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("dedup: content lookup: %w", err)
	}
	return nil
}

// readBodies adds the normalised descriptions of ids to bodies.
func readBodies(tx *gorm.DB, org uuid.UUID, ids []uuid.UUID, bodies map[uuid.UUID]string) error {
	if len(ids) == 0 {
		return nil
	}
	var rows []struct {
		ID          uuid.UUID
		Description string
	}
	if err := tx.Raw(`SELECT id, description FROM tickets WHERE org_id = ? AND id = ANY(?::uuid[])`, org, database.UUIDArray(ids)).Scan(&rows).Error; err != nil {
		return fmt.Errorf("dedup: read bodies: %w", err)
	}
	for _, r := range rows {
		bodies[r.ID] = NormaliseBody(r.Description)
	}
	return nil
}

// writes collects a batch's verdicts, written by flush in a few statements.
type writes struct {
	links  []link
	audits []audit.Entry
	events []pipeline.Event
}

type link struct {
	N      int       `json:"n"`
	ID     uuid.UUID `json:"id"`
	Source uuid.UUID `json:"source"`
	Target uuid.UUID `json:"target"`
}

// duplicate records t as a duplicate of orig: the relationship, the
// ticket's is_duplicate_of, the audit row and the staff-only event.
func (w *writes) duplicate(t *ticketRow, orig *candidate, reason string) error {
	w.links = append(w.links, link{N: len(w.links), ID: uuid.Must(uuid.NewV7()), Source: t.ID, Target: orig.ID})
	w.audits = append(w.audits, audit.Entry{
		OrgID: &t.OrgID, TicketID: &t.ID, ActorKind: audit.ActorSystem, Action: "ticket.duplicate_marked",
		EntityType: "ticket", EntityID: &t.ID, Before: map[string]any{"is_duplicate_of": nil},
		After: map[string]any{"is_duplicate_of": orig.ID, "original_number": orig.Number, "reason": reason},
	})
	ev, err := pipeline.NewEvent(pipeline.EventDuplicateMarked,
		pipeline.TicketRef{OrgID: t.OrgID, TicketID: t.ID, RequesterID: t.RequesterID},
		nil, pipeline.AudienceStaff,
		map[string]any{"original_ticket_id": orig.ID, "original_number": orig.Number, "number": t.Number, "reason": reason})
	if err != nil {
		return err
	}
	w.events = append(w.events, ev)
	return nil
}

// passed records that t repeats no open ticket: the notify stage
// acknowledges it on this event.
func (w *writes) passed(t *ticketRow) error {
	ev, err := pipeline.NewEvent(pipeline.EventDedupPassed,
		pipeline.TicketRef{OrgID: t.OrgID, TicketID: t.ID, RequesterID: t.RequesterID},
		nil, pipeline.AudienceStaff, map[string]any{"number": t.Number})
	if err != nil {
		return err
	}
	w.events = append(w.events, ev)
	return nil
}

func (w *writes) flush(ctx context.Context, tx *gorm.DB, org uuid.UUID) error {
	if len(w.links) > 0 {
		param, err := json.Marshal(w.links)
		if err != nil {
			return fmt.Errorf("dedup: relationships: %w", err)
		}
		if err := tx.Exec(`INSERT INTO ticket_relationships (id, org_id, source_ticket_id, target_ticket_id, kind)
			SELECT id, ?, source, target, ? FROM jsonb_to_recordset(?::jsonb) AS x(n int, id uuid, source uuid, target uuid)
			ORDER BY n
			ON CONFLICT (source_ticket_id, target_ticket_id, kind) DO NOTHING`,
			org, models.RelationDuplicateOf, string(param)).Error; err != nil {
			return fmt.Errorf("dedup: insert relationships: %w", err)
		}
		if err := tx.Exec(`UPDATE tickets t SET is_duplicate_of = x.target
			FROM jsonb_to_recordset(?::jsonb) AS x(source uuid, target uuid)
			WHERE t.org_id = ? AND t.id = x.source`, string(param), org).Error; err != nil {
			return fmt.Errorf("dedup: set is_duplicate_of: %w", err)
		}
	}
	if err := audit.WriteMany(ctx, tx, w.audits); err != nil {
		return err
	}
	if err := pipeline.EmitEvents(ctx, tx, w.events...); err != nil {
		return fmt.Errorf("dedup: %w", err)
	}
	return nil
}
