package imap

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// percentile of sorted durations (nearest rank).
func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(float64(len(s))*p+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

// TestDeliveryWithIdle: mail sent over SMTP reaches the sink through IDLE
// within 2 s, carries what ingest needs, is stored raw and flagged \Seen,
// and the mailbox's position advances. Reports delivery-to-sink latency.
func TestDeliveryWithIdle(t *testing.T) {
	h := newHarness(t)
	const user = "box101@load.test"
	mbID := h.mailbox(user)
	reg := prometheus.NewRegistry()
	h.run(func(c *Config) { c.Metrics = reg })
	waitFor(t, 10*time.Second, "the session", func() bool { return h.position(mbID).uidValidity != nil })
	time.Sleep(100 * time.Millisecond) // let it enter IDLE

	// A steady 10 messages/s: some arrive while the poller idles, some while
	// it is busy with the previous one.
	const n = 50
	ids := make([]string, 0, n)
	sentAt := map[string]time.Time{}
	for i := range n {
		id := h.send(user, fmt.Sprintf("latency %d", i))
		ids = append(ids, id)
		sentAt[id] = time.Now()
		time.Sleep(100 * time.Millisecond)
	}
	waitFor(t, 5*time.Second, "all delivered", func() bool { return len(h.sink.all()) >= n })
	var lat []time.Duration
	for _, g := range h.sink.all() {
		lat = append(lat, g.at.Sub(sentAt[g.msg.MessageID]))
	}
	p50, p99 := percentile(lat, .5), percentile(lat, .99)
	t.Logf("FIGURE delivery (SMTP accepted -> sink) with IDLE, %d messages at 10/s: p50 %s, p99 %s, max %s",
		n, p50.Round(time.Millisecond), p99.Round(time.Millisecond), percentile(lat, 1).Round(time.Millisecond))
	require.Less(t, p99, 2*time.Second)

	// what the sink got
	all := h.sink.all()
	require.Len(t, all, n)
	var lastUID uint32
	for i, g := range all {
		m := g.msg
		assert.Equal(t, mbID, m.MailboxID)
		assert.Equal(t, h.org, m.OrgID)
		assert.Equal(t, user, m.Address)
		assert.Equal(t, "INBOX", m.Folder)
		assert.Equal(t, ids[i], m.MessageID)
		assert.Greater(t, m.UID, lastUID, "in UID order")
		lastUID = m.UID
		assert.Contains(t, string(m.Raw), fmt.Sprintf("Subject: latency %d", i))
		assert.False(t, m.InternalDate.IsZero())
		assert.False(t, m.Replay)
		onDisk, err := os.ReadFile(m.RawPath)
		require.NoError(t, err)
		assert.Equal(t, m.Raw, onDisk, "stored raw")
		assert.Contains(t, m.RawPath, m.SHA256)
		assert.Equal(t, "mid:"+ids[i], m.DedupeKey())
	}
	// flagged, recorded, position advanced
	waitFor(t, 3*time.Second, "all \\Seen", func() bool {
		fl := h.flags(user, "INBOX")
		for _, id := range ids {
			if !hasFlag(fl[id], goimap.FlagSeen) {
				return false
			}
		}
		return true
	})
	waitFor(t, 3*time.Second, "last UID", func() bool { return h.position(mbID).lastUID == int64(lastUID) })
	var recorded int64
	require.NoError(t, h.db.Raw(`SELECT count(*) FROM mail_ingested WHERE mailbox_id = ?`, mbID).Scan(&recorded).Error)
	require.EqualValues(t, n, recorded)
	require.Nil(t, h.position(mbID).lastError)
	require.EqualValues(t, n, counter(t, reg, "atumdesk_imap_messages_total", "ingested"))
}

// TestTLSModesPollingAndMove covers STARTTLS with "move:<folder>", no TLS
// with \Seen, and polling for a poller that does not use IDLE.
func TestTLSModesPollingAndMove(t *testing.T) {
	h := newHarness(t)
	const moved, plain = "box102@load.test", "box103@load.test"
	h.mailbox(moved, func(o *mbOpts) { o.tls = "starttls"; o.afterIngest = "move:Processed" })
	h.mailbox(plain, func(o *mbOpts) { o.tls = "none" })
	h.start(func(p *Poller) { p.noIdle = true }, func(c *Config) { c.PollInterval = 300 * time.Millisecond })

	a := h.send(moved, "to be moved")
	b := h.send(plain, "to be seen")
	waitFor(t, 5*time.Second, "both delivered", func() bool { return h.sink.count(a) == 1 && h.sink.count(b) == 1 })
	waitFor(t, 3*time.Second, "moved", func() bool {
		_, inInbox := h.flags(moved, "INBOX")[a]
		_, inDone := h.flags(moved, "Processed")[a]
		return !inInbox && inDone
	})
	waitFor(t, 3*time.Second, "seen", func() bool { return hasFlag(h.flags(plain, "INBOX")[b], goimap.FlagSeen) })
	// a second message to the moved mailbox comes through the same session
	c := h.send(moved, "also moved")
	waitFor(t, 5*time.Second, "second delivered", func() bool { return h.sink.count(c) == 1 })
}

// TestStoppedMidDelivery: the poller stopped after the sink received a
// message but before it was flagged. Restarted, the message is handed again
// if the sink had not returned nil (same mailbox, UIDVALIDITY, UID and
// Message-ID: the sink's idempotency key), and not again if it had.
func TestStoppedMidDelivery(t *testing.T) {
	h := newHarness(t)
	const user = "box104@load.test"
	mbID := h.mailbox(user)

	// 1. The sink is interrupted by the shutdown (it had not accepted).
	entered := make(chan struct{}, 10)
	h.sink.setFail(func(m *Message) error {
		entered <- struct{}{}
		time.Sleep(300 * time.Millisecond) // the test stops the poller meanwhile
		return context.Canceled
	})
	_, stop := h.run()
	a := h.send(user, "interrupted")
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("sink not called")
	}
	stop()
	require.Equal(t, 1, h.sink.count(a), "a failure during shutdown is not an attempt")
	require.False(t, hasFlag(h.flags(user, "INBOX")[a], goimap.FlagSeen), "not flagged before ingest accepted it")
	require.Zero(t, h.position(mbID).lastUID, "position not advanced")

	h.sink.setFail(nil)
	_, stop2 := h.run()
	waitFor(t, 5*time.Second, "handed again", func() bool { return h.sink.count(a) == 2 })
	first, again := h.sink.all()[0].msg, h.sink.all()[1].msg
	require.Equal(t, first.MailboxID, again.MailboxID)
	require.Equal(t, first.UIDValidity, again.UIDValidity)
	require.Equal(t, first.UID, again.UID)
	require.Equal(t, first.DedupeKey(), again.DedupeKey())
	require.Equal(t, first.SHA256, again.SHA256)
	waitFor(t, 3*time.Second, "seen", func() bool { return hasFlag(h.flags(user, "INBOX")[a], goimap.FlagSeen) })
	stop2()

	// 2. The sink accepted, then the poller was stopped before the flag:
	// the dedupe record keeps it from being handed on again.
	h.sink.setFail(func(m *Message) error {
		if strings.Contains(string(m.Raw), "accepted then stopped") {
			entered <- struct{}{}
			time.Sleep(300 * time.Millisecond) // the stop is under way
		}
		return nil
	})
	_, stop = h.run()
	b := h.send(user, "accepted then stopped")
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("sink not called")
	}
	stop()
	h.sink.setFail(nil)
	_, stop3 := h.run()
	defer stop3()
	waitFor(t, 5*time.Second, "flagged after restart", func() bool { return hasFlag(h.flags(user, "INBOX")[b], goimap.FlagSeen) })
	require.Equal(t, 1, h.sink.count(b), "not handed on twice")
	c := h.send(user, "after restart")
	waitFor(t, 5*time.Second, "later mail", func() bool { return h.sink.count(c) == 1 })
}

