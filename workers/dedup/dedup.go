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
//
// ProcessBatch decides the events of a batch in one transaction, with the
// same verdicts as running them one by one in their tickets' creation
// order: a ticket the batch marks duplicate is no candidate for the later
// ones. Process is a batch of one.
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
	h.logResult(ctx, p, res)
	return nil
}

func (h *Handler) logResult(ctx context.Context, p pipeline.TaskPayload, res Result) {
	if res.DuplicateOf != nil {
		h.log.InfoContext(ctx, "ticket marked duplicate", "ticket_id", p.TicketID, "original_id", *res.DuplicateOf, "reason", res.Reason)
	}
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

// Process runs the stage for the ticket of p in one transaction: a batch
// of one, so both paths share every rule.
func (h *Handler) Process(ctx context.Context, p pipeline.TaskPayload) (Result, error) {
	var res []Result
	err := h.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		res, _, err = h.run(ctx, tx, p.OrgID, []pipeline.TaskPayload{p})
		return err
	})
	if err != nil {
		return Result{}, err
	}
	return res[0], nil
}

func isOpen(s models.TicketStatus) bool { return !slices.Contains(closedStatuses, s) }

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
