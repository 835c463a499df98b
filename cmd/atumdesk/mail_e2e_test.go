package main

// The e-mail channel end to end, process level: the api, pipeline, worker
// (dedup, notify) and imap roles as separate processes, the real Postfix
// (SMTP, delivering into Maildirs) and Dovecot (IMAP with IDLE) of
// deploy/local/mail.sh. Never skipped: without the mail servers it fails.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/smtp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/ingest/mail"
	"github.com/atumdesk/atumdesk/internal/database"
	"github.com/atumdesk/atumdesk/internal/testenv"
)

const (
	supportAddr   = "support@acme.test"
	customerAddr  = "customer@example.test"
	customer2Addr = "customer2@example.test"
)

// mailServers are the local Postfix and Dovecot, with the helpers this
// test reads and writes them with.
type mailServers struct{ testenv.MailServers }

// compose builds a plain-text mail with Message-ID <id>.
func compose(from, to, subject, id, body string, headers ...string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s>\r\nDate: %s\r\n", from, to, subject, id,
		time.Now().Format(time.RFC1123Z))
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	fmt.Fprintf(&b, "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n", body)
	return b.Bytes()
}

// send submits raw over SMTP, plain (a loopback test server; SendMail
// would try STARTTLS with the system roots).
func (m mailServers) send(t *testing.T, from, to string, raw []byte) {
	t.Helper()
	c, err := smtp.Dial(m.SMTP)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Hello("e2e.atumdesk.test"))
	require.NoError(t, c.Mail(from))
	require.NoError(t, c.Rcpt(to))
	w, err := c.Data()
	require.NoError(t, err)
	_, err = w.Write(raw)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	require.NoError(t, c.Quit())
}

func (m mailServers) login(t *testing.T, user string) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialTLS(m.IMAPS, &imapclient.Options{TLSConfig: m.TLS})
	require.NoError(t, err)
	require.NoError(t, c.Login(user, m.Password).Wait())
	return c
}

// emptyInbox deletes every message in user's INBOX.
func (m mailServers) emptyInbox(t *testing.T, user string) {
	t.Helper()
	c := m.login(t, user)
	defer c.Close()
	sel, err := c.Select("INBOX", nil).Wait()
	require.NoError(t, err)
	if sel.NumMessages > 0 {
		require.NoError(t, c.Store(goimap.SeqSet{goimap.SeqRange{Start: 1, Stop: 0}},
			&goimap.StoreFlags{Op: goimap.StoreFlagsAdd, Silent: true, Flags: []goimap.Flag{goimap.FlagDeleted}}, nil).Close())
		require.NoError(t, c.Expunge().Close())
	}
}

// received is one message read back from a mailbox.
type received struct {
	raw   []byte
	msg   *mail.Message
	flags []goimap.Flag
}

// search returns the messages of user's INBOX whose header field has
// value in it (read-only: flags stay as they are).
func (m mailServers) search(t *testing.T, user, field, value string) []received {
	t.Helper()
	c := m.login(t, user)
	defer c.Close()
	_, err := c.Select("INBOX", &goimap.SelectOptions{ReadOnly: true}).Wait()
	require.NoError(t, err)
	res, err := c.UIDSearch(&goimap.SearchCriteria{Header: []goimap.SearchCriteriaHeaderField{{Key: field, Value: value}}}, nil).Wait()
	require.NoError(t, err)
	uids := res.AllUIDs()
	if len(uids) == 0 {
		return nil
	}
	section := &goimap.FetchItemBodySection{Peek: true}
	bufs, err := c.Fetch(goimap.UIDSetNum(uids...), &goimap.FetchOptions{Flags: true, BodySection: []*goimap.FetchItemBodySection{section}}).Collect()
	require.NoError(t, err)
	out := make([]received, 0, len(bufs))
	for _, b := range bufs {
		raw := b.FindBodySection(section)
		msg, err := mail.Parse(raw, mail.Options{})
		require.NoError(t, err)
		out = append(out, received{raw: raw, msg: msg, flags: b.Flags})
	}
	return out
}

// waitMail waits for a message of user's INBOX with value in field whose
// text contains text.
func (m mailServers) waitMail(t *testing.T, user, field, value, text string, within time.Duration) received {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		for _, r := range m.search(t, user, field, value) {
			if strings.Contains(r.msg.FullText, text) {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no mail to %s with %s ~ %q and text %q within %s", user, field, value, text, within)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitSeen waits until the poller has handled the message with Message-ID
// id in user's INBOX (it sets \Seen only after the sink succeeded).
func (m mailServers) waitSeen(t *testing.T, user, id string, within time.Duration) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, r := range m.search(t, user, "Message-ID", id) {
			if slices.Contains(r.flags, goimap.FlagSeen) {
				return true
			}
		}
		return false
	}, within, 100*time.Millisecond, "message %s never handled", id)
}

