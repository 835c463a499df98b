package notify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/jhillyerd/enmime/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/internal/mailer"
	"github.com/atumdesk/atumdesk/internal/mailthread"
	slacore "github.com/atumdesk/atumdesk/internal/sla"
	"github.com/atumdesk/atumdesk/internal/testenv"
	"github.com/atumdesk/atumdesk/pipeline"
	"github.com/atumdesk/atumdesk/workers"
	"github.com/atumdesk/atumdesk/workers/notify"
)

// Against the real PostgreSQL, Redis and the local Postfix/Dovecot of
// deploy/local/mail.sh: mail goes out over SMTP and is read back from the
// recipient's Maildir. Never skipped.

const (
	customerAddr = "customer@example.test"
	managerAddr  = "agent@acme.test" // a named test mailbox, given to the manager here
	mailboxAddr  = "support@acme.test"
	defaultFrom  = "noreply@atumdesk.test"
	publicURL    = "https://desk.example.test"
)

type fx struct {
	t                        testing.TB
	db                       *gorm.DB
	org                      uuid.UUID
	customer, agent, manager uuid.UUID
	signer                   mailthread.Signer
	smtp                     *mailer.Sender
	smtpAddr                 string
	reg                      *prometheus.Registry
	number                   int64
	start                    time.Time
}

// sender sends plain SMTP to addr (a loopback server).
func sender(t testing.TB, addr string) *mailer.Sender {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	p, err := strconv.Atoi(port)
	require.NoError(t, err)
	s, err := mailer.New(mailer.Config{Host: host, Port: p, Security: mailer.None, Timeout: 5 * time.Second})
	require.NoError(t, err)
	return s
}

func newFx(t testing.TB) *fx {
	t.Helper()
	db, _ := testenv.DB(t)
	return newFxDB(t, db)
}

// newFxDB sets up an organisation, its users and its mailbox in db.
func newFxDB(t testing.TB, db *gorm.DB) *fx {
	t.Helper()
	ms := testenv.Mail(t)
	f := &fx{t: t, db: db, smtpAddr: ms.SMTP, org: uuid.Must(uuid.NewV7()), customer: uuid.Must(uuid.NewV7()), agent: uuid.Must(uuid.NewV7()),
		manager: uuid.Must(uuid.NewV7()), signer: mailthread.NewSigner([]byte("notify test secret, 32 bytes or more")),
		smtp: sender(t, ms.SMTP), reg: prometheus.NewRegistry(), start: time.Now().Add(-time.Second)}
	f.exec(`INSERT INTO organizations (id, slug, name, timezone) VALUES (?, ?, 'Acme Support', 'Europe/Berlin')`, f.org, "notify-"+f.org.String()[:8])
	for _, u := range []struct {
		id          uuid.UUID
		email, name string
		role        string
	}{
		{f.customer, customerAddr, "Carla Customer", "customer_user"},
		{f.agent, "alex-" + f.org.String()[:8] + "@acme.test", "Alex Agent", "agent"},
		{f.manager, managerAddr, "Mona Manager", "manager"},
	} {
		f.exec(`INSERT INTO users (id, org_id, email, name, role, is_active) VALUES (?, ?, ?, ?, ?, true)`, u.id, f.org, u.email, u.name, u.role)
	}
	f.exec(`INSERT INTO mailboxes (org_id, name, address, imap_host, imap_username, credentials_ref) VALUES (?, 'Acme Help', ?, '127.0.0.1', ?, 'env:NONE')`,
		f.org, mailboxAddr, mailboxAddr)
	return f
}

func (f *fx) exec(q string, args ...any) {
	f.t.Helper()
	require.NoError(f.t, f.db.Exec(q, args...).Error)
}

