package mail

import (
	"strings"

	"github.com/jhillyerd/enmime/v2"

	"github.com/atumdesk/atumdesk/internal/storage"
)

// defaultExt names an unnamed part after its declared type, so the upload
// rules (which check an extension against the content) see a fitting one.
var defaultExt = map[string]string{
	"message/rfc822": ".eml", "text/plain": ".txt", "text/calendar": ".ics", "text/csv": ".csv",
	"image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif", "image/webp": ".webp",
	"application/pdf": ".pdf", "application/zip": ".zip",
}

// attachment turns a leaf part into a Part under the upload rules: the name
// sanitised, the type decided from the content (storage.Sniff).
func attachment(p *enmime.Part, cids map[string]bool) Part {
	dt := declaredType(p)
	a := Part{DeclaredType: dt, Size: len(p.Content), Data: p.Content, ContentID: cleanID(p.ContentID)}
	if name := headerText(p.FileName); name != "" {
		a.Filename, a.NameGiven = storage.SanitizeFilename(name), true
	} else {
		base := "attachment"
		if dt == "message/rfc822" {
			base = "message"
		}
		a.Filename = base + defaultExt[dt]
	}
	if ct, err := storage.Sniff(p.Content, a.Filename); err == nil {
		a.ContentType = ct
	} else {
		a.Refused = err.Error()
	}
	a.Inline = a.ContentID != "" && cids[strings.ToLower(a.ContentID)]
	return a
}
