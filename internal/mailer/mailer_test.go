package mailer

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"mime"
	"net"
	"net/mail"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/stretchr/testify/require"
)

// Against the real Postfix (submission with STARTTLS + AUTH, SMTPS, plain
// SMTP) and Dovecot started by deploy/local/mail.sh (make test); the mail
// is read back over IMAP. Never skipped.

type env struct {
	submission, smtps, smtp, imaps, password string
	tls                                      *tls.Config
}

func getenv(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func testEnv(t *testing.T) env {
	t.Helper()
	e := env{
		submission: getenv("ATUMDESK_TEST_SUBMISSION_ADDR", "127.0.0.1:11587"),
		smtps:      getenv("ATUMDESK_TEST_SMTPS_ADDR", "127.0.0.1:11465"),
		smtp:       getenv("ATUMDESK_TEST_SMTP_ADDR", "127.0.0.1:11025"),
		imaps:      getenv("ATUMDESK_TEST_IMAPS_ADDR", "127.0.0.1:11993"),
		password:   getenv("ATUMDESK_TEST_MAIL_PASSWORD", "atumdesk-mail-test"),
	}
	pem, err := os.ReadFile(getenv("ATUMDESK_TEST_MAIL_CA", "../../data/mail/tls/cert.pem"))
	if err != nil {
		t.Fatalf("mail test servers: %v (run `bash deploy/local/mail.sh up`, which `make test` does)", err)
	}
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(pem))
	e.tls = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return e
}

func (e env) sender(t *testing.T, addr string, sec Security, user, pass string, tc *tls.Config) *Sender {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	p, err := strconv.Atoi(port)
	require.NoError(t, err)
	s, err := New(Config{Host: host, Port: p, Security: sec, Username: user, Password: pass, TLS: tc, Timeout: 10 * time.Second})
	require.NoError(t, err)
	return s
}

// inbox empties user's INBOX and returns a function that waits for the
// message with Message-ID id and returns its raw bytes.
func (e env) inbox(t *testing.T, user string) func(id string) string {
	t.Helper()
	c, err := imapclient.DialTLS(e.imaps, &imapclient.Options{TLSConfig: e.tls})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.Login(user, e.password).Wait())
	sel, err := c.Select("INBOX", nil).Wait()
	require.NoError(t, err)
	if sel.NumMessages > 0 {
		require.NoError(t, c.Store(goimap.SeqSet{goimap.SeqRange{Start: 1, Stop: 0}},
			&goimap.StoreFlags{Op: goimap.StoreFlagsAdd, Silent: true, Flags: []goimap.Flag{goimap.FlagDeleted}}, nil).Close())
		require.NoError(t, c.Expunge().Close())
	}
	return func(id string) string {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			require.NoError(t, c.Noop().Wait())
			data, err := c.UIDSearch(&goimap.SearchCriteria{Header: []goimap.SearchCriteriaHeaderField{{Key: "Message-ID", Value: id}}}, nil).Wait()
			require.NoError(t, err)
			if uids := data.AllUIDs(); len(uids) > 0 {
				section := &goimap.FetchItemBodySection{Peek: true}
				bufs, err := c.Fetch(goimap.UIDSetNum(uids[0]), &goimap.FetchOptions{BodySection: []*goimap.FetchItemBodySection{section}}).Collect()
				require.NoError(t, err)
				require.Len(t, bufs, 1)
				return string(bufs[0].FindBodySection(section))
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("message %s did not arrive in %s", id, user)
		return ""
	}
}

func TestSendThreadedOverStartTLS(t *testing.T) {
	e := testEnv(t)
	const to = "box116@load.test"
	wait := e.inbox(t, to)
	s := e.sender(t, e.submission, StartTLS, "noreply@atumdesk.test", e.password, e.tls)
	id := NewMessageID("atumdesk.test")
	m := &Message{
		From:          mail.Address{Name: "ACME Support", Address: "noreply@atumdesk.test"},
		To:            []mail.Address{{Name: "Zoë Kunde", Address: to}},
		ReplyTo:       &mail.Address{Name: "ACME Support", Address: "support@acme.test"},
		Subject:       "Re: [ATUM#12-ab12] Drucker brennt — Grüße",
		Text:          "Hello,\n\nwe are on it.\n",
		HTML:          "<p>Hello,</p><p>we are on it.</p>",
		MessageID:     id,
		InReplyTo:     "orig-2@example.test",
		References:    []string{"orig-1@example.test", "orig-2@example.test"},
		AutoSubmitted: "auto-replied",
		LoopToken:     "org-acme",
		Headers:       map[string]string{"X-Atumdesk-Ticket": "12"},
	}
	require.NoError(t, s.Send(context.Background(), m))
	raw := wait(id)
	parsed, err := mail.ReadMessage(strings.NewReader(raw))
	require.NoError(t, err)
	h := parsed.Header
	require.Equal(t, "<"+id+">", h.Get("Message-ID"))
	require.Equal(t, "<orig-2@example.test>", h.Get("In-Reply-To"))
	require.Equal(t, []string{"<orig-1@example.test>", "<orig-2@example.test>"}, strings.Fields(h.Get("References")))
	require.Contains(t, h.Get("Reply-To"), "support@acme.test")
	require.Equal(t, "auto-replied", h.Get("Auto-Submitted"))
	require.Equal(t, "All", h.Get("X-Auto-Response-Suppress"))
	require.Equal(t, "org-acme", h.Get("X-Atumdesk-Loop"))
	require.Equal(t, "12", h.Get("X-Atumdesk-Ticket"))
	subj, err := new(mime.WordDecoder).DecodeHeader(h.Get("Subject"))
	require.NoError(t, err)
	require.Equal(t, m.Subject, subj)
	require.Contains(t, h.Get("Content-Type"), "multipart/alternative")
	require.Contains(t, raw, "text/plain")
	require.Contains(t, raw, "text/html")
	// Postfix says how it arrived: over TLS, authenticated.
	require.Contains(t, raw, "SMTPSA")
}

