package mail

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParse feeds arbitrary bytes to Parse. Parse must return (a Message,
// or one of its typed errors) without reaching its panic guard, and what it
// returns must be safe to store and show: valid UTF-8, one-line header
// values, sanitised file names. CI runs it with -fuzztime=10s.
func FuzzParse(f *testing.F) {
	for _, raw := range corpus(f) {
		f.Add(raw)
	}
	for _, s := range []string{
		"",
		"From: a@example.com\r\n\r\nhello",
		"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n--x--",
		"Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n",
		"From: =?utf-8?b?AAAA?= <a@b.c>\r\nSubject: =?x-unknown?q?=FF?=\r\n\r\n",
		"Content-Type: text/html\r\n\r\n<blockquote type=cite><div id=divRplyFwdMsg>x</div></blockquote>",
		"Content-Type: multipart/report; report-type=delivery-status; boundary=r\r\n\r\n--r\r\n\r\nx\r\n--r\r\nContent-Type: message/delivery-status\r\n\r\nAction: failed\r\nFinal-Recipient: ;\r\n--r--",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := Parse(raw, Options{MaxBytes: 1 << 20})
		switch {
		case err == nil, errors.Is(err, ErrNoSender):
			if m == nil {
				t.Fatalf("nil Message with err %v", err)
			}
		case errors.Is(err, ErrEmpty), errors.Is(err, ErrTooLarge):
			return
		default:
			t.Fatalf("unexpected error %v", err)
		}
		for _, e := range m.Errors {
			if strings.Contains(e, "panic:") {
				t.Fatalf("the panic guard was reached: %s", e)
			}
		}
		if len(m.Errors) > maxErrors {
			t.Errorf("%d errors kept", len(m.Errors))
		}
		oneLineOK := func(what, s string) {
			if !utf8.ValidString(s) || strings.ContainsAny(s, "\r\n\x00") {
				t.Errorf("%s %q is not one valid line", what, s)
			}
		}
		oneLineOK("subject", m.Subject)
		oneLineOK("from name", m.From.Name)
		oneLineOK("from email", m.From.Email)
		oneLineOK("message-id", m.MessageID)
		for _, a := range append(append(append([]Address{}, m.To...), m.Cc...), m.ReplyTo...) {
			oneLineOK("address", a.Name+a.Email)
		}
		for _, s := range []string{m.Text, m.FullText, m.HTML, m.FullHTML} {
			if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
				t.Errorf("body is not valid UTF-8 text: %q", clip(s))
			}
		}
		for _, a := range m.Attachments {
			if a.Filename == "" || len(a.Filename) > 255 || !utf8.ValidString(a.Filename) ||
				strings.ContainsAny(a.Filename, "/\\\x00\r\n") {
				t.Errorf("unsafe attachment name %q", a.Filename)
			}
			if (a.ContentType == "") == (a.Refused == "") {
				t.Errorf("attachment %q: type %q, refused %q: exactly one must be set", a.Filename, a.ContentType, a.Refused)
			}
		}
	})
}
