package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/ingest/mail"
	"github.com/atumdesk/atumdesk/internal/database"
	"github.com/atumdesk/atumdesk/internal/mailthread"
	"github.com/atumdesk/atumdesk/models"
)

// Threading: which ticket an inbound reply belongs to. In order, the first
// that names a ticket of the mailbox's organisation wins:
//
//  1. In-Reply-To, then References (newest first): Message-IDs of the mail
//     we sent (notifications), of the mail that opened a ticket
//     (tickets.source_message_id) or was added to one
//     (comments.source_message_id);
//  2. the signed token in the subject ("[ATUM#12-tag]");
//  3. the signed token in a plus-addressed recipient (To, Cc, Delivered-To,
//     X-Original-To: "support+atum12-tag@…").
//
// A token counts only with a valid tag (an HMAC of the ticket's id), so a
// guessed number cannot inject mail into another ticket. The sender must
// then be a participant of that ticket — its requester, a watcher, or
// active staff of the organisation — or the mail opens a new ticket.

// threadMatch is where a reply threads, and why.
type threadMatch struct {
	TicketID uuid.UUID
	Number   int64
	Status   models.TicketStatus
	Reason   string // models.ThreadInReplyTo, …
}

// sender is the author of an inbound mail as a user of the organisation.
type sender struct {
	ID       uuid.UUID
	Role     models.Role
	IsActive bool
}

// threader looks replies up in one database.
type threader struct {
	db     *gorm.DB
	signer mailthread.Signer
}

// referenced returns the Message-IDs a reply points at, In-Reply-To first,
// then References newest first, without repeats and without the mail's own
// id.
func referenced(msg *mail.Message) (ids []string, fromInReplyTo int) {
	seen := map[string]bool{msg.MessageID: true, "": true}
	add := func(id string) {
		if !seen[id] && len(ids) < 50 { // a hostile References list is long
			seen[id] = true
			ids = append(ids, id)
		}
	}
	add(msg.InReplyTo)
	fromInReplyTo = len(ids)
	for i := len(msg.References) - 1; i >= 0; i-- {
		add(msg.References[i])
	}
	return ids, fromInReplyTo
}

// byMessageID finds the ticket of the first of ids (in their order) that
// is a Message-ID we know in org, with or without angle brackets.
func (th *threader) byMessageID(ctx context.Context, org uuid.UUID, ids []string) (uuid.UUID, int, error) {
	if len(ids) == 0 {
		return uuid.Nil, -1, nil
	}
	param, err := json.Marshal(ids)
	if err != nil {
		return uuid.Nil, -1, err
	}
	var rows []struct {
		Ord      int       `gorm:"column:ord"`
		TicketID uuid.UUID `gorm:"column:ticket_id"`
	}
	// One index probe per id and table (each has a unique (org_id,
	// message id) index); the first id in order wins.
	err = th.db.WithContext(ctx).Raw(`SELECT x.ord, coalesce(
			-- Escalations go to staff, not the requester: a reply to one
			-- must never become a public comment of the ticket.
			(SELECT n.ticket_id FROM notifications n WHERE n.org_id = ? AND n.message_id IN (x.id, '<' || x.id || '>')
				AND n.kind <> 'sla_escalation'
				ORDER BY n.created_at LIMIT 1),
			(SELECT t.id FROM tickets t WHERE t.org_id = ? AND t.source_message_id IN (x.id, '<' || x.id || '>') LIMIT 1),
			(SELECT c.ticket_id FROM comments c WHERE c.org_id = ? AND c.source_message_id IN (x.id, '<' || x.id || '>') LIMIT 1)
		) AS ticket_id
		FROM jsonb_array_elements_text(?::jsonb) WITH ORDINALITY AS x(id, ord)
		ORDER BY x.ord`, org, org, org, string(param)).Scan(&rows).Error
	if err != nil {
		return uuid.Nil, -1, database.Classify(fmt.Errorf("ingest: thread by message id: %w", err))
	}
	for _, r := range rows {
		if r.TicketID != uuid.Nil {
			return r.TicketID, r.Ord - 1, nil
		}
	}
	return uuid.Nil, -1, nil
}

// byToken finds the ticket a token names in org, if its tag is valid.
func (th *threader) byToken(ctx context.Context, org uuid.UUID, ref mailthread.Ref) (uuid.UUID, bool, error) {
	var row struct {
		ID uuid.UUID `gorm:"column:id"`
	}
	err := th.db.WithContext(ctx).Raw(`SELECT id FROM tickets WHERE org_id = ? AND number = ?`, org, ref.Number).Scan(&row).Error
	if err != nil {
		return uuid.Nil, false, database.Classify(fmt.Errorf("ingest: thread by token: %w", err))
	}
	id := row.ID
	if id == uuid.Nil || !th.signer.Verify(ref, id) {
		return uuid.Nil, false, nil
	}
	return id, true, nil
}

