// Package mailthread signs and reads the ticket token the helpdesk puts in
// the subject ("[ATUM#1234-k7q2m9xa] …") and in the plus-addressed Reply-To
// ("support+atum1234-k7q2m9xa@example.com") of the mail it sends. The tag is
// an HMAC of the ticket's id, so a guessed ticket number cannot inject mail
// into somebody else's ticket; the number is there for humans.
package mailthread

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"regexp"
	"strconv"
	"strings"

	"github.com/google/uuid"
)

// tagLen base32 characters = 50 bits: far beyond guessing by mail.
const tagLen = 10

var (
	enc          = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)
	subjectToken = regexp.MustCompile(`(?i)\[ATUM#(\d{1,18})-([a-z2-7]{` + strconv.Itoa(tagLen) + `})\]`)
	plusToken    = regexp.MustCompile(`(?i)^atum(\d{1,18})-([a-z2-7]{` + strconv.Itoa(tagLen) + `})$`)
)

// Signer makes and checks tokens with one deployment-wide key.
type Signer struct{ key []byte }

// NewSigner derives the token key from secret (domain-separated, so the same
// secret may also sign other things).
func NewSigner(secret []byte) Signer {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("atumdesk mail thread token v1"))
	return Signer{key: m.Sum(nil)}
}

// Ref is what a token names: a ticket's per-organisation number and the tag
// that proves the sender saw our mail about that ticket.
type Ref struct {
	Number int64
	Tag    string
}

func (s Signer) tag(ticketID uuid.UUID) string {
	m := hmac.New(sha256.New, s.key)
	m.Write(ticketID[:])
	return enc.EncodeToString(m.Sum(nil))[:tagLen]
}

// Token is "ATUM#<number>-<tag>".
func (s Signer) Token(ticketID uuid.UUID, number int64) string {
	return "ATUM#" + strconv.FormatInt(number, 10) + "-" + s.tag(ticketID)
}

// Subject prefixes subject with the bracketed token, once.
func (s Signer) Subject(subject string, ticketID uuid.UUID, number int64) string {
	tok := "[" + s.Token(ticketID, number) + "]"
	if strings.Contains(subject, tok) {
		return subject
	}
	return tok + " " + subject
}

// ReplyTo plus-addresses mailbox ("support@x" → "support+atum12-tag@x").
func (s Signer) ReplyTo(mailbox string, ticketID uuid.UUID, number int64) string {
	local, domain, ok := strings.Cut(mailbox, "@")
	if !ok {
		return mailbox
	}
	local, _, _ = strings.Cut(local, "+")
	return local + "+atum" + strconv.FormatInt(number, 10) + "-" + s.tag(ticketID) + "@" + domain
}

// Verify reports whether ref was signed for ticketID (constant time).
func (s Signer) Verify(ref Ref, ticketID uuid.UUID) bool {
	return hmac.Equal([]byte(strings.ToLower(ref.Tag)), []byte(s.tag(ticketID)))
}

// FromSubject finds a token in a subject. The caller looks the ticket up by
// number in the mailbox's organisation and must Verify the tag.
func FromSubject(subject string) (Ref, bool) {
	m := subjectToken.FindStringSubmatch(subject)
	if m == nil {
		return Ref{}, false
	}
	return ref(m[1], m[2])
}

// FromAddress finds a token in the plus part of a recipient address.
func FromAddress(addr string) (Ref, bool) {
	local, _, ok := strings.Cut(addr, "@")
	if !ok {
		return Ref{}, false
	}
	_, plus, ok := strings.Cut(local, "+")
	if !ok {
		return Ref{}, false
	}
	m := plusToken.FindStringSubmatch(plus)
	if m == nil {
		return Ref{}, false
	}
	return ref(m[1], m[2])
}

func ref(num, tag string) (Ref, bool) {
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 {
		return Ref{}, false
	}
	return Ref{Number: n, Tag: strings.ToLower(tag)}, true
}
