package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/ingest/imap"
	"github.com/atumdesk/atumdesk/ingest/mail"
	"github.com/atumdesk/atumdesk/internal/mailthread"
	"github.com/atumdesk/atumdesk/internal/seed"
	"github.com/atumdesk/atumdesk/internal/storage"
	"github.com/atumdesk/atumdesk/internal/testenv"
	"github.com/atumdesk/atumdesk/internal/tickets"
	"github.com/atumdesk/atumdesk/pipeline"
)

// mailHarness is ingest's mail sink on a real database, Redis and broker,
// with the persister turning submissions into tickets, as the imap and
// pipeline processes do. Messages are handed to the sink directly, as the
// poller would after fetching them.
type mailHarness struct {
	t       *testing.T
	db      *gorm.DB
	org     uuid.UUID
	mailbox uuid.UUID
	signer  mailthread.Signer
	sink    imap.Sink
	reg     *prometheus.Registry
	seq     int
	mu      sync.Mutex
}

func newMailHarness(t *testing.T) *mailHarness {
	t.Helper()
	ctx := context.Background()
	db, _ := testenv.DB(t)
	_, err := seed.Demo(ctx, db, "")
	require.NoError(t, err)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	brokers, producer := testBroker(t)
	persister, err := pipeline.NewPersister(db, log, nil)
	require.NoError(t, err)
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = pipeline.RunPersister(pctx, pipeline.ConsumerConfig{Brokers: brokers, MaxWait: 5 * time.Millisecond,
			RetryMin: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond, LagInterval: -1}, persister)
	}()
	t.Cleanup(func() { cancel(); <-done })

	h := &mailHarness{t: t, db: db, signer: mailthread.NewSigner([]byte("mail threading test secret, 32+ chars")),
		reg: prometheus.NewRegistry()}
	require.NoError(t, db.Raw(`SELECT id FROM organizations WHERE slug = 'acme'`).Row().Scan(&h.org))
	h.mailbox = uuid.Must(uuid.NewV7())
	require.NoError(t, db.Exec(`INSERT INTO mailboxes (id, org_id, address, imap_host, imap_username, credentials_ref)
		VALUES (?, ?, 'support@acme.test', 'imap.acme.test', 'support@acme.test', 'secretbox')`, h.mailbox, h.org).Error)
	files, err := storage.NewLocal(t.TempDir())
	require.NoError(t, err)
	h.sink, err = New(db, testenv.Redis(t), producer, log).MailSink(MailConfig{Signer: h.signer,
		Tickets: tickets.New(db, tickets.Config{}), Registerer: h.reg, Files: storage.NewAttachments(files, 0)})
	require.NoError(t, err)
	return h
}

// message builds a mail from from with its own Message-ID (returned) and
// the extra header lines.
func (h *mailHarness) message(from, subject string, headers ...string) (raw []byte, id string) {
	h.mu.Lock()
	h.seq++
	id = fmt.Sprintf("m%d.%s@example.test", h.seq, uuid.NewString()[:8])
	h.mu.Unlock()
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: %s\r\nTo: Support <support@acme.test>\r\nSubject: %s\r\nMessage-ID: <%s>\r\nDate: %s\r\n",
		from, subject, id, time.Now().Format(time.RFC1123Z))
	for _, l := range headers {
		b.WriteString(l + "\r\n")
	}
	fmt.Fprintf(&b, "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nText of %s.\r\n\r\nOn Monday the helpdesk wrote:\r\n> earlier text\r\n", id)
	return b.Bytes(), id
}

// deliver hands raw to the sink as the poller would.
func (h *mailHarness) deliver(raw []byte, replay bool) error {
	msg, _ := mail.Parse(raw, mail.Options{})
	sum := sha256.Sum256(raw)
	return h.sink.Deliver(context.Background(), &imap.Message{MailboxID: h.mailbox, OrgID: h.org, Address: "support@acme.test",
		Folder: "INBOX", UIDValidity: 1, UID: uint32(h.seq), MessageID: msg.MessageID, SHA256: hex.EncodeToString(sum[:]),
		Raw: raw, InternalDate: time.Now(), Replay: replay})
}

