package tickets

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/atumdesk/atumdesk/internal/apperr"
	"github.com/atumdesk/atumdesk/internal/database"
	"github.com/atumdesk/atumdesk/internal/sla"
	"github.com/atumdesk/atumdesk/models"
	"github.com/atumdesk/atumdesk/pipeline"
)

// MaxContent bounds a comment's plain text, in characters.
const MaxContent = 50_000

// NewComment is a reply or an internal note. Content is plain text;
// ContentHTML, when set, is untrusted rich text: it is sanitised and the
// plain text is derived from it (Content is then ignored).
type NewComment struct {
	Content     string
	ContentHTML string
	IsInternal  bool
	// IsAIGenerated marks a reply an agent sent from an AI draft (staff only).
	IsAIGenerated bool
	Channel       models.Channel // defaults to web
	// SourceMessageID is the Message-ID of the e-mail the comment came
	// from: unique per organisation, so the same mail twice is refused
	// (Conflict) rather than added twice. ThreadReason says why that mail
	// was threaded onto this ticket (models.ThreadInReplyTo, …).
	SourceMessageID string
	ThreadReason    string
}

// Comment is a comment with its author's display name.
type Comment struct {
	models.Comment
	AuthorName    *string `gorm:"column:author_name"`
	AuthorIsStaff bool    `gorm:"column:author_is_staff"`
}

// AddComment adds a public reply or an internal note (staff only). The
// first public staff reply records the first response; a public reply from
// the requester's side moves a waiting_customer ticket back to in_progress
// and reopens a recently resolved one. Closed and cancelled tickets take no
// comments.
func (s *Service) AddComment(ctx context.Context, a Actor, ticketID uuid.UUID, in NewComment) (*Comment, *models.Ticket, error) {
	body, err := s.commentBody(in)
	if err != nil {
		return nil, nil, err
	}
	if in.IsInternal && !a.Role.IsStaff() {
		return nil, nil, apperr.New(apperr.Forbidden, "Only staff write internal notes.")
	}
	if in.Channel == "" {
		in.Channel = models.ChannelWeb
	}
	if !in.Channel.Valid() {
		return nil, nil, apperr.Fields(map[string]string{"channel": "must be one of web, api, form, email"})
	}
	var cm models.Comment
	t, err := s.mutate(ctx, a, ticketID, func(c *change) error {
		if err := c.writable(); err != nil {
			return err
		}
		cm = models.Comment{ID: models.NewID(), OrgID: c.t.OrgID, TicketID: c.t.ID, AuthorID: &a.UserID,
			Content: body.Text, ContentHTML: body.HTML, IsInternal: in.IsInternal, IsAIGenerated: in.IsAIGenerated, Channel: in.Channel,
			SourceMessageID: nonEmpty(in.SourceMessageID), ThreadReason: nonEmpty(in.ThreadReason)}
		if err := c.tx.Create(&cm).Error; err != nil {
			return fmt.Errorf("tickets: insert comment: %w", err)
		}
		return c.afterComment(&cm)
	})
	if err != nil {
		return nil, nil, err
	}
	out, err := s.comment(ctx, t.OrgID, cm.ID)
	if err != nil {
		return nil, nil, err
	}
	return out, t, nil
}

