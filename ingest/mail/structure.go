package mail

import (
	"bytes"
	"strings"

	"github.com/jhillyerd/enmime/v2"
)

// bodies is the split of a MIME tree into the plain-text view, the HTML view
// and the attachments. The views follow RFC 8621 §4.1.4 (JMAP's
// parseStructure, which mail-parser implements too): a body part is a
// text/plain, text/html or inline image/audio/video part that is not a
// named attachment; inside multipart/alternative the text/plain branch
// feeds the text view and the text/html branch the HTML view. Every leaf
// that is not a text/plain or text/html part of a view is an attachment
// (inline images included: they are stored like any file).
type bodies struct {
	text, html  []*enmime.Part
	attachments []*enmime.Part
}

// mediaType is a part's lower-case type/subtype, with the RFC 2045/2046
// defaults for a part that declares none. A multipart that enmime could not
// split (no boundary) but that has content is read as the text it holds.
func mediaType(p *enmime.Part) string {
	if t := strings.ToLower(p.ContentType); t != "" {
		if strings.HasPrefix(t, "multipart/") && p.FirstChild == nil && len(bytes.TrimSpace(p.Content)) > 0 {
			return "text/plain"
		}
		return t
	}
	if p.Parent != nil && strings.EqualFold(p.Parent.ContentType, "multipart/digest") {
		return "message/rfc822"
	}
	return "text/plain"
}

func isInlineMedia(t string) bool {
	return strings.HasPrefix(t, "image/") || strings.HasPrefix(t, "audio/") || strings.HasPrefix(t, "video/")
}

// isContainer reports a multipart part that enmime split into children.
func isContainer(p *enmime.Part) bool {
	return strings.HasPrefix(mediaType(p), "multipart/") && p.FirstChild != nil
}

// splitBodies classifies the tree under root.
func splitBodies(root *enmime.Part) bodies {
	var b bodies
	if isContainer(root) {
		walkParts(children(root), subtype(root), subtype(root) == "alternative", &b.text, &b.html)
	} else {
		walkParts([]*enmime.Part{root}, "mixed", false, &b.text, &b.html)
	}
	inView := map[*enmime.Part]bool{}
	for _, p := range append(append([]*enmime.Part{}, b.text...), b.html...) {
		if t := mediaType(p); t == "text/plain" || t == "text/html" {
			inView[p] = true
		}
	}
	var leaves func(p *enmime.Part)
	leaves = func(p *enmime.Part) {
		if isContainer(p) {
			for c := p.FirstChild; c != nil; c = c.NextSibling {
				leaves(c)
			}
			return
		}
		if !inView[p] {
			b.attachments = append(b.attachments, p)
		}
	}
	leaves(root)
	return b
}

func children(p *enmime.Part) []*enmime.Part {
	var out []*enmime.Part
	for c := p.FirstChild; c != nil; c = c.NextSibling {
		out = append(out, c)
	}
	return out
}

func subtype(p *enmime.Part) string {
	_, sub, _ := strings.Cut(mediaType(p), "/")
	return sub
}

// walkParts is RFC 8621's parseStructure without its attachment list. A
// nil view pointer means that view no longer collects parts (inside an
// alternative, the other branch won); like the RFC's pseudo-code, the
// choice holds for the rest of this multipart.
func walkParts(parts []*enmime.Part, multipartType string, inAlternative bool, text, html *[]*enmime.Part) {
	textLen, htmlLen := -1, -1
	if text != nil {
		textLen = len(*text)
	}
	if html != nil {
		htmlLen = len(*html)
	}
	for i, p := range parts {
		t := mediaType(p)
		inline := !strings.EqualFold(p.Disposition, "attachment") &&
			(t == "text/plain" || t == "text/html" || isInlineMedia(t)) &&
			(i == 0 || (multipartType != "related" && (isInlineMedia(t) || p.FileName == "")))
		switch {
		case isContainer(p):
			sub := subtype(p)
			walkParts(children(p), sub, inAlternative || sub == "alternative", text, html)
		case !inline:
		case multipartType == "alternative":
			switch t {
			case "text/plain":
				appendTo(text, p)
			case "text/html":
				appendTo(html, p)
			}
		default:
			if inAlternative && t == "text/plain" {
				html = nil
			}
			if inAlternative && t == "text/html" {
				text = nil
			}
			appendTo(text, p)
			appendTo(html, p)
		}
	}
	if multipartType == "alternative" && text != nil && html != nil {
		// Only an HTML branch: the text view shows it too, and vice versa.
		if textLen == len(*text) && htmlLen != len(*html) {
			*text = append(*text, (*html)[htmlLen:]...)
		}
		if htmlLen == len(*html) && textLen != len(*text) {
			*html = append(*html, (*text)[textLen:]...)
		}
	}
}

func appendTo(list *[]*enmime.Part, p *enmime.Part) {
	if list != nil {
		*list = append(*list, p)
	}
}
