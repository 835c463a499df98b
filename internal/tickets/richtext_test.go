package tickets

import (
	"strings"
	"testing"
)

func TestSanitizer(t *testing.T) {
	z := NewSanitizer()
	cases := []struct {
		in, text   string
		htmlHas    []string
		htmlHasNot []string
	}{
		{`<p>Hello <b>there</b> &amp; welcome</p><p>Line two</p>`, "Hello there & welcome\n\nLine two",
			[]string{"<b>there</b>", "&amp;"}, nil},
		{`<img src=x onerror=alert(1)><script>alert(2)</script>ok`, "ok", nil, []string{"onerror", "script", "alert"}},
		{`<a href="javascript:alert(1)">click</a>`, "click", nil, []string{"javascript"}},
		{`<a href="https://example.com">site</a>`, "site", []string{`href="https://example.com"`, `rel="nofollow"`}, nil},
		{`<svg><script>x</script></svg><iframe src=//evil></iframe>`, "", nil, []string{"svg", "iframe", "script"}},
		{`<ul><li>one</li><li>two</li></ul>line<br>break`, "one\ntwo\n\nline\nbreak", []string{"<li>one</li>"}, nil},
		{`a &lt;b&gt; c`, "a <b> c", nil, nil},
		{"<div>\n  <p>  first  </p>\n\n\n  <p>second</p>\n</div>", "first\n\nsecond", nil, nil},
	}
	for _, c := range cases {
		got := z.FromHTML(c.in)
		if got.Text != c.text {
			t.Errorf("FromHTML(%q).Text = %q, want %q", c.in, got.Text, c.text)
		}
		for _, s := range c.htmlHas {
			if !strings.Contains(*got.HTML, s) {
				t.Errorf("FromHTML(%q).HTML = %q, want it to contain %q", c.in, *got.HTML, s)
			}
		}
		for _, s := range c.htmlHasNot {
			if strings.Contains(strings.ToLower(*got.HTML), s) {
				t.Errorf("FromHTML(%q).HTML = %q, must not contain %q", c.in, *got.HTML, s)
			}
		}
	}
}
