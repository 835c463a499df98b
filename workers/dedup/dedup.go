// Package dedup is the dedup stage: a new ticket that repeats an open
// ticket of the same requester is linked as its duplicate.
//
// A ticket B is a duplicate of A when both belong to the same organisation
// and requester, A is open (not resolved, closed or cancelled), A is not
// itself a duplicate, A was created before B, and either
//   - both carry the same e-mail Message-ID (angle brackets and surrounding
//     blanks ignored), or
//   - both have the same normalised subject and body (see NormaliseSubject,
//     NormaliseBody) and A was created at most Window before B.
//
// The original is the earliest such A. The verdict is stored on the ticket
// (tickets.is_duplicate_of, plus a ticket_relationships row of kind
// duplicate_of, an audit row and a staff-only ticket.duplicate_marked event)
// in one transaction together with the inbox row processed_events(dedup,
// event id), so running the task twice changes nothing more.
//
// The requester must not get a second acknowledgement: when the ticket
// repeats no open ticket, the same transaction emits ticket.dedup_passed
// (staff), and the notify stage acknowledges a new ticket on that event
// only. A duplicate, or a ticket already decided or closed, gets none.
package dedup

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/internal/audit"
	"github.com/atumdesk/atumdesk/models"
	"github.com/atumdesk/atumdesk/pipeline"
)

// Consumer is the stage's name in processed_events.
const Consumer = "dedup"

// DefaultWindow is how far back a same-content ticket counts as repeated.
const DefaultWindow = 24 * time.Hour

// Reasons recorded in the audit row and the event.
const (
	ReasonMessageID = "message_id"
	ReasonContent   = "subject_body"
)

// Config configures the stage.
type Config struct {
	Window time.Duration // default DefaultWindow
	Logger *slog.Logger  // nil: discarded
}

// Handler is the asynq handler of pipeline.TaskDedup.
type Handler struct {
	db     *gorm.DB
	window time.Duration
	log    *slog.Logger
}

// New returns the handler.
func New(db *gorm.DB, cfg Config) *Handler {
	if cfg.Window <= 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Handler{db: db, window: cfg.Window, log: cfg.Logger}
}

// ProcessTask implements asynq.Handler. A payload that cannot be read is
// archived at once (retrying cannot fix it).
func (h *Handler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	p, err := pipeline.ParseTaskPayload(t.Payload())
	if err != nil {
		return fmt.Errorf("dedup: %w: %w", err, asynq.SkipRetry)
	}
	res, err := h.Process(ctx, p)
	if err != nil {
		return err
	}
	if res.DuplicateOf != nil {
		h.log.InfoContext(ctx, "ticket marked duplicate", "ticket_id", p.TicketID, "original_id", *res.DuplicateOf, "reason", res.Reason)
	}
	return nil
}

// Result is what Process decided.
type Result struct {
	// AlreadyProcessed: the event was handled before; nothing changed.
	AlreadyProcessed bool
	// DuplicateOf is the original when the ticket was marked now.
	DuplicateOf *uuid.UUID
	Reason      string
}

type ticketRow struct {
	ID              uuid.UUID
	OrgID           uuid.UUID
	Number          int64
	Subject         string
	Description     string
	Status          models.TicketStatus
	RequesterID     uuid.UUID
	SourceMessageID *string
	IsDuplicateOf   *uuid.UUID
	CreatedAt       time.Time
}

// closedStatuses are the statuses that make a ticket no longer open.
var closedStatuses = []models.TicketStatus{models.StatusResolved, models.StatusClosed, models.StatusCancelled}

