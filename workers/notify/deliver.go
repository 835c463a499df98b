package notify

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	gomail "github.com/wneessen/go-mail"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/internal/audit"
	"github.com/atumdesk/atumdesk/internal/csat"
	"github.com/atumdesk/atumdesk/internal/database"
	"github.com/atumdesk/atumdesk/internal/mailer"
	"github.com/atumdesk/atumdesk/models"
	"github.com/atumdesk/atumdesk/pipeline"
)

// errBusy: another run holds the notification (it is being sent).
var errBusy = errors.New("notify: notification is being sent by another run; retry")

type notificationRow struct {
	ID        uuid.UUID
	MessageID string
	Status    string
	CreatedAt time.Time
}

// deliver settles one recipient's notification: claims its row, then
// sends it under the row's lock. It returns the state the row reached in
// this run ("" when it was settled before) and, for a transient failure,
// an error (the task is retried).
func (h *Handler) deliver(ctx context.Context, ev *pipeline.Event, pl *plan, r recipient) (string, error) {
	log := h.log.With("event_id", ev.ID, "ticket_id", pl.t.ID, "kind", pl.kind, "recipient", r.user.Email)
	status, inserted, err := h.claim(ctx, ev, pl, &r)
	if err != nil {
		return "", err
	}
	if status != StatusPending {
		if !inserted {
			return "", nil // settled by an earlier run
		}
		h.count(pl.kind, StatusSuppressed)
		log.InfoContext(ctx, "notification suppressed", "reason", r.suppress)
		return StatusSuppressed, nil
	}
	if pl.csat {
		// The invitation mail and the survey go together (csat metrics
		// count invitations); Invite is idempotent.
		t := &models.Ticket{ID: pl.t.ID, OrgID: pl.t.OrgID, RequesterID: pl.t.RequesterID, Status: pl.t.Status}
		if err := h.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			_, err := csat.Invite(ctx, tx, t)
			return err
		}); err != nil {
			return "", fmt.Errorf("notify: csat invite: %w", err)
		}
	}

	var (
		state   string
		sendErr error
	)
	err = h.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var n notificationRow
		err := tx.Raw(`SELECT id, message_id, status, created_at FROM notifications
			WHERE event_id = ? AND recipient = ? FOR UPDATE NOWAIT`, ev.ID, r.user.Email).Scan(&n).Error
		if database.SQLState(err) == "55P03" {
			return errBusy
		}
		if err != nil {
			return fmt.Errorf("notify: lock notification: %w", err)
		}
		if n.ID == uuid.Nil || n.Status != StatusPending {
			return nil // settled by an earlier run
		}
		if r.suppress != "" {
			// Claimed by an earlier run; since then the address bounced,
			// the news went stale, SMTP was switched off, ….
			state = StatusSuppressed
			return setStatus(tx, n.ID, StatusSuppressed, r.suppress, false)
		}
		msg, err := h.compose(ctx, tx, pl, r, n)
		if err != nil {
			log.ErrorContext(ctx, "notification not composed", "err", err)
			state = StatusFailed
			return setStatus(tx, n.ID, StatusFailed, err.Error(), false)
		}
		sendErr = h.cfg.Mailer.Send(ctx, msg)
		switch {
		case sendErr == nil:
			state = StatusSent
			return setStatus(tx, n.ID, StatusSent, "", true)
		case mailer.IsPermanent(sendErr):
			state = StatusFailed
			if err := setStatus(tx, n.ID, StatusFailed, sendErr.Error(), true); err != nil {
				return err
			}
			if recipientRejected(sendErr) {
				return markBounced(ctx, tx, pl.t, r.user, n.ID)
			}
			return nil
		default:
			state = "retry"
			return tx.Exec(`UPDATE notifications SET attempts = attempts + 1, reason = ? WHERE id = ?`,
				clip("retrying: "+sendErr.Error()), n.ID).Error
		}
	})
	if err != nil {
		return "", err
	}
	switch state {
	case "":
		return "", nil
	case "retry":
		h.count(pl.kind, "retry")
		log.WarnContext(ctx, "notification not sent; will retry", "err", sendErr)
		return "", fmt.Errorf("notify: send %s to %s: %w", pl.kind, r.user.Email, sendErr)
	case StatusFailed:
		log.WarnContext(ctx, "notification failed for good", "err", sendErr)
	default:
		log.InfoContext(ctx, "notification "+state)
	}
	h.count(pl.kind, state)
	return state, nil
}