func TestSendOverImplicitTLSAndPlain(t *testing.T) {
	e := testEnv(t)
	const to = "box117@load.test"
	wait := e.inbox(t, to)
	for _, s := range []*Sender{
		e.sender(t, e.smtps, TLS, "noreply@atumdesk.test", e.password, e.tls),
		e.sender(t, e.smtp, None, "", "", nil),
	} {
		id := NewMessageID("atumdesk.test")
		require.NoError(t, s.Send(context.Background(), &Message{From: mail.Address{Address: "noreply@atumdesk.test"},
			To: []mail.Address{{Address: to}}, Subject: "plain", Text: "hi", MessageID: id, AutoSubmitted: "auto-generated"}))
		raw := wait(id)
		require.Contains(t, raw, "Auto-Submitted: auto-generated")
		require.NotContains(t, raw, "text/html")
	}
}

func TestSendFailures(t *testing.T) {
	e := testEnv(t)
	ctx := context.Background()
	msg := func() *Message {
		return &Message{From: mail.Address{Address: "noreply@atumdesk.test"}, To: []mail.Address{{Address: "box118@load.test"}},
			Subject: "x", Text: "x", MessageID: NewMessageID("atumdesk.test")}
	}
	// a wrong password is an error (not sent)
	err := e.sender(t, e.submission, StartTLS, "noreply@atumdesk.test", "wrong", e.tls).Send(ctx, msg())
	require.Error(t, err)
	// an untrusted certificate is never accepted (no silent downgrade)
	err = e.sender(t, e.submission, StartTLS, "noreply@atumdesk.test", e.password, nil).Send(ctx, msg())
	require.ErrorContains(t, err, "certificate")
	// an unknown recipient is permanent
	bad := msg()
	bad.To = []mail.Address{{Address: "nobody@load.test"}}
	err = e.sender(t, e.submission, StartTLS, "noreply@atumdesk.test", e.password, e.tls).Send(ctx, bad)
	require.Error(t, err)
	require.True(t, IsPermanent(err), "%v", err)
	// a server that is down is worth retrying
	err = e.sender(t, "127.0.0.1:1", None, "", "", nil).Send(ctx, msg())
	require.Error(t, err)
	require.False(t, IsPermanent(err))
}

func TestHeaderInjectionRefused(t *testing.T) {
	base := func() *Message {
		return &Message{From: mail.Address{Address: "noreply@atumdesk.test"}, To: []mail.Address{{Address: "a@example.test"}},
			Subject: "ok", Text: "body", MessageID: "id@atumdesk.test"}
	}
	for name, mod := range map[string]func(m *Message){
		"subject CRLF":      func(m *Message) { m.Subject = "hi\r\nBcc: victim@example.test" },
		"subject LF":        func(m *Message) { m.Subject = "hi\nX-Evil: 1" },
		"name CRLF":         func(m *Message) { m.To[0].Name = "Eve\r\nBcc: x@example.test" },
		"address":           func(m *Message) { m.To[0].Address = "a@example.test>\r\nBcc: x@example.test" },
		"in-reply-to":       func(m *Message) { m.InReplyTo = "a@b>\r\nBcc: <x@example.test" },
		"references":        func(m *Message) { m.References = []string{"ok@x", "a b@c"} },
		"message id":        func(m *Message) { m.MessageID = "" },
		"auto-submitted":    func(m *Message) { m.AutoSubmitted = "yes" },
		"header name":       func(m *Message) { m.Headers = map[string]string{"Bcc": "x@example.test"} },
		"header value":      func(m *Message) { m.Headers = map[string]string{"X-A": "1\r\nBcc: x@example.test"} },
		"loop header":       func(m *Message) { m.Headers = map[string]string{"X-Atumdesk-Loop": "forged"} },
		"missing recipient": func(m *Message) { m.To = nil },
		"NUL":               func(m *Message) { m.Subject = "a\x00b" },
	} {
		m := base()
		mod(m)
		_, err := Build(m)
		require.Error(t, err, name)
	}
	g, err := Build(base())
	require.NoError(t, err)
	var b strings.Builder
	_, err = g.WriteTo(&b)
	require.NoError(t, err)
	require.Contains(t, b.String(), "X-Atumdesk-Loop: 1")
	require.NotContains(t, b.String(), "Auto-Submitted", "mail a person wrote is not marked automatic")
	require.NotContains(t, b.String(), "User-Agent")
}