// Process runs the stage for the ticket of p in one transaction.
func (h *Handler) Process(ctx context.Context, p pipeline.TaskPayload) (Result, error) {
	var res Result
	err := h.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res = Result{}
		ins := tx.Exec(`INSERT INTO processed_events (consumer, event_id) VALUES (?, ?) ON CONFLICT DO NOTHING`, Consumer, p.EventID)
		if ins.Error != nil {
			return fmt.Errorf("dedup: inbox: %w", ins.Error)
		}
		if ins.RowsAffected == 0 {
			res.AlreadyProcessed = true
			return nil
		}

		var t ticketRow
		err := tx.Raw(`SELECT id, org_id, number, subject, description, status, requester_id, source_message_id, is_duplicate_of, created_at
			FROM tickets WHERE org_id = ? AND id = ? FOR UPDATE`, p.OrgID, p.TicketID).Scan(&t).Error
		if err != nil {
			return fmt.Errorf("dedup: load ticket %s: %w", p.TicketID, err)
		}
		if t.ID == uuid.Nil {
			// The event commits with its ticket, so the ticket was deleted since.
			h.log.WarnContext(ctx, "dedup: ticket not found; nothing to do", "ticket_id", p.TicketID, "org_id", p.OrgID)
			return nil
		}
		if t.IsDuplicateOf != nil || !isOpen(t.Status) {
			return nil // decided already (e.g. by an agent) or no longer open
		}

		orig, reason, err := h.findOriginal(tx, &t)
		if err != nil {
			return err
		}
		if orig == nil {
			return emitPassed(ctx, tx, &t)
		}
		if err := markDuplicate(ctx, tx, &t, orig, reason); err != nil {
			return err
		}
		res.DuplicateOf, res.Reason = &orig.ID, reason
		return nil
	})
	return res, err
}

func isOpen(s models.TicketStatus) bool { return !slices.Contains(closedStatuses, s) }

// candidate is a ticket t may repeat; the body is read only for
// candidates whose subject matches.
type candidate struct {
	ID        uuid.UUID
	Number    int64
	Subject   string
	CreatedAt time.Time
}

// candidates selects the open, non-duplicate tickets of t's requester
// created before t.
func candidates(tx *gorm.DB, t *ticketRow) *gorm.DB {
	return tx.Table("tickets").Select("id, number, subject, created_at").
		Where("org_id = ? AND requester_id = ? AND id <> ?", t.OrgID, t.RequesterID, t.ID).
		Where("status NOT IN ?", closedStatuses).
		Where("is_duplicate_of IS NULL").
		Where("(created_at, id) < (?, ?)", t.CreatedAt, t.ID)
}

// findOriginal returns the earliest ticket t repeats, or nil.
func (h *Handler) findOriginal(tx *gorm.DB, t *ticketRow) (*candidate, string, error) {
	if mid := NormaliseMessageID(deref(t.SourceMessageID)); mid != "" {
		var rows []candidate
		// The spellings a Message-ID is stored in; the unique index on
		// (org_id, source_message_id) answers each.
		err := candidates(tx, t).Where("source_message_id IN ?", []string{mid, "<" + mid + ">"}).
			Order("created_at, id").Limit(1).Scan(&rows).Error
		if err != nil {
			return nil, "", fmt.Errorf("dedup: message-id lookup: %w", err)
		}
		if len(rows) > 0 {
			return &rows[0], ReasonMessageID, nil
		}
	}

	subject, body := NormaliseSubject(t.Subject), NormaliseBody(t.Description)
	q := candidates(tx, t).Where("created_at >= ?", t.CreatedAt.Add(-h.window))
	const batch = 500
	narrowed := false
	var after *candidate
	for {
		var rows []candidate
		page := q.Session(&gorm.Session{}).Order("created_at, id").Limit(batch)
		if after != nil {
			page = page.Where("(created_at, id) > (?, ?)", after.CreatedAt, after.ID)
		}
		if err := page.Scan(&rows).Error; err != nil {
			return nil, "", fmt.Errorf("dedup: content lookup: %w", err)
		}
		if orig, err := sameBody(tx, rows, subject, body); orig != nil || err != nil {
			return orig, ReasonContent, err
		}
		if len(rows) < batch {
			return nil, "", nil
		}
		after = &rows[len(rows)-1]
		if !narrowed && hasWord(subject) {
			// A requester with this many open tickets is an integration
			// or a load generator: narrow the rest with the full-text
			// index (every word of the normalised subject is a word of a
			// matching ticket). Not the first choice: each query reads the
			// GIN index's whole pending list, milliseconds under heavy
			// inserts. Only for ASCII, where Go's and PostgreSQL's
			// lower-casing agree, and with a word (an empty tsquery
			// matches nothing).
			q = q.Where("search @@ plainto_tsquery('simple', ?)", subject)
			narrowed = true
		}
	}
}