// claim inserts the recipient's notification row unless it exists: pending
// with a fresh Message-ID, or suppressed with the reason (r.suppress is set
// to it). It returns the row's status and whether this run inserted it.
func (h *Handler) claim(ctx context.Context, ev *pipeline.Event, pl *plan, r *recipient) (status string, inserted bool, err error) {
	switch {
	case r.suppress != "":
	case h.cfg.Mailer == nil:
		r.suppress = ReasonSMTPOff
	case pl.from.Address == "":
		r.suppress = ReasonNoSender
	}
	domain := domainOf(pl.from.Address)
	if domain == "" {
		domain = hostOf(h.cfg.PublicURL) // for the record only: nothing is sent
	}
	err = h.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if r.suppress == "" && pl.kind == KindTicketReceived {
			limited, err := h.ackLimited(tx, pl.t.OrgID, ev.ID, r.user.Email)
			if err != nil {
				return err
			}
			if limited {
				r.suppress = ReasonRateLimited
			}
		}
		initial, reason := StatusPending, any(nil)
		if r.suppress != "" {
			initial, reason = StatusSuppressed, r.suppress
		}
		res := tx.Exec(`INSERT INTO notifications (id, org_id, ticket_id, event_id, kind, recipient, message_id, status, reason)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_id, recipient) DO NOTHING`,
			models.NewID(), pl.t.OrgID, pl.t.ID, ev.ID, pl.kind, r.user.Email, mailer.NewMessageID(domain), initial, reason)
		if res.Error != nil {
			return fmt.Errorf("notify: insert notification: %w", res.Error)
		}
		inserted = res.RowsAffected == 1
		return tx.Raw(`SELECT status FROM notifications WHERE event_id = ? AND recipient = ?`, ev.ID, r.user.Email).
			Scan(&status).Error
	})
	return status, inserted, err
}

// ackLimited reports whether addr had AckLimit acknowledgements (other than
// the one of eventID) within AckWindow. A transaction-scoped lock per
// address makes concurrent acknowledgements count one after the other.
func (h *Handler) ackLimited(tx *gorm.DB, orgID, eventID uuid.UUID, addr string) (bool, error) {
	key := "atumdesk:notify:ack:" + orgID.String() + ":" + strings.ToLower(addr)
	if err := tx.Exec(`SELECT pg_advisory_xact_lock(hashtextextended(?, 0))`, key).Error; err != nil {
		return false, fmt.Errorf("notify: ack lock: %w", err)
	}
	var n int64
	err := tx.Raw(`SELECT count(*) FROM notifications
		WHERE org_id = ? AND lower(recipient) = lower(?) AND kind = ? AND status IN ('pending', 'sent')
		  AND created_at > now() - make_interval(secs => ?) AND event_id <> ?`,
		orgID, addr, KindTicketReceived, h.cfg.AckWindow.Seconds(), eventID).Scan(&n).Error
	if err != nil {
		return false, fmt.Errorf("notify: ack count: %w", err)
	}
	return n >= int64(h.cfg.AckLimit), nil
}

