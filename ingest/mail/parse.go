package mail

import (
	"bufio"
	"bytes"
	"html"
	"mime"
	"net/textproto"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/jhillyerd/enmime/v2"
	"github.com/jhillyerd/enmime/v2/mediatype"
)

// newParser is enmime configured to keep whatever can be read: malformed
// parts are skipped (and reported) instead of failing the message, a
// multipart without a boundary is read as one part, and partially decoded
// content is kept. The declared charset is trusted when there is one
// (statistical detection mislabels short texts). rawContent skips the
// transfer and charset decoding.
func newParser(rawContent bool) *enmime.Parser {
	return enmime.NewParser(
		enmime.SkipMalformedParts(true),
		enmime.MultipartWOBoundaryAsSinglePart(true),
		enmime.SetReadPartErrorPolicy(func(*enmime.Part, error) bool { return true }),
		enmime.DisableTextConversion(true),
		enmime.DisableCharacterDetection(true),
		enmime.MaxStoredPartErrors(maxErrors),
		enmime.SetCustomParseMediaType(parseMediaType),
		enmime.RawContent(rawContent),
	)
}

// missingSemicolon finds a media type followed by a parameter without the
// ";" between them ("multipart/mixed boundary=..."), an error some mailers
// make; enmime would otherwise fall back to application/octet-stream and
// lose the structure.
var missingSemicolon = regexp.MustCompile(`^(\s*[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+)\s+([A-Za-z0-9_-]+\s*=)`)

func parseMediaType(ctype string) (string, map[string]string, []string, error) {
	return mediatype.Parse(missingSemicolon.ReplaceAllString(ctype, "$1; $2"))
}

// parseMIME is the normal path: enmime reads the MIME tree, then the
// header fields, views and attachments are taken from it.
func parseMIME(raw []byte, opts Options) *Message {
	root, err := newParser(false).ReadParts(bytes.NewReader(raw))
	if err != nil {
		m := parsePlain(raw, opts)
		m.addError("MIME structure unreadable (%v): read as plain text", err)
		return m
	}
	m := &Message{}
	repairFalseBase64(m, raw, root)
	readHeader(m, root.Header)
	b := splitBodies(root)
	cids := fillBodies(m, b, opts)

	for _, p := range b.attachments {
		if len(p.Content) == 0 && p.FileName == "" && (strings.HasPrefix(mediaType(p), "multipart/") || p.ContentType == "") {
			continue // an empty container or a bare boundary: nothing to keep
		}
		m.Attachments = append(m.Attachments, attachment(p, cids))
	}
	if m.FullText == "" && m.FullHTML == "" && len(m.Attachments) == 0 {
		// No part could be read (boundaries that never match, say): the
		// body is kept as text rather than lost.
		if body := salvageText(normaliseText(strings.ToValidUTF8(string(bodyOf(raw)), "\uFFFD"))); body != "" {
			m.FullText, m.Text = body, body
			m.addError("no readable MIME part: the raw body is kept as text")
		}
	}
	m.Loop = loopVerdict(root, opts.LoopToken)

	for _, e := range collectErrors(root) {
		m.addError("%s", e)
	}
	return m
}

