package notify

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"
)

// The templates: templates/<kind>.tmpl defines the kind's "subject",
// "linklabel", "text" and "html"; layout.txt.tmpl and layout.html.tmpl
// wrap the body in the ATUM frame, its link and its footer. Plain text
// goes through text/template, HTML through html/template (every value is
// escaped for its context; a reply's HTML, sanitised when it was written,
// is the one value passed as template.HTML).
//
//go:embed templates/*.tmpl
var files embed.FS

var kinds = []string{KindTicketReceived, KindAgentReply, KindStatusChanged, KindCSATInvitation, KindSLAEscalation}

// view is what the templates see.
type view struct {
	Org     string // the organisation's name
	Name    string // the recipient's name ("" when unknown)
	Number  int64
	Subject string
	Link    string // portal (requester) or desk (staff) page of the ticket
	Staff   bool   // mail to staff
	// Status is waiting_customer, resolved, cancelled or reopened (status
	// mails); Reason the note staff gave with the change.
	Status string
	Reason string
	Reply  *replyView
	SLA    *slaView
}

type replyView struct {
	Author string
	Text   string
	HTML   htmltemplate.HTML
}

type slaView struct {
	Metric   string // "first response", "resolution"
	Breach   bool
	Percent  int
	Due      string // in the organisation's time zone
	Policy   string
	Priority string
	Assignee string
}

// Override is an organisation's own wording of one kind, from
// organizations.settings {"mail_templates": {"<kind>": {...}}}: Subject
// and Text are text/template bodies, HTML an html/template body shown
// inside the ATUM frame, each replacing the built-in one when set. An
// override that fails to parse or run falls back to the built-in.
type Override struct {
	Subject string `json:"subject"`
	Text    string `json:"text"`
	HTML    string `json:"html"`
}

type templates struct {
	text map[string]*texttemplate.Template
	html map[string]*htmltemplate.Template
}

// mustParseTemplates parses the embedded templates: they are part of the
// binary, so an error is a bug (the package tests parse them all).
func mustParseTemplates() *templates {
	ts := &templates{text: map[string]*texttemplate.Template{}, html: map[string]*htmltemplate.Template{}}
	for _, k := range kinds {
		t, h, err := parseKind(k, nil)
		if err != nil {
			panic(err)
		}
		ts.text[k], ts.html[k] = t, h
	}
	return ts
}

// parseKind parses one kind's templates, with an organisation's override
// (o may be nil) replacing the parts it sets.
func parseKind(kind string, o *Override) (*texttemplate.Template, *htmltemplate.Template, error) {
	t, err := texttemplate.New(kind).Funcs(texttemplate.FuncMap(funcs)).ParseFS(files, "templates/layout.txt.tmpl", "templates/"+kind+".tmpl")
	if err != nil {
		return nil, nil, fmt.Errorf("notify: templates of %s: %w", kind, err)
	}
	h, err := htmltemplate.New(kind).Funcs(htmltemplate.FuncMap(funcs)).ParseFS(files, "templates/layout.html.tmpl", "templates/"+kind+".tmpl")
	if err != nil {
		return nil, nil, fmt.Errorf("notify: templates of %s: %w", kind, err)
	}
	if o == nil {
		return t, h, nil
	}
	for name, body := range map[string]string{"subject": o.Subject, "text": o.Text} {
		if strings.TrimSpace(body) == "" {
			continue
		}
		if _, err := t.New(name).Parse(body); err != nil {
			return nil, nil, fmt.Errorf("notify: %s template of %s: %w", name, kind, err)
		}
		if name == "subject" {
			if _, err := h.New(name).Parse(body); err != nil {
				return nil, nil, fmt.Errorf("notify: %s template of %s: %w", name, kind, err)
			}
		}
	}
	if strings.TrimSpace(o.HTML) != "" {
		if _, err := h.New("html").Parse(o.HTML); err != nil {
			return nil, nil, fmt.Errorf("notify: html template of %s: %w", kind, err)
		}
	}
	return t, h, nil
}

// rendered is one mail's subject (without the ticket token) and bodies.
type rendered struct {
	Subject, Text, HTML string
}

// render runs kind's templates on v, with the organisation's override o
// (nil: the built-in ones).
func (ts *templates) render(kind string, o *Override, v *view) (rendered, error) {
	t, h := ts.text[kind], ts.html[kind]
	if t == nil {
		return rendered{}, fmt.Errorf("notify: no templates for kind %q", kind)
	}
	if o != nil {
		var err error
		if t, h, err = parseKind(kind, o); err != nil {
			return rendered{}, err
		}
	}
	return execute(t, h, v)
}

func execute(t *texttemplate.Template, h *htmltemplate.Template, v *view) (rendered, error) {
	var subject, text, html bytes.Buffer
	if err := t.ExecuteTemplate(&subject, "subject", v); err != nil {
		return rendered{}, fmt.Errorf("notify: subject: %w", err)
	}
	if err := t.ExecuteTemplate(&text, "text-layout", v); err != nil {
		return rendered{}, fmt.Errorf("notify: text: %w", err)
	}
	if err := h.ExecuteTemplate(&html, "html-layout", v); err != nil {
		return rendered{}, fmt.Errorf("notify: html: %w", err)
	}
	return rendered{Subject: oneLine(subject.String(), 300), Text: text.String(), HTML: html.String()}, nil
}

// overrideOf reads the organisation's override of kind, if any.
func overrideOf(settings, kind string) *Override {
	if !strings.Contains(settings, `"mail_templates"`) {
		return nil
	}
	var s struct {
		MailTemplates map[string]Override `json:"mail_templates"`
	}
	if json.Unmarshal([]byte(settings), &s) != nil {
		return nil
	}
	o, ok := s.MailTemplates[kind]
	if !ok || (strings.TrimSpace(o.Subject) == "" && strings.TrimSpace(o.Text) == "" && strings.TrimSpace(o.HTML) == "") {
		return nil
	}
	return &o
}

// funcs are the template functions: re prefixes a subject with "Re: "
// unless it has a reply prefix already.
var funcs = map[string]any{
	"re": func(s string) string {
		if l := strings.ToLower(s); strings.HasPrefix(l, "re:") || strings.HasPrefix(l, "aw:") {
			return s
		}
		return "Re: " + s
	},
}

// textHTML shows plain text as HTML: escaped, line breaks kept.
func textHTML(s string) htmltemplate.HTML {
	var b strings.Builder
	for i, para := range strings.Split(strings.ReplaceAll(strings.TrimSpace(s), "\r\n", "\n"), "\n\n") {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(`<p style="margin:0 0 12px;">`)
		b.WriteString(strings.ReplaceAll(htmltemplate.HTMLEscapeString(para), "\n", "<br>\n"))
		b.WriteString("</p>")
	}
	return htmltemplate.HTML(b.String())
}