// TestUIDValidityChange: the folder is deleted and recreated under the
// running poller (every UID renumbered): the poller rescans it, hands on
// only the message it has not seen (dedupe by Message-ID and, without one,
// SHA-256) and records the new UIDVALIDITY.
func TestUIDValidityChange(t *testing.T) {
	h := newHarness(t)
	const user = "box105@load.test"
	const folder = "Support"
	mbID := h.mailbox(user, func(o *mbOpts) { o.folder = folder }) // empties the account
	c := h.login(user)
	require.NoError(t, c.Create(folder, nil).Wait())
	withID := h.message(user, "with id", "<keep-1@test.atumdesk>")
	withoutID := h.message(user, "without id", "")
	h.appendMsg(c, folder, withID)
	h.appendMsg(c, folder, withoutID)

	reg := prometheus.NewRegistry()
	h.run(func(c *Config) { c.Metrics = reg; c.IdleRefresh = 500 * time.Millisecond })
	waitFor(t, 5*time.Second, "two delivered", func() bool { return len(h.sink.all()) == 2 })
	waitFor(t, 3*time.Second, "first sync saved", func() bool { return h.position(mbID).uidValidity != nil })
	old := *h.position(mbID).uidValidity

	require.NoError(t, c.Delete(folder).Wait())
	require.NoError(t, c.Create(folder, nil).Wait())
	h.appendMsg(c, folder, withID)
	h.appendMsg(c, folder, withoutID)
	h.appendMsg(c, folder, h.message(user, "new", "<new-1@test.atumdesk>"))

	waitFor(t, 10*time.Second, "the new message", func() bool { return h.sink.count("new-1@test.atumdesk") == 1 })
	waitFor(t, 5*time.Second, "all flagged", func() bool {
		fl := h.flags(user, folder)
		n := 0
		for _, f := range fl {
			if hasFlag(f, goimap.FlagSeen) {
				n++
			}
		}
		return n == 3
	})
	time.Sleep(300 * time.Millisecond)
	require.Len(t, h.sink.all(), 3, "the two known messages were not handed on again")
	pos := h.position(mbID)
	require.NotEqual(t, old, *pos.uidValidity)
	require.EqualValues(t, 3, pos.lastUID)
	require.GreaterOrEqual(t, counter(t, reg, "atumdesk_imap_uidvalidity_resets_total", ""), 1.0)
	require.GreaterOrEqual(t, counter(t, reg, "atumdesk_imap_messages_total", "duplicate"), 2.0)
}

