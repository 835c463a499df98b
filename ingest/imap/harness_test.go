package imap

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/smtp"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/internal/netguard"
	"github.com/atumdesk/atumdesk/internal/secretbox"
	"github.com/atumdesk/atumdesk/internal/testenv"
)

// The real Dovecot and Postfix started by deploy/local/mail.sh (make test).
// A test that cannot reach them fails; it never skips.

type mailEnv struct {
	imap, imaps, smtp, password string
	tls                         *tls.Config
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func testMail(t testing.TB) mailEnv {
	t.Helper()
	m := testenv.Mail(t)
	return mailEnv{imap: m.IMAP, imaps: m.IMAPS, smtp: m.SMTP, password: m.Password, tls: m.TLS}
}

// got is one message the test sink received.
type got struct {
	msg *Message
	at  time.Time
}

// recSink records deliveries; fail (if set) decides the answer.
type recSink struct {
	mu   sync.Mutex
	got  []got
	fail func(m *Message) error
	ch   chan got
}

func newRecSink() *recSink { return &recSink{ch: make(chan got, 1000)} }

func (s *recSink) Deliver(ctx context.Context, m *Message) error {
	g := got{msg: m, at: time.Now()}
	s.mu.Lock()
	s.got = append(s.got, g)
	fail := s.fail
	s.mu.Unlock()
	select {
	case s.ch <- g:
	default:
	}
	if fail != nil {
		return fail(m)
	}
	return nil
}

func (s *recSink) setFail(f func(m *Message) error) {
	s.mu.Lock()
	s.fail = f
	s.mu.Unlock()
}

func (s *recSink) all() []got {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]got(nil), s.got...)
}

// count returns how many deliveries carried messageID.
func (s *recSink) count(messageID string) int {
	n := 0
	for _, g := range s.all() {
		if g.msg.MessageID == messageID {
			n++
		}
	}
	return n
}

type harness struct {
	t    *testing.T
	db   *gorm.DB
	env  mailEnv
	box  *secretbox.Box
	org  uuid.UUID
	sink *recSink
	raw  string
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	env := testMail(t)
	db, _ := testenv.DB(t)
	box, err := secretbox.New(bytes.Repeat([]byte{42}, secretbox.KeySize))
	require.NoError(t, err)
	org := uuid.Must(uuid.NewV7())
	require.NoError(t, db.Exec(`INSERT INTO organizations (id, slug, name) VALUES (?, ?, 'Mail Test')`,
		org, "mail-"+org.String()[:8]).Error)
	return &harness{t: t, db: db, env: env, box: box, org: org, sink: newRecSink(), raw: t.TempDir()}
}

type mbOpts struct {
	tls         string // tls, starttls, none
	folder      string
	afterIngest string
	password    string
	noReset     bool // the caller emptied the account already
}

// mailbox registers the test user's mailbox (password sealed like the API
// does) after emptying it on the server.
func (h *harness) mailbox(user string, mods ...func(*mbOpts)) uuid.UUID {
	h.t.Helper()
	o := mbOpts{tls: "tls", folder: "INBOX", afterIngest: "seen", password: h.env.password}
	for _, m := range mods {
		m(&o)
	}
	if !o.noReset {
		h.reset(user)
	}
	addr := h.env.imaps
	switch o.tls {
	case "starttls", "none":
		addr = h.env.imap
	}
	host, port, err := net.SplitHostPort(addr)
	require.NoError(h.t, err)
	id := uuid.Must(uuid.NewV7())
	sealed, err := h.box.Seal([]byte(o.password), id[:])
	require.NoError(h.t, err)
	require.NoError(h.t, h.db.Exec(`INSERT INTO mailboxes (id, org_id, address, imap_host, imap_port, imap_tls, imap_username,
		credentials_ref, password_enc, folder, after_ingest) VALUES (?, ?, ?, ?, ?, ?, ?, 'secretbox', ?, ?, ?)`,
		id, h.org, user, host, port, o.tls, user, sealed, o.folder, o.afterIngest).Error)
	return id
}

// run starts a poller; stop cancels it and waits for Run to return.
func (h *harness) run(mods ...func(*Config)) (p *Poller, stop func()) {
	h.t.Helper()
	return h.start(nil, mods...)
}

// start is run with knob applied to the poller before it runs.
func (h *harness) start(knob func(*Poller), mods ...func(*Config)) (p *Poller, stop func()) {
	h.t.Helper()
	// The local Dovecot is on loopback, which the guard refuses by default.
	guard, err := netguard.New([]string{h.env.imap, h.env.imaps})
	require.NoError(h.t, err)
	cfg := Config{DB: h.db, Sink: h.sink, Secrets: h.box, TLS: h.env.tls, StorageDir: h.raw, Guard: guard,
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		LeaseTTL: 3 * time.Second, RenewInterval: 500 * time.Millisecond, ReplayInterval: 200 * time.Millisecond,
		SinkBackoff: 20 * time.Millisecond, ReconnectMin: 100 * time.Millisecond, ReconnectMax: time.Second}
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	for _, m := range mods {
		m(&cfg)
	}
	p, err = New(cfg)
	require.NoError(h.t, err)
	if knob != nil {
		knob(p)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = p.Run(ctx); close(done) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				h.t.Errorf("poller did not stop within 20s")
			}
		})
	}
	h.t.Cleanup(stop)
	return p, stop
}

