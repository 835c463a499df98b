package imap

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/google/uuid"

	"github.com/atumdesk/atumdesk/models"
)

// credentialsSecretbox is the only credentials_ref the poller reads: the
// password sealed in password_enc.
const credentialsSecretbox = "secretbox"

// stuckLimit: sessions failing on fetching the same message this many
// times in a row quarantine it unfetched.
const stuckLimit = 5

// session is one IMAP connection of one mailbox.
type session struct {
	p    *Poller
	mb   *mailbox
	log  *slog.Logger
	c    *imapclient.Client
	wake chan struct{} // EXISTS arrived (buffered 1, never blocks the reader)

	uidValidity uint32
	lastUID     uint32
	// firstSync: the mailbox's first catch-up is running; the position is
	// saved only when it is complete, so a crash meanwhile repeats it
	// (UNSEEN again) instead of reading the whole archive.
	firstSync bool
	// stuck is the message the last sessions failed to fetch; after
	// stuckLimit failures in a row it is quarantined unfetched, so one
	// message the server cannot return does not block the mailbox.
	stuck *stuckMessage
}

// stuckMessage tracks consecutive session failures on one message.
type stuckMessage struct {
	uidValidity uint32
	uid         goimap.UID
	failures    int
	lastErr     string
}

// giveUp reports whether the message has failed often enough.
func (st *stuckMessage) giveUp(limit int) bool { return st != nil && st.failures >= limit }

// session connects, catches up and then waits for new mail until an error
// or ctx ends. stage names the step that failed, for logs and metrics.
// stuck carries the message the previous sessions failed on in and out.
func (p *Poller) session(ctx context.Context, id uuid.UUID, log *slog.Logger, stuck **stuckMessage) (stage string, err error) {
	mb, err := p.st.load(ctx, id)
	if err != nil {
		return "load", err
	}
	password, err := p.password(mb)
	if err != nil {
		return "credentials", err
	}
	s := &session{p: p, mb: mb, log: log, wake: make(chan struct{}, 1), stuck: *stuck}
	defer func() { *stuck = s.stuck }()
	if s.c, err = p.dial(mb, s.onMailbox); err != nil {
		return "connect", err
	}
	defer s.c.Close()
	// imapclient is not context-aware: closing the connection unblocks
	// whatever command is waiting when the session is cancelled.
	defer context.AfterFunc(ctx, func() { _ = s.c.Close() })()

	if err := s.c.Login(mb.IMAPUsername, password).Wait(); err != nil {
		return "login", err
	}
	if folder, ok := strings.CutPrefix(mb.AfterIngest, "move:"); ok {
		if err := s.ensureFolder(folder); err != nil {
			return "create-folder", err
		}
	}
	first := mb.UIDValidity == nil
	if !first {
		s.uidValidity, s.lastUID = uint32(*mb.UIDValidity), uint32(mb.LastUID)
	}
	sel, err := s.selectFolder(ctx, first)
	if err != nil {
		return "select", err
	}
	idle := s.c.Caps().Has(goimap.CapIdle) && !p.noIdle
	log.Info("imap: session ready", "folder", mb.Folder, "uidvalidity", s.uidValidity, "last_uid", s.lastUID,
		"idle", idle, "first_sync", first)
	if first {
		if stage, err := s.catchUp(ctx, sel.UIDNext); err != nil {
			return stage, err
		}
	}
	for {
		if stage, err := s.sync(ctx); err != nil {
			return stage, err
		}
		refresh, err := s.waitForMail(ctx, idle)
		if err != nil {
			return "wait", err
		}
		if refresh {
			// Quiet for a while: select again, which proves the connection
			// and catches a folder recreated under us (not every server
			// says so while IDLE).
			if _, err := s.selectFolder(ctx, false); err != nil {
				return "select", err
			}
		}
	}
}

