// Package config declares every setting of atumdesk once: its environment
// variable, its default and its validation. Nothing else reads the
// environment.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"reflect"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/atumdesk/atumdesk/internal/netguard"
	"github.com/atumdesk/atumdesk/internal/secretbox"
)

// Config is the whole runtime configuration. The `env` tag is the variable
// name (with the ATUMDESK_ prefix added by Load); `envDefault` is the default
// documented in the README.
type Config struct {
	MetricsAddr      string        `env:"METRICS_ADDR" envDefault:"127.0.0.1:9464"`
	HTTPAddr         string        `env:"HTTP_ADDR" envDefault:"127.0.0.1:8080"`
	PublicURL        string        `env:"PUBLIC_URL" envDefault:"http://127.0.0.1:8080"`
	DatabaseURL      string        `env:"DATABASE_URL" envDefault:"postgres://atumdesk:atumdesk@127.0.0.1:15432/atumdesk?sslmode=disable"`
	DatabaseMaxConn  int           `env:"DATABASE_MAX_CONNS" envDefault:"20"`
	RedisURL         string        `env:"REDIS_URL" envDefault:"redis://127.0.0.1:16379/0"`
	KafkaBrokers     []string      `env:"KAFKA_BROKERS" envSeparator:","`
	KafkaEmbedAddr   string        `env:"KAFKA_EMBEDDED_ADDR" envDefault:"127.0.0.1:19092"`
	KafkaDataDir     string        `env:"KAFKA_DATA_DIR" envDefault:"./data/kafka"`
	KafkaEmbedFsync  bool          `env:"KAFKA_EMBEDDED_FSYNC" envDefault:"false"`
	KafkaReplication int           `env:"KAFKA_REPLICATION_FACTOR" envDefault:"1"`
	LogLevel         string        `env:"LOG_LEVEL" envDefault:"info"`
	JWTSecret        string        `env:"JWT_SECRET"`
	AccessTokenTTL   time.Duration `env:"ACCESS_TOKEN_TTL" envDefault:"15m"`
	RefreshTokenTTL  time.Duration `env:"REFRESH_TOKEN_TTL" envDefault:"720h"`
	CookieSecure     bool          `env:"COOKIE_SECURE" envDefault:"true"`
	TrustedProxies   []string      `env:"TRUSTED_PROXIES" envSeparator:","`
	LoginMaxFails    int           `env:"LOGIN_MAX_FAILURES" envDefault:"5"`
	LoginWindow      time.Duration `env:"LOGIN_WINDOW" envDefault:"15m"`
	ShutdownTimeout  time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"20s"`
	// SSE (internal/stream): open streams per user, organisation and client
	// address (-1: no cap per address), and how far back a reconnecting
	// client resumes (time and events held per api process).
	StreamMaxPerUser int           `env:"STREAM_MAX_PER_USER" envDefault:"5"`
	StreamMaxPerOrg  int           `env:"STREAM_MAX_PER_ORG" envDefault:"2000"`
	StreamMaxPerIP   int           `env:"STREAM_MAX_PER_IP" envDefault:"1000"`
	StreamRetention  time.Duration `env:"STREAM_RETENTION" envDefault:"10m"`
	StreamRingEvents int           `env:"STREAM_RING_EVENTS" envDefault:"50000"`
	// DedupWindow: a new ticket repeating the subject and body of an open
	// ticket of the same requester created this long before is a duplicate.
	DedupWindow time.Duration `env:"DEDUP_WINDOW" envDefault:"24h"`
	// WorkerPollInterval: how often a worker looks for due scheduled tasks
	// and for new tasks when idle; SLA timers are made due 1 s ahead of
	// their instant, so this must stay well under a second for them to
	// fire on time.
	WorkerPollInterval time.Duration `env:"WORKER_POLL_INTERVAL" envDefault:"200ms"`
	// ReopenWindow: a customer reply this long after resolution reopens the
	// ticket; an organisation's settings.reopen_window_hours overrides it.
	ReopenWindow time.Duration `env:"REOPEN_WINDOW" envDefault:"168h"`
	// StorageDir holds attachment files (local filesystem store); keep it
	// outside any web root.
	StorageDir string `env:"STORAGE_DIR" envDefault:"./data/attachments"`
	// AttachmentMaxBytes is the upload limit, enforced while streaming.
	AttachmentMaxBytes int64 `env:"ATTACHMENT_MAX_BYTES" envDefault:"52428800"`

	// SecretKey (base64 of 32 bytes) seals secrets stored in the database,
	// such as mailbox passwords (internal/secretbox). Without it mailboxes
	// with a password cannot be created or polled.
	SecretKey string `env:"SECRET_KEY"`
	// MailRawDir keeps every fetched e-mail as received, named by SHA-256.
	MailRawDir string `env:"MAIL_RAW_DIR" envDefault:"./data/mail-raw"`
	// IMAPPollInterval: how often a mailbox whose server lacks IDLE is polled.
	IMAPPollInterval time.Duration `env:"IMAP_POLL_INTERVAL" envDefault:"30s"`
	// IMAPLeaseTTL: a mailbox whose poller stopped renewing its lease this
	// long ago is taken over by another imap process.
	IMAPLeaseTTL time.Duration `env:"IMAP_LEASE_TTL" envDefault:"10s"`
	// IMAPMaxMailboxes caps the mailboxes one process polls (0: no cap), so
	// several imap processes share them.
	IMAPMaxMailboxes int `env:"IMAP_MAX_MAILBOXES" envDefault:"0"`
	// IMAPCAFile: PEM certificates trusted for IMAP TLS besides the system's
	// (e.g. the local test server's, data/mail/tls/cert.pem).
	IMAPCAFile string `env:"IMAP_CA_FILE"`
	// IMAPAllowHosts lets mailboxes reach addresses that are refused by
	// default (loopback, private, link-local, metadata: SECURITY.md §1.3):
	// CIDRs, IPs, host names, each optionally with :port. Checked when a
	// mailbox is saved and on the address actually dialled.
	IMAPAllowHosts []string `env:"IMAP_ALLOW_HOSTS" envSeparator:","`

	// AI (internal/ai). AIProvider serves organisations whose
	// settings.ai.provider names none: builtin needs no external service.
	AIProvider string `env:"AI_PROVIDER" envDefault:"builtin"`
	// AIRetrainInterval: an organisation's classifiers are retrained at
	// most once per interval, after tickets were resolved.
	AIRetrainInterval time.Duration `env:"AI_RETRAIN_INTERVAL" envDefault:"6h"`
	// OllamaURL is the Ollama server (empty: not used; organisations that
	// ask for it get the built-in provider). Models per use, the timeout
	// of one attempt and the retries after a timeout or server error; a
	// failed or slow Ollama degrades to the built-in provider.
	OllamaURL         string        `env:"OLLAMA_URL"`
	OllamaTriageModel string        `env:"OLLAMA_TRIAGE_MODEL" envDefault:"llama3.2"`
	OllamaEmbedModel  string        `env:"OLLAMA_EMBED_MODEL" envDefault:"nomic-embed-text"`
	OllamaDraftModel  string        `env:"OLLAMA_DRAFT_MODEL" envDefault:"llama3.2"`
	OllamaTimeout     time.Duration `env:"OLLAMA_TIMEOUT" envDefault:"20s"`
	OllamaRetries     int           `env:"OLLAMA_RETRIES" envDefault:"1"`

	// Outbound e-mail (workers/notify). Without SMTPHost nothing is sent:
	// every notification is recorded as suppressed ("smtp not configured").
	// SMTPSecurity is starttls, tls (implicit) or none (loopback only, no
	// AUTH); SMTPCAFile adds PEM roots trusted for its TLS.
	SMTPHost     string `env:"SMTP_HOST"`
	SMTPPort     int    `env:"SMTP_PORT" envDefault:"587"`
	SMTPSecurity string `env:"SMTP_SECURITY" envDefault:"starttls"`
	SMTPUsername string `env:"SMTP_USERNAME"`
	SMTPPassword string `env:"SMTP_PASSWORD"`
	SMTPCAFile   string `env:"SMTP_CA_FILE"`
	// MailFrom sends the mail of organisations without an active mailbox,
	// and the SLA escalations to staff (so a staff answer does not land in
	// the support mailbox).
	MailFrom string `env:"MAIL_FROM"`
	// MailAckLimit caps automatic acknowledgements to one address per hour
	// (mail loops, SECURITY.md §2.4); 0 sends none.
	MailAckLimit int `env:"MAIL_ACK_LIMIT" envDefault:"5"`

	// TrustedProxyPrefixes is TrustedProxies parsed; filled by Load.
	TrustedProxyPrefixes []netip.Prefix `env:"-"`
}

// Prefix is prepended to every variable name.
const Prefix = "ATUMDESK_"

// Load reads the configuration from the environment (lookup is os.LookupEnv
// in production, a map in tests) and validates it. Errors name the variable.
func Load(environ map[string]string) (*Config, error) {
	var c Config
	if err := env.ParseWithOptions(&c, env.Options{Prefix: Prefix, Environment: environ}); err != nil {
		return nil, nameVariables(err)
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *Config) validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config: %s%s: %s", Prefix, name, fmt.Sprintf(format, args...)))
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		bad("HTTP_ADDR", "want host:port, got %q", c.HTTPAddr)
	}
	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("PUBLIC_URL", "want an absolute http(s) URL, got %q", c.PublicURL)
	}
	if u, err := url.Parse(c.DatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		bad("DATABASE_URL", "want a postgres:// URL")
	}
	if c.DatabaseMaxConn < 2 || c.DatabaseMaxConn > 1000 {
		bad("DATABASE_MAX_CONNS", "want 2..1000, got %d", c.DatabaseMaxConn)
	}
	if u, err := url.Parse(c.RedisURL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
		bad("REDIS_URL", "want a redis:// URL")
	}
	for _, b := range c.KafkaBrokers {
		if _, _, err := net.SplitHostPort(strings.TrimSpace(b)); err != nil {
			bad("KAFKA_BROKERS", "want host:port[,host:port], got %q", b)
		}
	}
	if _, _, err := net.SplitHostPort(c.KafkaEmbedAddr); err != nil {
		bad("KAFKA_EMBEDDED_ADDR", "want host:port, got %q", c.KafkaEmbedAddr)
	}
	if c.KafkaReplication < 1 || c.KafkaReplication > 5 {
		bad("KAFKA_REPLICATION_FACTOR", "want 1..5, got %d", c.KafkaReplication)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("LOG_LEVEL", "want debug, info, warn or error, got %q", c.LogLevel)
	}
	if c.JWTSecret != "" && len(c.JWTSecret) < 32 {
		bad("JWT_SECRET", "want at least 32 characters")
	}
	if c.AccessTokenTTL < time.Minute || c.AccessTokenTTL > 24*time.Hour {
		bad("ACCESS_TOKEN_TTL", "want 1m..24h, got %s", c.AccessTokenTTL)
	}
	if c.RefreshTokenTTL < time.Hour {
		bad("REFRESH_TOKEN_TTL", "want at least 1h, got %s", c.RefreshTokenTTL)
	}
	if c.LoginMaxFails < 1 {
		bad("LOGIN_MAX_FAILURES", "want at least 1")
	}
	if c.LoginWindow < time.Second {
		bad("LOGIN_WINDOW", "want at least 1s")
	}
	for _, p := range c.TrustedProxies {
		p = strings.TrimSpace(p)
		if !strings.Contains(p, "/") {
			p += "/32"
			if strings.Contains(p, ":") {
				p = strings.TrimSuffix(p, "/32") + "/128"
			}
		}
		pfx, err := netip.ParsePrefix(p)
		if err != nil {
			bad("TRUSTED_PROXIES", "want CIDRs or IPs, got %q", p)
			continue
		}
		c.TrustedProxyPrefixes = append(c.TrustedProxyPrefixes, pfx.Masked())
	}
	if c.ShutdownTimeout <= 0 {
		bad("SHUTDOWN_TIMEOUT", "want a positive duration")
	}
	if c.StreamMaxPerUser < 1 || c.StreamMaxPerOrg < 1 {
		bad("STREAM_MAX_PER_USER/STREAM_MAX_PER_ORG", "want at least 1")
	}
	if c.StreamMaxPerIP == 0 || c.StreamMaxPerIP < -1 {
		bad("STREAM_MAX_PER_IP", "want at least 1, or -1 for no cap")
	}
	if c.StreamRetention < time.Second || c.StreamRetention > 24*time.Hour {
		bad("STREAM_RETENTION", "want 1s..24h, got %s", c.StreamRetention)
	}
	if c.StreamRingEvents < 100 || c.StreamRingEvents > 10_000_000 {
		bad("STREAM_RING_EVENTS", "want 100..10000000, got %d", c.StreamRingEvents)
	}
	if c.DedupWindow < time.Minute || c.DedupWindow > 90*24*time.Hour {
		bad("DEDUP_WINDOW", "want 1m..2160h, got %s", c.DedupWindow)
	}
	if c.WorkerPollInterval < 10*time.Millisecond || c.WorkerPollInterval > 5*time.Second {
		bad("WORKER_POLL_INTERVAL", "want 10ms..5s, got %s", c.WorkerPollInterval)
	}
	if c.ReopenWindow <= 0 {
		bad("REOPEN_WINDOW", "want a positive duration, got %s", c.ReopenWindow)
	}
	if strings.TrimSpace(c.StorageDir) == "" {
		bad("STORAGE_DIR", "want a directory")
	}
	if c.AttachmentMaxBytes < 1024 || c.AttachmentMaxBytes > 5<<30 {
		bad("ATTACHMENT_MAX_BYTES", "want 1024..%d, got %d", int64(5<<30), c.AttachmentMaxBytes)
	}
	if c.SecretKey != "" {
		if _, err := secretbox.ParseKey(c.SecretKey); err != nil {
			bad("SECRET_KEY", "want the base64 of 32 random bytes (openssl rand -base64 32): %v", err)
		}
	}
	if strings.TrimSpace(c.MailRawDir) == "" {
		bad("MAIL_RAW_DIR", "want a directory")
	}
	if c.IMAPPollInterval < time.Second || c.IMAPPollInterval > time.Hour {
		bad("IMAP_POLL_INTERVAL", "want 1s..1h, got %s", c.IMAPPollInterval)
	}
	if c.IMAPLeaseTTL < 2*time.Second || c.IMAPLeaseTTL > 10*time.Minute {
		bad("IMAP_LEASE_TTL", "want 2s..10m, got %s", c.IMAPLeaseTTL)
	}
	if c.IMAPMaxMailboxes < 0 {
		bad("IMAP_MAX_MAILBOXES", "want 0 (no cap) or more, got %d", c.IMAPMaxMailboxes)
	}
	if _, err := netguard.New(c.IMAPAllowHosts); err != nil {
		bad("IMAP_ALLOW_HOSTS", "want CIDRs, IPs or host names, each optionally with :port: %v", err)
	}
	if c.AIProvider != "builtin" && c.AIProvider != "ollama" {
		bad("AI_PROVIDER", "want builtin or ollama, got %q", c.AIProvider)
	}
	if c.AIRetrainInterval < time.Minute || c.AIRetrainInterval > 30*24*time.Hour {
		bad("AI_RETRAIN_INTERVAL", "want 1m..720h, got %s", c.AIRetrainInterval)
	}
	if c.OllamaURL != "" {
		if u, err := url.Parse(c.OllamaURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("OLLAMA_URL", "want an http(s) URL such as http://127.0.0.1:11434, got %q", c.OllamaURL)
		}
	}
	if c.OllamaTimeout < 100*time.Millisecond || c.OllamaTimeout > 10*time.Minute {
		bad("OLLAMA_TIMEOUT", "want 100ms..10m, got %s", c.OllamaTimeout)
	}
	if c.OllamaRetries < 0 || c.OllamaRetries > 5 {
		bad("OLLAMA_RETRIES", "want 0..5, got %d", c.OllamaRetries)
	}
	c.validateSMTP(bad)
	return errors.Join(errs...)
}

// validateSMTP checks the outbound mail settings.
func (c *Config) validateSMTP(bad func(name, format string, args ...any)) {
	if c.SMTPPort < 1 || c.SMTPPort > 65535 {
		bad("SMTP_PORT", "want 1..65535, got %d", c.SMTPPort)
	}
	switch c.SMTPSecurity {
	case "starttls", "tls":
	case "none":
		// Plain text only to a relay on this machine, and never with a password.
		if ip := net.ParseIP(c.SMTPHost); c.SMTPHost != "" && c.SMTPHost != "localhost" && (ip == nil || !ip.IsLoopback()) {
			bad("SMTP_SECURITY", "none is allowed only for a loopback SMTP_HOST, got %q", c.SMTPHost)
		}
		if c.SMTPUsername != "" {
			bad("SMTP_SECURITY", "none cannot be used with SMTP_USERNAME (AUTH over plain text)")
		}
	default:
		bad("SMTP_SECURITY", "want starttls, tls or none, got %q", c.SMTPSecurity)
	}
	if c.MailFrom != "" {
		if a, err := mail.ParseAddress(c.MailFrom); err != nil || strings.ContainsAny(c.MailFrom, "\r\n") || !strings.Contains(a.Address, "@") {
			bad("MAIL_FROM", "want an e-mail address such as \"ATUM DESK <noreply@example.com>\", got %q", c.MailFrom)
		}
	}
	if c.MailAckLimit < 0 || c.MailAckLimit > 1000 {
		bad("MAIL_ACK_LIMIT", "want 0..1000, got %d", c.MailAckLimit)
	}
}

// EmbeddedKafka reports whether the in-process broker is used.
func (c *Config) EmbeddedKafka() bool { return len(c.KafkaBrokers) == 0 }

// nameVariables rewrites the library's parse errors, which name the Go
// field, to name the environment variable instead.
func nameVariables(err error) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return fmt.Errorf("config: %w", err)
	}
	t := reflect.TypeFor[Config]()
	var out []error
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			if f, ok := t.FieldByName(pe.Name); ok {
				out = append(out, fmt.Errorf("config: %s%s: want a %s: %v", Prefix, f.Tag.Get("env"), pe.Type, pe.Err))
				continue
			}
		}
		out = append(out, fmt.Errorf("config: %w", e))
	}
	return errors.Join(out...)
}