// TestLeaseTakeover: two pollers share mailboxes, each held by exactly one;
// when a holder dies without releasing (no renewals), the other takes its
// mailboxes over once the lease expires.
func TestLeaseTakeover(t *testing.T) {
	h := newHarness(t)
	users := []string{"box106@load.test", "box107@load.test", "box108@load.test", "box109@load.test"}
	ids := map[string]uuid.UUID{}
	for _, u := range users {
		ids[u] = h.mailbox(u)
	}
	const ttl = 2 * time.Second
	// a will die without releasing its leases (keepLeases), as a crash would.
	_, stopA := h.start(func(p *Poller) { p.keepLeases = true },
		func(c *Config) {
			c.Owner = "poller-a"
			c.MaxMailboxes = 2
			c.LeaseTTL = ttl
			c.RenewInterval = 250 * time.Millisecond
		})
	waitFor(t, 5*time.Second, "a holds two", func() bool { return len(h.holders()["poller-a"]) == 2 })
	_, stopB := h.run(func(c *Config) { c.Owner = "poller-b"; c.LeaseTTL = ttl; c.RenewInterval = 250 * time.Millisecond })
	defer stopB()
	waitFor(t, 5*time.Second, "b holds the rest", func() bool { return len(h.holders()["poller-b"]) == 2 })

	sent := map[string]string{}
	for _, u := range users {
		sent[u] = h.send(u, "before takeover")
	}
	waitFor(t, 5*time.Second, "each once", func() bool {
		for _, id := range sent {
			if h.sink.count(id) != 1 {
				return false
			}
		}
		return true
	})

	// a dies: no release, no renewals
	aHeld := h.holders()["poller-a"]
	stopA()
	died := time.Now()
	waitFor(t, ttl+3*time.Second, "b takes a's mailboxes", func() bool { return len(h.holders()["poller-b"]) == 4 })
	took := time.Since(died)
	t.Logf("FIGURE lease takeover after the holder died: %s (lease TTL %s, renew every 250ms)", took.Round(10*time.Millisecond), ttl)
	require.Less(t, took, ttl+2*time.Second)
	for _, id := range aHeld {
		for u, mid := range ids {
			if mid == id {
				m := h.send(u, "after takeover")
				waitFor(t, 5*time.Second, "delivered by b", func() bool { return h.sink.count(m) == 1 })
			}
		}
	}
	for _, id := range sent {
		require.Equal(t, 1, h.sink.count(id), "nothing handed on twice")
	}
}