// fillBodies sets the text and HTML fields of m from the views in b and
// returns the Content-IDs the HTML shows (lower-case).
func fillBodies(m *Message, b bodies, opts Options) map[string]bool {
	var texts []string
	for _, p := range b.text {
		switch mediaType(p) {
		case "text/plain":
			texts = append(texts, partText(p))
		case "text/html":
			texts = append(texts, htmlToText(partText(p)))
		}
	}
	m.FullText = normaliseText(strings.Join(texts, "\n"))
	if strings.TrimSpace(m.FullText) == "" {
		// An empty text alternative next to a real HTML one.
		for _, p := range b.html {
			if mediaType(p) == "text/html" {
				texts = append(texts, htmlToText(partText(p)))
			}
		}
		m.FullText = normaliseText(strings.Join(texts, "\n"))
	}

	var htmls []string
	hasHTML := false
	for _, p := range b.html {
		switch mediaType(p) {
		case "text/html":
			hasHTML = true
			htmls = append(htmls, partText(p))
		case "text/plain":
			htmls = append(htmls, `<pre>`+html.EscapeString(partText(p))+`</pre>`)
		}
	}

	cids := map[string]bool{}
	if hasHTML {
		raw := strings.Join(htmls, "\n")
		m.FullHTML, cids = sanitiseHTML(raw, opts.CIDURL)
		newHTML, changed := stripHTMLQuotes(raw)
		m.HTML = m.FullHTML
		if changed {
			m.HTML, _ = sanitiseHTML(newHTML, opts.CIDURL)
		}
		if len(b.text) > 0 && allHTML(b.text) {
			// No text/plain alternative: the new text comes from the HTML,
			// where quotes are marked up rather than guessed.
			m.Text = stripSignature(normaliseText(htmlToText(newHTML)))
		}
	}
	if m.Text == "" {
		m.Text = StripQuotes(m.FullText)
	}
	// A message that only quotes (or whose "quote" was misjudged) keeps its
	// whole text rather than arriving empty.
	if strings.TrimSpace(m.Text) == "" {
		m.Text = m.FullText
	}
	if hasHTML && strings.TrimSpace(htmlToText(m.HTML)) == "" && !strings.Contains(m.HTML, "<img") {
		m.HTML = m.FullHTML
	}
	return cids
}

func allHTML(parts []*enmime.Part) bool {
	for _, p := range parts {
		if mediaType(p) == "text/plain" {
			return false
		}
	}
	return true
}

// partText is a text part's decoded content as valid UTF-8.
func partText(p *enmime.Part) string {
	return strings.ToValidUTF8(string(p.Content), "\uFFFD")
}

// normaliseText makes line ends LF, drops NUL and other C0 controls except
// tab and newline, and trims surrounding blank lines.
func normaliseText(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t':
			return r
		case r == '\r':
			return '\n'
		case r < 0x20 || r == 0x7f:
			return -1
		}
		return r
	}, s)
	return strings.Trim(s, "\n ")
}

// collectErrors gathers enmime's per-part errors in tree order.
func collectErrors(root *enmime.Part) []string {
	var out []string
	_ = root.DepthMatchAll(func(p *enmime.Part) bool {
		for _, e := range p.Errors {
			if e != nil {
				out = append(out, "part "+p.PartID+": "+e.Error())
			}
		}
		return false
	})
	return out
}

// readHeader fills the envelope fields of m from the top-level header.
func readHeader(m *Message, h textproto.MIMEHeader) {
	m.Subject = headerText(h.Get("Subject"))
	if from := addressList(m, "From", h.Get("From")); len(from) > 0 {
		m.From = from[0]
	} else if sender := addressList(m, "Sender", h.Get("Sender")); len(sender) > 0 {
		m.From = sender[0]
		m.addError("no usable From: the Sender address is used")
	}
	m.ReplyTo = addressList(m, "Reply-To", h.Get("Reply-To"))
	m.To = addressList(m, "To", strings.Join(h.Values("To"), ", "))
	m.Cc = addressList(m, "Cc", strings.Join(h.Values("Cc"), ", "))
	m.DeliveredTo = addressList(m, "Delivered-To", strings.Join(append(h.Values("Delivered-To"), h.Values("X-Original-To")...), ", "))
	if ids := msgIDs(h.Get("Message-Id")); len(ids) > 0 {
		m.MessageID = ids[0]
	}
	if ids := msgIDs(h.Get("In-Reply-To")); len(ids) > 0 {
		m.InReplyTo = ids[0]
	}
	m.References = msgIDs(strings.Join(h.Values("References"), " "))
	if v := h.Get("Date"); v != "" {
		if d, ok := parseDate(v); ok {
			m.Date, m.HasDate = d, true
		} else {
			m.addError("unreadable Date %q", headerText(v))
		}
	}
}

