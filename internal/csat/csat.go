// Package csat runs customer satisfaction surveys: one invitation per
// resolved ticket to its requester, one answer (rating 1–5 and an optional
// comment) per survey, and the metrics managers read.
package csat

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/internal/apperr"
	"github.com/atumdesk/atumdesk/internal/audit"
	"github.com/atumdesk/atumdesk/internal/database"
	"github.com/atumdesk/atumdesk/models"
	"github.com/atumdesk/atumdesk/pipeline"
)

// Domain event types (on the events topic; audience public, so the
// requester's portal and the desk see them live).
const (
	EventInvited   = "csat.invited"
	EventSubmitted = "csat.submitted"
)

// MaxCommentLen bounds the optional comment, in characters.
const MaxCommentLen = 2000

// Open reports whether a ticket in status s can be rated.
func Open(s models.TicketStatus) bool {
	return s == models.StatusResolved || s == models.StatusClosed
}

// Invite creates the survey of ticket t for its requester inside tx (the
// transaction that resolves the ticket), with its audit row and a
// csat.invited event. It returns the token for an answer link (only its
// SHA-256 is stored), or "" when the ticket already had a survey:
// re-resolving a reopened ticket does not invite twice.
func Invite(ctx context.Context, tx *gorm.DB, t *models.Ticket) (string, error) {
	if !Open(t.Status) {
		return "", apperr.New(apperr.InvalidState, "Only resolved or closed tickets are surveyed.")
	}
	var raw [32]byte
	_, _ = rand.Read(raw[:])
	token := base64.RawURLEncoding.EncodeToString(raw[:])
	hash := sha256.Sum256([]byte(token))
	id := uuid.Must(uuid.NewV7())
	res := tx.WithContext(ctx).Exec(`INSERT INTO csat_surveys (id, org_id, ticket_id, requester_id, token_hash)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (ticket_id) DO NOTHING`, id, t.OrgID, t.ID, t.RequesterID, hash[:])
	if res.Error != nil {
		return "", database.Classify(fmt.Errorf("csat: invite: %w", res.Error))
	}
	if res.RowsAffected == 0 {
		return "", nil
	}
	err := audit.Write(ctx, tx, audit.Entry{OrgID: &t.OrgID, TicketID: &t.ID, ActorKind: audit.ActorSystem,
		Action: "csat.invited", EntityType: "csat_survey", EntityID: &id, After: map[string]any{"requester_id": t.RequesterID}})
	if err != nil {
		return "", err
	}
	ev, err := pipeline.NewEvent(EventInvited, pipeline.TicketRef{OrgID: t.OrgID, TicketID: t.ID, RequesterID: t.RequesterID},
		nil, pipeline.AudiencePublic, map[string]any{"survey_id": id})
	if err != nil {
		return "", err
	}
	if err := pipeline.EmitEvents(ctx, tx, ev); err != nil {
		return "", err
	}
	return token, nil
}

// Survey is a survey as the API shows it.
type Survey struct {
	ID          uuid.UUID  `json:"id"`
	TicketID    uuid.UUID  `json:"ticket_id"`
	RequesterID uuid.UUID  `json:"requester_id"`
	Rating      *int16     `json:"rating"`
	Comment     *string    `json:"comment"`
	InvitedAt   time.Time  `json:"invited_at"`
	RespondedAt *time.Time `json:"responded_at"`
}

// Get returns the survey of a ticket of orgID, or nil when there is none.
func Get(ctx context.Context, db *gorm.DB, orgID, ticketID uuid.UUID) (*Survey, error) {
	var s Survey
	err := db.WithContext(ctx).Raw(`SELECT id, ticket_id, requester_id, rating, comment, invited_at, responded_at
		FROM csat_surveys WHERE org_id = ? AND ticket_id = ?`, orgID, ticketID).Scan(&s).Error
	if err != nil {
		return nil, database.Classify(fmt.Errorf("csat: get: %w", err))
	}
	if s.ID == uuid.Nil {
		return nil, nil
	}
	return &s, nil
}

// Answer is a requester's response.
type Answer struct {
	Rating  int     `json:"rating"`
	Comment *string `json:"comment"`
}

// Validate checks the rating and normalises the comment (trimmed, empty
// means none).
func (a *Answer) Validate() error {
	fields := map[string]string{}
	if !models.ValidRating(a.Rating) {
		fields["rating"] = "must be an integer from 1 to 5"
	}
	if a.Comment != nil {
		c := strings.TrimSpace(strings.ToValidUTF8(strings.ReplaceAll(*a.Comment, "\x00", ""), ""))
		switch {
		case c == "":
			a.Comment = nil
		case utf8.RuneCountInString(c) > MaxCommentLen:
			fields["comment"] = fmt.Sprintf("must be at most %d characters", MaxCommentLen)
		default:
			a.Comment = &c
		}
	}
	return apperr.Fields(fields)
}

