package mail

import (
	"strings"
	"testing"
)

func TestStripQuotes(t *testing.T) {
	cases := []struct {
		name, in, want string
	}{
		{"no quote", "Hello\n\nthe printer is broken.", "Hello\n\nthe printer is broken."},
		{"our marker", "Fixed, thanks.\n\n" + ReplyMarker + "\nTicket #1 was updated.", "Fixed, thanks."},
		{"quoted marker with attribution",
			"Fixed.\n\nOn Mon, 2 Mar 2026 at 10:00, Support <s@example.com> wrote:\n> " + ReplyMarker + "\n> old", "Fixed."},
		{"en attribution, quote below", "Yes.\n\nOn Tue, Mar 3, 2026 at 9:00 AM Bob <bob@example.com> wrote:\n> Does it work?\n>", "Yes."},
		{"attribution wrapped over two lines", "Yes.\n\nOn Tue, Mar 3, 2026 at 9:00 AM Bob Example <\nbob@example.com> wrote:\n\n> Does it work?", "Yes."},
		{"de attribution", "Ja.\n\nAm Di., 3. März 2026 um 09:00 Uhr schrieb Bob <bob@example.com>:\n> Geht es?", "Ja."},
		{"fr attribution", "Oui.\n\nLe mar. 3 mars 2026 à 09:00, Bob <bob@example.com> a écrit :\n> Ça marche ?", "Oui."},
		{"fr attribution with no-break space", "Oui.\n\nLe 3 mars 2026 à 09:00, Bob a écrit\u00a0:\n> Ça marche ?", "Oui."},
		{"es attribution", "Sí.\n\nEl mar, 3 mar 2026 a las 9:00, Bob (<bob@example.com>) escribió:\n> ¿Funciona?", "Sí."},
		{"attribution without quotes is a hard cut", "Done.\n\nOn 3 Mar 2026, at 09:00, Bob <bob@example.com> wrote:\n\nIs it done?", "Done."},
		{"original message", "See below.\n\n-----Original Message-----\nFrom: Bob\nSent: today\nTo: me\nSubject: x\n\nold", "See below."},
		{"original message de", "Siehe unten.\n\n-----Ursprüngliche Nachricht-----\nVon: Bob\n\nalt", "Siehe unten."},
		{"outlook header block", "Thanks!\n\n________________________________\nFrom: Bob <bob@example.com>\nSent: Monday, March 2, 2026 9:00 AM\nTo: Me\nSubject: Hi\n\nold", "Thanks!"},
		{"outlook header block de", "Danke!\n\nVon: Bob <bob@example.com>\nGesendet: Montag, 2. März 2026 09:00\nAn: Ich\nBetreff: Hallo\n\nalt", "Danke!"},
		{"a lone From: line is text", "From: the accounting team\nwe need two more licences.", "From: the accounting team\nwe need two more licences."},
		{"forwarded header block is content", "FYI\n\n---------- Forwarded message ---------\nFrom: Bob <bob@example.com>\nDate: Mon, 2 Mar 2026\nSubject: Error\nTo: me\n\nThe job failed.",
			"FYI\n\n---------- Forwarded message ---------\nFrom: Bob <bob@example.com>\nDate: Mon, 2 Mar 2026\nSubject: Error\nTo: me\n\nThe job failed."},
		{"trailing quote run", "Answer.\n> q1\n> q2", "Answer."},
		{"leading quote run (bottom posting)", "Bob wrote:\n> question?\n\nanswer.", "answer."},
		{"inline answers keep inner quotes", "> q1\na1\n> q2\na2", "a1\n> q2\na2"},
		{"signature", "Hi,\nit works.\n-- \nBob\nACME Ltd", "Hi,\nit works."},
		{"signature without trailing space", "Hi,\nit works.\n--\nBob", "Hi,\nit works."},
		{"mobile signature", "Ok!\n\nSent from my iPhone", "Ok!"},
		{"mobile signature de", "Ok!\n\nVon meinem iPhone gesendet\n\n> Am 2. März schrieb Bob:\n> x", "Ok!"},
		{"only quotes", "On Mon, 2 Mar 2026, Bob wrote:\n> all quoted", ""},
		{"a sentence ending in wrote: without quotes stays", "This is what my colleague wrote:\nthe server is down.", "This is what my colleague wrote:\nthe server is down."},
		{"crlf", "Yes.\r\n\r\nOn Mon, 2 Mar 2026, Bob <b@example.com> wrote:\r\n> q", "Yes."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := StripQuotes(c.in); got != c.want {
				t.Errorf("StripQuotes(%q)\n got %q\nwant %q", c.in, got, c.want)
			}
		})
	}
}

func TestStripHTMLQuotes(t *testing.T) {
	cases := []struct {
		name, in, want string
	}{
		{"gmail", `<div>New</div><div class="gmail_quote"><div class="gmail_attr">On Mon, Bob wrote:</div><blockquote class="gmail_quote">old</blockquote></div>`, "New"},
		{"apple cite with attribution", `<div>New</div><div><br><blockquote type="cite"><div>On 2 Mar 2026, at 09:00, Bob &lt;b@example.com&gt; wrote:</div>old</blockquote></div>`, "New"},
		{"attribution outside the cite", `<p>New</p><div>On 2 Mar 2026, at 09:00, Bob wrote:</div><blockquote type="cite">old</blockquote>`, "New"},
		{"thunderbird", `<p>New</p><div class="moz-cite-prefix">On 02/03/2026, Bob wrote:</div><blockquote type="cite">old</blockquote>`, "New"},
		{"outlook web", `<div>New</div><div id="appendonsend"></div><hr><div id="divRplyFwdMsg">From: Bob</div><div>old</div>`, "New"},
		{"outlook desktop", `<p>New</p><div style="border:none;border-top:solid #E1E1E1 1.0pt"><p><b>From:</b> Bob</p></div><p>old</p>`, "New"},
		{"marker", `<p>New</p><div><p>` + ReplyMarker + `</p><p>old</p></div><p>older</p>`, "New"},
		{"original message", `<p>New</p><p>-----Original Message-----</p><p>old</p>`, "New"},
		{"inline reply quotes without cite type stay", `<p>New</p><blockquote>a quotation the customer wrote</blockquote>`, "New > > a quotation the customer wrote"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, _ := stripHTMLQuotes(c.in)
			got := normWS(htmlToText(out))
			if got != c.want {
				t.Errorf("got %q want %q", got, c.want)
			}
		})
	}
}

// TestMarkerConstant guards the outbound contract: templates render the
// marker verbatim on its own line.
func TestMarkerConstant(t *testing.T) {
	if strings.ContainsAny(ReplyMarker, "\r\n<>&") || len(ReplyMarker) > 80 {
		t.Fatalf("ReplyMarker %q must be one short line without markup characters", ReplyMarker)
	}
}
