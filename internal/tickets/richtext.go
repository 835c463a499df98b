package tickets

import (
	"strings"

	"github.com/microcosm-cc/bluemonday"
	"golang.org/x/net/html"
)

// RichText is a comment body: always plain text (for e-mail, search and
// exports), and sanitised HTML when the author sent markup.
type RichText struct {
	Text string
	HTML *string
}

// Sanitizer turns untrusted HTML into the safe subset shown in the desk and
// portal (bluemonday's UGC policy) plus a plain-text rendering.
type Sanitizer struct {
	policy *bluemonday.Policy
}

// NewSanitizer returns a sanitizer. Policies are safe for concurrent use.
func NewSanitizer() *Sanitizer { return &Sanitizer{policy: bluemonday.UGCPolicy()} }

// FromHTML sanitises untrusted markup and derives its plain text.
func (z *Sanitizer) FromHTML(untrusted string) RichText {
	safe := strings.TrimSpace(z.policy.Sanitize(untrusted))
	return RichText{Text: plainText(safe), HTML: &safe}
}

// Block elements end a line in the plain-text rendering; paragraphs end
// with a blank line.
var (
	lineBlocks = map[string]bool{"div": true, "li": true, "tr": true, "dt": true, "dd": true, "hr": true}
	paraBlocks = map[string]bool{"p": true, "blockquote": true, "pre": true, "table": true, "ul": true, "ol": true,
		"dl": true, "h1": true, "h2": true, "h3": true, "h4": true, "h5": true, "h6": true}
)

// plainText renders sanitised HTML as text: tags dropped, entities decoded,
// block elements on their own lines.
func plainText(safeHTML string) string {
	var b strings.Builder
	// breakLine ends the text so far with at least n newlines.
	breakLine := func(n int) {
		s := b.String()
		if strings.TrimSpace(s) == "" {
			return
		}
		for have := len(s) - len(strings.TrimRight(s, "\n")); have < n; have++ {
			b.WriteByte('\n')
		}
	}
	z := html.NewTokenizer(strings.NewReader(safeHTML))
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			return tidyLines(b.String())
		case html.TextToken:
			b.Write(z.Text())
		case html.StartTagToken, html.EndTagToken, html.SelfClosingTagToken:
			raw, _ := z.TagName()
			name := string(raw)
			switch {
			case name == "br":
				b.WriteByte('\n')
			case paraBlocks[name] && tt == html.EndTagToken:
				breakLine(2)
			case paraBlocks[name] || lineBlocks[name]:
				breakLine(1)
			}
		}
	}
}

// tidyLines trims each line and keeps at most one blank line in a row
// (markup indentation leaves whitespace-only text between blocks).
func tidyLines(s string) string {
	var out []string
	blank := 0
	for line := range strings.SplitSeq(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			blank++
			if blank > 1 {
				continue
			}
		} else {
			blank = 0
		}
		out = append(out, line)
	}
	return strings.TrimSpace(strings.Join(out, "\n"))
}
