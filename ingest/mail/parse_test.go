package mail

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// msg builds a raw CRLF message from header lines and a body.
func msg(headers []string, body string) []byte {
	return []byte(strings.Join(headers, "\r\n") + "\r\n\r\n" + strings.ReplaceAll(body, "\n", "\r\n"))
}

func TestParseErrors(t *testing.T) {
	if _, err := Parse(nil, Options{}); !errors.Is(err, ErrEmpty) {
		t.Errorf("nil: %v, want ErrEmpty", err)
	}
	if _, err := Parse([]byte(" \r\n\t"), Options{}); !errors.Is(err, ErrEmpty) {
		t.Errorf("blank: %v, want ErrEmpty", err)
	}
	big := msg([]string{"From: a@example.com"}, strings.Repeat("x", 200))
	if _, err := Parse(big, Options{MaxBytes: 100}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("too large: %v, want ErrTooLarge", err)
	}

	// No From: a Message for the quarantine view, and ErrNoSender.
	m, err := Parse(msg([]string{"Subject: orphan", "To: support@example.com"}, "hello"), Options{})
	if !errors.Is(err, ErrNoSender) || m == nil || m.Subject != "orphan" || m.Text != "hello" {
		t.Errorf("no From: %+v, %v; want the message and ErrNoSender", m, err)
	}
	// A From without a domain is not usable either.
	if _, err := Parse(msg([]string{"From: Moderator <moderator>"}, "x"), Options{}); !errors.Is(err, ErrNoSender) {
		t.Errorf("From without domain: %v, want ErrNoSender", err)
	}
	// Sender stands in for a missing From.
	m, err = Parse(msg([]string{"Sender: Bot <bot@Example.COM>"}, "x"), Options{})
	if err != nil || m.From != (Address{Name: "Bot", Email: "bot@example.com"}) {
		t.Errorf("Sender fallback: %+v, %v", m.From, err)
	}
	// A header block with no MIME at all, and text with no header at all.
	m, err = Parse([]byte("just one line of text, no header"), Options{})
	if !errors.Is(err, ErrNoSender) || m.Text != "just one line of text, no header" {
		t.Errorf("headerless: %+v, %v", m, err)
	}
}

