package mail

import (
	"io"
	"mime"
	netmail "net/mail"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jhillyerd/enmime/v2"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/htmlindex"
)

// Caps on header-derived lists: a hostile message could carry thousands.
const (
	maxAddresses  = 200
	maxReferences = 100
	maxIDLen      = 998 // RFC 5322 line limit
)

// headerText decodes RFC 2047 encoded words in a header value and makes it
// one valid UTF-8 line. Raw 8-bit bytes that are not UTF-8 are read as
// windows-1252, the usual culprit.
func headerText(v string) string {
	if strings.Contains(v, "=?") {
		if d, err := wordDecoder().DecodeHeader(v); err == nil {
			v = d
		}
	}
	return oneLine(validUTF8(v))
}

// wordDecoder decodes encoded words in any charset the WHATWG index knows.
func wordDecoder() *mime.WordDecoder {
	return &mime.WordDecoder{CharsetReader: func(charset string, r io.Reader) (io.Reader, error) {
		enc, err := htmlindex.Get(charset)
		if err != nil {
			return nil, err
		}
		return enc.NewDecoder().Reader(r), nil
	}}
}

// validUTF8 returns s, or s read as windows-1252 when s is not UTF-8.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	if d, err := charmap.Windows1252.NewDecoder().String(s); err == nil {
		return d
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// oneLine folds white space runs (CR, LF, tabs) into single spaces and drops
// other control characters, so a header can never smuggle a line break.
func oneLine(s string) string {
	var b strings.Builder
	space := false
	for _, r := range s {
		switch {
		case unicode.IsSpace(r):
			space = b.Len() > 0
			continue
		case unicode.IsControl(r):
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	return b.String()
}

// looseAddr finds an address inside a header that no parser accepts.
var looseAddr = regexp.MustCompile(`[^\s<>()",;:@\[\]]+@[^\s<>()",;:@\[\]]+\.[^\s<>()",;:@\[\]]+`)

// addressList parses an address header leniently: enmime's parser first
// (it repairs missing commas and decodes names), then a scan for anything
// shaped like an address. Entries without a usable address are dropped and
// reported.
func addressList(m *Message, field, v string) []Address {
	if strings.TrimSpace(v) == "" {
		return nil
	}
	var out []Address
	list, err := enmime.ParseAddressList(v)
	if err == nil {
		for _, a := range list {
			if addr, ok := cleanAddress(a.Address); ok {
				out = append(out, Address{Name: headerText(a.Name), Email: addr})
			} else {
				m.addError("%s: dropped unusable address %q", field, oneLine(validUTF8(a.Address)))
			}
		}
	} else {
		for _, s := range looseAddr.FindAllString(v, maxAddresses) {
			if addr, ok := cleanAddress(s); ok {
				out = append(out, Address{Email: addr})
			}
		}
		m.addError("%s: malformed address list (%v), %d address(es) recovered", field, err, len(out))
	}
	if len(out) > maxAddresses {
		m.addError("%s: %d addresses, kept the first %d", field, len(out), maxAddresses)
		out = out[:maxAddresses]
	}
	return out
}

// cleanAddress validates an addr-spec and lower-cases its domain (the local
// part is case-sensitive by the RFC, and kept as sent).
func cleanAddress(s string) (string, bool) {
	s = strings.TrimSpace(validUTF8(s))
	// The last @ splits: a quoted local part may contain one.
	i := strings.LastIndexByte(s, '@')
	if i < 0 {
		return "", false
	}
	local, domain := s[:i], s[i+1:]
	if local == "" || domain == "" || len(s) > 254 ||
		strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) || r == '<' || r == '>' }) {
		return "", false
	}
	return local + "@" + strings.ToLower(domain), true
}

// msgIDs extracts message IDs ("<id>" tokens, or bare words when a client
// forgot the brackets) without their angle brackets.
func msgIDs(v string) []string {
	v = validUTF8(v)
	var out []string
	rest := v
	for len(out) < maxReferences {
		start := strings.IndexByte(rest, '<')
		if start < 0 {
			break
		}
		end := strings.IndexByte(rest[start:], '>')
		if end < 0 {
			break
		}
		if id := cleanID(rest[start+1 : start+end]); id != "" {
			out = append(out, id)
		}
		rest = rest[start+end+1:]
	}
	if len(out) == 0 && !strings.ContainsAny(v, "<>") {
		for _, f := range strings.Fields(v) {
			if id := cleanID(f); id != "" && strings.Contains(id, "@") && len(out) < maxReferences {
				out = append(out, id)
			}
		}
	}
	return out
}

func cleanID(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
	if len(s) > maxIDLen {
		return ""
	}
	return s
}

// parseDate reads the Date header, tolerating the usual deviations.
func parseDate(v string) (time.Time, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, false
	}
	if d, err := netmail.ParseDate(v); err == nil {
		return d.UTC(), true
	}
	// A trailing comment such as "(CEST)" or a doubled zone trips net/mail.
	if i := strings.IndexByte(v, '('); i > 0 {
		if d, err := netmail.ParseDate(strings.TrimSpace(v[:i])); err == nil {
			return d.UTC(), true
		}
	}
	return time.Time{}, false
}