// TestQuarantineAndReplay: a message ingest keeps failing on is retried,
// then quarantined with its error and flagged; the next message is not
// blocked; an admin's replay hands it to the sink again from the raw store.
func TestQuarantineAndReplay(t *testing.T) {
	h := newHarness(t)
	const user = "box110@load.test"
	mbID := h.mailbox(user)
	h.sink.setFail(func(m *Message) error {
		switch {
		case strings.Contains(string(m.Raw), "Subject: poison"):
			return errors.New("cannot persist: database says no")
		case strings.Contains(string(m.Raw), "Subject: no sender"):
			return Permanent(errors.New("no usable sender"))
		}
		return nil
	})
	reg := prometheus.NewRegistry()
	h.run(func(c *Config) { c.Metrics = reg })
	poison := h.send(user, "poison")
	permanent := h.send(user, "no sender")
	good := h.send(user, "fine")
	waitFor(t, 10*time.Second, "the good one", func() bool { return h.sink.count(good) == 1 })
	require.Equal(t, 4, h.sink.count(poison), "retried SinkAttempts times")
	require.Equal(t, 1, h.sink.count(permanent), "a permanent error is not retried")

	type qrow struct {
		ID        uuid.UUID
		MessageID string
		Error     string
		Attempts  int
		Status    string
		RawSHA256 string
		OrgID     uuid.UUID
	}
	var rows []qrow
	require.NoError(t, h.db.Raw(`SELECT id, message_id, error, attempts, status, raw_sha256, org_id FROM mail_quarantine
		WHERE mailbox_id = ? ORDER BY uid`, mbID).Scan(&rows).Error)
	require.Len(t, rows, 2)
	require.Equal(t, poison, rows[0].MessageID)
	require.Equal(t, "cannot persist: database says no", rows[0].Error)
	require.Equal(t, 4, rows[0].Attempts)
	require.Equal(t, "quarantined", rows[0].Status)
	require.Equal(t, h.org, rows[0].OrgID)
	require.Equal(t, 1, rows[1].Attempts)
	fl := h.flags(user, "INBOX")
	require.True(t, hasFlag(fl[poison], goimap.FlagSeen), "quarantined messages are flagged: the mailbox goes on")

	// replay after a "fix"
	h.sink.setFail(nil)
	require.NoError(t, h.db.Exec(`UPDATE mail_quarantine SET status = 'replay' WHERE id = ?`, rows[0].ID).Error)
	waitFor(t, 5*time.Second, "replayed", func() bool { return h.sink.count(poison) == 5 })
	last := h.sink.all()[len(h.sink.all())-1].msg
	require.True(t, last.Replay)
	require.Equal(t, rows[0].RawSHA256, last.SHA256)
	require.Contains(t, string(last.Raw), "Subject: poison")
	waitFor(t, 3*time.Second, "status replayed", func() bool {
		var st string
		_ = h.db.Raw(`SELECT status FROM mail_quarantine WHERE id = ?`, rows[0].ID).Scan(&st).Error
		return st == "replayed"
	})
	var ingested int64
	require.NoError(t, h.db.Raw(`SELECT count(*) FROM mail_ingested WHERE mailbox_id = ? AND dedupe_key = ?`, mbID, "mid:"+poison).Scan(&ingested).Error)
	require.EqualValues(t, 1, ingested)

	// a replay that fails again goes back to quarantine with the new error
	h.sink.setFail(func(*Message) error { return errors.New("still broken") })
	require.NoError(t, h.db.Exec(`UPDATE mail_quarantine SET status = 'replay' WHERE id = ?`, rows[1].ID).Error)
	waitFor(t, 5*time.Second, "failed replay recorded", func() bool {
		var r qrow
		_ = h.db.Raw(`SELECT status, error, attempts FROM mail_quarantine WHERE id = ?`, rows[1].ID).Scan(&r).Error
		return r.Status == "quarantined" && r.Error == "still broken" && r.Attempts == 2
	})
	require.Equal(t, 1.0, counter(t, reg, "atumdesk_imap_replays_total", "failed"))
}