// withParts builds a multipart mail from from: a text body and the given
// attachments (name → bytes), base64-encoded.
func (h *mailHarness) withParts(from, subject string, parts map[string][]byte, headers ...string) (raw []byte, id string) {
	h.mu.Lock()
	h.seq++
	id = fmt.Sprintf("m%d.%s@example.test", h.seq, uuid.NewString()[:8])
	h.mu.Unlock()
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: %s\r\nTo: Support <support@acme.test>\r\nSubject: %s\r\nMessage-ID: <%s>\r\nDate: %s\r\n",
		from, subject, id, time.Now().Format(time.RFC1123Z))
	for _, l := range headers {
		b.WriteString(l + "\r\n")
	}
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"BOUNDARY\"\r\n\r\n")
	fmt.Fprintf(&b, "--BOUNDARY\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nText of %s.\r\n", id)
	names := make([]string, 0, len(parts))
	for n := range parts {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, "--BOUNDARY\r\nContent-Type: application/octet-stream; name=\"%s\"\r\nContent-Disposition: attachment; filename=\"%s\"\r\nContent-Transfer-Encoding: base64\r\n\r\n%s\r\n",
			n, n, base64.StdEncoding.EncodeToString(parts[n]))
	}
	b.WriteString("--BOUNDARY--\r\n")
	return b.Bytes(), id
}

type attachmentRow struct {
	Filename    string     `gorm:"column:filename"`
	ContentType string     `gorm:"column:content_type"`
	SHA256      string     `gorm:"column:sha256"`
	CommentID   *uuid.UUID `gorm:"column:comment_id"`
	UploadedBy  *uuid.UUID `gorm:"column:uploaded_by"`
}

func (h *mailHarness) attachments(ticket uuid.UUID) []attachmentRow {
	h.t.Helper()
	var rows []attachmentRow
	require.NoError(h.t, h.db.Raw(`SELECT filename, mime_type AS content_type, encode(sha256, 'hex') AS sha256, comment_id, uploaded_by
		FROM attachments WHERE ticket_id = ? ORDER BY filename`, ticket).Scan(&rows).Error)
	return rows
}

type ticketRow struct {
	ID            uuid.UUID `gorm:"column:id"`
	Number        int64     `gorm:"column:number"`
	Status        string    `gorm:"column:status"`
	RequesterID   uuid.UUID `gorm:"column:requester_id"`
	AutoSubmitted bool      `gorm:"column:auto_submitted"`
}

// ticket waits for the ticket the mail with Message-ID id opened.
func (h *mailHarness) ticket(id string) ticketRow {
	h.t.Helper()
	var t ticketRow
	require.Eventually(h.t, func() bool {
		t = ticketRow{}
		return h.db.Raw(`SELECT id, number, status, requester_id, auto_submitted FROM tickets WHERE org_id = ? AND source_message_id = ?`,
			h.org, id).Scan(&t).Error == nil && t.ID != uuid.Nil
	}, 10*time.Second, 10*time.Millisecond, "ticket for %s", id)
	return t
}

// noTicket asserts that the mail with Message-ID id opened no ticket.
func (h *mailHarness) noTicket(id string) {
	h.t.Helper()
	time.Sleep(150 * time.Millisecond) // a submission would be persisted by now
	var n int64
	require.NoError(h.t, h.db.Raw(`SELECT count(*) FROM tickets WHERE org_id = ? AND source_message_id = ?`, h.org, id).Scan(&n).Error)
	require.Zero(h.t, n, "a ticket was opened for %s", id)
}

type commentRow struct {
	ID              uuid.UUID `gorm:"column:id"`
	AuthorID        uuid.UUID `gorm:"column:author_id"`
	Channel         string    `gorm:"column:channel"`
	IsInternal      bool      `gorm:"column:is_internal"`
	ThreadReason    *string   `gorm:"column:thread_reason"`
	SourceMessageID *string   `gorm:"column:source_message_id"`
	Content         string    `gorm:"column:content"`
}