// selectFolder selects the mailbox's folder and reconciles UIDVALIDITY: when
// it changed, every UID was renumbered, so the folder is read again from
// the start (the dedupe record keeps what was ingested from coming in
// twice). The position is saved (fenced by the lease).
func (s *session) selectFolder(ctx context.Context, first bool) (*goimap.SelectData, error) {
	sel, err := s.c.Select(s.mb.Folder, nil).Wait()
	if err != nil {
		return nil, err
	}
	if !first && sel.UIDValidity != s.uidValidity {
		s.log.Warn("imap: UIDVALIDITY changed; rescanning the folder", "old", s.uidValidity, "new", sel.UIDValidity)
		s.p.m.resets.Inc()
		s.lastUID = 0
	}
	s.uidValidity = sel.UIDValidity
	if first {
		return sel, nil
	}
	if err := s.p.st.savePosition(ctx, s.mb.ID, s.uidValidity, s.lastUID); err != nil {
		return nil, err
	}
	return sel, nil
}

// password opens the mailbox's sealed password (bound to its id).
func (p *Poller) password(mb *mailbox) (string, error) {
	if mb.CredentialsRef != credentialsSecretbox {
		return "", fmt.Errorf("credentials_ref %q is not supported (want %q)", mb.CredentialsRef, credentialsSecretbox)
	}
	if len(mb.PasswordEnc) == 0 {
		return "", errors.New("the mailbox has no password")
	}
	if p.cfg.Secrets == nil {
		return "", errors.New("ATUMDESK_SECRET_KEY is not set: the mailbox password cannot be opened")
	}
	pw, err := p.cfg.Secrets.Open(mb.PasswordEnc, mb.ID[:])
	if err != nil {
		return "", fmt.Errorf("the mailbox password cannot be opened (was ATUMDESK_SECRET_KEY changed?): %w", err)
	}
	return string(pw), nil
}

