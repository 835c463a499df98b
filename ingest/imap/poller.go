// Package imap is the IMAP channel's poller: it reads the organisations'
// mailboxes (table mailboxes) and hands every new message to a Sink
// (ingest), before it flags or moves the message on the server.
//
// Per mailbox: one session (connect with TLS, STARTTLS or none, log in,
// select the folder), UID-based with UIDVALIDITY tracked in the mailbox's
// row; IDLE when the server offers it (woken by EXISTS), polling otherwise;
// reconnect with exponential backoff, one mailbox's failure never touching
// another. Per message: store the raw bytes (content-addressed), skip it if
// it was ingested before (mailbox + Message-ID, or SHA-256 without one),
// hand it to the Sink, and only after the Sink returned nil record it, set
// \Seen or move it, and advance the mailbox's last UID. A message the Sink
// keeps failing on is quarantined (table mail_quarantine) and the mailbox
// goes on; an admin can replay it.
//
// Many mailboxes run in parallel in one process; across processes each
// mailbox is held by one poller through a lease in its row (renewed every
// few seconds, taken over once it expires).
package imap

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/internal/netguard"
	"github.com/atumdesk/atumdesk/internal/secretbox"
)

// Config configures Run. Zero values get the defaults noted.
type Config struct {
	DB   *gorm.DB
	Sink Sink
	// Secrets opens the mailboxes' sealed passwords; nil: every mailbox
	// fails with an error saying ATUMDESK_SECRET_KEY is missing.
	Secrets *secretbox.Box
	Logger  *slog.Logger          // nil: discarded
	Metrics prometheus.Registerer // nil: not registered
	// StorageDir keeps the raw messages (default ./data/mail-raw).
	StorageDir string
	// TLS is the base TLS configuration (e.g. RootCAs for a private CA);
	// ServerName is set per mailbox. nil: system roots.
	TLS *tls.Config
	// Guard is checked on every address dialled (after DNS): internal
	// addresses are refused unless its allow-list names them. nil: no
	// internal address at all (netguard's default).
	Guard *netguard.Guard
	// Owner names this process in the leases (default host-pid-random).
	Owner string
	// LeaseTTL: a lease not renewed for this long is taken over (default
	// 10 s). RenewInterval: how often leases are renewed and free mailboxes
	// looked for (default LeaseTTL/4).
	LeaseTTL      time.Duration
	RenewInterval time.Duration
	// MaxMailboxes caps the mailboxes this process holds (0: no cap).
	MaxMailboxes int
	// PollInterval: how often a folder is checked when the server has no
	// IDLE (default 30 s).
	PollInterval time.Duration
	// IdleRefresh: IDLE is left and re-entered this often, which proves the
	// connection is alive (default 5 min).
	IdleRefresh time.Duration
	// DialTimeout bounds connecting and the TLS handshake (default 15 s).
	DialTimeout time.Duration
	// ReconnectMin/ReconnectMax bound the backoff after a failed session
	// (default 1 s and 2 min).
	ReconnectMin, ReconnectMax time.Duration
	// SinkAttempts: tries of a failing message before it is quarantined
	// (default 4); SinkBackoff is the first wait between them, doubled each
	// time (default 500 ms).
	SinkAttempts int
	SinkBackoff  time.Duration
	// MaxMessageBytes: larger messages are quarantined unfetched (default 64 MiB).
	MaxMessageBytes int64
	// ReplayInterval: how often replay requests are looked for (default 2 s).
	ReplayInterval time.Duration
}

