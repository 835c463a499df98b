package ingest

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/atumdesk/atumdesk/ingest/imap"
	"github.com/atumdesk/atumdesk/ingest/mail"
	"github.com/atumdesk/atumdesk/internal/apperr"
	"github.com/atumdesk/atumdesk/pipeline"
)

// MailSink connects the IMAP poller to intake: each fetched message is
// parsed and submitted like any other channel's submission, so it is on the
// inbound topic (acks from all replicas) before the poller flags or moves
// it. Its idempotency key is the mailbox plus the message's identity there
// (Message-ID, or the SHA-256 of the raw bytes), so a message fetched twice
// is one ticket.
func (s *Service) MailSink() imap.Sink {
	return imap.SinkFunc(func(ctx context.Context, m *imap.Message) error {
		msg, err := mail.Parse(m.Raw, mail.Options{})
		if errors.Is(err, mail.ErrNoSender) || errors.Is(err, mail.ErrEmpty) || errors.Is(err, mail.ErrTooLarge) {
			return imap.Permanent(err) // quarantined with its reason; no retry can fix it
		}
		if err != nil {
			return err
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
		_, err = s.Submit(ctx, Submission{
			Channel: pipeline.ChannelEmail, OrgID: m.OrgID,
			Requester: pipeline.Requester{Email: msg.From.Email, Name: msg.From.Name},
			Subject:   subject, Description: text, DescriptionHTML: msg.HTML,
			IdempotencyKey:   "mail:" + m.MailboxID.String() + ":" + m.DedupeKey(),
			IdempotencyScope: "mailbox:" + m.MailboxID.String(),
			MessageID:        msg.MessageID, InReplyTo: msg.InReplyTo, References: msg.References,
		})
		if e, ok := apperr.As(err); ok && (e.Kind == apperr.Invalid || e.Kind == apperr.BadRequest) {
			return imap.Permanent(fmt.Errorf("ingest: mail refused: %w", err))
		}
		return err
	})
}
