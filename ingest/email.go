package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/atumdesk/atumdesk/ingest/imap"
	"github.com/atumdesk/atumdesk/ingest/mail"
	"github.com/atumdesk/atumdesk/internal/apperr"
	"github.com/atumdesk/atumdesk/internal/audit"
	"github.com/atumdesk/atumdesk/internal/database"
	"github.com/atumdesk/atumdesk/internal/mailthread"
	"github.com/atumdesk/atumdesk/internal/metrics"
	"github.com/atumdesk/atumdesk/internal/storage"
	"github.com/atumdesk/atumdesk/internal/tickets"
	"github.com/atumdesk/atumdesk/models"
	"github.com/atumdesk/atumdesk/pipeline"
)

// MailConfig is what the mail sink needs besides intake.
type MailConfig struct {
	// Signer checks the ticket tokens of replies; in the binary it is
	// keyed by the deployment's JWT secret, like the notify stage's.
	Signer mailthread.Signer
	// Tickets adds a threaded reply as a comment: the same service (and so
	// the same status rules) as a reply through the API.
	Tickets *tickets.Service
	// Registerer receives atumdesk_mail_ingest_total (nil: not registered).
	Registerer prometheus.Registerer
	// Files stores the mail's attachments and inline images under the same
	// rules as uploads (nil: they are not kept; the raw mail still is).
	Files *storage.Attachments
}

// Outcomes of one inbound mail (label of atumdesk_mail_ingest_total).
const (
	mailComment       = "comment"          // threaded onto its ticket
	mailTicket        = "ticket"           // a new ticket
	mailTicketAuto    = "ticket_auto"      // a new ticket, never acknowledged (machine-written)
	mailFollowUp      = "follow_up"        // a reply to a closed ticket: a new ticket
	mailAutoDropped   = "auto_dropped"     // machine-written reply to a ticket: nothing
	mailOwnDropped    = "own_dropped"      // our own notification came back: nothing
	mailBounce        = "bounce"           // delivery failure: the address marked, nothing else
	mailDuplicate     = "duplicate"        // ingested before
	mailUnknownSender = "unknown_sender"   // quarantined by the mailbox's policy
	mailNotThreaded   = "not_participant"  // matched a ticket, sender not a participant: a new ticket
	mailForgedToken   = "forged_token"     // a token whose tag did not verify: a new ticket
	mailQuarantine    = "quarantined_mail" // unreadable or refused
)

// mailSink is the IMAP poller's Sink: parse, thread or submit.
type mailSink struct {
	s       *Service
	th      threader
	tickets *tickets.Service
	files   *storage.Attachments
	total   *prometheus.CounterVec
}

