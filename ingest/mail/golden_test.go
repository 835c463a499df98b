package mail

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the testdata/replies/*.golden files")

// golden renders what matters of a parsed reply for review.
func golden(m *Message) string {
	var b strings.Builder
	fmt.Fprintf(&b, "from: %s\nsubject: %s\n", m.From, m.Subject)
	fmt.Fprintf(&b, "message-id: %s\nin-reply-to: %s\nreferences: %s\n", m.MessageID, m.InReplyTo, strings.Join(m.References, " "))
	for _, a := range m.Attachments {
		fmt.Fprintf(&b, "attachment: %q declared=%s sniffed=%q refused=%q size=%d inline=%v\n",
			a.Filename, a.DeclaredType, a.ContentType, a.Refused, a.Size, a.Inline)
	}
	fmt.Fprintf(&b, "loop: suppress=%v bounce=%v ours=%v %v\n", m.Loop.SuppressAutoReply, m.Loop.Bounce, m.Loop.Ours, m.Loop.Reasons)
	fmt.Fprintf(&b, "=== text (new)\n%s\n", m.Text)
	if m.HTML != "" {
		fmt.Fprintf(&b, "=== html (new, sanitised)\n%s\n", m.HTML)
	}
	return b.String()
}

// TestReplyGolden parses replies written in the formats of Gmail, Outlook
// (web and desktop), Apple Mail and Thunderbird, in several languages, and
// compares the new text and HTML with the reviewed golden files. Run with
// -update to rewrite them, then review the diff.
func TestReplyGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "replies", "*.eml"))
	if err != nil || len(files) < 10 {
		t.Fatalf("replies: %v, %d files", err, len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			m, err := Parse(toCRLF(raw), Options{})
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			got := golden(m)
			path := strings.TrimSuffix(f, ".eml") + ".golden"
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs from %s:\n--- got\n%s\n--- want\n%s", f, path, got, want)
			}
		})
	}
}
