package mail

import (
	"encoding/json"
	"time"
)

// Description is what ingest makes of one raw message, for the operator
// command `atumdesk mail parse FILE.eml`.
type Description struct {
	// Accepted is false when ingest would quarantine the message; Error
	// then says why (no usable sender, empty, too large).
	Accepted   bool       `json:"accepted"`
	Error      string     `json:"error,omitempty"`
	From       *Address   `json:"from,omitempty"`
	ReplyTo    []Address  `json:"reply_to,omitempty"`
	To         []Address  `json:"to,omitempty"`
	Cc         []Address  `json:"cc,omitempty"`
	Subject    string     `json:"subject"`
	Date       *time.Time `json:"date,omitempty"`
	MessageID  string     `json:"message_id,omitempty"`
	InReplyTo  string     `json:"in_reply_to,omitempty"`
	References []string   `json:"references,omitempty"`
	Text       string     `json:"text"`
	FullText   string     `json:"full_text"`
	// Sizes in bytes of the sanitised HTML (new text, whole body).
	HTMLBytes     int         `json:"html_bytes"`
	FullHTMLBytes int         `json:"full_html_bytes"`
	Attachments   []Part      `json:"attachments"`
	Loop          LoopVerdict `json:"loop"`
	Errors        []string    `json:"errors,omitempty"`
}

// Describe parses raw with the default options and returns the Description
// as indented JSON. Parse failures are part of the description, not an
// error; the error is only for encoding.
func Describe(raw []byte) ([]byte, error) {
	return json.MarshalIndent(describe(raw), "", "  ")
}

func describe(raw []byte) Description {
	m, err := Parse(raw, Options{})
	d := Description{Accepted: err == nil, Attachments: []Part{}}
	if err != nil {
		d.Error = err.Error()
	}
	if m == nil {
		return d
	}
	if m.From.Email != "" {
		d.From = &m.From
	}
	if m.HasDate {
		d.Date = &m.Date
	}
	d.ReplyTo, d.To, d.Cc, d.Subject = m.ReplyTo, m.To, m.Cc, m.Subject
	d.MessageID, d.InReplyTo, d.References = m.MessageID, m.InReplyTo, m.References
	d.Text, d.FullText = m.Text, m.FullText
	d.HTMLBytes, d.FullHTMLBytes = len(m.HTML), len(m.FullHTML)
	if m.Attachments != nil {
		d.Attachments = m.Attachments
	}
	d.Loop, d.Errors = m.Loop, m.Errors
	return d
}