// sameBody returns the first of rows whose normalised subject and body are
// subject and body.
func sameBody(tx *gorm.DB, rows []candidate, subject, body string) (*candidate, error) {
	var ids []uuid.UUID
	for _, r := range rows {
		if NormaliseSubject(r.Subject) == subject {
			ids = append(ids, r.ID)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	var bodies []struct {
		ID          uuid.UUID
		Description string
	}
	if err := tx.Raw(`SELECT id, description FROM tickets WHERE id IN ?`, ids).Scan(&bodies).Error; err != nil {
		return nil, fmt.Errorf("dedup: read bodies: %w", err)
	}
	same := map[uuid.UUID]bool{}
	for _, b := range bodies {
		same[b.ID] = NormaliseBody(b.Description) == body
	}
	for i := range rows {
		if same[rows[i].ID] {
			return &rows[i], nil
		}
	}
	return nil, nil
}

func markDuplicate(ctx context.Context, tx *gorm.DB, t *ticketRow, orig *candidate, reason string) error {
	if err := tx.Exec(`INSERT INTO ticket_relationships (id, org_id, source_ticket_id, target_ticket_id, kind)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (source_ticket_id, target_ticket_id, kind) DO NOTHING`,
		uuid.Must(uuid.NewV7()), t.OrgID, t.ID, orig.ID, models.RelationDuplicateOf).Error; err != nil {
		return fmt.Errorf("dedup: insert relationship: %w", err)
	}
	if err := tx.Exec(`UPDATE tickets SET is_duplicate_of = ? WHERE org_id = ? AND id = ?`, orig.ID, t.OrgID, t.ID).Error; err != nil {
		return fmt.Errorf("dedup: set is_duplicate_of: %w", err)
	}
	after := map[string]any{"is_duplicate_of": orig.ID, "original_number": orig.Number, "reason": reason}
	if err := audit.Write(ctx, tx, audit.Entry{
		OrgID: &t.OrgID, TicketID: &t.ID, ActorKind: audit.ActorSystem, Action: "ticket.duplicate_marked",
		EntityType: "ticket", EntityID: &t.ID, Before: map[string]any{"is_duplicate_of": nil}, After: after,
	}); err != nil {
		return err
	}
	ev, err := pipeline.NewEvent(pipeline.EventDuplicateMarked,
		pipeline.TicketRef{OrgID: t.OrgID, TicketID: t.ID, RequesterID: t.RequesterID},
		nil, pipeline.AudienceStaff,
		map[string]any{"original_ticket_id": orig.ID, "original_number": orig.Number, "number": t.Number, "reason": reason})
	if err != nil {
		return err
	}
	return pipeline.EmitEvents(ctx, tx, ev)
}

// emitPassed records that t repeats no open ticket: the notify stage
// acknowledges it on this event.
func emitPassed(ctx context.Context, tx *gorm.DB, t *ticketRow) error {
	ev, err := pipeline.NewEvent(pipeline.EventDedupPassed,
		pipeline.TicketRef{OrgID: t.OrgID, TicketID: t.ID, RequesterID: t.RequesterID},
		nil, pipeline.AudienceStaff, map[string]any{"number": t.Number})
	if err != nil {
		return err
	}
	return pipeline.EmitEvents(ctx, tx, ev)
}

var replyPrefix = regexp.MustCompile(`^(?:(?:re|fwd?)(?:\s*\[\d+\])?\s*:\s*)+`)

// NormaliseSubject lower-cases s, collapses white space and strips any
// run of leading "Re:", "Fw:" and "Fwd:" prefixes (also "Re[2]:").
func NormaliseSubject(s string) string {
	s = collapse(strings.ToLower(s))
	return strings.TrimSpace(replyPrefix.ReplaceAllString(s, ""))
}

// NormaliseBody lower-cases s and collapses white space.
func NormaliseBody(s string) string { return collapse(strings.ToLower(s)) }

// NormaliseMessageID strips blanks and one pair of angle brackets.
func NormaliseMessageID(s string) string {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "<")
	s = strings.TrimSuffix(s, ">")
	return strings.TrimSpace(s)
}

func collapse(s string) string { return strings.Join(strings.Fields(s), " ") }

// hasWord reports whether s is ASCII with at least one letter or digit.
func hasWord(s string) bool {
	word := false
	for _, r := range s {
		if r > unicode.MaxASCII {
			return false
		}
		word = word || unicode.IsLetter(r) || unicode.IsDigit(r)
	}
	return word
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