func (f *fx) handler(mod func(*notify.Config)) *notify.Handler {
	cfg := notify.Config{Mailer: f.smtp, Signer: &f.signer, From: "ATUM DESK <" + defaultFrom + ">", PublicURL: publicURL + "/",
		Registerer: f.reg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if mod != nil {
		mod(&cfg)
	}
	return notify.New(f.db, cfg)
}

type ticketSpec struct {
	subject       string
	status        string
	messageID     string
	autoSubmitted bool
	duplicateOf   *uuid.UUID
	requester     uuid.UUID
	assignedTo    *uuid.UUID
}

type ticket struct {
	id        uuid.UUID
	number    int64
	messageID string // without angle brackets
}

func (f *fx) ticket(s ticketSpec) ticket {
	f.t.Helper()
	f.number++
	tk := ticket{id: uuid.Must(uuid.NewV7()), number: f.number}
	if s.subject == "" {
		s.subject = "Printer <b>on fire</b> & smoking #" + strconv.FormatInt(f.number, 10)
	}
	if s.status == "" {
		s.status = "new"
	}
	if s.requester == uuid.Nil {
		s.requester = f.customer
	}
	if s.messageID == "" {
		s.messageID = "orig-" + tk.id.String() + "@customer.example.test"
	}
	tk.messageID = s.messageID
	f.exec(`INSERT INTO tickets (id, org_id, number, subject, description, status, priority, requester_id, assigned_to, channel, source_message_id, auto_submitted, is_duplicate_of)
		VALUES (?, ?, ?, ?, 'It smokes.', ?, 'high', ?, ?, 'email', ?, ?, ?)`,
		tk.id, f.org, tk.number, s.subject, s.status, s.requester, s.assignedTo, "<"+s.messageID+">", s.autoSubmitted, s.duplicateOf)
	return tk
}

func (f *fx) emit(typ string, tk ticket, actor *uuid.UUID, audience string, data any) pipeline.TaskPayload {
	f.t.Helper()
	ev, err := pipeline.NewEvent(typ, pipeline.TicketRef{OrgID: f.org, TicketID: tk.id, RequesterID: f.customer}, actor, audience, data)
	require.NoError(f.t, err)
	require.NoError(f.t, pipeline.EmitEvents(context.Background(), f.db, ev))
	return pipeline.PayloadOf(ev)
}

func (f *fx) comment(tk ticket, author uuid.UUID, text, html string, internal bool) uuid.UUID {
	f.t.Helper()
	id := uuid.Must(uuid.NewV7())
	var h *string
	if html != "" {
		h = &html
	}
	f.exec(`INSERT INTO comments (id, org_id, ticket_id, author_id, content, content_html, is_internal) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		id, f.org, tk.id, author, text, h, internal)
	return id
}

type notification struct {
	Kind, Recipient, MessageID, Status string
	Reason                             *string
	Attempts                           int
	SentAt                             *time.Time
}

func (f *fx) notifications(eventID uuid.UUID) []notification {
	f.t.Helper()
	var out []notification
	require.NoError(f.t, f.db.Raw(`SELECT kind, recipient, message_id, status, reason, attempts, sent_at FROM notifications
		WHERE org_id = ? AND event_id = ? ORDER BY recipient`, f.org, eventID).Scan(&out).Error)
	return out
}

func (f *fx) one(eventID uuid.UUID) notification {
	f.t.Helper()
	ns := f.notifications(eventID)
	require.Len(f.t, ns, 1)
	return ns[0]
}

func (f *fx) process(h *notify.Handler, p pipeline.TaskPayload) notify.Result {
	f.t.Helper()
	res, err := h.Process(context.Background(), p)
	require.NoError(f.t, err)
	return res
}

// --- reading the mail back -------------------------------------------------

func maildir(user string) string {
	base := os.Getenv("ATUMDESK_TEST_MAIL_DIR")
	if base == "" {
		base = filepath.Join(testenv.RepoRoot(), "data", "mail", "vmail")
	}
	local, domain, _ := strings.Cut(user, "@")
	return filepath.Join(base, domain, local, "Maildir")
}

// copies returns the raw messages with Message-ID id delivered to user
// since the test started.
func (f *fx) copies(user, id string) [][]byte {
	f.t.Helper()
	var out [][]byte
	want := "<" + id + ">"
	for _, sub := range []string{"new", "cur"} {
		entries, err := os.ReadDir(filepath.Join(maildir(user), sub))
		if os.IsNotExist(err) {
			continue
		}
		require.NoError(f.t, err)
		for _, e := range entries {
			info, err := e.Info()
			if err != nil || info.ModTime().Before(f.start) {
				continue // moved away meanwhile, or older mail
			}
			raw, err := os.ReadFile(filepath.Join(maildir(user), sub, e.Name()))
			if err != nil {
				continue
			}
			env, err := enmime.ReadEnvelope(bytes.NewReader(raw))
			if err == nil && env.GetHeader("Message-Id") == want {
				out = append(out, raw)
			}
		}
	}
	return out
}

// received waits for the message with Message-ID id in user's Maildir.
func (f *fx) received(user, id string) *enmime.Envelope {
	f.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if c := f.copies(user, id); len(c) > 0 {
			env, err := enmime.ReadEnvelope(bytes.NewReader(c[0]))
			require.NoError(f.t, err)
			return env
		}
		time.Sleep(50 * time.Millisecond)
	}
	f.t.Fatalf("message <%s> did not arrive in %s", id, user)
	return nil
}

func refs(env *enmime.Envelope) []string {
	var out []string
	for _, r := range strings.Fields(env.GetHeader("References")) {
		out = append(out, strings.Trim(r, "<>"))
	}
	return out
}

func address(t testing.TB, env *enmime.Envelope, header string) string {
	t.Helper()
	as, err := env.AddressList(header)
	require.NoError(t, err)
	require.Len(t, as, 1)
	return as[0].Address
}

// checkToken checks the signed ticket token in the subject and the
// plus-addressed Reply-To.
func (f *fx) checkToken(env *enmime.Envelope, tk ticket) {
	f.t.Helper()
	ref, ok := mailthread.FromSubject(env.GetHeader("Subject"))
	require.True(f.t, ok, env.GetHeader("Subject"))
	require.Equal(f.t, tk.number, ref.Number)
	require.True(f.t, f.signer.Verify(ref, tk.id))
	replyTo := address(f.t, env, "Reply-To")
	require.True(f.t, strings.HasPrefix(replyTo, "support+atum") && strings.HasSuffix(replyTo, "@acme.test"), replyTo)
	ref, ok = mailthread.FromAddress(replyTo)
	require.True(f.t, ok, replyTo)
	require.True(f.t, f.signer.Verify(ref, tk.id))
}

// --- the tests -------------------------------------------------------------

func TestAcknowledgementSentOnceWithThreadingHeaders(t *testing.T) {
	f := newFx(t)
	h := f.handler(nil)
	tk := f.ticket(ticketSpec{})
	p := f.emit(pipeline.EventDedupPassed, tk, nil, pipeline.AudienceStaff, map[string]any{"number": tk.number})
	raw, err := json.Marshal(p)
	require.NoError(t, err)
	task := asynq.NewTask(pipeline.TaskNotify, raw)

	// the same task four times at once, then once more
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() { errs <- h.ProcessTask(context.Background(), task) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			require.ErrorContains(t, err, "being sent by another run") // a concurrent run waits its turn
		}
	}
	res := f.process(h, p)
	require.Equal(t, notify.Result{Kind: notify.KindTicketReceived, Done: 1}, res)

	n := f.one(p.EventID)
	require.Equal(t, notify.StatusSent, n.Status)
	require.Equal(t, notify.KindTicketReceived, n.Kind)
	require.Equal(t, customerAddr, n.Recipient)
	require.Equal(t, 1, n.Attempts)
	require.NotNil(t, n.SentAt)
	require.True(t, strings.HasSuffix(n.MessageID, "@acme.test"), n.MessageID)

	env := f.received(customerAddr, n.MessageID)
	require.Len(t, f.copies(customerAddr, n.MessageID), 1, "sent exactly once")
	require.Equal(t, "<"+tk.messageID+">", env.GetHeader("In-Reply-To"))
	require.Equal(t, []string{tk.messageID}, refs(env))
	require.Equal(t, "auto-replied", env.GetHeader("Auto-Submitted"))
	require.Equal(t, "All", env.GetHeader("X-Auto-Response-Suppress"))
	require.NotEmpty(t, env.GetHeader("X-Atumdesk-Loop"))
	require.Equal(t, mailboxAddr, address(t, env, "From"))
	f.checkToken(env, tk)
	require.Contains(t, env.GetHeader("Subject"), "We received your request: Printer <b>on fire</b> & smoking")
	require.Contains(t, env.Text, "Hello Carla Customer,")
	require.Contains(t, env.Text, "request #"+strconv.FormatInt(tk.number, 10))
	require.Contains(t, env.Text, publicURL+"/portal/tickets/"+tk.id.String())
	require.Contains(t, env.HTML, "ATUM&nbsp;DESK")
	require.Contains(t, env.HTML, "#eab308")
	require.Contains(t, env.HTML, "Printer &lt;b&gt;on fire&lt;/b&gt; &amp; smoking", "the subject is escaped in HTML")
	require.NotContains(t, env.HTML, "<b>on fire</b>")

	require.Equal(t, 1.0, sent(t, f.reg, "ticket_received", "sent"))
}

// sent reads atumdesk_notifications_total{kind,status}.
func sent(t *testing.T, reg *prometheus.Registry, kind, status string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "atumdesk_notifications_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["kind"] == kind && labels["status"] == status {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func TestAgentReplyThreadsAndInternalNoteIsNeverSent(t *testing.T) {
	f := newFx(t)
	h := f.handler(nil)
	tk := f.ticket(ticketSpec{status: "in_progress"})
	ack := f.emit(pipeline.EventDedupPassed, tk, nil, pipeline.AudienceStaff, nil)
	f.process(h, ack)
	ackID := f.one(ack.EventID).MessageID

	// an agent's public reply, with rich text
	c := f.comment(tk, f.agent, "Please restart it.\nThen tell us.", "<p>Please <strong>restart</strong> it.</p>", false)
	p := f.emit(pipeline.EventCommentAdded, tk, &f.agent, pipeline.AudiencePublic, map[string]any{"comment_id": c, "is_internal": false})
	require.Equal(t, 1, f.process(h, p).Sent)
	n := f.one(p.EventID)
	require.Equal(t, notify.KindAgentReply, n.Kind)
	env := f.received(customerAddr, n.MessageID)
	require.Equal(t, "<"+ackID+">", env.GetHeader("In-Reply-To"), "answers the newest mail of the thread")
	require.Equal(t, []string{tk.messageID, ackID}, refs(env))
	require.Empty(t, env.GetHeader("Auto-Submitted"), "a person wrote it")
	require.Contains(t, env.GetHeader("Subject"), "Re: Printer")
	f.checkToken(env, tk)
	require.Contains(t, env.Text, "Alex Agent replied")
	require.Contains(t, env.Text, "Please restart it.\nThen tell us.")
	require.Contains(t, env.HTML, "<p>Please <strong>restart</strong> it.</p>")
	require.Contains(t, env.Text, publicURL+"/portal/tickets/"+tk.id.String())

	// an internal note is never mailed, even when its event claims otherwise
	const canary = "CANARY-internal-7f3a"
	note := f.comment(tk, f.agent, "Customer is difficult. "+canary, "", true)
	lie := f.emit(pipeline.EventCommentAdded, tk, &f.agent, pipeline.AudiencePublic,
		map[string]any{"comment_id": note, "is_internal": false, "content": canary})
	require.Equal(t, notify.Result{}, f.process(h, lie))
	require.Empty(t, f.notifications(lie.EventID))

	// the customer's own reply is not mailed back to them
	own := f.comment(tk, f.customer, "It still smokes.", "", false)
	p2 := f.emit(pipeline.EventCommentAdded, tk, &f.customer, pipeline.AudiencePublic, map[string]any{"comment_id": own})
	require.Equal(t, notify.Result{}, f.process(h, p2))
	require.Empty(t, f.notifications(p2.EventID))

	// nothing carrying the note reached the customer
	time.Sleep(300 * time.Millisecond)
	for _, sub := range []string{"new", "cur"} {
		entries, _ := os.ReadDir(filepath.Join(maildir(customerAddr), sub))
		for _, e := range entries {
			if info, err := e.Info(); err == nil && !info.ModTime().Before(f.start) {
				raw, _ := os.ReadFile(filepath.Join(maildir(customerAddr), sub, e.Name()))
				require.NotContains(t, string(raw), canary)
			}
		}
	}
}

func TestStatusChangesAndCSATInvitation(t *testing.T) {
	f := newFx(t)
	h := f.handler(nil)
	tk := f.ticket(ticketSpec{status: "waiting_customer"})

	p := f.emit(pipeline.EventStatusChanged, tk, &f.agent, pipeline.AudiencePublic, map[string]any{"from": "in_progress", "to": "waiting_customer"})
	require.Equal(t, 1, f.process(h, p).Sent)
	n := f.one(p.EventID)
	require.Equal(t, notify.KindStatusChanged, n.Kind)
	env := f.received(customerAddr, n.MessageID)
	require.Equal(t, "auto-generated", env.GetHeader("Auto-Submitted"))
	require.Contains(t, env.GetHeader("Subject"), "Waiting for your reply: Printer")
	require.Contains(t, env.Text, "we need more information from you")
	f.checkToken(env, tk)

	// moved by the customer's reply, or by the customer: nothing
	f.exec(`UPDATE tickets SET status = 'in_progress' WHERE id = ?`, tk.id)
	auto := f.emit(pipeline.EventStatusChanged, tk, &f.customer, pipeline.AudiencePublic, map[string]any{"from": "waiting_customer", "to": "in_progress", "cause": "customer_reply"})
	require.Equal(t, notify.Result{}, f.process(h, auto))
	// not a change the customer is told about
	assigned := f.emit(pipeline.EventStatusChanged, tk, &f.agent, pipeline.AudiencePublic, map[string]any{"from": "accepted", "to": "assigned"})
	require.Equal(t, notify.Result{}, f.process(h, assigned))

	// resolved: the CSAT invitation, and the survey exists
	f.exec(`UPDATE tickets SET status = 'resolved', resolved_at = now() WHERE id = ?`, tk.id)
	res := f.emit(pipeline.EventStatusChanged, tk, &f.agent, pipeline.AudiencePublic, map[string]any{"from": "in_progress", "to": "resolved", "reason": "Replaced the fuser."})
	require.Equal(t, 1, f.process(h, res).Sent)
	n = f.one(res.EventID)
	require.Equal(t, notify.KindCSATInvitation, n.Kind)
	env = f.received(customerAddr, n.MessageID)
	require.Equal(t, "auto-generated", env.GetHeader("Auto-Submitted"))
	require.Contains(t, env.GetHeader("Subject"), "how did we do?")
	require.Contains(t, env.Text, publicURL+"/portal/tickets/"+tk.id.String()+"#csat")
	require.Contains(t, env.Text, "Replaced the fuser.")
	require.Contains(t, env.HTML, `href="`+publicURL+`/portal/tickets/`+tk.id.String()+`#csat"`)
	var surveys int64
	require.NoError(t, f.db.Raw(`SELECT count(*) FROM csat_surveys WHERE ticket_id = ? AND requester_id = ?`, tk.id, f.customer).Scan(&surveys).Error)
	require.EqualValues(t, 1, surveys)
	// the thread so far: the original, then the status mail
	require.Equal(t, []string{tk.messageID, f.one(p.EventID).MessageID}, refs(env))

	// news that is no longer true is not sent
	f.exec(`UPDATE tickets SET status = 'in_progress', resolved_at = NULL WHERE id = ?`, tk.id)
	stale := f.emit(pipeline.EventStatusChanged, tk, &f.agent, pipeline.AudiencePublic, map[string]any{"from": "in_progress", "to": "cancelled"})
	require.Equal(t, 1, f.process(h, stale).Suppressed)
	n = f.one(stale.EventID)
	require.Equal(t, notify.StatusSuppressed, n.Status)
	require.Equal(t, notify.ReasonStatusMovedOn, *n.Reason)
}

func TestSLAEscalationGoesToStaffWithoutToken(t *testing.T) {
	f := newFx(t)
	h := f.handler(nil)
	tk := f.ticket(ticketSpec{status: "assigned", assignedTo: &f.manager})
	due := time.Date(2026, 11, 26, 15, 0, 0, 0, time.UTC)

	// a breach no rule covers: the managers
	p := f.emit(pipeline.EventSLABreached, tk, nil, pipeline.AudienceStaff, slacore.FiredData{Metric: "first_response", Percent: 100,
		Breach: true, DueAt: due, PolicyName: "Gold", Priority: "high", TicketNumber: tk.number, Notify: []string{}})
	require.Equal(t, 1, f.process(h, p).Sent)
	n := f.one(p.EventID)
	require.Equal(t, notify.KindSLAEscalation, n.Kind)
	require.Equal(t, managerAddr, n.Recipient)
	require.True(t, strings.HasSuffix(n.MessageID, "@atumdesk.test"), n.MessageID)
	env := f.received(managerAddr, n.MessageID)
	require.Equal(t, defaultFrom, address(t, env, "From"), "staff mail comes from the default sender")
	require.Empty(t, env.GetHeader("Reply-To"))
	require.Empty(t, env.GetHeader("In-Reply-To"))
	require.Empty(t, env.GetHeader("References"))
	_, ok := mailthread.FromSubject(env.GetHeader("Subject"))
	require.False(t, ok, "no ticket token: an answer must not become a public reply")
	require.Equal(t, "auto-generated", env.GetHeader("Auto-Submitted"))
	require.Contains(t, env.GetHeader("Subject"), "SLA breached (first response): #")
	require.Contains(t, env.Text, "was breached: it was due Thu 26 Nov 2026 16:00 CET") // the org's zone
	require.Contains(t, env.Text, "Assigned to: Mona Manager")
	require.Contains(t, env.Text, publicURL+"/desk/tickets/"+tk.id.String())

	// a threshold rule naming the assignee and an agent who is inactive
	inactive := uuid.Must(uuid.NewV7())
	f.exec(`INSERT INTO users (id, org_id, email, name, role, is_active) VALUES (?, ?, 'gone@acme.test', 'Gone', 'agent', false)`, inactive, f.org)
	p = f.emit(pipeline.EventSLAThreshold, tk, nil, pipeline.AudienceStaff, slacore.FiredData{Metric: "resolution", Percent: 80,
		DueAt: due, PolicyName: "Gold", Levels: []int{0}, Notify: []string{"assignee", inactive.String()}})
	require.Equal(t, 1, f.process(h, p).Sent)
	env = f.received(managerAddr, f.one(p.EventID).MessageID)
	require.Contains(t, env.GetHeader("Subject"), "SLA at 80% (resolution)")
}

func TestAcknowledgementSuppressed(t *testing.T) {
	f := newFx(t)
	h := f.handler(func(c *notify.Config) { c.AckLimit = 3 })
	ack := func(tk ticket) notification {
		t.Helper()
		p := f.emit(pipeline.EventDedupPassed, tk, nil, pipeline.AudienceStaff, nil)
		f.process(h, p)
		return f.one(p.EventID)
	}
	reason := func(n notification) string {
		if n.Status != notify.StatusSuppressed {
			return n.Status
		}
		return *n.Reason
	}

	orig := f.ticket(ticketSpec{})
	require.Equal(t, notify.StatusSent, reason(ack(orig)))
	// marked duplicate (by an agent, after dedup passed it)
	require.Equal(t, notify.ReasonDuplicate, reason(ack(f.ticket(ticketSpec{duplicateOf: &orig.id}))))
	// opened by automatic mail
	require.Equal(t, notify.ReasonAutoSubmitted, reason(ack(f.ticket(ticketSpec{autoSubmitted: true}))))
	// acknowledged before (a second dedup_passed for one ticket)
	require.Equal(t, notify.ReasonAcknowledged, reason(ack(orig)))
	// the rate limit: 3 per hour to one address, suppressed ones not counted
	require.Equal(t, notify.StatusSent, reason(ack(f.ticket(ticketSpec{}))))
	require.Equal(t, notify.StatusSent, reason(ack(f.ticket(ticketSpec{}))))
	require.Equal(t, notify.ReasonRateLimited, reason(ack(f.ticket(ticketSpec{}))))
	// a bounced address gets nothing
	f.exec(`UPDATE users SET email_bounced_at = now() WHERE id = ?`, f.customer)
	require.Equal(t, notify.ReasonBounced, reason(ack(f.ticket(ticketSpec{}))))
	require.Equal(t, 3.0, sent(t, f.reg, "ticket_received", "sent"))
	require.Equal(t, 5.0, sent(t, f.reg, "ticket_received", "suppressed"))

	// no SMTP server configured; no sender address at all
	f.exec(`UPDATE users SET email_bounced_at = NULL WHERE id = ?`, f.customer)
	off := f.handler(func(c *notify.Config) { c.Mailer = nil })
	p := f.emit(pipeline.EventDedupPassed, f.ticket(ticketSpec{}), nil, pipeline.AudienceStaff, nil)
	require.Equal(t, 1, f.process(off, p).Suppressed)
	require.Equal(t, notify.ReasonSMTPOff, *f.one(p.EventID).Reason)
	f.exec(`UPDATE mailboxes SET is_active = false WHERE org_id = ?`, f.org)
	nobody := f.handler(func(c *notify.Config) { c.From = "" })
	p = f.emit(pipeline.EventCommentAdded, orig, &f.agent, pipeline.AudiencePublic,
		map[string]any{"comment_id": f.comment(orig, f.agent, "Hi", "", false)})
	require.Equal(t, 1, f.process(nobody, p).Suppressed)
	require.Equal(t, notify.ReasonNoSender, *f.one(p.EventID).Reason)
	// the default sender serves an organisation without a mailbox
	p = f.emit(pipeline.EventCommentAdded, orig, &f.agent, pipeline.AudiencePublic,
		map[string]any{"comment_id": f.comment(orig, f.agent, "Hello again", "", false)})
	require.Equal(t, 1, f.process(h, p).Sent)
	env := f.received(customerAddr, f.one(p.EventID).MessageID)
	require.Equal(t, defaultFrom, address(t, env, "From"))
	require.Empty(t, env.GetHeader("Reply-To"))
}

func TestRejectedRecipientFailsAndMarksBounce(t *testing.T) {
	f := newFx(t)
	h := f.handler(nil)
	ghost := uuid.Must(uuid.NewV7())
	f.exec(`INSERT INTO users (id, org_id, email, name, role, is_active) VALUES (?, ?, 'nobody@example.test', 'Nobody', 'customer_user', true)`, ghost, f.org)
	tk := f.ticket(ticketSpec{requester: ghost})
	p := f.emit(pipeline.EventDedupPassed, tk, nil, pipeline.AudienceStaff, nil)
	res, err := h.Process(context.Background(), p)
	require.NoError(t, err, "a permanent failure is not retried")
	require.Equal(t, 1, res.Failed)
	n := f.one(p.EventID)
	require.Equal(t, notify.StatusFailed, n.Status)
	require.Contains(t, *n.Reason, "550")
	var bounced *time.Time
	require.NoError(t, f.db.Raw(`SELECT email_bounced_at FROM users WHERE id = ?`, ghost).Scan(&bounced).Error)
	require.NotNil(t, bounced)
	var audited int64
	require.NoError(t, f.db.Raw(`SELECT count(*) FROM audit_log WHERE action = 'user.email_bounced' AND entity_id = ?`, ghost).Scan(&audited).Error)
	require.EqualValues(t, 1, audited)
	// later mail to the address is suppressed
	p = f.emit(pipeline.EventStatusChanged, tk, &f.agent, pipeline.AudiencePublic, map[string]any{"from": "new", "to": "cancelled"})
	f.exec(`UPDATE tickets SET status = 'cancelled' WHERE id = ?`, tk.id)
	require.Equal(t, 1, f.process(h, p).Suppressed)
	require.Equal(t, notify.ReasonBounced, *f.one(p.EventID).Reason)
}

// SMTP down: the task fails and asynq retries it with backoff; once the
// server is back the mail goes out, once.
func TestSMTPDownIsRetriedUntilItComesBack(t *testing.T) {
	f := newFx(t)
	// A port that refuses connections until the relay to Postfix opens on it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	relayAddr := l.Addr().(*net.TCPAddr)
	require.NoError(t, l.Close())
	h := f.handler(func(c *notify.Config) { c.Mailer = sender(t, relayAddr.String()) })

	redisURL := testenv.RedisURL(t)
	redisOpt, err := asynq.ParseRedisURI(redisURL)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- workers.Run(ctx, workers.Config{Redis: redisOpt, Queues: map[string]int{pipeline.QueueNotify: 1},
			Handlers:  workers.Handlers{pipeline.QueueNotify: {pipeline.TaskNotify: h}},
			RetryBase: 300 * time.Millisecond, RetryMax: 600 * time.Millisecond, PollInterval: 100 * time.Millisecond,
			ShutdownTimeout: time.Second})
	}()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })

	tk := f.ticket(ticketSpec{})
	p := f.emit(pipeline.EventDedupPassed, tk, nil, pipeline.AudienceStaff, nil)
	payload, err := json.Marshal(p)
	require.NoError(t, err)
	client := asynq.NewClient(redisOpt)
	defer client.Close()
	_, err = client.Enqueue(asynq.NewTask(pipeline.TaskNotify, payload), asynq.Queue(pipeline.QueueNotify),
		asynq.TaskID(pipeline.TaskNotify+":"+p.EventID.String()), asynq.MaxRetry(20))
	require.NoError(t, err)

	// attempts fail while the server is down; the row waits, pending
	require.Eventually(t, func() bool {
		ns := f.notifications(p.EventID)
		return len(ns) == 1 && ns[0].Attempts >= 2
	}, 15*time.Second, 50*time.Millisecond)
	n := f.one(p.EventID)
	require.Equal(t, notify.StatusPending, n.Status)
	require.Contains(t, *n.Reason, "retrying")

	// the server comes back
	stop := relay(t, relayAddr.String(), f.smtpAddr)
	defer stop()
	require.Eventually(t, func() bool { return f.one(p.EventID).Status == notify.StatusSent }, 15*time.Second, 50*time.Millisecond)
	n = f.one(p.EventID)
	env := f.received(customerAddr, n.MessageID)
	require.Equal(t, "<"+tk.messageID+">", env.GetHeader("In-Reply-To"))
	require.Len(t, f.copies(customerAddr, n.MessageID), 1)
	require.GreaterOrEqual(t, sent(t, f.reg, "ticket_received", "retry"), 2.0)
}

// relay forwards addr to target until stopped.
func relay(t *testing.T, addr, target string) func() {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				u, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer u.Close()
				go func() { _, _ = io.Copy(u, c) }()
				_, _ = io.Copy(c, u)
			}()
		}
	}()
	return func() { _ = l.Close() }
}