// TestMailboxErrorsAreIsolated: a wrong password and a missing folder do
// not stop a healthy mailbox; each records its error; fixing the settings
// (config_version bumped, as the admin API does) brings a mailbox back.
func TestMailboxErrorsAreIsolated(t *testing.T) {
	h := newHarness(t)
	const good, badPass, badFolder = "box111@load.test", "box112@load.test", "box113@load.test"
	h.mailbox(good)
	badID := h.mailbox(badPass, func(o *mbOpts) { o.password = "wrong" })
	folderID := h.mailbox(badFolder, func(o *mbOpts) { o.folder = "Nope" })
	h.run()
	m := h.send(good, "healthy")
	waitFor(t, 5*time.Second, "healthy delivered", func() bool { return h.sink.count(m) == 1 })
	waitFor(t, 5*time.Second, "errors recorded", func() bool {
		a, b := h.position(badID).lastError, h.position(folderID).lastError
		return a != nil && strings.HasPrefix(*a, "login:") && b != nil && strings.HasPrefix(*b, "select:")
	})
	require.NotContains(t, *h.position(badID).lastError, "wrong", "no password in errors")

	// fix the password the way the API does
	sealed, err := h.box.Seal([]byte(h.env.password), badID[:])
	require.NoError(t, err)
	require.NoError(t, h.db.Exec(`UPDATE mailboxes SET password_enc = ?, config_version = config_version + 1 WHERE id = ?`, sealed, badID).Error)
	m2 := h.send(badPass, "fixed")
	waitFor(t, 8*time.Second, "fixed mailbox delivers", func() bool { return h.sink.count(m2) == 1 })
	waitFor(t, 3*time.Second, "error cleared", func() bool { return h.position(badID).lastError == nil })
}

// TestHundredMailboxes: one process polls 100 mailboxes (IDLE sessions
// over TLS) in parallel; one message to each is handed on once.
func TestHundredMailboxes(t *testing.T) {
	h := newHarness(t)
	const n = 100
	users := make([]string, n)
	for i := range n {
		users[i] = fmt.Sprintf("box%03d@load.test", i+1)
	}
	h.resetAll(users)
	for _, u := range users {
		h.mailbox(u, func(o *mbOpts) { o.noReset = true })
	}
	start := time.Now()
	h.run(func(c *Config) { c.ReconnectMin = 500 * time.Millisecond })
	waitFor(t, 60*time.Second, "100 sessions ready", func() bool {
		var ready int64
		_ = h.db.Raw(`SELECT count(*) FROM mailboxes WHERE org_id = ? AND uid_validity IS NOT NULL`, h.org).Scan(&ready).Error
		return ready == n
	})
	ready := time.Since(start)
	time.Sleep(200 * time.Millisecond)

	sentAt := map[string]time.Time{}
	sendStart := time.Now()
	for _, u := range users {
		sentAt[h.send(u, "parallel")] = time.Now()
	}
	sendTook := time.Since(sendStart)
	waitFor(t, 30*time.Second, "100 delivered", func() bool { return len(h.sink.all()) >= n })
	var lat []time.Duration
	for _, g := range h.sink.all() {
		at, ok := sentAt[g.msg.MessageID]
		require.True(t, ok)
		lat = append(lat, g.at.Sub(at))
	}
	if testing.Verbose() {
		var line []string
		for _, d := range lat {
			line = append(line, d.Round(time.Millisecond).String())
		}
		t.Logf("latencies in arrival order: %s", strings.Join(line, " "))
	}
	time.Sleep(300 * time.Millisecond)
	require.Len(t, h.sink.all(), n, "each message once")
	t.Logf("FIGURE %d mailboxes in one process: all sessions (TLS login, SELECT, IDLE) ready in %s; "+
		"%d messages sent over SMTP in %s; delivery to sink p50 %s, p99 %s", n, ready.Round(10*time.Millisecond),
		n, sendTook.Round(10*time.Millisecond), percentile(lat, .5).Round(time.Millisecond), percentile(lat, .99).Round(time.Millisecond))
	// The 2 s target is checked on one mailbox (TestDeliveryWithIdle); here
	// 100 sessions share 2 cores with the servers (and -race): a looser bound.
	require.Less(t, percentile(lat, .99), 5*time.Second)
}

type position struct {
	uidValidity *int64
	lastUID     int64
	lastError   *string
}

func (h *harness) position(id uuid.UUID) position {
	h.t.Helper()
	var r struct {
		UIDValidity *int64  `gorm:"column:uid_validity"`
		LastUID     int64   `gorm:"column:last_uid"`
		LastError   *string `gorm:"column:last_error"`
	}
	require.NoError(h.t, h.db.Raw(`SELECT uid_validity, last_uid, last_error FROM mailboxes WHERE id = ?`, id).Scan(&r).Error)
	return position{r.UIDValidity, r.LastUID, r.LastError}
}

