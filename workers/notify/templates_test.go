package notify

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Every kind renders; user-supplied values are escaped in HTML and kept
// verbatim in plain text; the subject is one line.
func TestTemplatesRenderAndEscape(t *testing.T) {
	ts := mustParseTemplates()
	const hostile = `Help <script>alert(1)</script> & "quotes"`
	v := view{Org: "Acme <Corp>", Name: "Eve <eve@x>", Number: 42, Subject: hostile, Link: "https://desk.example.test/portal/tickets/1",
		Status: "waiting_customer", Reason: "<i>why</i>",
		Reply: &replyView{Author: "Alex <admin>", Text: "Line 1\nLine <2>", HTML: textHTML("Line 1\nLine <2>")},
		SLA:   &slaView{Metric: "first response", Percent: 80, Due: "Thu 26 Nov 2026 16:00 CET", Policy: "Gold <x>", Priority: "high"}}
	for _, k := range kinds {
		out, err := ts.render(k, nil, &v)
		require.NoError(t, err, k)
		require.NotContains(t, out.Subject, "\n", k)
		require.NotEmpty(t, out.Subject, k)
		require.Contains(t, out.Text, "ATUM DESK · Acme <Corp>", k)
		require.Contains(t, out.Text, v.Link, k)
		require.NotContains(t, out.HTML, "<script>", k)
		require.Contains(t, out.HTML, "ATUM&nbsp;DESK", k)
		require.Contains(t, out.HTML, "Acme &lt;Corp&gt;", k)
		require.NotContains(t, out.Text, "{{", k)
		if k != KindSLAEscalation {
			require.Contains(t, out.HTML, "Help &lt;script&gt;alert(1)&lt;/script&gt; &amp; &#34;quotes&#34;", k)
			require.Contains(t, out.Text, hostile, k)
		}
	}
	out, err := ts.render(KindAgentReply, nil, &v)
	require.NoError(t, err)
	require.Contains(t, out.HTML, "<p style=\"margin:0 0 12px;\">Line 1<br>\nLine &lt;2&gt;</p>")
	require.Contains(t, out.Text, "Line 1\nLine <2>")
	require.Contains(t, out.HTML, "Alex &lt;admin&gt;")
	require.Equal(t, "Re: "+hostile, out.Subject)
	v.Subject = "RE: printer"
	out, err = ts.render(KindAgentReply, nil, &v)
	require.NoError(t, err)
	require.Equal(t, "RE: printer", out.Subject, "one reply prefix")
}

func TestOrganisationOverride(t *testing.T) {
	ts := mustParseTemplates()
	v := view{Org: "Acme", Number: 7, Subject: "Printer <b>", Link: "https://x.test/p"}
	settings := `{"reopen_window_hours": 48, "mail_templates": {"ticket_received": {
		"subject": "Got it: {{.Subject}}", "html": "<p>Danke, {{.Subject}}!</p>"}}}`
	o := overrideOf(settings, KindTicketReceived)
	require.NotNil(t, o)
	out, err := ts.render(KindTicketReceived, o, &v)
	require.NoError(t, err)
	require.Equal(t, "Got it: Printer <b>", out.Subject)
	require.Contains(t, out.HTML, "<p>Danke, Printer &lt;b&gt;!</p>", "an override is escaped like the built-in")
	require.Contains(t, out.HTML, "ATUM&nbsp;DESK", "inside the ATUM frame")
	require.Contains(t, out.Text, "We received your request #7", "the text part not overridden stays built-in")
	// the built-in templates are untouched by an override
	out, err = ts.render(KindTicketReceived, nil, &v)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(out.Subject, "We received"))

	require.Nil(t, overrideOf(settings, KindAgentReply))
	require.Nil(t, overrideOf(`{}`, KindTicketReceived))
	require.Nil(t, overrideOf(`not json "mail_templates"`, KindTicketReceived))
	_, err = ts.render(KindTicketReceived, &Override{Subject: "{{.Nope"}, &v)
	require.Error(t, err, "a broken override is an error (the caller falls back)")
	_, err = ts.render(KindTicketReceived, &Override{Text: "{{.NoSuchField}}"}, &v)
	require.Error(t, err)
}

func TestOneLineAndIDs(t *testing.T) {
	require.Equal(t, "a b c", oneLine(" a\r\nb\t\x00c ", 10))
	require.Equal(t, "abcd…", oneLine("abcdefgh", 5))
	require.Equal(t, "x@y", cleanID(" <x@y> "))
	require.Empty(t, cleanID("<x y@z>"))
	require.Empty(t, cleanID("no-at-sign"))
	require.Equal(t, "desk.example.test", hostOf("https://Desk.Example.Test:8443/x"))
	require.Equal(t, "localhost", hostOf(""))
}
