package mail

import (
	"net/url"
	"regexp"
	"strings"
	"sync"

	"github.com/PuerkitoBio/goquery"
	"github.com/inbucket/html2text"
	"github.com/microcosm-cc/bluemonday"
	"golang.org/x/net/html"
)

// htmlPolicy is bluemonday's UGC policy plus the inline styles mail layout
// needs. Properties that can pull remote content (background, url()) or lay
// an element over the desk's own interface (position, z-index, display)
// are not allowed. Built once: a policy is safe for concurrent use.
var htmlPolicy = sync.OnceValue(func() *bluemonday.Policy { return newPolicy(true) })

// strictHTMLPolicy also drops relative URLs, for HTML that could not be
// parsed into a tree (where sanitiseHTML cannot drop them itself).
var strictHTMLPolicy = sync.OnceValue(func() *bluemonday.Policy { return newPolicy(false) })

func newPolicy(relativeURLs bool) *bluemonday.Policy {
	p := bluemonday.UGCPolicy()
	p.AllowRelativeURLs(relativeURLs)
	p.AllowStyles(
		"color", "background-color",
		"font", "font-family", "font-size", "font-style", "font-weight", "font-variant",
		"text-align", "text-decoration", "text-indent", "text-transform", "vertical-align",
		"line-height", "letter-spacing", "white-space", "word-break", "word-wrap", "direction",
		"margin", "margin-top", "margin-right", "margin-bottom", "margin-left",
		"padding", "padding-top", "padding-right", "padding-bottom", "padding-left",
		"border", "border-top", "border-right", "border-bottom", "border-left",
		"border-color", "border-style", "border-width", "border-collapse", "border-spacing", "border-radius",
		"width", "height", "max-width", "min-width", "max-height", "min-height",
		"list-style-type", "table-layout",
	).Globally()
	p.AllowAttrs("align", "valign").OnElements("p", "div", "table", "tr", "td", "th", "img")
	p.AllowAttrs("width", "height").OnElements("table", "td", "th", "img")
	p.AllowAttrs("color").Matching(regexp.MustCompile(`^#?[0-9A-Za-z]{1,20}$`)).OnElements("font")
	p.AllowElements("font", "center")
	p.AddTargetBlankToFullyQualifiedLinks(true)
	return p
}

// sanitiseHTML rewrites cid: image references to cidURL and sanitises the
// body. It returns the safe HTML and the Content-IDs the HTML shows.
func sanitiseHTML(raw, cidURL string) (string, map[string]bool) {
	cids := map[string]bool{}
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(raw))
	if err != nil {
		return strings.TrimSpace(strictHTMLPolicy().Sanitize(raw)), cids
	}
	doc.Find("[src], [href]").Each(func(_ int, el *goquery.Selection) {
		for _, attr := range []string{"src", "href"} {
			v, ok := el.Attr(attr)
			if !ok {
				continue
			}
			v = strings.TrimSpace(v)
			if attr == "src" && len(v) >= 4 && strings.EqualFold(v[:4], "cid:") {
				cid := v[4:]
				if u, err := url.PathUnescape(cid); err == nil {
					cid = u
				}
				cid = strings.Trim(cid, "<> ")
				cids[strings.ToLower(cid)] = true
				el.SetAttr("src", strings.ReplaceAll(cidURL, "{cid}", url.PathEscape(cid)))
				continue
			}
			// A mail has no base URL: a relative link could only point into
			// the desk itself (a forged request an agent clicks), so it goes.
			if u, err := url.Parse(v); err != nil || !u.IsAbs() {
				el.RemoveAttr(attr)
			}
		}
	})
	body, err := doc.Find("body").Html()
	if err != nil {
		body = raw
	}
	return strings.TrimSpace(htmlPolicy().Sanitize(body)), cids
}

// htmlToText renders HTML as readable plain text (links kept in brackets).
func htmlToText(s string) string {
	if t, err := html2text.FromString(s); err == nil {
		return t
	}
	// The tree parser refuses some input (nesting deeper than 512
	// elements): fall back to the tokenizer, which has no such limit.
	return tokenText(s)
}

// lineBreakTags end a line in tokenText.
var lineBreakTags = map[string]bool{
	"p": true, "div": true, "br": true, "li": true, "tr": true, "blockquote": true, "pre": true,
	"h1": true, "h2": true, "h3": true, "h4": true, "h5": true, "h6": true, "hr": true, "table": true,
}

// tokenText extracts the text of HTML token by token, skipping script and
// style content and breaking lines at block elements.
func tokenText(s string) string {
	var b strings.Builder
	z := html.NewTokenizer(strings.NewReader(s))
	skip := 0
	for {
		switch tt := z.Next(); tt {
		case html.ErrorToken:
			return b.String()
		case html.TextToken:
			if skip == 0 {
				b.Write(z.Text())
			}
		case html.StartTagToken, html.EndTagToken, html.SelfClosingTagToken:
			name, _ := z.TagName()
			tag := string(name)
			if tag == "script" || tag == "style" || tag == "head" {
				if tt == html.StartTagToken {
					skip++
				} else if tt == html.EndTagToken && skip > 0 {
					skip--
				}
			}
			if lineBreakTags[tag] {
				b.WriteByte('\n')
			}
		}
	}
}

