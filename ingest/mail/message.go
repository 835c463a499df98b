// Package mail turns one raw inbound e-mail into what the helpdesk needs:
// sender and recipients, subject, threading headers, the new text of a reply
// (quoted history and signature removed) next to the full text, sanitised
// HTML, attachments under the upload rules, and a verdict on whether the
// message is automatic (so no acknowledgement may answer it).
//
// Parsing is tolerant: malformed mail yields whatever can be read, with the
// repairs listed in Message.Errors, and the parser never panics.
package mail

import (
	"bytes"
	"errors"
	"fmt"
	"time"
)

// Errors a caller acts on. Parse wraps them; test with errors.Is.
var (
	// ErrNoSender: the message has no From (or Sender) with a usable
	// address. Parse still returns the Message; the caller quarantines it.
	ErrNoSender = errors.New("mail: no usable sender address")
	// ErrEmpty: there is nothing to read (no bytes, or only white space).
	ErrEmpty = errors.New("mail: empty message")
	// ErrTooLarge: the raw message exceeds Options.MaxBytes.
	ErrTooLarge = errors.New("mail: message too large")
)

// DefaultMaxBytes bounds the raw message Parse accepts when Options.MaxBytes
// is zero: the whole message is decoded in memory.
const DefaultMaxBytes = 64 << 20

// DefaultCIDURL is the URL pattern inline images are rewritten to when
// Options.CIDURL is empty; {cid} is replaced by the URL-escaped Content-ID.
const DefaultCIDURL = "/api/v1/attachments/cid/{cid}"

// Options tune Parse. The zero value is usable.
type Options struct {
	// CIDURL is the URL that replaces a "cid:" reference in the HTML, with
	// "{cid}" standing for the (path-escaped) Content-ID. DefaultCIDURL when
	// empty.
	CIDURL string
	// MaxBytes refuses larger raw messages with ErrTooLarge;
	// DefaultMaxBytes when zero, no limit when negative.
	MaxBytes int
	// LoopToken, when set, is the value our outbound mail puts in
	// LoopHeader: only a message carrying exactly it counts as our own
	// (LoopVerdict.Ours), so a sender cannot forge the header to have its
	// mail treated as ours. Any LoopHeader still suppresses auto-replies.
	LoopToken string
}

// Address is one mailbox: a display name and an address whose domain is
// lower-cased.
type Address struct {
	Name  string `json:"name,omitempty"`
	Email string `json:"email"`
}

// String renders the address for logs and the operator tool.
func (a Address) String() string {
	if a.Name == "" {
		return a.Email
	}
	return fmt.Sprintf("%q <%s>", a.Name, a.Email)
}

// Part is one attachment or inline image.
type Part struct {
	// Filename is sanitised (storage.SanitizeFilename: no directories, no
	// control, zero-width or bidi characters, at most 255 bytes). When the
	// mail names no file, one is made up from the type and NameGiven is
	// false.
	Filename  string `json:"filename"`
	NameGiven bool   `json:"name_given"`
	// ContentType is decided from the content by the upload rules
	// (storage.Sniff), never taken from the mail. Empty when those rules
	// refuse the file; Refused then says why.
	ContentType string `json:"content_type,omitempty"`
	Refused     string `json:"refused,omitempty"`
	// DeclaredType is the lower-case type/subtype the mail claimed; for
	// display and diagnostics only.
	DeclaredType string `json:"declared_type"`
	Size         int    `json:"size"`
	ContentID    string `json:"content_id,omitempty"`
	// Inline is true when the HTML body shows the part through a cid: URL.
	Inline bool   `json:"inline"`
	Data   []byte `json:"-"`
}

// Message is what ingest makes of one raw e-mail.
type Message struct {
	From    Address   `json:"from"`
	ReplyTo []Address `json:"reply_to,omitempty"`
	To      []Address `json:"to,omitempty"`
	Cc      []Address `json:"cc,omitempty"`
	// DeliveredTo holds the envelope recipients the receiving server
	// recorded (Delivered-To, X-Original-To): a plus-addressed reply token
	// survives there when the visible To does not carry it.
	DeliveredTo []Address `json:"delivered_to,omitempty"`
	Subject     string    `json:"subject"`
	Date        time.Time `json:"date"`
	HasDate     bool      `json:"-"`
	// Threading headers: message IDs without angle brackets.
	MessageID  string   `json:"message_id,omitempty"`
	InReplyTo  string   `json:"in_reply_to,omitempty"`
	References []string `json:"references,omitempty"`
	// Text is the new text of the message: quoted history and signature
	// removed. FullText is the whole plain-text body (rendered from the
	// HTML when the mail has no text part).
	Text     string `json:"text"`
	FullText string `json:"full_text"`
	// HTML is the sanitised HTML of the new text, FullHTML of the whole
	// body, with cid: images pointing at Options.CIDURL. Empty when the
	// mail has no HTML body.
	HTML        string      `json:"-"`
	FullHTML    string      `json:"-"`
	Attachments []Part      `json:"attachments"`
	Loop        LoopVerdict `json:"loop"`
	// Errors lists what was malformed and how it was repaired or skipped.
	Errors []string `json:"errors,omitempty"`
}