// dial connects with the mailbox's TLS mode. onMailbox receives unilateral
// mailbox updates (EXISTS).
func (p *Poller) dial(mb *mailbox, onMailbox func(*imapclient.UnilateralDataMailbox)) (*imapclient.Client, error) {
	addr := net.JoinHostPort(mb.IMAPHost, strconv.Itoa(mb.IMAPPort))
	opts := &imapclient.Options{
		// Keep-alive probes find a dead peer even while IDLE reads without a
		// deadline. Control refuses internal addresses on the address
		// actually dialled, so DNS rebinding cannot get past the check the
		// API made when the mailbox was saved.
		Dialer: &net.Dialer{Timeout: p.cfg.DialTimeout, KeepAlive: 30 * time.Second,
			Control: p.cfg.Guard.Control(mb.IMAPHost)},
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{Mailbox: onMailbox},
	}
	if mb.IMAPTLS != models.IMAPNone {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if p.cfg.TLS != nil {
			tc = p.cfg.TLS.Clone()
		}
		tc.ServerName = mb.IMAPHost
		opts.TLSConfig = tc
	}
	var (
		c   *imapclient.Client
		err error
	)
	switch mb.IMAPTLS {
	case models.IMAPTLS:
		c, err = imapclient.DialTLS(addr, opts)
	case models.IMAPStartTLS:
		c, err = imapclient.DialStartTLS(addr, opts)
	case models.IMAPNone:
		c, err = imapclient.DialInsecure(addr, opts)
	default:
		return nil, fmt.Errorf("unknown TLS mode %q", mb.IMAPTLS)
	}
	if err != nil {
		return nil, err
	}
	// Bound the wait for the greeting (a port that accepts but never speaks).
	greeted := make(chan error, 1)
	go func() { greeted <- c.WaitGreeting() }()
	select {
	case err = <-greeted:
	case <-time.After(p.cfg.DialTimeout):
		err = errors.New("no greeting from the server")
	}
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// onMailbox runs on the client's reader goroutine: it must not block.
func (s *session) onMailbox(d *imapclient.UnilateralDataMailbox) {
	if d.NumMessages != nil {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

func (s *session) ensureFolder(folder string) error {
	list, err := s.c.List("", folder, nil).Collect()
	if err != nil {
		return err
	}
	if len(list) > 0 {
		return nil
	}
	if err := s.c.Create(folder, nil).Wait(); err != nil {
		var ie *goimap.Error
		if errors.As(err, &ie) && ie.Code == goimap.ResponseCodeAlreadyExists {
			return nil
		}
		return err
	}
	return nil
}

// waitForMail returns when new mail may have arrived: on EXISTS during IDLE
// (or before it), after PollInterval without IDLE, or after IdleRefresh
// (refresh true).
func (s *session) waitForMail(ctx context.Context, idle bool) (refresh bool, err error) {
	if !idle {
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-s.wake:
		case <-time.After(s.p.cfg.PollInterval):
		}
		// NOOP is how a client polls: the server checks the folder for new
		// mail (a FETCH alone may be answered from its cached view).
		return false, s.c.Noop().Wait()
	}
	cmd, err := s.c.Idle()
	if err != nil {
		return false, err
	}
	t := time.NewTimer(s.p.cfg.IdleRefresh)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-s.wake:
	case <-t.C:
		refresh = true
	case <-s.c.Closed():
	}
	if err := cmd.Close(); err != nil {
		return false, err
	}
	if err := cmd.Wait(); err != nil {
		return false, err
	}
	return refresh, ctx.Err()
}

// messageIDSection fetches the Message-ID header alone.
var messageIDSection = &goimap.FetchItemBodySection{
	Specifier: goimap.PartSpecifierHeader, HeaderFields: []string{"Message-ID"}, Peek: true,
}

// list searches the UIDs in set (index data only: no message is read, so
// one unreadable message cannot fail the listing), in order, keeping those
// above the last UID handled.
func (s *session) list(set goimap.UIDSet) ([]goimap.UID, error) {
	data, err := s.c.UIDSearch(&goimap.SearchCriteria{UID: []goimap.UIDSet{set}}, nil).Wait()
	if err != nil {
		return nil, err
	}
	return s.above(data.AllUIDs()), nil
}

// above keeps the UIDs above the last one handled, sorted ("n:*" also
// matches the last message when nothing is newer).
func (s *session) above(uids []goimap.UID) []goimap.UID {
	out := make([]goimap.UID, 0, len(uids))
	for _, u := range uids {
		if uint32(u) > s.lastUID {
			out = append(out, u)
		}
	}
	slices.Sort(out)
	return out
}

// catchUp ingests, on a mailbox's very first session, the messages that
// are not \Seen, then starts from UIDNEXT: a mailbox added with years of
// read mail does not turn its archive into tickets.
func (s *session) catchUp(ctx context.Context, uidNext goimap.UID) (string, error) {
	s.firstSync = true
	data, err := s.c.UIDSearch(&goimap.SearchCriteria{NotFlag: []goimap.Flag{goimap.FlagSeen}}, nil).Wait()
	if err != nil {
		return "search", err
	}
	for _, uid := range s.above(data.AllUIDs()) {
		if stage, err := s.handle(ctx, uid); err != nil {
			return stage, err
		}
	}
	if uidNext > 0 && uint32(uidNext)-1 > s.lastUID {
		s.lastUID = uint32(uidNext) - 1
	}
	s.firstSync = false
	if err := s.p.st.savePosition(ctx, s.mb.ID, s.uidValidity, s.lastUID); err != nil {
		return "save", err
	}
	return "", nil
}

// sync handles every message above the last UID, until none is left.
func (s *session) sync(ctx context.Context) (string, error) {
	for {
		msgs, err := s.list(goimap.UIDSet{goimap.UIDRange{Start: goimap.UID(s.lastUID + 1), Stop: 0}})
		if err != nil {
			return "list", err
		}
		if len(msgs) == 0 {
			return "", nil
		}
		for _, uid := range msgs {
			if stage, err := s.handle(ctx, uid); err != nil {
				return stage, err
			}
		}
	}
}

// handle takes one message through dedupe, storage, the sink (with retries,
// then quarantine) and the after-ingest action. An error leaves the message
// where it is: the next session starts again from it.
func (s *session) handle(ctx context.Context, uid goimap.UID) (string, error) {
	p, mb := s.p, s.mb
	msg := &Message{MailboxID: mb.ID, OrgID: mb.OrgID, Address: mb.Address, Folder: mb.Folder,
		UIDValidity: s.uidValidity, UID: uint32(uid)}
	if st := s.stuck; st.giveUp(stuckLimit) && st.uid == uid && st.uidValidity == s.uidValidity {
		// The server keeps failing to return this one message: keep a
		// record of it (unfetched, like an oversized one) and go on.
		cause := fmt.Sprintf("the server failed %d times to return the message: %s", st.failures, st.lastErr)
		if err := p.st.quarantine(ctx, msg, fmt.Sprintf("uid:%d:%d", s.uidValidity, uid), 0, st.failures, cause); err != nil {
			return "quarantine", err
		}
		p.m.messages.WithLabelValues("quarantined").Inc()
		s.log.Warn("imap: unfetchable message quarantined", "uid", uid, "err", cause)
		s.stuck = nil
		return s.done(ctx, uid)
	}
	// Size and Message-ID first (headers only): a message ingested before
	// is not downloaded again (a UIDVALIDITY rescan costs a header each).
	meta, found, err := s.fetch(uid, &goimap.FetchOptions{UID: true, RFC822Size: true,
		BodySection: []*goimap.FetchItemBodySection{messageIDSection}})
	if err != nil {
		return "fetch", s.failedOn(uid, err)
	}
	if !found { // expunged meanwhile by someone else
		return s.advance(ctx, uid)
	}
	size := meta.RFC822Size
	msg.MessageID = parseMessageID(meta.FindBodySection(messageIDSection))
	if msg.MessageID != "" {
		dup, err := p.st.known(ctx, mb.ID, dedupeKey(msg.MessageID, ""))
		if err != nil {
			return "dedupe", err
		}
		if dup {
			p.m.messages.WithLabelValues("duplicate").Inc()
			s.log.Info("imap: message already ingested; not handed on again", "uid", uid, "message_id", msg.MessageID)
			return s.done(ctx, uid)
		}
	}
	if size > p.cfg.MaxMessageBytes {
		cause := fmt.Sprintf("message of %d bytes is larger than the limit of %d bytes; not fetched", size, p.cfg.MaxMessageBytes)
		key := msg.DedupeKey()
		if msg.MessageID == "" { // no bytes to hash: the server's identity of the message
			key = fmt.Sprintf("uid:%d:%d", s.uidValidity, uid)
		}
		if err := p.st.quarantine(ctx, msg, key, size, 0, cause); err != nil {
			return "quarantine", err
		}
		p.m.messages.WithLabelValues("quarantined").Inc()
		s.log.Warn("imap: message quarantined", "uid", uid, "err", cause)
		return s.done(ctx, uid)
	}
	whole := &goimap.FetchItemBodySection{Peek: true}
	full, found, err := s.fetch(uid, &goimap.FetchOptions{UID: true, InternalDate: true,
		BodySection: []*goimap.FetchItemBodySection{whole}})
	if err != nil {
		return "fetch", s.failedOn(uid, err)
	}
	s.stuck = nil
	if !found { // expunged meanwhile by someone else
		return s.advance(ctx, uid)
	}
	raw := full.FindBodySection(whole)
	if raw == nil {
		raw = []byte{}
	}
	if msg.SHA256, msg.RawPath, err = p.raw.Put(raw); err != nil {
		return "store-raw", err
	}
	msg.Raw, msg.InternalDate = raw, full.InternalDate
	if msg.MessageID == "" {
		dup, err := p.st.known(ctx, mb.ID, msg.DedupeKey())
		if err != nil {
			return "dedupe", err
		}
		if dup {
			p.m.messages.WithLabelValues("duplicate").Inc()
			return s.done(ctx, uid)
		}
	}
	attempts, err := s.deliver(ctx, msg)
	if err != nil && ctx.Err() != nil {
		return "sink", ctx.Err() // stopping: not an attempt; the message stays where it is
	}
	// Record the outcome even if ctx ends right now: the smaller the gap
	// between the sink's success and this record, the rarer a second hand-on.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err == nil {
		if err := p.st.ingested(rctx, msg); err != nil {
			return "record", err
		}
		p.m.messages.WithLabelValues("ingested").Inc()
	} else {
		if err := p.st.quarantine(rctx, msg, msg.DedupeKey(), int64(len(raw)), attempts, err.Error()); err != nil {
			return "quarantine", err
		}
		p.m.messages.WithLabelValues("quarantined").Inc()
		s.log.Warn("imap: message quarantined", "uid", uid, "message_id", msg.MessageID, "attempts", attempts, "err", err)
	}
	return s.done(ctx, uid)
}