// Quoted history in the markup of the common clients.
const (
	// Removed with their content: Gmail's quote (attribution included),
	// Apple Mail's and Thunderbird's cited blockquotes and Thunderbird's
	// attribution, Yahoo's quote, and signatures.
	quoteSelectors = `.gmail_quote, blockquote[type=cite], .moz-cite-prefix, .yahoo_quoted, ` +
		`.gmail_signature, .gmail_signature_prefix, .moz-signature`
	// Removed together with everything after them: Outlook on the web's
	// reply header and its send anchor.
	historySelectors = `#divRplyFwdMsg, #appendonsend`
)

// stripHTMLQuotes removes quoted history and signatures from a reply's
// HTML: our ReplyMarker and what follows, the clients' quote markup, and
// an Outlook header block ("From: … Sent: …") with what follows. An
// attribution line left dangling at the end ("On … wrote:") goes too.
// changed is false when there was nothing to remove.
func stripHTMLQuotes(raw string) (out string, changed bool) {
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(raw))
	if err != nil {
		return raw, false
	}
	body := doc.Find("body")
	if body.Length() == 0 {
		return raw, false
	}
	root := body.Get(0)
	cut := func(n *html.Node) {
		if n.Parent != nil {
			cutFrom(n, root)
			changed = true
		}
	}
	if n := findText(root, func(s string) bool { return strings.Contains(s, ReplyMarker) }); n != nil {
		cut(n)
	}
	body.Find(historySelectors).Each(func(_ int, s *goquery.Selection) {
		// Outlook on the web draws an <hr> just above its header.
		if prev := s.PrevAll().First(); prev.Is("hr") {
			prev.Remove()
		}
		cut(s.Get(0))
	})
	if quotes := body.Find(quoteSelectors); quotes.Length() > 0 {
		quotes.Remove()
		changed = true
	}
	// Outlook desktop: a bordered <div> whose text starts "From:". Only
	// the first few candidates are read (each read walks the subtree).
	candidates := 0
	body.Find("div[style]").EachWithBreak(func(_ int, s *goquery.Selection) bool {
		style := strings.ToLower(strings.ReplaceAll(s.AttrOr("style", ""), " ", ""))
		if !strings.Contains(style, "border-top:solid#e1e1e1") && !strings.Contains(style, "border-top:solid#b5c4df") {
			return true
		}
		if candidates++; candidates > 20 {
			return false
		}
		if outlookFrom.MatchString(strings.TrimSpace(plainSpaces(firstText(s.Get(0), 200)))) {
			cut(s.Get(0))
			return false
		}
		return true
	})
	if n := findText(root, func(s string) bool { return originalMessage.MatchString(plainSpaces(s)) }); n != nil {
		cut(n)
	}
	if !changed {
		return raw, false
	}
	dropTrailingAttribution(root)
	if out, err = body.Html(); err != nil {
		return raw, false
	}
	return out, true
}

// firstText is the start (about max bytes) of the text under n.
func firstText(n *html.Node, max int) string {
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode {
			b.WriteString(d.Data)
			if b.Len() >= max {
				break
			}
		}
	}
	return b.String()
}

// findText returns the first text node under root whose text satisfies
// match.
func findText(root *html.Node, match func(string) bool) *html.Node {
	for n := range root.Descendants() {
		if n.Type == html.TextNode && match(n.Data) {
			return n
		}
	}
	return nil
}

// cutFrom removes n and everything after it in document order, up to root.
func cutFrom(n, root *html.Node) {
	for cur := n; cur != nil && cur != root; cur = cur.Parent {
		for s := cur.NextSibling; s != nil; {
			next := s.NextSibling
			cur.Parent.RemoveChild(s)
			s = next
		}
	}
	if n.Parent != nil {
		n.Parent.RemoveChild(n)
	}
}

// dropTrailingAttribution removes the last text of root when it is an
// "On … wrote:" line (whose quote was removed).
func dropTrailingAttribution(root *html.Node) {
	var texts []*html.Node
	for n := range root.Descendants() {
		if n.Type == html.TextNode && strings.TrimSpace(n.Data) != "" {
			texts = append(texts, n)
		}
	}
	// The attribution may be split over a few nodes (a link around the
	// address): try the last one, two and three together.
	for k := 1; k <= 3 && k <= len(texts); k++ {
		tail := texts[len(texts)-k:]
		var b strings.Builder
		for _, t := range tail {
			b.WriteString(t.Data)
			b.WriteByte(' ')
		}
		joined := oneLine(plainSpaces(b.String()))
		if attribution.MatchString(joined) || (k == 1 && shortAttribution.MatchString(joined)) {
			for _, t := range tail {
				t.Parent.RemoveChild(t)
			}
			return
		}
	}
}
