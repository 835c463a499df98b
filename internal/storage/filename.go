package storage

import (
	"path"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// MaxFilenameBytes caps a stored file name (the common filesystem limit,
// although names are only ever metadata here).
const MaxFilenameBytes = 255

// fallbackFilename replaces a name that sanitises to nothing.
const fallbackFilename = "attachment"

// SanitizeFilename turns a client-supplied name into safe metadata: NFKC
// normalised (so full-width "／" or "．" cannot survive as look-alikes),
// without any directory part ("/" or "\"), without control, format
// (ZWSP, bidi overrides), private-use, unassigned or default-ignorable
// characters, without leading dots (no hidden or dot files such as
// ".htaccess") or trailing dots and spaces, with Windows-reserved
// punctuation replaced by "_", and at most MaxFilenameBytes of UTF-8 with
// its extension kept. The name is never used to build a path.
func SanitizeFilename(name string) string {
	name = norm.NFKC.String(strings.ToValidUTF8(name, ""))
	var b strings.Builder
	space := false
	for _, r := range name {
		switch {
		case r == '/' || r == '\\':
			// Only the last path element counts: start over.
			b.Reset()
			space = false
			continue
		case unicode.IsSpace(r) || unicode.Is(unicode.Zs, r):
			space = b.Len() > 0
			continue
		case !unicode.IsGraphic(r) || unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r) ||
			unicode.Is(unicode.Variation_Selector, r):
			continue // invisible: dropping it must not create a separator
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		if strings.ContainsRune(`<>:"|?*`, r) {
			r = '_'
		}
		b.WriteRune(r)
	}
	name = strings.TrimLeft(b.String(), ". ")
	name = strings.TrimRight(name, ". ")
	name = truncateName(name, MaxFilenameBytes)
	if name == "" {
		return fallbackFilename
	}
	return name
}

// truncateName cuts name to max bytes at a rune boundary, keeping a short
// extension.
func truncateName(name string, max int) string {
	if len(name) <= max {
		return name
	}
	ext := path.Ext(name)
	if len(ext) > 16 || !utf8.ValidString(ext) {
		ext = ""
	}
	stem := name[:len(name)-len(ext)]
	cut := max - len(ext)
	for cut > 0 && !utf8.RuneStart(stem[cut]) {
		cut--
	}
	return strings.TrimRight(stem[:cut], ". ") + ext
}

// ContentDisposition is the RFC 6266 header that makes a browser download
// the file (never render it): an ASCII fallback in filename and the exact
// UTF-8 name in filename* (RFC 8187).
func ContentDisposition(filename string) string {
	var ascii, ext strings.Builder
	for _, r := range filename {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' || r == '%' {
			ascii.WriteByte('_')
		} else {
			ascii.WriteRune(r)
		}
	}
	for _, c := range []byte(filename) {
		if isAttrChar(c) {
			ext.WriteByte(c)
		} else {
			ext.WriteByte('%')
			ext.WriteByte("0123456789ABCDEF"[c>>4])
			ext.WriteByte("0123456789ABCDEF"[c&15])
		}
	}
	return `attachment; filename="` + ascii.String() + `"; filename*=UTF-8''` + ext.String()
}

// isAttrChar is RFC 8187's attr-char: the bytes allowed unencoded.
func isAttrChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$&+-.^_`|~", c) >= 0
}
