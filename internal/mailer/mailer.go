// Package mailer sends the helpdesk's e-mail over SMTP (wneessen/go-mail):
// STARTTLS or implicit TLS (never a silent downgrade), AUTH, and the
// headers a helpdesk's mail needs — a Message-ID the caller stores for
// threading, In-Reply-To/References to the ticket's thread, Reply-To the
// mailbox, RFC 3834 Auto-Submitted on automatic mail, and the loop header
// inbound parsing recognises. Header values are checked: CR, LF and NUL are
// refused, never passed on (header injection).
package mailer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/google/uuid"
	gomail "github.com/wneessen/go-mail"

	inmail "github.com/atumdesk/atumdesk/ingest/mail"
)

// Security is how the connection to the SMTP server is protected.
type Security string

const (
	StartTLS Security = "starttls" // STARTTLS required (submission, 587)
	TLS      Security = "tls"      // implicit TLS (SMTPS, 465)
	None     Security = "none"     // plain text: loopback relays only; AUTH is refused
)

// Config is one SMTP server.
type Config struct {
	Host     string
	Port     int
	Security Security
	// Username and Password enable AUTH (the strongest mechanism the server
	// offers; PLAIN/LOGIN only over TLS).
	Username, Password string
	// TLS holds the roots to trust (nil: the system's); ServerName is Host.
	TLS *tls.Config
	// HELO is the name announced (default: the client's default).
	HELO string
	// Timeout bounds connecting and each SMTP command (default 30 s).
	Timeout time.Duration
}

// Message is one e-mail. Message ids are given without angle brackets.
type Message struct {
	From    mail.Address
	To      []mail.Address
	ReplyTo *mail.Address
	Subject string
	Text    string // text/plain body (required)
	HTML    string // optional text/html alternative
	// MessageID is required: the caller stores it before sending, so a
	// reply can be threaded and a retried send keeps its identity.
	MessageID  string
	InReplyTo  string
	References []string // oldest first
	// AutoSubmitted is "" for mail a person wrote (an agent's reply),
	// "auto-replied" (acknowledgements) or "auto-generated" (notifications);
	// automatic mail also asks Microsoft servers not to answer it.
	AutoSubmitted string
	// LoopToken is the value of the loop header (default "1").
	LoopToken string
	// Headers are extra X- headers.
	Headers map[string]string
	Date    time.Time // default now
}

// Sender sends messages through one SMTP server.
type Sender struct {
	cfg Config
}

// New checks cfg.
func New(cfg Config) (*Sender, error) {
	if cfg.Host == "" || cfg.Port < 1 || cfg.Port > 65535 {
		return nil, errors.New("mailer: Host and a Port 1..65535 are required")
	}
	switch cfg.Security {
	case StartTLS, TLS, None:
	default:
		return nil, fmt.Errorf("mailer: unknown security %q (want starttls, tls or none)", cfg.Security)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	return &Sender{cfg: cfg}, nil
}

// NewMessageID returns a globally unique Message-ID on domain (RFC 5322
// §3.6.4), without angle brackets.
func NewMessageID(domain string) string {
	return uuid.Must(uuid.NewV7()).String() + "@" + domain
}

// permanentError marks a failure retrying cannot fix (5xx, bad message).
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// IsPermanent reports whether err is final: a rejected message or
// recipient, failed authentication or an invalid message. Anything else
// (connection, 4xx) is worth retrying.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// Send delivers msgs over one connection. The error of the first message
// that failed is returned, marked permanent when retrying cannot help.
func (s *Sender) Send(ctx context.Context, msgs ...*Message) error {
	built := make([]*gomail.Msg, 0, len(msgs))
	for _, m := range msgs {
		b, err := Build(m)
		if err != nil {
			return permanentError{err}
		}
		built = append(built, b)
	}
	c, err := s.client()
	if err != nil {
		return err
	}
	err = c.DialAndSendWithContext(ctx, built...)
	if err == nil {
		return nil
	}
	var se *gomail.SendError
	if errors.As(err, &se) && !se.IsTemp() && se.ErrorCode() >= 500 {
		return permanentError{fmt.Errorf("mailer: %w", err)}
	}
	return fmt.Errorf("mailer: %w", err)
}

func (s *Sender) client() (*gomail.Client, error) {
	cfg := s.cfg
	opts := []gomail.Option{gomail.WithPort(cfg.Port), gomail.WithTimeout(cfg.Timeout)}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.TLS != nil {
		tc = cfg.TLS.Clone()
	}
	tc.ServerName = cfg.Host
	switch cfg.Security {
	case StartTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory), gomail.WithTLSConfig(tc))
	case TLS:
		opts = append(opts, gomail.WithSSL(), gomail.WithTLSConfig(tc))
	case None:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	}
	if cfg.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(cfg.Username), gomail.WithPassword(cfg.Password))
	}
	if cfg.HELO != "" {
		opts = append(opts, gomail.WithHELO(cfg.HELO))
	}
	c, err := gomail.NewClient(cfg.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("mailer: %w", err)
	}
	return c, nil
}

