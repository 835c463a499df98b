package storage

import (
	"bytes"
	"mime"
	"net/http"
	"path"
	"strings"

	"github.com/atumdesk/atumdesk/internal/apperr"
)

// SniffLen is how much of a file the type decision looks at (the
// WHATWG sniffing window that http.DetectContentType uses).
const SniffLen = 512

// The accepted types. The decision is made on the content; the client's
// Content-Type is ignored and the file name's extension can only refuse a
// file (active content, or an extension that contradicts the content) or
// pick a more precise name inside an already accepted family (CSV inside
// text, OOXML inside zip) — never admit a type.
const (
	mimeText = "text/plain; charset=utf-8"
	mimeCSV  = "text/csv; charset=utf-8"
	mimeZip  = "application/zip"
	mimeMail = "message/rfc822"
)

// sniffedOK are the content types http.DetectContentType may report that
// are stored as detected.
var sniffedOK = map[string]bool{
	"image/png": true, "image/jpeg": true, "image/gif": true, "image/webp": true,
	"application/pdf": true,
}

// ooxml maps the Office Open XML extensions to their types; these are zip
// archives whose first entry is "[Content_Types].xml".
var ooxml = map[string]string{
	".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
	".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
	".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}

// claimed is the content family an extension promises; content of another
// family under such a name is a disguise and refused.
var claimed = map[string]string{
	".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".jpe": "image/jpeg",
	".gif": "image/gif", ".webp": "image/webp", ".pdf": "application/pdf",
	".zip": mimeZip, ".docx": mimeZip, ".xlsx": mimeZip, ".pptx": mimeZip,
}

// activeExt are names a browser or desktop would render or run when the
// downloaded file is opened: refused whatever the content says.
var activeExt = map[string]bool{
	".html": true, ".htm": true, ".xhtml": true, ".shtml": true, ".mht": true, ".mhtml": true,
	".svg": true, ".svgz": true, ".xml": true, ".xsl": true, ".xslt": true,
	".js": true, ".mjs": true, ".cjs": true, ".jse": true, ".vbs": true, ".vbe": true, ".wsf": true, ".wsh": true,
	".hta": true, ".swf": true, ".jar": true, ".exe": true, ".com": true, ".scr": true, ".bat": true, ".cmd": true,
	".msi": true, ".ps1": true, ".lnk": true, ".reg": true, ".dll": true, ".cpl": true, ".pif": true,
}

// Sniff decides the stored MIME type of a file from its first bytes (at
// most SniffLen are looked at) and its sanitised name. HTML, SVG and other
// markup is refused outright: such a file, even served as a download,
// renders and runs script when opened.
func Sniff(head []byte, filename string) (string, error) {
	if len(head) > SniffLen {
		head = head[:SniffLen]
	}
	ext := strings.ToLower(path.Ext(filename))
	if activeExt[ext] {
		return "", apperr.New(apperr.Unsupported, "Files named *"+ext+" are not accepted: they would run or render when opened.")
	}
	detected := http.DetectContentType(head)
	base, params, _ := mime.ParseMediaType(detected)
	if looksLikeMarkup(head, params["charset"]) {
		base = "text/html"
	}
	if want, ok := claimed[ext]; ok && want != base {
		return "", unsupported("The content does not match the file name's extension "+ext+".", base)
	}
	switch {
	case sniffedOK[base]:
		return base, nil
	case base == mimeZip:
		if t, ok := ooxml[ext]; ok && bytes.HasPrefix(head[min(30, len(head)):], []byte("[Content_Types].xml")) {
			return t, nil
		}
		return mimeZip, nil
	case base == "text/plain":
		if looksLikeMail(head) {
			return mimeMail, nil
		}
		if ext == ".csv" {
			return mimeCSV, nil
		}
		if cs := params["charset"]; cs != "" && cs != "utf-8" {
			return "text/plain; charset=" + cs, nil
		}
		return mimeText, nil
	}
	return "", unsupported("Files of this type are not accepted.", base)
}

func unsupported(msg, detected string) error {
	return &apperr.Error{Kind: apperr.Unsupported, Msg: msg, Extra: map[string]any{
		"detected_type": detected,
		"accepted_types": []string{"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf",
			"text/plain", "text/csv", "application/zip (incl. .docx/.xlsx/.pptx)", "message/rfc822"},
	}}
}

// looksLikeMarkup reports text whose first non-blank character opens a tag,
// a declaration or a processing instruction: SVG (which DetectContentType
// calls text/plain), XML, HTML. A plain-text file starting that way is
// refused too; zip it to send it.
func looksLikeMarkup(head []byte, charset string) bool {
	if strings.HasPrefix(charset, "utf-16") {
		// An ASCII view of UTF-16: drop the zero bytes and the BOM.
		head = bytes.ReplaceAll(head, []byte{0}, nil)
		head = bytes.TrimPrefix(bytes.TrimPrefix(head, []byte{0xfe, 0xff}), []byte{0xff, 0xfe})
	}
	head = bytes.TrimPrefix(head, []byte{0xef, 0xbb, 0xbf})
	head = bytes.TrimLeft(head, " \t\r\n\f")
	if len(head) < 2 || head[0] != '<' {
		return false
	}
	c := head[1] | 0x20
	return (c >= 'a' && c <= 'z') || head[1] == '!' || head[1] == '?' || head[1] == '/'
}

// looksLikeMail reports an RFC 5322 message: a header block (field lines
// up to a blank line) that has a From field and another field every
// message carries.
func looksLikeMail(head []byte) bool {
	hasFrom, hasOther := false, false
	for line := range bytes.Lines(head) {
		if !bytes.HasSuffix(line, []byte("\n")) {
			break // cut off by the sniffing window
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue // folded continuation
		}
		name, _, ok := bytes.Cut(line, []byte(":"))
		if !ok || len(name) == 0 || bytes.ContainsAny(name, " \t") {
			return false
		}
		switch strings.ToLower(string(name)) {
		case "from":
			hasFrom = true
		case "date", "subject", "message-id", "mime-version", "received", "return-path", "to", "delivered-to":
			hasOther = true
		}
	}
	return hasFrom && hasOther
}