func (c *Config) defaults() error {
	if c.DB == nil || c.Sink == nil {
		return errors.New("imap: Config.DB and Config.Sink are required")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.StorageDir == "" {
		c.StorageDir = "./data/mail-raw"
	}
	if c.Owner == "" {
		host, _ := os.Hostname()
		var b [4]byte
		_, _ = rand.Read(b[:])
		c.Owner = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
	}
	setDefault(&c.LeaseTTL, 10*time.Second)
	setDefault(&c.RenewInterval, c.LeaseTTL/4)
	if c.RenewInterval >= c.LeaseTTL {
		return errors.New("imap: RenewInterval must be shorter than LeaseTTL")
	}
	setDefault(&c.PollInterval, 30*time.Second)
	setDefault(&c.IdleRefresh, 5*time.Minute)
	setDefault(&c.DialTimeout, 15*time.Second)
	setDefault(&c.ReconnectMin, time.Second)
	setDefault(&c.ReconnectMax, 2*time.Minute)
	setDefault(&c.SinkBackoff, 500*time.Millisecond)
	setDefault(&c.ReplayInterval, 2*time.Second)
	if c.SinkAttempts <= 0 {
		c.SinkAttempts = 4
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = 64 << 20
	}
	return nil
}

func setDefault(d *time.Duration, v time.Duration) {
	if *d <= 0 {
		*d = v
	}
}

// Poller runs the mailboxes this process holds.
type Poller struct {
	cfg   Config
	log   *slog.Logger
	st    *store
	raw   *RawStore
	m     *pollerMetrics
	mu    sync.Mutex
	held  map[uuid.UUID]*holding
	wg    sync.WaitGroup
	renew time.Time // last successful renewal

	// Test knobs: keepLeases stops without releasing the leases, as a crash
	// would; noIdle polls even when the server offers IDLE.
	keepLeases, noIdle bool
}

// holding is a mailbox this process holds: its goroutine and settings version.
type holding struct {
	cancel   context.CancelFunc
	version  int
	done     chan struct{}
	stopping bool // cancelled, not yet returned
}

// New checks cfg and prepares a poller; Run starts it.
func New(cfg Config) (*Poller, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	raw, err := NewRawStore(cfg.StorageDir)
	if err != nil {
		return nil, err
	}
	m, err := newPollerMetrics(cfg.Metrics)
	if err != nil {
		return nil, err
	}
	return &Poller{cfg: cfg, log: cfg.Logger.With("component", "imap", "owner", cfg.Owner),
		st: &store{db: cfg.DB, owner: cfg.Owner, ttl: cfg.LeaseTTL}, raw: raw, m: m,
		held: map[uuid.UUID]*holding{}}, nil
}

// Run discovers the active mailboxes and polls those it can lease until ctx
// is cancelled; then it stops every session, releases the leases and
// returns ctx.Err(). It returns earlier only for an invalid configuration.
func Run(ctx context.Context, cfg Config) error {
	p, err := New(cfg)
	if err != nil {
		return err
	}
	return p.Run(ctx)
}

// Run is the package-level Run on a prepared poller.
func (p *Poller) Run(ctx context.Context) error {
	p.log.Info("imap poller started", "lease_ttl", p.cfg.LeaseTTL.String(), "storage", p.raw.dir)
	var bg sync.WaitGroup
	bg.Go(func() { p.replayLoop(ctx) })
	t := time.NewTicker(p.cfg.RenewInterval)
	defer t.Stop()
	for {
		p.tick(ctx)
		select {
		case <-ctx.Done():
			bg.Wait()
			p.shutdown()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// tick renews the leases held, stops the sessions whose lease was lost or
// whose settings changed, and takes free mailboxes.
func (p *Poller) tick(ctx context.Context) {
	p.mu.Lock()
	ids := make([]uuid.UUID, 0, len(p.held))
	for id := range p.held {
		ids = append(ids, id)
	}
	p.mu.Unlock()

	got, err := p.st.renew(ctx, ids)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		p.log.Warn("imap: renewing leases failed", "err", err)
		// Without renewals another process may take the mailboxes once the
		// TTL passes: stop before that, so two pollers never run one mailbox.
		if len(ids) > 0 && time.Since(p.renew) > p.cfg.LeaseTTL-p.cfg.RenewInterval {
			p.log.Error("imap: leases could not be renewed in time; stopping all sessions")
			p.stopAll(ids)
		}
		return
	}
	p.renew = time.Now()
	ok := make(map[uuid.UUID]int, len(got))
	for _, r := range got {
		ok[r.ID] = r.ConfigVersion
	}
	p.mu.Lock()
	for _, id := range ids {
		h := p.held[id]
		if h == nil || h.stopping {
			continue
		}
		v, renewed := ok[id]
		switch {
		case !renewed:
			p.log.Warn("imap: mailbox lease lost (expired, deactivated or deleted)", "mailbox_id", id)
			p.m.leaseLost.Inc()
			h.stopping = true
			h.cancel()
		case v != h.version:
			// New settings: the session restarts with them once it has stopped
			// (the lease is still ours, so the next tick takes it again).
			p.log.Info("imap: mailbox settings changed; reconnecting", "mailbox_id", id)
			h.stopping = true
			h.cancel()
		}
	}
	n := len(p.held)
	running := make([]uuid.UUID, 0, n)
	for id := range p.held {
		running = append(running, id)
	}
	p.mu.Unlock()

	limit := 1000
	if p.cfg.MaxMailboxes > 0 {
		limit = p.cfg.MaxMailboxes - n
	}
	if limit <= 0 {
		return
	}
	mbs, err := p.st.acquire(ctx, running, limit)
	if err != nil {
		if ctx.Err() == nil {
			p.log.Warn("imap: acquiring mailboxes failed", "err", err)
		}
		return
	}
	for _, mb := range mbs {
		p.start(ctx, mb)
	}
}

// start runs a leased mailbox in its own goroutine.
func (p *Poller) start(ctx context.Context, mb mailbox) {
	mctx, cancel := context.WithCancel(ctx)
	h := &holding{cancel: cancel, version: mb.ConfigVersion, done: make(chan struct{})}
	p.mu.Lock()
	p.held[mb.ID] = h
	p.m.held.Set(float64(len(p.held)))
	p.mu.Unlock()
	p.log.Info("imap: mailbox leased", "mailbox_id", mb.ID, "address", mb.Address)
	p.wg.Go(func() {
		defer close(h.done)
		defer func() {
			p.mu.Lock()
			if p.held[mb.ID] == h {
				delete(p.held, mb.ID)
			}
			p.m.held.Set(float64(len(p.held)))
			p.mu.Unlock()
		}()
		p.runMailbox(mctx, mb.ID)
	})
}

func (p *Poller) stopAll(ids []uuid.UUID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, id := range ids {
		if h := p.held[id]; h != nil {
			h.stopping = true
			h.cancel()
		}
	}
}

// shutdown stops every session and releases the leases.
func (p *Poller) shutdown() {
	p.mu.Lock()
	ids := make([]uuid.UUID, 0, len(p.held))
	for id, h := range p.held {
		ids = append(ids, id)
		h.cancel()
	}
	p.mu.Unlock()
	p.wg.Wait()
	if p.keepLeases || len(ids) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.st.release(ctx, ids); err != nil {
		p.log.Warn("imap: releasing leases failed; they expire on their own", "err", err)
	}
	p.log.Info("imap poller stopped", "released", len(ids))
}

// runMailbox runs sessions of one mailbox until ctx ends, with exponential
// backoff (and jitter) between failed ones.
func (p *Poller) runMailbox(ctx context.Context, id uuid.UUID) {
	log := p.log.With("mailbox_id", id)
	wait := p.cfg.ReconnectMin
	var stuck *stuckMessage
	for {
		started := time.Now()
		stage, err := p.session(ctx, id, log, &stuck)
		if ctx.Err() != nil || errors.Is(err, errLeaseLost) {
			return
		}
		p.m.sessions.WithLabelValues(stage).Inc()
		log.Warn("imap: session failed; reconnecting", "stage", stage, "err", err, "retry_in", wait.String())
		if serr := p.st.saveError(ctx, id, stage+": "+err.Error()); serr != nil && ctx.Err() == nil {
			log.Warn("imap: recording the error failed", "err", serr)
		}
		if time.Since(started) > p.cfg.ReconnectMax {
			wait = p.cfg.ReconnectMin // it had been working: start over
		}
		if !sleep(ctx, jitter(wait)) {
			return
		}
		wait = min(wait*2, p.cfg.ReconnectMax)
	}
}

// jitter spreads reconnects of many mailboxes over ±20 %.
func jitter(d time.Duration) time.Duration {
	var b [2]byte
	_, _ = rand.Read(b[:])
	f := 0.8 + 0.4*float64(int(b[0])<<8|int(b[1]))/65535
	return time.Duration(float64(d) * f)
}

// sleep waits d or until ctx ends; false when ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