// MailSink connects the IMAP poller to ingest. Each fetched message is
// parsed; a bounce marks the failed address and creates nothing; a reply
// from a participant of its ticket becomes a comment (through the ticket
// service, as the sender, channel email), unless a machine wrote it (then
// nothing); anything else is submitted like any other channel's
// submission, so it is on the inbound topic (acks from all replicas)
// before the poller flags or moves it.
//
// Idempotency: a new ticket's key is the mailbox plus the message's
// identity there (Message-ID, or the SHA-256 of the raw bytes), so a
// message fetched twice is one ticket; a comment carries the Message-ID in
// comments.source_message_id (unique per organisation), so it is one
// comment.
func (s *Service) MailSink(cfg MailConfig) (imap.Sink, error) {
	if cfg.Tickets == nil {
		return nil, errors.New("ingest: MailConfig.Tickets is required")
	}
	k := &mailSink{s: s, th: threader{db: s.db, signer: cfg.Signer}, tickets: cfg.Tickets, files: cfg.Files,
		total: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "atumdesk_mail_ingest_total",
			Help: "Inbound e-mails by outcome: comment, ticket, ticket_auto, follow_up, auto_dropped, own_dropped, bounce, " +
				"duplicate, unknown_sender, not_participant, forged_token, quarantined_mail."}, []string{"outcome"})}
	if cfg.Registerer != nil {
		var err error
		if k.total, err = metrics.Register(cfg.Registerer, k.total); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// Deliver implements imap.Sink.
func (k *mailSink) Deliver(ctx context.Context, m *imap.Message) error {
	msg, err := mail.Parse(m.Raw, mail.Options{})
	if errors.Is(err, mail.ErrNoSender) || errors.Is(err, mail.ErrEmpty) || errors.Is(err, mail.ErrTooLarge) {
		k.count(mailQuarantine)
		return imap.Permanent(err) // quarantined with its reason; no retry can fix it
	}
	if err != nil {
		return err
	}
	log := k.s.log.With("mailbox_id", m.MailboxID, "org_id", m.OrgID, "message_id", msg.MessageID, "from", msg.From.Email)
	if msg.Loop.Bounce {
		n, err := markBounced(ctx, k.s.db, m.OrgID, msg.Loop.BouncedRecipients, msg.MessageID)
		if err != nil {
			return err
		}
		log.InfoContext(ctx, "mail: bounce recorded; no ticket", "bounced", msg.Loop.BouncedRecipients, "users_marked", n,
			"reasons", msg.Loop.Reasons)
		k.count(mailBounce)
		return nil
	}
	sourceID := msg.MessageID
	if sourceID == "" {
		sourceID = m.DedupeKey() // "sha256:…": still one comment per mail
	}
	switch seen, err := k.th.seen(ctx, m.OrgID, sourceID); {
	case err != nil:
		return err
	case seen == "own":
		log.InfoContext(ctx, "mail: our own notification came back; dropped")
		k.count(mailOwnDropped)
		return nil
	case seen == "comment" || seen == "ticket":
		k.count(mailDuplicate)
		return nil
	}

	match, forged, err := k.th.match(ctx, m.OrgID, msg)
	if err != nil {
		return err
	}
	if forged > 0 {
		log.WarnContext(ctx, "mail: ticket token with an invalid tag ignored", "subject", msg.Subject)
		k.count(mailForgedToken)
	}
	u, err := k.th.sender(ctx, m.OrgID, msg.From.Email)
	if err != nil {
		return err
	}
	var followUpOf *threadMatch
	if match.TicketID != uuid.Nil {
		ok, err := k.th.participant(ctx, m.OrgID, match.TicketID, u)
		if err != nil {
			return err
		}
		switch {
		case !ok:
			log.InfoContext(ctx, "mail: matched a ticket but the sender is no participant; new ticket",
				"ticket_id", match.TicketID, "thread_reason", match.Reason)
			k.count(mailNotThreaded)
		case msg.Loop.Automatic:
			// An auto-reply (vacation notice, list or bulk mail, our own
			// mail) answering a ticket's mail: recorded here and nowhere
			// else, so two systems cannot talk to each other forever.
			log.InfoContext(ctx, "mail: automatic reply to a ticket dropped", "ticket_id", match.TicketID,
				"thread_reason", match.Reason, "reasons", msg.Loop.Reasons)
			k.count(mailAutoDropped)
			return nil
		case match.Status.ReadOnly():
			followUpOf = &match
		default:
			done, err := k.comment(ctx, m, msg, match, u, sourceID)
			if done || err != nil {
				return err
			}
			followUpOf = &match // closed meanwhile
		}
	}
	return k.newTicket(ctx, m, msg, u, followUpOf)
}

// comment adds msg to its ticket as u's public reply. done is false when
// the ticket turned read-only in the meantime (the caller opens a new one).
func (k *mailSink) comment(ctx context.Context, m *imap.Message, msg *mail.Message, match threadMatch, u *sender, sourceID string) (done bool, err error) {
	text, html := replyBody(msg)
	a := tickets.Actor{UserID: u.ID, OrgID: m.OrgID, Role: u.Role, UserAgent: "atumdesk-imap", RequestID: "mail:" + m.DedupeKey()}
	c, _, err := k.tickets.AddComment(ctx, a, match.TicketID, tickets.NewComment{Content: text, ContentHTML: html,
		Channel: models.ChannelEmail, SourceMessageID: sourceID, ThreadReason: match.Reason})
	e, _ := apperr.As(err)
	switch {
	case err == nil:
		if _, err := k.saveParts(ctx, m.OrgID, msg, &u.ID, &match.TicketID, &c.ID); err != nil {
			// The comment stands (its Message-ID makes a retry a no-op);
			// the raw mail keeps the files for a replay.
			k.s.log.WarnContext(ctx, "mail: reply attachments not stored", "err", err, "comment_id", c.ID)
		}
		k.s.log.InfoContext(ctx, "mail: reply threaded", "ticket_id", match.TicketID, "comment_id", c.ID,
			"thread_reason", match.Reason, "mailbox_id", m.MailboxID)
		k.count(mailComment)
		if !msg.Loop.Automatic {
			if err := clearBounce(ctx, k.s.db, m.OrgID, msg.From.Email); err != nil {
				k.s.log.WarnContext(ctx, "mail: clear bounce mark", "err", err)
			}
		}
		return true, nil
	case e != nil && e.Kind == apperr.Conflict:
		k.count(mailDuplicate) // the same mail through another mailbox, concurrently
		return true, nil
	case e != nil && e.Kind == apperr.InvalidState:
		return false, nil
	case e != nil && (e.Kind == apperr.Invalid || e.Kind == apperr.BadRequest):
		k.count(mailQuarantine)
		return true, imap.Permanent(fmt.Errorf("ingest: reply refused by ticket %d: %w", match.Number, err))
	}
	return true, err
}

// errUnknownSender is the quarantine reason admins see.
var errUnknownSender = errors.New("ingest: the sender is no user of this organisation and the mailbox quarantines unknown senders " +
	"(add the customer, or replay the message to accept it)")

// newTicket submits msg as a new ticket. followUpOf is the closed ticket a
// reply was meant for (recorded in that ticket's audit trail).
func (k *mailSink) newTicket(ctx context.Context, m *imap.Message, msg *mail.Message, u *sender, followUpOf *threadMatch) error {
	if u == nil && !m.Replay {
		policy, err := k.unknownSenderPolicy(ctx, m.MailboxID)
		if err != nil {
			return err
		}
		if policy == models.UnknownSenderQuarantine {
			k.count(mailUnknownSender)
			return imap.Permanent(fmt.Errorf("%w: %s", errUnknownSender, msg.From.Email))
		}
	}
	subject := strings.TrimSpace(msg.Subject)
	if subject == "" {
		subject = "(no subject)"
	}
	text := msg.Text
	if strings.TrimSpace(text) == "" {
		text = msg.FullText
	}
	if strings.TrimSpace(text) == "" {
		text = "(no text)"
	}
	// Unlinked until the persister claims them for the ticket; a mail
	// delivered twice leaves the second copy's files unlinked, and those
	// are purged after a day.
	files, err := k.saveParts(ctx, m.OrgID, msg, nil, nil, nil)
	if err != nil {
		return err
	}
	rec, err := k.s.Submit(ctx, Submission{
		Channel: pipeline.ChannelEmail, OrgID: m.OrgID,
		Requester: pipeline.Requester{Email: msg.From.Email, Name: msg.From.Name},
		Subject:   subject, Description: text, DescriptionHTML: msg.HTML,
		IdempotencyKey:   "mail:" + m.MailboxID.String() + ":" + m.DedupeKey(),
		IdempotencyScope: "mailbox:" + m.MailboxID.String(),
		MessageID:        msg.MessageID, InReplyTo: msg.InReplyTo, References: msg.References,
		AutoSubmitted: msg.Loop.Automatic, AttachmentIDs: files,
		// The poller holds the mailbox alone: a reservation still pending is
		// a killed predecessor's, which must not hold the mail back.
		TakeOverPending: true,
	})
	if e, ok := apperr.As(err); ok && (e.Kind == apperr.Invalid || e.Kind == apperr.BadRequest) {
		k.count(mailQuarantine)
		return imap.Permanent(fmt.Errorf("ingest: mail refused: %w", err))
	}
	if err != nil {
		return err
	}
	switch {
	case followUpOf != nil:
		k.count(mailFollowUp)
	case msg.Loop.Automatic:
		k.count(mailTicketAuto)
	default:
		k.count(mailTicket)
	}
	if !msg.Loop.Automatic && u != nil {
		if err := clearBounce(ctx, k.s.db, m.OrgID, msg.From.Email); err != nil {
			k.s.log.WarnContext(ctx, "mail: clear bounce mark", "err", err)
		}
	}
	if followUpOf == nil || rec.Replayed {
		return nil
	}
	// Closed tickets are read-only: the reply opened a new ticket, and the
	// closed one says where it went (agents see it in its history).
	k.s.log.InfoContext(ctx, "mail: reply to a closed ticket opened a new ticket", "ticket_id", followUpOf.TicketID,
		"new_ticket_id", rec.TicketID, "thread_reason", followUpOf.Reason)
	org, closed := m.OrgID, followUpOf.TicketID
	err = audit.Write(ctx, k.s.db.WithContext(ctx), audit.Entry{OrgID: &org, TicketID: &closed, Action: "ticket.mail_follow_up",
		EntityType: "ticket", EntityID: &closed, UserAgent: "atumdesk-imap", RequestID: "mail:" + m.DedupeKey(),
		After: map[string]any{"new_ticket_id": rec.TicketID, "thread_reason": followUpOf.Reason, "status": followUpOf.Status,
			"message_id": msg.MessageID}})
	if err != nil {
		// The ticket exists; a missing history line is not worth a retry.
		k.s.log.WarnContext(ctx, "mail: audit follow-up", "err", err)
	}
	return nil
}

// unknownSenderPolicy reads the mailbox's unknown_sender setting.
func (k *mailSink) unknownSenderPolicy(ctx context.Context, mailbox uuid.UUID) (string, error) {
	var policy string
	err := k.s.db.WithContext(ctx).Raw(`SELECT unknown_sender FROM mailboxes WHERE id = ?`, mailbox).Scan(&policy).Error
	if err != nil {
		return "", database.Classify(fmt.Errorf("ingest: mailbox policy: %w", err))
	}
	return policy, nil
}

// replyBody is the new text of a reply (quotes and signature removed),
// within the comment limits; the whole text when nothing new is left.
func replyBody(msg *mail.Message) (text, html string) {
	text, html = msg.Text, msg.HTML
	if strings.TrimSpace(text) == "" {
		text, html = msg.FullText, msg.FullHTML
	}
	if strings.TrimSpace(text) == "" {
		text, html = "(no text)", ""
	}
	if utf8.RuneCountInString(text) > tickets.MaxContent {
		// Cut to the limit; the HTML (whose text the ticket service would
		// take instead) goes. The raw mail is kept.
		text, html = string([]rune(text)[:tickets.MaxContent]), ""
	}
	if len(html) > 4*tickets.MaxContent {
		html = ""
	}
	return text, html
}

func (k *mailSink) count(outcome string) { k.total.WithLabelValues(outcome).Inc() }

// saveParts stores msg's attachments and inline images that the upload
// rules accept (a refused part is left out and named in the log; the raw
// mail keeps it) and returns their ids, at most MaxAttachments.
func (k *mailSink) saveParts(ctx context.Context, org uuid.UUID, msg *mail.Message, by, ticket, comment *uuid.UUID) ([]uuid.UUID, error) {
	if k.files == nil {
		return nil, nil
	}
	var ids []uuid.UUID
	for _, p := range msg.Attachments {
		if p.ContentType == "" || len(ids) == MaxAttachments {
			k.s.log.InfoContext(ctx, "mail: attachment not kept", "filename", p.Filename, "reason", p.Refused, "message_id", msg.MessageID)
			continue
		}
		u := storage.Upload{OrgID: org, UploadedBy: by, TicketID: ticket, CommentID: comment, Filename: p.Filename,
			Body: bytes.NewReader(p.Data)}
		if p.ContentID != "" {
			cid := p.ContentID
			u.ContentID = &cid
		}
		att, err := k.files.Save(ctx, k.s.db, u, nil)
		if e, ok := apperr.As(err); ok && e.Kind != apperr.Unavailable {
			k.s.log.InfoContext(ctx, "mail: attachment refused", "filename", p.Filename, "err", err, "message_id", msg.MessageID)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("ingest: store attachment %q: %w", p.Filename, err)
		}
		ids = append(ids, att.ID)
	}
	return ids, nil
}
