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
var htmlPolicy = sync.OnceValue(func() *bluemonday.Policy {
	p := bluemonday.UGCPolicy()
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
})

// sanitiseHTML rewrites cid: image references to cidURL and sanitises the
// body. It returns the safe HTML and the Content-IDs the HTML shows.
func sanitiseHTML(raw, cidURL string) (string, map[string]bool) {
	cids := map[string]bool{}
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(raw))
	if err != nil {
		return strings.TrimSpace(htmlPolicy().Sanitize(raw)), cids
	}
	doc.Find("img[src]").Each(func(_ int, img *goquery.Selection) {
		src := strings.TrimSpace(img.AttrOr("src", ""))
		if len(src) < 4 || !strings.EqualFold(src[:4], "cid:") {
			return
		}
		cid := src[4:]
		if u, err := url.PathUnescape(cid); err == nil {
			cid = u
		}
		cid = strings.Trim(cid, "<> ")
		cids[strings.ToLower(cid)] = true
		img.SetAttr("src", strings.ReplaceAll(cidURL, "{cid}", url.PathEscape(cid)))
	})
	body, err := doc.Find("body").Html()
	if err != nil {
		body = raw
	}
	return strings.TrimSpace(htmlPolicy().Sanitize(body)), cids
}

// htmlToText renders HTML as readable plain text (links kept in brackets).
func htmlToText(s string) string {
	t, err := html2text.FromString(s)
	if err != nil {
		return ""
	}
	return t
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
func stripHTMLQuotes(raw string) string {
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(raw))
	if err != nil {
		return raw
	}
	body := doc.Find("body")
	if body.Length() == 0 {
		return raw
	}
	if n := findText(body.Get(0), func(s string) bool { return strings.Contains(s, ReplyMarker) }); n != nil {
		cutFrom(n, body.Get(0))
	}
	body.Find(historySelectors).Each(func(_ int, s *goquery.Selection) {
		// Outlook on the web draws an <hr> just above its header.
		if prev := s.PrevAll().First(); prev.Is("hr") {
			prev.Remove()
		}
		if n := s.Get(0); n.Parent != nil {
			cutFrom(n, body.Get(0))
		}
	})
	quotes := body.Find(quoteSelectors)
	removed := quotes.Length() > 0
	quotes.Remove()
	// Outlook desktop: a bordered <div> whose text starts "From:".
	body.Find("div[style]").EachWithBreak(func(_ int, s *goquery.Selection) bool {
		style := strings.ToLower(strings.ReplaceAll(s.AttrOr("style", ""), " ", ""))
		if (strings.Contains(style, "border-top:solid#e1e1e1") || strings.Contains(style, "border-top:solid#b5c4df")) &&
			outlookFrom.MatchString(strings.TrimSpace(plainSpaces(s.Text()))) {
			if n := s.Get(0); n.Parent != nil {
				cutFrom(n, body.Get(0))
			}
			return false
		}
		return true
	})
	if n := findText(body.Get(0), func(s string) bool { return originalMessage.MatchString(plainSpaces(s)) }); n != nil {
		cutFrom(n, body.Get(0))
	}
	if removed {
		dropTrailingAttribution(body.Get(0))
	}
	out, err := body.Html()
	if err != nil {
		return raw
	}
	return out
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