// call sends a JSON request to the api process.
func (c *cluster) call(method, path, token string, body any) (int, map[string]any) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(c.t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.api+path, rd)
	require.NoError(c.t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	require.NoError(c.t, err)
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out
}

// mailTicket is a ticket opened by e-mail, as stored.
type mailTicket struct {
	ID     uuid.UUID `gorm:"column:id"`
	Number int64     `gorm:"column:number"`
}

// waitMailTickets polls until every Message-ID in ids has its ticket and
// returns when each was first seen.
func waitMailTickets(t *testing.T, db *gorm.DB, ids []string, within time.Duration) map[string]time.Time {
	t.Helper()
	seen := map[string]time.Time{}
	deadline := time.Now().Add(within)
	for len(seen) < len(ids) {
		var found []string
		require.NoError(t, db.Raw(`SELECT source_message_id FROM tickets WHERE source_message_id IN ?`, ids).Scan(&found).Error)
		now := time.Now()
		for _, id := range found {
			if _, ok := seen[id]; !ok {
				seen[id] = now
			}
		}
		if now.After(deadline) {
			t.Fatalf("%d of %d mails became tickets within %s", len(seen), len(ids), within)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return seen
}

// TestMailRoundTrip: a customer's mail becomes a ticket; the agent's public
// reply reaches the customer's mailbox with the token and threading
// headers, the internal note never does; the customer's answer to that
// mail becomes a comment on the same ticket; an auto-reply creates
// nothing; delivery-to-ticket latency with IDLE over 50 mails; the imap
// process SIGKILLed mid-fetch → exactly one ticket per mail.
func TestMailRoundTrip(t *testing.T) {
	ms := mailServers{testenv.Mail(t)}
	dbURL := testenv.DatabaseURL(t)
	c := newCluster(t, dbURL)
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i + 7)
	}
	smtpHost, smtpPort, _ := strings.Cut(ms.SMTP, ":")
	c.env = append(c.env,
		"ATUMDESK_SECRET_KEY="+base64.StdEncoding.EncodeToString(key),
		// the local Dovecot is on loopback, which is refused unless allowed
		"ATUMDESK_IMAP_ALLOW_HOSTS="+ms.IMAP+","+ms.IMAPS,
		"ATUMDESK_IMAP_CA_FILE="+ms.CAFile,
		"ATUMDESK_IMAP_LEASE_TTL=2s",
		"ATUMDESK_MAIL_RAW_DIR="+t.TempDir(),
		"ATUMDESK_SMTP_HOST="+smtpHost, "ATUMDESK_SMTP_PORT="+smtpPort, "ATUMDESK_SMTP_SECURITY=none",
		"ATUMDESK_MAIL_FROM=ATUM DESK <noreply@atumdesk.test>",
	)
	db, sqlDB, err := database.Open(context.Background(), dbURL, 4)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sqlDB.Close() })

	ms.emptyInbox(t, supportAddr) // only this test reads the support mailbox
	c.start("api", "api")
	c.start("pipeline", "pipeline")
	c.start("worker", "worker", "--queues", "dedup=2,notify=2")
	c.start("imap", "imap")
	c.waitReady()
	admin, agent := c.login("admin@acme.test"), c.login("agent@acme.test")

	// the admin connects the support mailbox (IMAPS on loopback, allowed)
	host, port, _ := strings.Cut(ms.IMAPS, ":")
	var portN int
	_, _ = fmt.Sscan(port, &portN)
	status, mb := c.call("POST", "/api/v1/admin/mailboxes", admin, map[string]any{"address": supportAddr, "imap_host": host,
		"imap_port": portN, "imap_tls": "tls", "imap_username": supportAddr, "password": ms.Password})
	require.Equal(t, 201, status, "%v", mb)
	require.Equal(t, "create", mb["unknown_sender"])

	nonce := uuid.NewString()[:8]
	subject := "Printer on fire " + nonce
	first := "first-" + nonce + "@example.test"
	ms.send(t, customerAddr, supportAddr, compose("Carla Customer <"+customerAddr+">", supportAddr, subject, first,
		"The printer in room 4 is on fire."))
	waitMailTickets(t, db, []string{first}, 30*time.Second)
	var tk mailTicket
	require.NoError(t, db.Raw(`SELECT id, number FROM tickets WHERE source_message_id = ?`, first).Scan(&tk).Error)
	path := "/api/v1/tickets/" + tk.ID.String() + "/comments"

	// the acknowledgement, once dedup found no duplicate
	ack := ms.waitMail(t, customerAddr, "Subject", nonce, "We received your request", 30*time.Second)
	require.Contains(t, ack.msg.Subject, fmt.Sprintf("[ATUM#%d-", tk.Number))
	require.True(t, ack.msg.Loop.Automatic, "an acknowledgement is marked automatic: %+v", ack.msg.Loop)

	// an internal note, then a public reply
	canary := "CANARY-INTERNAL-" + nonce
	status, _ = c.call("POST", path, agent, map[string]any{"content": "VIP customer. " + canary, "is_internal": true})
	require.Equal(t, 201, status)
	reply := "Please unplug it, " + nonce + "."
	status, _ = c.call("POST", path, agent, map[string]any{"content": reply})
	require.Equal(t, 201, status)

	got := ms.waitMail(t, customerAddr, "Subject", nonce, reply, 30*time.Second)
	require.Contains(t, got.msg.Subject, fmt.Sprintf("[ATUM#%d-", tk.Number), "the token in the subject")
	require.NotEmpty(t, got.msg.MessageID)
	require.NotEmpty(t, got.msg.InReplyTo, "In-Reply-To the thread")
	require.Contains(t, got.msg.References, first, "References the mail that opened the ticket")
	require.Len(t, got.msg.ReplyTo, 1)
	require.True(t, strings.HasPrefix(got.msg.ReplyTo[0].Email, fmt.Sprintf("support+atum%d-", tk.Number)), "plus-addressed Reply-To: %v", got.msg.ReplyTo)
	require.False(t, got.msg.Loop.Automatic && !got.msg.Loop.Ours, "a person's reply is not marked auto-submitted")

	// the customer answers that mail (to its Reply-To, In-Reply-To its Message-ID)
	answer := "answer-" + nonce + "@example.test"
	ms.send(t, customerAddr, got.msg.ReplyTo[0].Email, compose("Carla Customer <"+customerAddr+">", got.msg.ReplyTo[0].Email,
		"Re: "+got.msg.Subject, answer, "It is out now, thanks.\r\n\r\nOn Monday ACME wrote:\r\n> "+reply,
		"In-Reply-To: <"+got.msg.MessageID+">", "References: <"+first+"> <"+got.msg.MessageID+">"))
	var comment struct {
		TicketID     uuid.UUID `gorm:"column:ticket_id"`
		ThreadReason string    `gorm:"column:thread_reason"`
	}
	require.Eventually(t, func() bool {
		return db.Raw(`SELECT ticket_id, thread_reason FROM comments WHERE source_message_id = ?`, answer).Scan(&comment).Error == nil &&
			comment.TicketID != uuid.Nil
	}, 30*time.Second, 50*time.Millisecond, "the answer became a comment")
	require.Equal(t, tk.ID, comment.TicketID, "on the same ticket")
	require.Equal(t, "in_reply_to", comment.ThreadReason)
	status, page := c.call("GET", path, agent, nil)
	require.Equal(t, 200, status)
	items := page["items"].([]any)
	last := items[len(items)-1].(map[string]any)
	require.Equal(t, "in_reply_to", last["thread_reason"], "agents see why the mail was threaded")
	require.Contains(t, last["content"], "It is out now")
	require.NotContains(t, last["content"], reply, "the quoted history is not repeated")

	// an auto-reply from the customer to the same mail creates nothing
	auto := "auto-" + nonce + "@example.test"
	ms.send(t, customerAddr, supportAddr, compose(customerAddr, supportAddr, "Out of office: "+got.msg.Subject, auto,
		"I am away until Monday.", "Auto-Submitted: auto-replied", "In-Reply-To: <"+got.msg.MessageID+">"))
	ms.waitSeen(t, supportAddr, auto, 30*time.Second)
	var n int64
	require.NoError(t, db.Raw(`SELECT (SELECT count(*) FROM comments WHERE source_message_id = ?) +
		(SELECT count(*) FROM tickets WHERE source_message_id = ?)`, auto, auto).Scan(&n).Error)
	require.Zero(t, n, "the auto-reply created a comment or ticket")

	// the internal note was never mailed: nothing in the customer's mailbox
	// holds the canary, and no notification exists for it
	time.Sleep(time.Second)
	for _, r := range ms.search(t, customerAddr, "Subject", nonce) {
		require.NotContains(t, string(r.raw), canary)
		require.NotContains(t, r.msg.FullText, "VIP customer")
	}
	require.NoError(t, db.Raw(`SELECT count(*) FROM notifications WHERE ticket_id = ? AND status = 'sent'`, tk.ID).Scan(&n).Error)
	require.EqualValues(t, 2, n, "the acknowledgement and the public reply, nothing else")

	t.Run("latency", func(t *testing.T) { mailLatency(t, c, ms, db) })
	t.Run("imap killed mid-fetch", func(t *testing.T) { mailKilledMidFetch(t, c, ms, db) })
}