// failedOn counts a failure to fetch uid towards quarantining it.
func (s *session) failedOn(uid goimap.UID, err error) error {
	if s.stuck == nil || s.stuck.uid != uid || s.stuck.uidValidity != s.uidValidity {
		s.stuck = &stuckMessage{uidValidity: s.uidValidity, uid: uid}
	}
	s.stuck.failures++
	s.stuck.lastErr = err.Error()
	return err
}

// fetch fetches items of one message (sections with PEEK: the \Seen flag
// is left alone); found is false when the UID is gone.
func (s *session) fetch(uid goimap.UID, opts *goimap.FetchOptions) (*imapclient.FetchMessageBuffer, bool, error) {
	bufs, err := s.c.Fetch(goimap.UIDSetNum(uid), opts).Collect()
	if err != nil {
		return nil, false, err
	}
	for _, b := range bufs {
		if b.UID == uid {
			return b, true, nil
		}
	}
	return nil, false, nil
}

// deliver hands msg to the sink, retrying with doubling waits; it returns
// the attempts made and the last error (nil on success).
func (s *session) deliver(ctx context.Context, msg *Message) (int, error) {
	wait := s.p.cfg.SinkBackoff
	var err error
	for attempt := 1; ; attempt++ {
		if err = s.p.callSink(ctx, msg); err == nil {
			return attempt, nil
		}
		if ctx.Err() != nil {
			return attempt, err
		}
		s.p.m.sinkErrors.Inc()
		if IsPermanent(err) || attempt >= s.p.cfg.SinkAttempts {
			return attempt, err
		}
		s.log.Info("imap: ingest failed; retrying", "uid", msg.UID, "attempt", attempt, "err", err)
		if !sleep(ctx, wait) {
			return attempt, ctx.Err()
		}
		wait *= 2
	}
}