// login opens an IMAP session as user (for checks and setup).
func (h *harness) login(user string) *imapclient.Client {
	h.t.Helper()
	c, err := imapclient.DialTLS(h.env.imaps, &imapclient.Options{TLSConfig: h.env.tls})
	require.NoError(h.t, err)
	require.NoError(h.t, c.Login(user, h.env.password).Wait())
	h.t.Cleanup(func() { _ = c.Close() })
	return c
}

// reset empties user's INBOX and deletes its other folders.
func (h *harness) reset(user string) {
	h.t.Helper()
	require.NoError(h.t, h.resetErr(user), user)
}

// resetAll resets users, ten at a time.
func (h *harness) resetAll(users []string) {
	h.t.Helper()
	sem := make(chan struct{}, 10)
	errs := make([]error, len(users))
	var wg sync.WaitGroup
	for i, u := range users {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = h.resetErr(u)
		})
	}
	wg.Wait()
	for i, err := range errs {
		require.NoError(h.t, err, users[i])
	}
}

func (h *harness) resetErr(user string) error {
	c, err := imapclient.DialTLS(h.env.imaps, &imapclient.Options{TLSConfig: h.env.tls})
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Login(user, h.env.password).Wait(); err != nil {
		return err
	}
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		return err
	}
	for _, l := range list {
		if !strings.EqualFold(l.Mailbox, "INBOX") {
			if err := c.Delete(l.Mailbox).Wait(); err != nil {
				return fmt.Errorf("delete %s: %w", l.Mailbox, err)
			}
		}
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		return err
	}
	if sel.NumMessages > 0 {
		if err := c.Store(goimap.SeqSet{goimap.SeqRange{Start: 1, Stop: 0}},
			&goimap.StoreFlags{Op: goimap.StoreFlagsAdd, Silent: true, Flags: []goimap.Flag{goimap.FlagDeleted}}, nil).Close(); err != nil {
			return err
		}
		if err := c.Expunge().Close(); err != nil {
			return err
		}
	}
	return c.Logout().Wait()
}

// send submits a message over SMTP (plain, no STARTTLS: loopback test
// server) and returns its Message-ID (without brackets).
func (h *harness) send(to, subject string, headers ...string) string {
	h.t.Helper()
	id := uuid.NewString() + "@test.atumdesk"
	msg := h.message(to, subject, "<"+id+">", headers...)
	h.sendRaw(to, msg)
	return id
}

func (h *harness) message(to, subject, messageID string, headers ...string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: Customer <customer@example.test>\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\n",
		to, subject, time.Now().Format(time.RFC1123Z))
	if messageID != "" {
		fmt.Fprintf(&b, "Message-ID: %s\r\n", messageID)
	}
	for _, hd := range headers {
		b.WriteString(hd + "\r\n")
	}
	fmt.Fprintf(&b, "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello, this is %s.\r\n", subject)
	return b.Bytes()
}

func (h *harness) sendRaw(to string, msg []byte) {
	h.t.Helper()
	c, err := smtp.Dial(h.env.smtp)
	require.NoError(h.t, err)
	defer c.Close()
	require.NoError(h.t, c.Hello("test.atumdesk"))
	require.NoError(h.t, c.Mail("customer@example.test"))
	require.NoError(h.t, c.Rcpt(to))
	w, err := c.Data()
	require.NoError(h.t, err)
	_, err = w.Write(msg)
	require.NoError(h.t, err)
	require.NoError(h.t, w.Close())
	require.NoError(h.t, c.Quit())
}

// appendMsg puts a message straight into a folder over IMAP.
func (h *harness) appendMsg(c *imapclient.Client, folder string, msg []byte) {
	h.t.Helper()
	cmd := c.Append(folder, int64(len(msg)), nil)
	_, err := cmd.Write(msg)
	require.NoError(h.t, err)
	require.NoError(h.t, cmd.Close())
	_, err = cmd.Wait()
	require.NoError(h.t, err)
}

// flags returns the flags of every message in folder, by Message-ID.
func (h *harness) flags(user, folder string) map[string][]goimap.Flag {
	h.t.Helper()
	c := h.login(user)
	defer c.Logout()
	sel, err := c.Select(folder, &goimap.SelectOptions{ReadOnly: true}).Wait()
	require.NoError(h.t, err)
	out := map[string][]goimap.Flag{}
	if sel.NumMessages == 0 {
		return out
	}
	bufs, err := c.Fetch(goimap.SeqSet{goimap.SeqRange{Start: 1, Stop: 0}}, &goimap.FetchOptions{Flags: true,
		BodySection: []*goimap.FetchItemBodySection{messageIDSection}}).Collect()
	require.NoError(h.t, err)
	for _, b := range bufs {
		out[parseMessageID(b.FindBodySection(messageIDSection))] = b.Flags
	}
	return out
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func hasFlag(flags []goimap.Flag, f goimap.Flag) bool {
	for _, x := range flags {
		if x == f {
			return true
		}
	}
	return false
}