// mailLatency: SMTP accepted → ticket stored, with IDLE, 50 mails at 5/s.
func mailLatency(t *testing.T, c *cluster, ms mailServers, db *gorm.DB) {
	const count = 50
	ids := make([]string, count)
	sent := map[string]time.Time{}
	var mu sync.Mutex
	done := make(chan map[string]time.Time)
	for i := range ids {
		ids[i] = fmt.Sprintf("lat-%d-%s@example.test", i, uuid.NewString()[:8])
	}
	go func() { done <- waitMailTickets(t, db, ids, 90*time.Second) }()
	for i, id := range ids {
		raw := compose(customer2Addr, supportAddr, fmt.Sprintf("Latency probe %d %s", i, id), id, fmt.Sprintf("Probe %d, %s.", i, id))
		ms.send(t, customer2Addr, supportAddr, raw)
		mu.Lock()
		sent[id] = time.Now()
		mu.Unlock()
		time.Sleep(200 * time.Millisecond)
	}
	stored := <-done
	lat := make([]time.Duration, 0, count)
	for _, id := range ids {
		lat = append(lat, stored[id].Sub(sent[id]))
	}
	slices.Sort(lat)
	p := func(q float64) time.Duration { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
	t.Logf("delivery-to-ticket latency with IDLE, %d mails at 5/s (SMTP accepted → ticket stored): p50 %s, p99 %s, max %s",
		count, p(0.50).Round(time.Millisecond), p(0.99).Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))
	require.Less(t, p(0.99), 2*time.Second, "p99 target")
}