// callSink calls the sink, turning a panic into an error.
func (p *Poller) callSink(ctx context.Context, msg *Message) (err error) {
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("imap: sink panicked: %v\n%s", r, debug.Stack())
		}
		p.m.sinkTime.Observe(time.Since(start).Seconds())
	}()
	return p.cfg.Sink.Deliver(ctx, msg)
}

// done applies the after-ingest action (\Seen or move) and advances.
func (s *session) done(ctx context.Context, uid goimap.UID) (string, error) {
	set := goimap.UIDSetNum(uid)
	if folder, ok := strings.CutPrefix(s.mb.AfterIngest, "move:"); ok {
		if _, err := s.c.Move(set, folder).Wait(); err != nil {
			return "move", err
		}
	} else {
		if err := s.c.Store(set, &goimap.StoreFlags{Op: goimap.StoreFlagsAdd, Silent: true,
			Flags: []goimap.Flag{goimap.FlagSeen}}, nil).Close(); err != nil {
			return "flag", err
		}
	}
	return s.advance(ctx, uid)
}

func (s *session) advance(ctx context.Context, uid goimap.UID) (string, error) {
	s.lastUID = uint32(uid)
	if s.firstSync {
		return "", nil
	}
	if err := s.p.st.savePosition(ctx, s.mb.ID, s.uidValidity, s.lastUID); err != nil {
		return "save", err
	}
	return "", nil
}

// parseMessageID reads the Message-ID from a header block: the id without
// angle brackets, or "" when missing or unusable (then the SHA-256 of the
// raw message identifies it).
func parseMessageID(header []byte) string {
	if len(header) == 0 {
		return ""
	}
	if !bytes.HasSuffix(header, []byte("\r\n\r\n")) && !bytes.HasSuffix(header, []byte("\n\n")) {
		header = append(bytes.Clone(header), "\r\n\r\n"...)
	}
	m, err := mail.ReadMessage(bytes.NewReader(header))
	if err != nil {
		return ""
	}
	return normalizeMessageID(m.Header.Get("Message-Id"))
}

func normalizeMessageID(v string) string {
	v = strings.TrimSpace(v)
	if i := strings.IndexByte(v, '<'); i >= 0 {
		if j := strings.IndexByte(v[i:], '>'); j > 0 {
			v = v[i+1 : i+j]
		}
	}
	v = strings.TrimSpace(v)
	if v == "" || len(v) > 900 || strings.ContainsAny(v, " \t\r\n<>") {
		return ""
	}
	return v
}