func (h *mailHarness) comments(ticket uuid.UUID) []commentRow {
	h.t.Helper()
	var rows []commentRow
	require.NoError(h.t, h.db.Raw(`SELECT id, author_id, channel, is_internal, thread_reason, source_message_id, content
		FROM comments WHERE ticket_id = ? ORDER BY created_at, id`, ticket).Scan(&rows).Error)
	return rows
}

func (h *mailHarness) user(email string) uuid.UUID {
	h.t.Helper()
	var id uuid.UUID
	require.NoError(h.t, h.db.Raw(`SELECT id FROM users WHERE org_id = ? AND lower(email) = lower(?)`, h.org, email).Row().Scan(&id))
	return id
}

// notification records a mail the notify stage sent about ticket.
func (h *mailHarness) notification(ticket uuid.UUID, to string) string {
	h.t.Helper()
	id := uuid.NewString() + "@notify.atumdesk.test"
	require.NoError(h.t, h.db.Exec(`INSERT INTO notifications (id, org_id, ticket_id, event_id, kind, recipient, message_id, status, sent_at)
		VALUES (?, ?, ?, ?, 'agent_reply', ?, ?, 'sent', now())`, uuid.Must(uuid.NewV7()), h.org, ticket, uuid.Must(uuid.NewV7()), to, id).Error)
	return id
}