// afterComment records the comment's effects on the ticket, its audit row
// and its event.
func (c *change) afterComment(cm *models.Comment) error {
	firstResponse := false
	if !cm.IsInternal && c.a.Role.IsStaff() && !c.a.IsRequester(c.t) && c.t.FirstRespondedAt == nil {
		if err := c.set(map[string]any{"first_responded_at": c.now}); err != nil {
			return err
		}
		c.t.FirstRespondedAt, firstResponse = &c.now, true
	}
	after := map[string]any{"is_internal": cm.IsInternal, "channel": cm.Channel}
	if cm.ThreadReason != nil {
		after["thread_reason"], after["source_message_id"] = *cm.ThreadReason, cm.SourceMessageID
	}
	if err := c.audit("comment.added", "comment", cm.ID, nil, after); err != nil {
		return err
	}
	data := map[string]any{"comment_id": cm.ID, "author_id": cm.AuthorID, "is_internal": cm.IsInternal,
		"channel": cm.Channel, "first_response": firstResponse}
	audience := pipeline.AudienceStaff
	if !cm.IsInternal {
		// Only public replies carry their text; an internal note's never
		// leaves the database in an event, whatever the audience.
		audience = pipeline.AudiencePublic
		data["content"], data["content_html"] = cm.Content, cm.ContentHTML
	}
	if err := c.emit(pipeline.EventCommentAdded, audience, data); err != nil {
		return err
	}
	if firstResponse {
		if err := c.syncSLA(sla.ReasonFirstResponse); err != nil {
			return err
		}
	}
	if cm.IsInternal || !c.a.requesterSide(c.t) {
		return nil
	}
	window := time.Duration(0)
	if c.t.Status == models.StatusResolved {
		var err error
		if window, err = c.reopenWindow(); err != nil {
			return err
		}
	}
	if to, ok := models.AfterCustomerReply(c.t.Status, c.t.ResolvedAt, c.now, window); ok {
		return c.moveTo(to, "", "customer_reply", nil)
	}
	return nil
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func (s *Service) commentBody(in NewComment) (RichText, error) {
	var body RichText
	if strings.TrimSpace(in.ContentHTML) != "" {
		body = s.html.FromHTML(in.ContentHTML)
	} else {
		body = RichText{Text: strings.TrimSpace(in.Content)}
	}
	switch {
	case !utf8.ValidString(body.Text):
		return body, apperr.Fields(map[string]string{"content": "must be UTF-8 text"})
	case body.Text == "":
		return body, apperr.Fields(map[string]string{"content": "is required"})
	case utf8.RuneCountInString(body.Text) > MaxContent || (body.HTML != nil && len(*body.HTML) > 4*MaxContent):
		return body, apperr.Fields(map[string]string{"content": fmt.Sprintf("must be at most %d characters", MaxContent)})
	}
	return body, nil
}

const commentSelect = `SELECT c.*, u.name AS author_name, coalesce(u.role IN ('agent', 'manager', 'admin'), false) AS author_is_staff
	FROM comments c LEFT JOIN users u ON u.id = c.author_id AND u.org_id = c.org_id`

func (s *Service) comment(ctx context.Context, orgID, id uuid.UUID) (*Comment, error) {
	var out Comment
	if err := s.db.WithContext(ctx).Raw(commentSelect+` WHERE c.org_id = ? AND c.id = ?`, orgID, id).Scan(&out).Error; err != nil {
		return nil, database.Classify(fmt.Errorf("tickets: read comment %s: %w", id, err))
	}
	return &out, nil
}

// ListComments lists a ticket's comments oldest first, after the comment
// with id after (keyset), at most limit+1 of them so the caller can tell
// whether there is a next page. Customers never get internal notes.
func (s *Service) ListComments(ctx context.Context, a Actor, ticketID, after uuid.UUID, limit int) ([]Comment, error) {
	if _, err := s.Get(ctx, a, ticketID); err != nil {
		return nil, err
	}
	q := commentSelect + ` WHERE c.org_id = ? AND c.ticket_id = ?`
	args := []any{a.OrgID, ticketID}
	if !a.Role.IsStaff() {
		q += ` AND NOT c.is_internal`
	}
	if after != uuid.Nil {
		q += ` AND (c.created_at, c.id) > (SELECT k.created_at, k.id FROM comments k WHERE k.id = ? AND k.ticket_id = ?)`
		args = append(args, after, ticketID)
	}
	q += ` ORDER BY c.created_at, c.id LIMIT ?`
	args = append(args, limit+1)
	var out []Comment
	if err := s.db.WithContext(ctx).Raw(q, args...).Scan(&out).Error; err != nil {
		return nil, database.Classify(fmt.Errorf("tickets: list comments: %w", err))
	}
	return out, nil
}