// parsePlain is the fallback when the MIME structure cannot be read: the
// header block (if any) is read leniently and everything after it is the
// text.
func parsePlain(raw []byte, opts Options) *Message {
	m := &Message{}
	br := bufio.NewReader(bytes.NewReader(raw))
	body := raw
	var h textproto.MIMEHeader
	if startsWithField(raw) {
		var err error
		if h, err = enmime.ReadHeader(br, discardErrors{}); err == nil {
			readHeader(m, h)
			rest := bytes.Buffer{}
			_, _ = rest.ReadFrom(br)
			body = rest.Bytes()
		}
	}
	m.FullText = normaliseText(strings.ToValidUTF8(string(body), "\uFFFD"))
	if m.Text = StripQuotes(m.FullText); m.Text == "" {
		m.Text = m.FullText
	}
	m.Loop = headerVerdict(h, "", opts.LoopToken)
	return m
}

// repairFalseBase64 replaces the content of text parts that claim base64
// but decode to garbage (plain text sent with a wrong
// Content-Transfer-Encoding) with their bytes as sent.
func repairFalseBase64(m *Message, raw []byte, root *enmime.Part) {
	var bad []*enmime.Part
	_ = root.DepthMatchAll(func(p *enmime.Part) bool {
		if strings.HasPrefix(mediaType(p), "text/") && garbled(p.Content) &&
			strings.EqualFold(strings.TrimSpace(p.Header.Get("Content-Transfer-Encoding")), "base64") {
			bad = append(bad, p)
		}
		return false
	})
	if len(bad) == 0 {
		return
	}
	asSent, err := newParser(true).ReadParts(bytes.NewReader(raw))
	if err != nil {
		return
	}
	byID := map[string]*enmime.Part{}
	_ = asSent.DepthMatchAll(func(p *enmime.Part) bool {
		byID[p.PartID] = p
		return false
	})
	for _, p := range bad {
		if r := byID[p.PartID]; r != nil {
			p.Content = r.Content
			m.addError("part %s: declared base64 but is not: kept as sent", p.PartID)
		}
	}
}

// garbled reports decoded text that is mostly not text: over a fifth of
// its runes invalid UTF-8, replacement characters or control characters.
func garbled(b []byte) bool {
	if len(b) < 16 {
		return false
	}
	bad, n := 0, 0
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		b = b[size:]
		n++
		if r == utf8.RuneError || (r < 0x20 && r != '\n' && r != '\r' && r != '\t') {
			bad++
		}
	}
	return bad*5 > n
}

// bodyOf is what follows the header block of raw (all of raw when no blank
// line ends a header).
func bodyOf(raw []byte) []byte {
	best := -1
	var rest []byte
	for _, sep := range []string{"\r\n\r\n", "\n\n"} {
		if i := bytes.Index(raw, []byte(sep)); i >= 0 && (best < 0 || i < best) {
			best, rest = i, raw[i+len(sep):]
		}
	}
	return rest
}

// mimeLine matches the MIME scaffolding of a body whose structure could
// not be read: boundary lines and MIME header fields.
var mimeLine = regexp.MustCompile(`(?i)^(--[^\s]*|(content-[a-z-]+|mime-version)\s*:.*)$`)

// salvageText keeps the readable lines of a body whose MIME structure
// failed: boundary lines and MIME header fields (with their folded
// continuations) are dropped.
func salvageText(body string) string {
	var out []string
	inField := false
	for _, l := range strings.Split(body, "\n") {
		if inField && (strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t")) {
			continue // folded continuation of a dropped field
		}
		t := strings.TrimSpace(l)
		if inField = mimeLine.MatchString(t); inField {
			inField = !strings.HasPrefix(t, "--")
			continue
		}
		out = append(out, l)
	}
	return normaliseText(strings.Join(out, "\n"))
}

// startsWithField reports raw beginning with "Name:" as a header block does.
func startsWithField(raw []byte) bool {
	line, _, _ := bytes.Cut(raw, []byte("\n"))
	name, _, ok := bytes.Cut(line, []byte(":"))
	if !ok || len(name) == 0 {
		return false
	}
	for _, c := range name {
		if c <= ' ' || c > '~' {
			return false
		}
	}
	return true
}

type discardErrors struct{}

func (discardErrors) AddError(string, string, ...any)   {}
func (discardErrors) AddWarning(string, string, ...any) {}

// declaredType is the media type the part's header names, lower-case.
func declaredType(p *enmime.Part) string {
	if t, _, err := mime.ParseMediaType(p.Header.Get("Content-Type")); err == nil {
		return t
	}
	return mediaType(p)
}