// maxErrors caps Message.Errors: a hostile message can produce one per line.
const maxErrors = 50

func (m *Message) addError(format string, args ...any) {
	if len(m.Errors) >= maxErrors {
		return
	}
	s := fmt.Sprintf(format, args...)
	for _, e := range m.Errors {
		if e == s {
			return
		}
	}
	m.Errors = append(m.Errors, s)
}

// Parse reads one raw RFC 5322 message. It returns an error only when there
// is nothing usable (ErrEmpty, ErrTooLarge) or, together with the parsed
// Message, ErrNoSender. Whatever else is wrong is repaired where possible
// and listed in Message.Errors. Parse never panics.
func Parse(raw []byte, opts Options) (*Message, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, ErrEmpty
	}
	limit := opts.MaxBytes
	if limit == 0 {
		limit = DefaultMaxBytes
	}
	if limit > 0 && len(raw) > limit {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(raw), limit)
	}
	if opts.CIDURL == "" {
		opts.CIDURL = DefaultCIDURL
	}
	raw, repairs := repairStart(raw)
	raw, capped := capParts(raw)
	m := parseGuarded(raw, opts)
	for _, r := range repairs {
		m.addError("%s", r)
	}
	if capped {
		m.addError("more than %d MIME boundary lines: the rest of the message was not parsed (it stays in the raw message)", maxPartLines)
	}
	if m.From.Email == "" {
		return m, ErrNoSender
	}
	return m, nil
}

// repairStart removes what some exports and broken mailers put before the
// header block: a byte-order mark, blank lines, an mbox "From " line, and
// white space before the first field (which would make it a continuation
// of nothing, losing the field).
func repairStart(raw []byte) ([]byte, []string) {
	var repairs []string
	if r := bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf")); len(r) != len(raw) {
		raw, repairs = r, append(repairs, "removed a byte-order mark before the header")
	}
	if r := bytes.TrimLeft(raw, "\r\n"); len(r) != len(raw) {
		raw, repairs = r, append(repairs, "removed blank lines before the header")
	}
	if bytes.HasPrefix(raw, []byte("From ")) {
		if i := bytes.IndexByte(raw, '\n'); i > 0 && startsWithField(raw[i+1:]) {
			raw, repairs = raw[i+1:], append(repairs, "removed an mbox \"From \" line before the header")
		}
	}
	if r := bytes.TrimLeft(raw, " \t"); len(r) != len(raw) && startsWithField(r) {
		raw, repairs = r, append(repairs, "removed white space before the first header field")
	}
	return raw, repairs
}

// maxPartLines caps the lines that can delimit MIME parts. enmime links
// each new part by walking its siblings, so its cost grows with the square
// of the part count: 2,000 parts parse in milliseconds, 20,000 take
// seconds, a 64 MB message of empty parts hours.
const maxPartLines = 2000

// capParts cuts raw before its (maxPartLines+1)th line that starts with
// "--" (a possible boundary delimiter).
func capParts(raw []byte) ([]byte, bool) {
	n := 0
	for i := 0; i < len(raw); {
		if bytes.HasPrefix(raw[i:], []byte("--")) {
			if n++; n > maxPartLines {
				return raw[:i], true
			}
		}
		j := bytes.IndexByte(raw[i:], '\n')
		if j < 0 {
			break
		}
		i += j + 1
	}
	return raw, false
}

// parseGuarded runs the MIME parse; should it panic (a bug in it or in a
// library), the message is read again as headers plus plain text, and
// should that panic too, as text alone.
func parseGuarded(raw []byte, opts Options) *Message {
	m, err := try(func() *Message { return parseMIME(raw, opts) })
	if err == nil {
		return m
	}
	fallback, err2 := try(func() *Message { return parsePlain(raw, opts) })
	if err2 != nil {
		fallback = &Message{FullText: normaliseText(string(bytes.ToValidUTF8(raw, []byte("\uFFFD"))))}
		fallback.Text = fallback.FullText
		fallback.addError("unreadable message kept as text: %v", err2)
	}
	fallback.addError("MIME structure unreadable, read as plain text: %v", err)
	return fallback
}

// try calls f, turning a panic into an error.
func try(f func() *Message) (m *Message, err error) {
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, fmt.Errorf("panic: %v", r)
		}
	}()
	return f(), nil
}
