package storage_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/atumdesk/atumdesk/internal/apperr"
	"github.com/atumdesk/atumdesk/internal/storage"
)

// Magic numbers of the accepted formats.
const (
	pngMagic  = "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
	jpegMagic = "\xff\xd8\xff\xe0\x00\x10JFIF\x00"
	gifMagic  = "GIF89a\x01\x00\x01\x00"
	webpMagic = "RIFF\x24\x00\x00\x00WEBPVP8 "
	pdfMagic  = "%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"
	zipMagic  = "PK\x03\x04\x14\x00\x00\x00\x08\x00"
	// A .docx starts with a local file header (30 bytes) naming
	// [Content_Types].xml.
	docxMagic = "PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x13\x00\x00\x00[Content_Types].xml"
	svgDoc    = `<svg xmlns="http://www.w3.org/2000/svg" onload="alert(document.domain)"><script>alert(1)</script></svg>`
	mail      = "Return-Path: <a@example.com>\r\nFrom: Alice <a@example.com>\r\nTo: help@acme.test\r\nSubject: hi\r\n\r\nbody\r\n"
)

func TestSniffAccepts(t *testing.T) {
	cases := []struct{ name, content, want string }{
		{"photo.png", pngMagic, "image/png"},
		{"photo.jpg", jpegMagic, "image/jpeg"},
		{"anim.gif", gifMagic, "image/gif"},
		{"pic.webp", webpMagic, "image/webp"},
		{"scan.pdf", pdfMagic, "application/pdf"},
		{"noext", pngMagic, "image/png"}, // the content decides, not the name
		{"notes.txt", "plain text\nwith lines\n", "text/plain; charset=utf-8"},
		{"log", "2026-01-01 error: <none>\n", "text/plain; charset=utf-8"},
		{"data.csv", "a,b,c\n1,2,3\n", "text/csv; charset=utf-8"},
		{"message.eml", mail, "message/rfc822"},
		{"archive.zip", zipMagic, "application/zip"},
		{"letter.docx", docxMagic, "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
		{"sheet.xlsx", docxMagic, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
		{"fake.docx", zipMagic, "application/zip"}, // a zip, but not OOXML
		{"windows.txt", "\xff\xfeh\x00i\x00", "text/plain; charset=utf-16le"},
	}
	for _, c := range cases {
		got, err := storage.Sniff([]byte(c.content), c.name)
		require.NoError(t, err, c.name)
		require.Equal(t, c.want, got, c.name)
	}
}

func TestSniffRefuses(t *testing.T) {
	cases := []struct{ name, content string }{
		{"cat.png", svgDoc}, // SVG disguised as an image
		{"cat.png", "<html><body><script>alert(1)</script>"}, // HTML disguised as an image
		{"cat.jpg", "  <!DOCTYPE html><p>x"},
		{"cat.gif", `<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>`},
		{"cat.png", "\xef\xbb\xbf" + svgDoc},                        // behind a UTF-8 BOM
		{"cat.txt", "\xff\xfe<\x00s\x00v\x00g\x00>\x00"},            // UTF-16 SVG
		{"readme.txt", svgDoc},                                      // markup whatever the name
		{"page", "<!-- comment --><div>"},                           // no extension at all
		{"image.svg", pngMagic},                                     // active extension, whatever the content
		{"index.html", "just text"},                                 // idem
		{"app.js", "console.log(1)"},                                // idem
		{"setup.exe", "MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00"}, // idem
		{"program", "MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff"},
		{"binary", "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00"},
		{"photo.png", "just some text"}, // the extension promises an image
		{"doc.pdf", pngMagic},           // and this one a PDF
		{"flash", "FWS\x0a\x00\x00\x00\x00"},
		{"sound", "ID3\x03\x00\x00\x00\x00\x00\x00"},
	}
	for _, c := range cases {
		_, err := storage.Sniff([]byte(c.content), c.name)
		require.Error(t, err, "%s %q", c.name, c.content)
		require.True(t, apperr.IsKind(err, apperr.Unsupported), "%s: %v", c.name, err)
	}
}