// outcome reads atumdesk_mail_ingest_total{outcome=o}.
func (h *mailHarness) outcome(o string) float64 {
	h.t.Helper()
	mfs, err := h.reg.Gather()
	require.NoError(h.t, err)
	for _, mf := range mfs {
		if mf.GetName() != "atumdesk_mail_ingest_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == o {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// testBroker starts the Kafka-protocol broker with the pipeline's topics
// and returns its addresses and a producer for it.
func testBroker(t *testing.T) ([]string, *pipeline.Producer) {
	t.Helper()
	ctx := context.Background()
	b, err := pipeline.StartBroker(ctx, pipeline.BrokerConfig{DataDir: t.TempDir(), Addr: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	t.Cleanup(b.Close)
	require.NoError(t, pipeline.EnsureTopics(ctx, b.Addrs(), pipeline.DefaultTopics(1)))
	producer := pipeline.NewProducer(b.Addrs(), pipeline.WithMaxAttempts(2), pipeline.WithTimeout(2*time.Second))
	t.Cleanup(func() { _ = producer.Close() })
	return b.Addrs(), producer
}

const customer = "Customer <customer@example.test>"

// TestMailThreading: the threading decisions against a real database.
func TestMailThreading(t *testing.T) {
	h := newMailHarness(t)

	// A customer writes: a new ticket (the sender becomes a customer).
	raw, first := h.message(customer, "Printer on fire")
	require.NoError(t, h.deliver(raw, false))
	tk := h.ticket(first)
	cust := h.user("customer@example.test")
	require.Equal(t, cust, tk.RequesterID)
	require.False(t, tk.AutoSubmitted)

	t.Run("in-reply-to a notification: a comment, status rules apply, once", func(t *testing.T) {
		require.NoError(t, h.db.Exec(`UPDATE tickets SET status = 'waiting_customer' WHERE id = ?`, tk.ID).Error)
		n := h.notification(tk.ID, "customer@example.test")
		raw, id := h.message(customer, "Re: Printer on fire", "In-Reply-To: <"+n+">", "References: <"+first+"> <"+n+">")
		require.NoError(t, h.deliver(raw, false))
		require.NoError(t, h.deliver(raw, false), "the same mail again")
		require.NoError(t, h.deliver(raw, true), "and replayed")
		cs := h.comments(tk.ID)
		require.Len(t, cs, 1, "one comment for one mail")
		require.Equal(t, cust, cs[0].AuthorID)
		require.Equal(t, "email", cs[0].Channel)
		require.False(t, cs[0].IsInternal)
		require.Equal(t, "in_reply_to", *cs[0].ThreadReason)
		require.Equal(t, id, *cs[0].SourceMessageID)
		require.Contains(t, cs[0].Content, "Text of "+id)
		require.NotContains(t, cs[0].Content, "earlier text", "quoted history is not repeated")
		var status string
		require.NoError(t, h.db.Raw(`SELECT status FROM tickets WHERE id = ?`, tk.ID).Scan(&status).Error)
		require.Equal(t, "in_progress", status, "a customer reply moves waiting_customer to in_progress")
		h.noTicket(id)
		require.Equal(t, 2.0, h.outcome("duplicate"))
	})

	t.Run("references: the ticket's own first mail", func(t *testing.T) {
		raw, id := h.message(customer, "Another thing", "References: <unknown@elsewhere.test> <"+first+">")
		require.NoError(t, h.deliver(raw, false))
		cs := h.comments(tk.ID)
		require.Equal(t, "references", *cs[len(cs)-1].ThreadReason)
		require.Equal(t, id, *cs[len(cs)-1].SourceMessageID)
	})

	t.Run("subject token and plus address", func(t *testing.T) {
		subject := h.signer.Subject("Re: Printer on fire", tk.ID, tk.Number)
		raw, id := h.message(customer, subject)
		require.NoError(t, h.deliver(raw, false))
		cs := h.comments(tk.ID)
		require.Equal(t, "subject_token", *cs[len(cs)-1].ThreadReason)
		require.Equal(t, id, *cs[len(cs)-1].SourceMessageID)

		plus := h.signer.ReplyTo("support@acme.test", tk.ID, tk.Number)
		raw, id = h.message(customer, "no token here", "Delivered-To: "+plus)
		require.NoError(t, h.deliver(raw, false))
		cs = h.comments(tk.ID)
		require.Equal(t, "plus_address", *cs[len(cs)-1].ThreadReason)
		require.Equal(t, id, *cs[len(cs)-1].SourceMessageID)
	})

	t.Run("forged token: a new ticket", func(t *testing.T) {
		before := len(h.comments(tk.ID))
		raw, id := h.message(customer, fmt.Sprintf("Re: [ATUM#%d-aaaaaaaaaa] Printer", tk.Number))
		require.NoError(t, h.deliver(raw, false))
		other := h.ticket(id)
		require.NotEqual(t, tk.ID, other.ID)
		require.Len(t, h.comments(tk.ID), before)
		require.Equal(t, 1.0, h.outcome("forged_token"))
	})

	t.Run("valid token from a non-participant: a new ticket; as a watcher: a comment", func(t *testing.T) {
		before := len(h.comments(tk.ID))
		subject := h.signer.Subject("Re: Printer on fire", tk.ID, tk.Number)
		raw, id := h.message("Colleague <customer_user@acme.test>", subject)
		require.NoError(t, h.deliver(raw, false))
		other := h.ticket(id)
		require.NotEqual(t, tk.ID, other.ID)
		require.Len(t, h.comments(tk.ID), before)

		colleague := h.user("customer_user@acme.test")
		require.NoError(t, h.db.Exec(`INSERT INTO ticket_watchers (ticket_id, user_id, org_id) VALUES (?, ?, ?)`, tk.ID, colleague, h.org).Error)
		raw, id = h.message("Colleague <customer_user@acme.test>", subject)
		require.NoError(t, h.deliver(raw, false))
		cs := h.comments(tk.ID)
		require.Len(t, cs, before+1)
		require.Equal(t, colleague, cs[before].AuthorID)
		h.noTicket(id)
	})

	t.Run("staff reply by mail: a public staff comment", func(t *testing.T) {
		n := h.notification(tk.ID, "agent@acme.test")
		raw, _ := h.message("Agent <agent@acme.test>", "Re: Printer on fire", "In-Reply-To: <"+n+">")
		require.NoError(t, h.deliver(raw, false))
		cs := h.comments(tk.ID)
		require.Equal(t, h.user("agent@acme.test"), cs[len(cs)-1].AuthorID)
		var responded bool
		require.NoError(t, h.db.Raw(`SELECT first_responded_at IS NOT NULL FROM tickets WHERE id = ?`, tk.ID).Scan(&responded).Error)
		require.True(t, responded)
	})

	t.Run("reply to an SLA escalation: never a public comment", func(t *testing.T) {
		before := len(h.comments(tk.ID))
		n := uuid.NewString() + "@notify.atumdesk.test"
		require.NoError(t, h.db.Exec(`INSERT INTO notifications (id, org_id, ticket_id, event_id, kind, recipient, message_id, status, sent_at)
			VALUES (?, ?, ?, ?, 'sla_escalation', 'agent@acme.test', ?, 'sent', now())`, uuid.Must(uuid.NewV7()), h.org, tk.ID, uuid.Must(uuid.NewV7()), n).Error)
		raw, _ := h.message("Agent <agent@acme.test>", "Re: SLA breached", "In-Reply-To: <"+n+">")
		require.NoError(t, h.deliver(raw, false))
		require.Len(t, h.comments(tk.ID), before, "an internal escalation thread is not the customer's thread")
	})

	t.Run("automatic reply that threads: nothing", func(t *testing.T) {
		before := len(h.comments(tk.ID))
		n := h.notification(tk.ID, "customer@example.test")
		for i, hd := range []string{"Auto-Submitted: auto-replied", "X-Autoreply: yes", "Precedence: bulk", mail.LoopHeader + ": x"} {
			raw, id := h.message(customer, "Out of office", "In-Reply-To: <"+n+">", hd)
			require.NoError(t, h.deliver(raw, false), hd)
			require.Len(t, h.comments(tk.ID), before, hd)
			h.noTicket(id)
			require.Equal(t, float64(i+1), h.outcome("auto_dropped"))
		}
	})

	t.Run("automatic mail that does not thread: a ticket never acknowledged", func(t *testing.T) {
		raw, id := h.message("Monitoring <alerts@example.test>", "Disk full", "Auto-Submitted: auto-generated")
		require.NoError(t, h.deliver(raw, false))
		require.True(t, h.ticket(id).AutoSubmitted)
	})

	t.Run("our own notification coming back: nothing", func(t *testing.T) {
		n := h.notification(tk.ID, "support@acme.test")
		raw := []byte("From: support@acme.test\r\nTo: support@acme.test\r\nSubject: Re: Printer\r\nMessage-ID: <" + n +
			">\r\n\r\nAn agent's reply.\r\n")
		before := len(h.comments(tk.ID))
		require.NoError(t, h.deliver(raw, false))
		require.Len(t, h.comments(tk.ID), before)
		h.noTicket(n)
		require.Equal(t, 1.0, h.outcome("own_dropped"))
	})

	t.Run("bounce: the address is marked, nothing created; mail from it clears the mark", func(t *testing.T) {
		raw := []byte("From: Mail Delivery System <MAILER-DAEMON@mx.example.test>\r\nTo: support@acme.test\r\n" +
			"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <bounce-1@mx.example.test>\r\nMIME-Version: 1.0\r\n" +
			"Content-Type: multipart/report; report-type=delivery-status; boundary=\"r\"\r\n\r\n" +
			"--r\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered.\r\n" +
			"--r\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.test\r\n\r\n" +
			"Final-Recipient: rfc822; Customer@Example.test\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n" +
			"Final-Recipient: rfc822; stranger@example.test\r\nAction: failed\r\nStatus: 5.1.1\r\n" +
			"--r\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <x@notify.atumdesk.test>\r\n--r--\r\n")
		before := len(h.comments(tk.ID))
		require.NoError(t, h.deliver(raw, false))
		var bounced bool
		require.NoError(t, h.db.Raw(`SELECT email_bounced_at IS NOT NULL FROM users WHERE id = ?`, cust).Scan(&bounced).Error)
		require.True(t, bounced)
		h.noTicket("bounce-1@mx.example.test")
		require.Len(t, h.comments(tk.ID), before)
		var n int64
		require.NoError(t, h.db.Raw(`SELECT count(*) FROM users WHERE lower(email) = 'stranger@example.test'`).Scan(&n).Error)
		require.Zero(t, n, "a bounce creates no user")
		require.NoError(t, h.db.Raw(`SELECT count(*) FROM audit_log WHERE action = 'user.email_bounced' AND entity_id = ?`, cust).Scan(&n).Error)
		require.EqualValues(t, 1, n)

		raw, _ = h.message(customer, h.signer.Subject("Re: Printer on fire", tk.ID, tk.Number))
		require.NoError(t, h.deliver(raw, false))
		require.NoError(t, h.db.Raw(`SELECT email_bounced_at IS NOT NULL FROM users WHERE id = ?`, cust).Scan(&bounced).Error)
		require.False(t, bounced, "mail from the address shows it works again")
	})

	t.Run("reply to a closed ticket: a new ticket, the closed one says so", func(t *testing.T) {
		require.NoError(t, h.db.Exec(`UPDATE tickets SET status = 'closed', closed_at = now() WHERE id = ?`, tk.ID).Error)
		before := len(h.comments(tk.ID))
		n := h.notification(tk.ID, "customer@example.test")
		raw, id := h.message(customer, "Re: Printer on fire", "In-Reply-To: <"+n+">")
		require.NoError(t, h.deliver(raw, false))
		follow := h.ticket(id)
		require.NotEqual(t, tk.ID, follow.ID)
		require.Len(t, h.comments(tk.ID), before)
		var after string
		require.NoError(t, h.db.Raw(`SELECT after::text FROM audit_log WHERE action = 'ticket.mail_follow_up' AND ticket_id = ?`, tk.ID).
			Scan(&after).Error)
		require.Contains(t, after, follow.ID.String())
		require.Contains(t, after, "in_reply_to")
	})

	t.Run("unknown sender: quarantined when the mailbox says so; a replay accepts it", func(t *testing.T) {
		require.NoError(t, h.db.Exec(`UPDATE mailboxes SET unknown_sender = 'quarantine' WHERE id = ?`, h.mailbox).Error)
		raw, id := h.message("Stranger <someone@unknown.test>", "Hello")
		err := h.deliver(raw, false)
		require.True(t, imap.IsPermanent(err), "%v", err)
		require.Contains(t, err.Error(), "someone@unknown.test")
		h.noTicket(id)
		// a known customer still gets through
		raw2, id2 := h.message(customer, "Known sender")
		require.NoError(t, h.deliver(raw2, false))
		h.ticket(id2)
		// the admin's replay is the decision to accept
		require.NoError(t, h.deliver(raw, true))
		h.ticket(id)
	})
}

// Attachments of a mail are kept under the upload rules: a new ticket's on
// the ticket, a threaded reply's on its comment; active content is left out.
func TestMailAttachments(t *testing.T) {
	h := newMailHarness(t)
	pdf := []byte("%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")
	page := []byte("<html><body><script>alert(1)</script></body></html>")
	raw, first := h.withParts(customer, "Invoice attached", map[string][]byte{"invoice.pdf": pdf, "page.html": page})
	require.NoError(t, h.deliver(raw, false))
	tk := h.ticket(first)
	var atts []attachmentRow
	require.Eventually(t, func() bool { atts = h.attachments(tk.ID); return len(atts) == 1 }, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, "invoice.pdf", atts[0].Filename)
	require.Equal(t, "application/pdf", atts[0].ContentType)
	sum := sha256.Sum256(pdf)
	require.Equal(t, hex.EncodeToString(sum[:]), atts[0].SHA256)
	require.Nil(t, atts[0].CommentID)
	require.Nil(t, atts[0].UploadedBy, "no uploader: it came by mail")

	n := h.notification(tk.ID, "customer@example.test")
	raw, _ = h.withParts(customer, "Re: Invoice attached", map[string][]byte{"second.pdf": pdf}, "In-Reply-To: <"+n+">")
	require.NoError(t, h.deliver(raw, false))
	cs := h.comments(tk.ID)
	require.Len(t, cs, 1)
	atts = h.attachments(tk.ID)
	require.Len(t, atts, 2)
	require.Equal(t, "second.pdf", atts[1].Filename)
	require.Equal(t, cs[0].ID, *atts[1].CommentID)
	require.Equal(t, h.user("customer@example.test"), *atts[1].UploadedBy)
}