// mailKilledMidFetch: mails arrive while the imap process is SIGKILLed and
// restarted; every mail is exactly one ticket.
func mailKilledMidFetch(t *testing.T, c *cluster, ms mailServers, db *gorm.DB) {
	const count = 30
	ids := make([]string, count)
	for i := range ids {
		ids[i] = fmt.Sprintf("kill-%d-%s@example.test", i, uuid.NewString()[:8])
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for i, id := range ids {
			ms.send(t, customer2Addr, supportAddr, compose(customer2Addr, supportAddr, fmt.Sprintf("Kill probe %d %s", i, id), id,
				fmt.Sprintf("Kill probe %d, %s.", i, id)))
			time.Sleep(30 * time.Millisecond)
		}
	})
	// killed as soon as the 1st, the 10th and the 20th are tickets: each
	// time the process is in the middle of the batch (the restarted one
	// takes the lease over after ATUMDESK_IMAP_LEASE_TTL, meanwhile the
	// rest arrive and are then fetched one after another)
	for _, k := range []int{1, 10, 20} {
		waitMailTickets(t, db, ids[:k], 30*time.Second)
		c.kill("imap")
		c.start("imap", "imap")
	}
	wg.Wait()
	waitMailTickets(t, db, ids, 60*time.Second)
	time.Sleep(time.Second) // a duplicate would show by now
	var rows []struct {
		ID string `gorm:"column:source_message_id"`
		N  int    `gorm:"column:n"`
	}
	require.NoError(t, db.Raw(`SELECT source_message_id, count(*) AS n FROM tickets WHERE source_message_id IN ? GROUP BY 1`, ids).
		Scan(&rows).Error)
	require.Len(t, rows, count)
	for _, r := range rows {
		require.Equal(t, 1, r.N, r.ID)
	}
	var subjects int64
	require.NoError(t, db.Raw(`SELECT count(*) FROM tickets WHERE subject LIKE 'Kill probe %'`).Scan(&subjects).Error)
	require.EqualValues(t, count, subjects, "exactly one ticket per mail")
}