// Build composes m (exported for tests and for archiving what was sent).
func Build(m *Message) (*gomail.Msg, error) {
	if err := check(m); err != nil {
		return nil, err
	}
	g := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	g.FromMailAddress(&m.From)
	for i := range m.To {
		g.AddToMailAddress(&m.To[i])
	}
	if m.ReplyTo != nil {
		g.ReplyToMailAddress(m.ReplyTo)
	}
	g.Subject(m.Subject)
	date := m.Date
	if date.IsZero() {
		date = time.Now()
	}
	g.SetDateWithValue(date)
	g.SetMessageIDWithValue(m.MessageID)
	if m.InReplyTo != "" {
		g.SetGenHeaderPreformatted("In-Reply-To", "<"+m.InReplyTo+">")
	}
	if len(m.References) > 0 {
		g.SetGenHeaderPreformatted("References", "<"+strings.Join(m.References, ">\r\n <")+">")
	}
	if m.AutoSubmitted != "" {
		g.SetGenHeader("Auto-Submitted", m.AutoSubmitted)
		g.SetGenHeader("X-Auto-Response-Suppress", "All") // SECURITY.md §2.4
	}
	loop := m.LoopToken
	if loop == "" {
		loop = "1"
	}
	g.SetGenHeader(gomail.Header(inmail.LoopHeader), loop)
	for k, v := range m.Headers {
		g.SetGenHeader(gomail.Header(k), v)
	}
	g.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		g.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	return g, nil
}

// check refuses what would corrupt or inject headers.
func check(m *Message) error {
	bad := func(what string) error { return fmt.Errorf("mailer: invalid %s", what) }
	if m.From.Address == "" || len(m.To) == 0 || m.Text == "" {
		return errors.New("mailer: From, To and Text are required")
	}
	oneLine := func(s string) bool { return !strings.ContainsAny(s, "\r\n\x00") }
	addrs := append([]mail.Address{m.From}, m.To...)
	if m.ReplyTo != nil {
		addrs = append(addrs, *m.ReplyTo)
	}
	for _, a := range addrs {
		if !oneLine(a.Name) || !oneLine(a.Address) {
			return bad("address " + fmt.Sprintf("%q", a.Address))
		}
		if _, err := mail.ParseAddress(a.Address); err != nil {
			return bad("address " + fmt.Sprintf("%q", a.Address))
		}
	}
	if !oneLine(m.Subject) || len(m.Subject) > 998 {
		return bad("subject")
	}
	for _, id := range append([]string{m.MessageID, m.InReplyTo}, m.References...) {
		if strings.ContainsAny(id, "<> \t\r\n\x00") || len(id) > 900 {
			return bad("message id " + fmt.Sprintf("%q", id))
		}
	}
	if m.MessageID == "" || !strings.Contains(m.MessageID, "@") {
		return bad("message id: required, id@domain")
	}
	switch m.AutoSubmitted {
	case "", "auto-replied", "auto-generated":
	default:
		return bad("Auto-Submitted (want auto-replied or auto-generated)")
	}
	if !oneLine(m.LoopToken) {
		return bad("loop token")
	}
	for k, v := range m.Headers {
		if !strings.HasPrefix(k, "X-") || strings.ContainsAny(k, ": \t\r\n\x00") || !oneLine(v) ||
			strings.EqualFold(k, inmail.LoopHeader) {
			return bad("header " + fmt.Sprintf("%q", k))
		}
	}
	return nil
}