// markBounced records a hard bounce at the door (the server refused the
// recipient): mail to the address stops until the customer writes again
// (ingest clears the mark) or an agent clears it.
func markBounced(ctx context.Context, tx *gorm.DB, t *ticketRow, u userRow, notificationID uuid.UUID) error {
	res := tx.Exec(`UPDATE users SET email_bounced_at = now() WHERE org_id = ? AND id = ? AND email_bounced_at IS NULL`, t.OrgID, u.ID)
	if res.Error != nil {
		return fmt.Errorf("notify: mark bounced: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return nil
	}
	return audit.Write(ctx, tx, audit.Entry{OrgID: &t.OrgID, TicketID: &t.ID, ActorKind: audit.ActorSystem, Action: "user.email_bounced",
		EntityType: "user", EntityID: &u.ID, After: map[string]any{"email": u.Email, "source": "smtp_rejected", "notification_id": notificationID}})
}

func setStatus(tx *gorm.DB, id uuid.UUID, status, reason string, attempted bool) error {
	var why any
	if reason != "" {
		why = clip(reason)
	}
	inc := 0
	if attempted {
		inc = 1
	}
	err := tx.Exec(`UPDATE notifications SET status = ?, reason = ?, attempts = attempts + ?,
		sent_at = CASE WHEN ? = 'sent' THEN now() ELSE sent_at END WHERE id = ?`, status, why, inc, status, id).Error
	if err != nil {
		return fmt.Errorf("notify: mark %s: %w", status, err)
	}
	return nil
}

// compose builds the message of n for r.
func (h *Handler) compose(ctx context.Context, tx *gorm.DB, pl *plan, r recipient, n notificationRow) (*mailer.Message, error) {
	v := pl.view
	v.Name = oneLine(r.user.Name, 100)
	o := overrideOf(pl.t.OrgSettings, pl.kind)
	out, err := h.tmpl.render(pl.kind, o, &v)
	if err != nil && o != nil {
		h.log.WarnContext(ctx, "notify: the organisation's template failed; the built-in one is used",
			"org_id", pl.t.OrgID, "kind", pl.kind, "err", err)
		out, err = h.tmpl.render(pl.kind, nil, &v)
	}
	if err != nil {
		return nil, err
	}
	msg := &mailer.Message{
		From: pl.from, To: []mail.Address{{Name: v.Name, Address: r.user.Email}}, ReplyTo: pl.replyTo,
		Subject: out.Subject, Text: out.Text, HTML: out.HTML, MessageID: n.MessageID,
		LoopToken: h.cfg.LoopToken, Headers: map[string]string{"X-Atumdesk-Notification": pl.kind},
	}
	switch pl.kind {
	case KindAgentReply: // written by a person: no Auto-Submitted
	case KindTicketReceived:
		msg.AutoSubmitted = "auto-replied"
	default:
		msg.AutoSubmitted = "auto-generated"
	}
	if pl.staff {
		return msg, nil // no token, no thread: staff answer in the desk
	}
	msg.Subject = h.cfg.Signer.Subject(out.Subject, pl.t.ID, pl.t.Number)
	refs, err := h.thread(ctx, tx, pl.t, n)
	if err != nil {
		return nil, err
	}
	if len(refs) > 0 {
		msg.References, msg.InReplyTo = refs, refs[len(refs)-1]
	}
	return msg, nil
}

// thread is the References of a new mail on ticket t, oldest first: the
// e-mail that opened the ticket, then the newest of the mails sent to the
// requester and the e-mails they wrote, before n; at most MaxReferences.
func (h *Handler) thread(ctx context.Context, tx *gorm.DB, t *ticketRow, n notificationRow) ([]string, error) {
	var rows []struct {
		MID string    `gorm:"column:mid"`
		At  time.Time `gorm:"column:at"`
	}
	err := tx.WithContext(ctx).Raw(`SELECT mid, at FROM (
			(SELECT message_id AS mid, created_at AS at FROM notifications
			 WHERE org_id = ? AND ticket_id = ? AND status = 'sent' AND kind <> ? AND created_at < ? AND id <> ?
			 ORDER BY created_at DESC LIMIT ?)
			UNION ALL
			(SELECT source_message_id, created_at FROM comments
			 WHERE org_id = ? AND ticket_id = ? AND source_message_id IS NOT NULL AND NOT is_internal AND created_at < ?
			 ORDER BY created_at DESC LIMIT ?)) m
		ORDER BY at`,
		t.OrgID, t.ID, KindSLAEscalation, n.CreatedAt, n.ID, MaxReferences,
		t.OrgID, t.ID, n.CreatedAt, MaxReferences).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("notify: thread: %w", err)
	}
	var ids []string
	add := func(s string) {
		if id := cleanID(s); id != "" && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	root := ""
	if t.SourceMessageID != nil {
		root = cleanID(*t.SourceMessageID)
	}
	for _, r := range rows {
		if id := cleanID(r.MID); id != root {
			add(id)
		}
	}
	if len(ids) > MaxReferences-1 {
		ids = ids[len(ids)-(MaxReferences-1):]
	}
	if root != "" {
		ids = append([]string{root}, ids...)
	}
	return ids, nil
}

// cleanID strips the angle brackets of a stored Message-ID; one that could
// not go into a header is dropped ("").
func cleanID(s string) string {
	s = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(s), "<"), ">")
	if s == "" || len(s) > 900 || !strings.Contains(s, "@") || strings.ContainsAny(s, "<> \t\r\n\x00") {
		return ""
	}
	return s
}

// recipientRejected reports whether the server refused the recipient
// (RCPT TO) permanently.
func recipientRejected(err error) bool {
	var se *gomail.SendError
	return errors.As(err, &se) && se.Reason == gomail.ErrSMTPRcptTo && !se.IsTemp()
}

func domainOf(addr string) string {
	_, d, ok := strings.Cut(addr, "@")
	if !ok || d == "" || strings.ContainsAny(d, "<> \t\r\n@") {
		return ""
	}
	return strings.ToLower(d)
}

// hostOf is the host name of a URL ("localhost" when there is none).
func hostOf(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Hostname() != "" && !strings.Contains(u.Hostname(), ":") {
		return strings.ToLower(u.Hostname())
	}
	return "localhost"
}

// clip bounds a stored reason.
func clip(s string) string { return oneLine(s, 1000) }