// ErrAnswered is returned by Submit for a survey that already has its answer.
var ErrAnswered = apperr.New(apperr.Conflict, "This ticket has already been rated.")

// Submit records the requester's answer inside tx, exactly once: the
// conditional UPDATE lets one of several concurrent answers win and the
// others get ErrAnswered. The caller has checked that userID is the
// requester and that the ticket can be rated; a missing survey is created
// first, so rating works even if the resolution did not invite.
func Submit(ctx context.Context, tx *gorm.DB, t *models.Ticket, userID uuid.UUID, a Answer, entry audit.Entry) (*Survey, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	if _, err := Invite(ctx, tx, t); err != nil {
		return nil, err
	}
	res := tx.WithContext(ctx).Exec(`UPDATE csat_surveys SET rating = ?, comment = ?, responded_at = now()
		WHERE org_id = ? AND ticket_id = ? AND requester_id = ? AND responded_at IS NULL`,
		a.Rating, a.Comment, t.OrgID, t.ID, userID)
	if res.Error != nil {
		return nil, database.Classify(fmt.Errorf("csat: submit: %w", res.Error))
	}
	if res.RowsAffected == 0 {
		return nil, ErrAnswered
	}
	s, err := Get(ctx, tx, t.OrgID, t.ID)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return nil, errors.New("csat: survey vanished after submit")
	}
	entry.OrgID, entry.TicketID, entry.EntityID = &t.OrgID, &t.ID, &s.ID
	entry.Action, entry.EntityType = "csat.submitted", "csat_survey"
	entry.After = map[string]any{"rating": a.Rating, "has_comment": a.Comment != nil}
	if err := audit.Write(ctx, tx, entry); err != nil {
		return nil, err
	}
	ev, err := pipeline.NewEvent(EventSubmitted, pipeline.TicketRef{OrgID: t.OrgID, TicketID: t.ID, RequesterID: t.RequesterID},
		&userID, pipeline.AudiencePublic, map[string]any{"survey_id": s.ID, "rating": a.Rating})
	if err != nil {
		return nil, err
	}
	if err := pipeline.EmitEvents(ctx, tx, ev); err != nil {
		return nil, err
	}
	return s, nil
}

// Metrics summarises the surveys of an organisation invited in [From, To).
type Metrics struct {
	From         *time.Time       `json:"from"`
	To           *time.Time       `json:"to"`
	Invited      int64            `json:"invited"`
	Responded    int64            `json:"responded"`
	ResponseRate *float64         `json:"response_rate"` // responded / invited; null when none invited
	Average      *float64         `json:"average"`       // mean rating; null when none responded
	Distribution map[string]int64 `json:"distribution"`  // "1".."5" -> count
}

// ComputeMetrics counts the surveys of orgID invited in [from, to) (either
// bound may be nil): the window selects a cohort of invitations, so the
// response rate compares like with like.
func ComputeMetrics(ctx context.Context, db *gorm.DB, orgID uuid.UUID, from, to *time.Time) (*Metrics, error) {
	var rows []struct {
		Rating *int16
		N      int64
	}
	q := db.WithContext(ctx).Table("csat_surveys").Select("rating, count(*) AS n").Where("org_id = ?", orgID)
	if from != nil {
		q = q.Where("invited_at >= ?", *from)
	}
	if to != nil {
		q = q.Where("invited_at < ?", *to)
	}
	if err := q.Group("rating").Scan(&rows).Error; err != nil {
		return nil, database.Classify(fmt.Errorf("csat: metrics: %w", err))
	}
	m := &Metrics{From: from, To: to, Distribution: map[string]int64{"1": 0, "2": 0, "3": 0, "4": 0, "5": 0}}
	var sum int64
	for _, r := range rows {
		m.Invited += r.N
		if r.Rating != nil {
			m.Responded += r.N
			sum += int64(*r.Rating) * r.N
			m.Distribution[fmt.Sprint(*r.Rating)] = r.N
		}
	}
	if m.Invited > 0 {
		rate := float64(m.Responded) / float64(m.Invited)
		m.ResponseRate = &rate
	}
	if m.Responded > 0 {
		avg := float64(sum) / float64(m.Responded)
		m.Average = &avg
	}
	return m, nil
}