// holders maps lease owners to the mailboxes they hold (unexpired).
func (h *harness) holders() map[string][]uuid.UUID {
	h.t.Helper()
	var rows []struct {
		ID    uuid.UUID `gorm:"column:id"`
		Owner string    `gorm:"column:lease_owner"`
	}
	require.NoError(h.t, h.db.Raw(`SELECT id, lease_owner FROM mailboxes
		WHERE org_id = ? AND lease_owner IS NOT NULL AND lease_expires_at > now()`, h.org).Scan(&rows).Error)
	out := map[string][]uuid.UUID{}
	for _, r := range rows {
		out[r.Owner] = append(out[r.Owner], r.ID)
	}
	return out
}

// counter reads a counter (with the given label value, or no labels) from reg.
func counter(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label == "" && len(m.GetLabel()) == 0 {
				return m.GetCounter().GetValue()
			}
			for _, l := range m.GetLabel() {
				if l.GetValue() == label {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("metric %s{%s} not found", name, label)
	return 0
}

// TestFirstSyncSkipsReadMail: a mailbox added with mail already in it
// ingests what is unread, not the read archive; later mail comes as usual.
func TestFirstSyncSkipsReadMail(t *testing.T) {
	h := newHarness(t)
	const user = "box114@load.test"
	h.mailbox(user)
	c := h.login(user)
	read := h.message(user, "old and read", "<read-1@test.atumdesk>")
	cmd := c.Append("INBOX", int64(len(read)), &goimap.AppendOptions{Flags: []goimap.Flag{goimap.FlagSeen}})
	_, err := cmd.Write(read)
	require.NoError(t, err)
	require.NoError(t, cmd.Close())
	_, err = cmd.Wait()
	require.NoError(t, err)
	h.appendMsg(c, "INBOX", h.message(user, "old but unread", "<unread-1@test.atumdesk>"))

	h.run()
	waitFor(t, 5*time.Second, "the unread one", func() bool { return h.sink.count("unread-1@test.atumdesk") == 1 })
	m := h.send(user, "new")
	waitFor(t, 5*time.Second, "new mail", func() bool { return h.sink.count(m) == 1 })
	require.Zero(t, h.sink.count("read-1@test.atumdesk"))
	require.Len(t, h.sink.all(), 2)
}

// TestUnreadableMessageIsQuarantined: a message the server cannot return
// (here its Maildir file is unreadable) fails a few sessions, then is
// quarantined unfetched, and the mailbox goes on with the next one.
func TestUnreadableMessageIsQuarantined(t *testing.T) {
	h := newHarness(t)
	const user = "box115@load.test"
	mbID := h.mailbox(user)
	bad := h.send(user, "unreadable")
	dir := filepath.Join(envOr("ATUMDESK_TEST_MAIL_DIR", "../../data/mail/vmail"), "load.test", "box115", "Maildir")
	var files []string
	waitFor(t, 5*time.Second, "delivery to the Maildir", func() bool {
		files, _ = filepath.Glob(filepath.Join(dir, "new", "*"))
		return len(files) == 1
	})
	require.NoError(t, os.Chmod(files[0], 0))
	t.Cleanup(func() {
		for _, sub := range []string{"new", "cur"} {
			fs, _ := filepath.Glob(filepath.Join(dir, sub, "*"))
			for _, f := range fs {
				_ = os.Chmod(f, 0o600)
			}
		}
	})
	h.run()
	good := h.send(user, "readable")
	waitFor(t, 15*time.Second, "the next message", func() bool { return h.sink.count(good) == 1 })
	require.Zero(t, h.sink.count(bad))
	var q struct {
		DedupeKey string  `gorm:"column:dedupe_key"`
		RawSHA256 *string `gorm:"column:raw_sha256"`
		Error     string  `gorm:"column:error"`
		Attempts  int     `gorm:"column:attempts"`
	}
	require.NoError(t, h.db.Raw(`SELECT dedupe_key, raw_sha256, error, attempts FROM mail_quarantine WHERE mailbox_id = ?`, mbID).Scan(&q).Error)
	require.Regexp(t, `^uid:\d+:\d+$`, q.DedupeKey)
	require.Nil(t, q.RawSHA256)
	require.Contains(t, q.Error, "the server failed 5 times")
	require.Equal(t, 5, q.Attempts)
}