// match decides where msg threads in org; a zero TicketID: nowhere. forged
// counts tokens whose tag did not verify (logged by the caller).
func (th *threader) match(ctx context.Context, org uuid.UUID, msg *mail.Message) (m threadMatch, forged int, err error) {
	ids, nIRT := referenced(msg)
	id, at, err := th.byMessageID(ctx, org, ids)
	if err != nil {
		return m, 0, err
	}
	switch {
	case id != uuid.Nil && at < nIRT:
		m = threadMatch{TicketID: id, Reason: models.ThreadInReplyTo}
	case id != uuid.Nil:
		m = threadMatch{TicketID: id, Reason: models.ThreadReferences}
	}
	if m.TicketID == uuid.Nil {
		if ref, ok := mailthread.FromSubject(msg.Subject); ok {
			id, ok, err := th.byToken(ctx, org, ref)
			if err != nil {
				return m, forged, err
			}
			if ok {
				m = threadMatch{TicketID: id, Reason: models.ThreadSubjectToken}
			} else {
				forged++
			}
		}
	}
	if m.TicketID == uuid.Nil {
		for _, a := range recipients(msg) {
			ref, ok := mailthread.FromAddress(a)
			if !ok {
				continue
			}
			id, ok, err := th.byToken(ctx, org, ref)
			if err != nil {
				return m, forged, err
			}
			if ok {
				m = threadMatch{TicketID: id, Reason: models.ThreadPlusAddress}
				break
			}
			forged++
		}
	}
	if m.TicketID == uuid.Nil {
		return m, forged, nil
	}
	var t struct {
		Number int64               `gorm:"column:number"`
		Status models.TicketStatus `gorm:"column:status"`
	}
	if err := th.db.WithContext(ctx).Raw(`SELECT number, status FROM tickets WHERE org_id = ? AND id = ?`, org, m.TicketID).
		Scan(&t).Error; err != nil {
		return m, forged, database.Classify(fmt.Errorf("ingest: thread: read ticket: %w", err))
	}
	m.Number, m.Status = t.Number, t.Status
	return m, forged, nil
}

// recipients are the addresses a plus-addressed token may be in.
func recipients(msg *mail.Message) []string {
	var out []string
	for _, list := range [][]mail.Address{msg.To, msg.Cc, msg.DeliveredTo} {
		for _, a := range list {
			if strings.Contains(a.Email, "+") {
				out = append(out, a.Email)
			}
		}
	}
	return out
}

// sender finds the user with address email in org (nil: none).
func (th *threader) sender(ctx context.Context, org uuid.UUID, email string) (*sender, error) {
	var rows []sender
	err := th.db.WithContext(ctx).Raw(`SELECT id, role, is_active FROM users WHERE org_id = ? AND lower(email) = lower(?)`,
		org, email).Scan(&rows).Error
	if err != nil {
		return nil, database.Classify(fmt.Errorf("ingest: find sender: %w", err))
	}
	if len(rows) == 0 {
		return nil, nil
	}
	return &rows[0], nil
}

// participant reports whether u may add to ticket: its requester, one of
// its watchers, or staff of the organisation; never a deactivated user.
func (th *threader) participant(ctx context.Context, org, ticket uuid.UUID, u *sender) (bool, error) {
	if u == nil || !u.IsActive {
		return false, nil
	}
	if u.Role.IsStaff() {
		return true, nil
	}
	var ok bool
	err := th.db.WithContext(ctx).Raw(`SELECT EXISTS (SELECT 1 FROM tickets WHERE org_id = ? AND id = ? AND requester_id = ?)
		OR EXISTS (SELECT 1 FROM ticket_watchers WHERE org_id = ? AND ticket_id = ? AND user_id = ?)`,
		org, ticket, u.ID, org, ticket, u.ID).Scan(&ok).Error
	if err != nil {
		return false, database.Classify(fmt.Errorf("ingest: participant: %w", err))
	}
	return ok, nil
}

// seen reports whether the mail with Message-ID id was ingested already
// (a comment or ticket carries it) or is our own (a notification's id).
func (th *threader) seen(ctx context.Context, org uuid.UUID, id string) (what string, err error) {
	if id == "" {
		return "", nil
	}
	err = th.db.WithContext(ctx).Raw(`SELECT CASE
			WHEN EXISTS (SELECT 1 FROM notifications WHERE org_id = ? AND message_id IN (?, '<' || ? || '>')) THEN 'own'
			WHEN EXISTS (SELECT 1 FROM comments WHERE org_id = ? AND source_message_id = ?) THEN 'comment'
			WHEN EXISTS (SELECT 1 FROM tickets WHERE org_id = ? AND source_message_id = ?) THEN 'ticket'
			ELSE '' END`, org, id, id, org, id, org, id).Scan(&what).Error
	if err != nil {
		return "", database.Classify(fmt.Errorf("ingest: seen: %w", err))
	}
	return what, nil
}