func TestParseHeaders(t *testing.T) {
	raw := msg([]string{
		`From: =?ISO-8859-1?Q?Andr=E9?= Pirard <PIRARD@VM1.ULG.AC.BE>`,
		`To: "Support" <support@example.com>, second@example.com`,
		`Cc: broken address, ok@example.org`,
		`Reply-To: replies+t123@example.com`,
		// An encoded CR LF must not survive into the subject.
		`Subject: =?UTF-8?B?SGVsbG8NCkJjYzogZXZpbEBleGFtcGxlLmNvbQ==?= =?UTF-8?Q?_=E2=9C=93?=`,
		`Message-ID: <abc@example.com>`,
		`In-Reply-To: <x1@example.com> (comment)`,
		`References: <r1@example.com>`,
		`  <r2@example.com>`,
		`Date: Mon, 2 Mar 2026 10:00:00 +0100 (CET)`,
		`Content-Type: text/plain; charset=utf-8`,
	}, "body")
	m, err := Parse(raw, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if m.From != (Address{Name: "André Pirard", Email: "PIRARD@vm1.ulg.ac.be"}) {
		t.Errorf("From = %+v", m.From)
	}
	if len(m.To) != 2 || m.To[1].Email != "second@example.com" || len(m.ReplyTo) != 1 {
		t.Errorf("To = %+v, Reply-To = %+v", m.To, m.ReplyTo)
	}
	if len(m.Cc) != 1 || m.Cc[0].Email != "ok@example.org" {
		t.Errorf("Cc = %+v", m.Cc)
	}
	if m.Subject != "Hello Bcc: evil@example.com ✓" {
		t.Errorf("Subject = %q", m.Subject)
	}
	if m.MessageID != "abc@example.com" || m.InReplyTo != "x1@example.com" ||
		strings.Join(m.References, ",") != "r1@example.com,r2@example.com" {
		t.Errorf("threading: %q %q %q", m.MessageID, m.InReplyTo, m.References)
	}
	if !m.HasDate || m.Date.Format("2006-01-02T15:04Z07:00") != "2026-03-02T09:00Z" {
		t.Errorf("Date = %v", m.Date)
	}
}

func TestParseRawEightBitHeader(t *testing.T) {
	// A Latin-1 subject sent without encoding: read as windows-1252.
	raw := []byte("From: a@example.com\r\nSubject: Caf\xe9 cr\xe8me\r\n\r\nx")
	m, err := Parse(raw, Options{})
	if err != nil || m.Subject != "Café crème" {
		t.Errorf("Subject = %q, %v", m.Subject, err)
	}
}

func TestHTMLSanitising(t *testing.T) {
	html := `<div style="color: red; position: fixed; background: url(https://evil.example/x.png); font-weight: bold" onclick="steal()">Hi` +
		`<script>alert(1)</script><img src="cid:logo@x" alt="logo"><img src="CID:%3Cchart%40x%3E">` +
		`<a href="javascript:alert(1)">bad</a><a href="https://example.com/">good</a>` +
		`<a href="/api/v1/users/me/role?set=admin">relative</a><img src="//tracker.example/p.gif">` +
		`<iframe src="https://evil.example/"></iframe><form action="/x"><input name="p"></form></div>`
	raw := msg([]string{
		"From: a@example.com",
		`Content-Type: multipart/related; boundary="b"`,
	}, "--b\nContent-Type: text/html; charset=utf-8\n\n"+html+
		"\n--b\nContent-Type: image/png\nContent-ID: <logo@x>\nContent-Transfer-Encoding: base64\n\niVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==\n--b--\n")
	m, err := Parse(raw, Options{CIDURL: "/files/inline/{cid}?t=1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"<script", "alert", "onclick", "position", "url(", "javascript:", "<iframe", "<form", "<input", "cid:", "/api/v1/users", "tracker"} {
		if strings.Contains(strings.ToLower(m.FullHTML), bad) {
			t.Errorf("sanitised HTML still contains %q: %s", bad, m.FullHTML)
		}
	}
	for _, good := range []string{`color: red`, `font-weight: bold`, `src="/files/inline/logo@x?t=1"`, `src="/files/inline/chart@x?t=1"`, `href="https://example.com/"`} {
		if !strings.Contains(m.FullHTML, good) {
			t.Errorf("sanitised HTML lacks %q: %s", good, m.FullHTML)
		}
	}
	if len(m.Attachments) != 1 || !m.Attachments[0].Inline || m.Attachments[0].ContentType != "image/png" ||
		m.Attachments[0].ContentID != "logo@x" {
		t.Errorf("attachments = %+v", m.Attachments)
	}
	if m.Text != "Hi bad good ( https://example.com/ )" && !strings.Contains(m.Text, "Hi") {
		t.Errorf("Text = %q", m.Text)
	}
}

func TestAttachmentNames(t *testing.T) {
	long := strings.Repeat("ä", 200) + ".pdf"
	names := map[string]string{
		`"../../etc/passwd"`:             "passwd",
		`"C:\\Windows\\evil.txt"`:        "evil.txt",
		"\"in\u200bvoice\u202Etxt.exe\"": "invoicetxt.exe",
		`"=?UTF-8?B?LmJhc2hyYw==?="`:     "bashrc",
		`"` + long + `"`:                 "",
		"\"tab\there.txt\"":              "tab here.txt",
		`"report<1>.txt"`:                "report_1_.txt",
	}
	for header, want := range names {
		raw := msg([]string{"From: a@example.com", `Content-Type: multipart/mixed; boundary="b"`},
			"--b\nContent-Type: text/plain\n\nbody\n--b\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename="+header+"\n\ndata\n--b--\n")
		m, err := Parse(raw, Options{})
		if err != nil || len(m.Attachments) != 1 {
			t.Fatalf("%s: %+v, %v", header, m, err)
		}
		got := m.Attachments[0].Filename
		if len(got) > 255 || !utf8.ValidString(got) || strings.ContainsAny(got, "/\\\x00\u200b\u202e") {
			t.Errorf("%s: unsafe name %q", header, got)
		}
		if want != "" && got != want {
			t.Errorf("%s: name %q, want %q", header, got, want)
		}
		if want == "" && !strings.HasSuffix(got, ".pdf") {
			t.Errorf("long name lost its extension: %q", got)
		}
	}
}

func TestLoopVerdict(t *testing.T) {
	cases := []struct {
		name     string
		headers  []string
		suppress bool
		bounce   bool
		ours     bool
	}{
		{"human", []string{"From: a@example.com"}, false, false, false},
		{"auto-submitted no", []string{"From: a@example.com", "Auto-Submitted: no"}, false, false, false},
		{"auto-replied", []string{"From: a@example.com", "Auto-Submitted: auto-replied"}, true, false, false},
		{"auto-generated with params", []string{"From: a@example.com", "Auto-Submitted: Auto-Generated; owner-email=x@example.com"}, true, false, false},
		{"precedence bulk", []string{"From: a@example.com", "Precedence: bulk"}, true, false, false},
		{"precedence junk", []string{"From: a@example.com", "Precedence: JUNK"}, true, false, false},
		{"precedence first-class", []string{"From: a@example.com", "Precedence: first-class"}, false, false, false},
		{"list-id", []string{"From: a@example.com", "List-Id: <users.lists.example.org>"}, true, false, false},
		{"list-unsubscribe", []string{"From: a@example.com", "List-Unsubscribe: <mailto:u@example.org>"}, true, false, false},
		{"empty return-path", []string{"From: a@example.com", "Return-Path: <>"}, true, false, false},
		{"return-path set", []string{"From: a@example.com", "Return-Path: <a@example.com>"}, false, false, false},
		{"mailer-daemon", []string{"From: Mail Delivery System <MAILER-DAEMON@mx.example.com>"}, true, true, false},
		{"postmaster", []string{"From: postmaster@example.com"}, true, true, false},
		{"x-autoreply", []string{"From: a@example.com", "X-Autoreply: yes"}, true, false, false},
		{"x-autorespond", []string{"From: a@example.com", "X-Autorespond: vacation"}, true, false, false},
		{"x-auto-response-suppress", []string{"From: a@example.com", "X-Auto-Response-Suppress: All"}, true, false, false},
		{"our loop header", []string{"From: a@example.com", LoopHeader + ": 7f3a"}, true, false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := Parse(msg(c.headers, "text"), Options{})
			if err != nil {
				t.Fatal(err)
			}
			v := m.Loop
			if v.SuppressAutoReply != c.suppress || v.Bounce != c.bounce || v.Ours != c.ours {
				t.Errorf("verdict %+v, want suppress=%v bounce=%v ours=%v", v, c.suppress, c.bounce, c.ours)
			}
			if v.SuppressAutoReply && len(v.Reasons) == 0 {
				t.Error("suppressed without a reason")
			}
		})
	}
}

func TestLoopToken(t *testing.T) {
	for _, c := range []struct {
		value string
		ours  bool
	}{{"install-7f3a", true}, {"forged", false}} {
		m, err := Parse(msg([]string{"From: a@example.com", LoopHeader + ": " + c.value}, "x"), Options{LoopToken: "install-7f3a"})
		if err != nil || m.Loop.Ours != c.ours || !m.Loop.SuppressAutoReply {
			t.Errorf("%s: %+v, %v", c.value, m.Loop, err)
		}
	}
}

func TestBounceReport(t *testing.T) {
	raw := msg([]string{
		"From: Mail Delivery Subsystem <mailer-daemon@mx.example.com>",
		"To: support@example.com",
		"Subject: Undelivered Mail Returned to Sender",
		"Auto-Submitted: auto-replied",
		`Content-Type: multipart/report; report-type=delivery-status; boundary="r"`,
	}, "--r\nContent-Type: text/plain\n\nThe mail could not be delivered.\n"+
		"--r\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.com\n\n"+
		"Final-Recipient: rfc822; Gone.User@Example.org\nAction: failed\nStatus: 5.1.1\n\n"+
		"Final-Recipient: rfc822; ok@example.org\nAction: delayed\nStatus: 4.0.0\n"+
		"--r\nContent-Type: message/rfc822\n\nFrom: support@example.com\nSubject: Re: ticket\n\nhello\n--r--\n")
	m, err := Parse(raw, Options{})
	if err != nil {
		t.Fatal(err)
	}
	v := m.Loop
	if !v.SuppressAutoReply || !v.Bounce || strings.Join(v.BouncedRecipients, ",") != "Gone.User@example.org" {
		t.Errorf("verdict = %+v", v)
	}
}

func TestDescribe(t *testing.T) {
	out, err := Describe(msg([]string{
		"From: Bob <bob@example.com>", "Subject: Hi", "Message-ID: <m1@example.com>",
		`Content-Type: multipart/mixed; boundary="b"`,
	}, "--b\nContent-Type: text/html\n\n<p>Hello</p>\n--b\nContent-Type: image/png; name=\"a.png\"\nContent-Transfer-Encoding: base64\n\n"+
		"iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==\n--b--\n"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Accepted    bool   `json:"accepted"`
		Subject     string `json:"subject"`
		Text        string `json:"text"`
		MessageID   string `json:"message_id"`
		HTMLBytes   int    `json:"html_bytes"`
		From        Address
		Attachments []struct {
			Filename    string `json:"filename"`
			ContentType string `json:"content_type"`
			Size        int    `json:"size"`
		} `json:"attachments"`
		Loop map[string]any `json:"loop"`
	}
	if err := json.Unmarshal(out, &d); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !d.Accepted || d.Subject != "Hi" || d.Text != "Hello" || d.MessageID != "m1@example.com" || d.HTMLBytes == 0 ||
		d.From.Email != "bob@example.com" || len(d.Attachments) != 1 || d.Attachments[0].ContentType != "image/png" ||
		d.Attachments[0].Size != 70 || d.Loop == nil {
		t.Errorf("description: %s", out)
	}
	if strings.Contains(string(out), `"data"`) {
		t.Error("attachment bytes must not be in the description")
	}

	out, err = Describe([]byte("Subject: no sender\r\n\r\nx"))
	if err != nil || !strings.Contains(string(out), `"accepted": false`) || !strings.Contains(string(out), "no usable sender") {
		t.Errorf("quarantine description: %s, %v", out, err)
	}
}

func TestTryRecovers(t *testing.T) {
	m, err := try(func() *Message { panic("boom") })
	if m != nil || err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("try = %v, %v", m, err)
	}
}

// TestHostileShapes: shapes that are cheap to send and expensive or lossy
// to parse stay bounded and keep their text.
func TestHostileShapes(t *testing.T) {
	// enmime's cost grows with the square of the part count: capped.
	raw := msg([]string{"From: a@example.com", `Content-Type: multipart/mixed; boundary="b"`},
		strings.Repeat("--b\nContent-Type: image/png\n\nx\n", 3*maxPartLines)+"--b--\n")
	m, err := Parse(raw, Options{})
	if err != nil || len(m.Attachments) > maxPartLines || !strings.Contains(strings.Join(m.Errors, "|"), "boundary lines") {
		t.Errorf("many parts: %d attachments, errors %v, %v", len(m.Attachments), m.Errors, err)
	}
	// HTML nested deeper than the tree parser accepts still yields text.
	deep := strings.Repeat("<div>", 1000) + `hello there<a href="/api/v1/x">!</a>` + strings.Repeat("</div>", 1000)
	m, err = Parse(msg([]string{"From: a@example.com", "Content-Type: text/html"}, deep), Options{})
	if err != nil || normWS(m.Text) != "hello there!" || !strings.Contains(m.FullHTML, "hello there") || strings.Contains(m.FullHTML, "/api/v1/x") {
		t.Errorf("deep HTML: text %q, %v", m.Text, err)
	}
}

// TestRepairs: damage that loses the sender or the text without repair.
func TestRepairs(t *testing.T) {
	cases := []struct {
		name, raw, text string
	}{
		{"white space before the first field", " From: a@example.com\r\nSubject: s\r\n\r\nbody", "body"},
		{"mbox From line", "From a@example.com Mon Mar  2 10:00:00 2026\r\nFrom: a@example.com\r\n\r\nbody", "body"},
		{"byte-order mark and blank lines", "\xef\xbb\xbf\r\n\r\nFrom: a@example.com\r\n\r\nbody", "body"},
		{"multipart without boundary", "From: a@example.com\r\nContent-Type: multipart/report;\r\n\r\nthe text", "the text"},
		{"text declared base64 that is not", "From: a@example.com\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
			"plain words here that are not base64 at all, truly\r\n", "plain words here that are not base64 at all, truly"},
		{"missing ; before boundary", "From: a@example.com\r\nContent-Type: multipart/mixed\r\n boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\ninner\r\n--b--\r\n", "inner"},
		{"boundary never found", "From: a@example.com\r\nContent-Type: multipart/mixed; boundary=\"zz\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nstill here\r\n--b--\r\n", "still here"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := Parse([]byte(c.raw), Options{})
			if err != nil || m.From.Email != "a@example.com" || normWS(m.Text) != c.text {
				t.Errorf("from %v text %q errors %q, %v; want text %q", m.From, m.Text, m.Errors, err, c.text)
			}
		})
	}
}
