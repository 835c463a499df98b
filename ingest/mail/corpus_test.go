package mail

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/atumdesk/atumdesk/internal/storage"
	"github.com/atumdesk/atumdesk/internal/testenv"
)

// summary is one line of ../shared/data/mail/stalwart/expected-summary*.jsonl
// (see ../shared/data/mail/README.md).
type summary struct {
	File    string  `json:"file"`
	Subject *string `json:"subject"`
	From    []struct {
		Name    *string `json:"name"`
		Address *string `json:"address"`
	} `json:"from"`
	Text         *string `json:"text"`
	TextFromHTML int     `json:"text_from_html"`
	Attachments  []struct {
		Name        *string `json:"name"`
		ContentType *string `json:"content_type"`
		Kind        string  `json:"kind"`
		Size        *int    `json:"size"`
	} `json:"attachments"`
}

func readSummaries(t testing.TB, name string) []summary {
	t.Helper()
	f, err := os.Open(testenv.SharedData("mail", "stalwart", name))
	if err != nil {
		t.Fatalf("corpus: %v", err)
	}
	defer f.Close()
	var out []summary
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var s summary
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			t.Fatalf("corpus line: %v", err)
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		t.Fatal("corpus: no expectations")
	}
	return out
}

// toCRLF turns every bare LF into CRLF, as the expectations of
// expected-summary.crlf.jsonl were made (and as IMAP delivers mail).
func toCRLF(b []byte) []byte {
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	return bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))
}

// toLF removes every CR, as for expected-summary.jsonl.
func toLF(b []byte) []byte { return bytes.ReplaceAll(b, []byte("\r"), nil) }

func normWS(s string) string { return strings.Join(strings.Fields(s), " ") }

// knownDifferences are the fields where this parser deliberately or
// unavoidably disagrees with mail-parser's expectations; each is explained
// in testdata/DIFFERENCES.md. A difference not listed fails the test.
var knownDifferences = map[string]string{
	"malformed/001.eml attachments": "A boundaries", "malformed/001.eml text": "A boundaries",
	"malformed/002.eml attachments": "B salvage", "malformed/002.eml text": "B salvage",
	"malformed/003.eml attachments": "A boundaries", "malformed/003.eml text": "A boundaries",
	"malformed/004.eml attachments": "A boundaries, B salvage", "malformed/004.eml text": "A boundaries, B salvage",
	"malformed/005.eml text":        "A boundaries, B salvage",
	"malformed/006.eml attachments": "A boundaries", "malformed/006.eml text": "A boundaries",
	"malformed/007.eml attachments": "C empty parts",
	"malformed/008.eml attachments": "A boundaries, D RFC 8621 views", "malformed/008.eml text": "A boundaries, D RFC 8621 views",
	"malformed/009.eml attachments": "A boundaries", "malformed/009.eml text": "A boundaries",
	"malformed/011.eml attachments": "A boundaries", "malformed/011.eml text": "A boundaries",
	"malformed/012.eml attachments": "A boundaries",
	"malformed/013.eml text":        "H final delimiter without line break (LF only)",
	"malformed/014.eml text":        "H final delimiter without line break (LF only)",
	"malformed/016.eml attachments": "A boundaries (prefixes over 70 chars)", "malformed/016.eml text": "A boundaries (prefixes over 70 chars)",
	"malformed/017.eml attachments":  "E repaired Content-Disposition",
	"malformed/019.eml text":         "F text from HTML",
	"malformed/020.eml text":         "F text from HTML, G duplicate Content-Type",
	"malformed/021.eml text":         "F text from HTML, G duplicate Content-Type",
	"rfc/000.eml attachments":        "I corrupt base64",
	"thirdparty/002.eml attachments": "I corrupt base64", "thirdparty/002.eml text": "I corrupt base64",
	"thirdparty/005.eml text": "J odd UTF-16 byte (CRLF only)",
	"thirdparty/007.eml from": "K sender without domain",
}

// compareSummary returns the mismatching fields of one message.
func compareSummary(exp summary, m *Message, err error) map[string]string {
	diff := map[string]string{}
	if m == nil {
		diff["parse"] = fmt.Sprintf("no message: %v", err)
		return diff
	}
	// 1. subject
	if want := deref(exp.Subject); m.Subject != want {
		diff["subject"] = fmt.Sprintf("got %q want %q", m.Subject, want)
	}
	// 2. from
	switch {
	case len(exp.From) == 0 || exp.From[0].Address == nil:
		if !errors.Is(err, ErrNoSender) {
			diff["from"] = fmt.Sprintf("got %v (err %v), want no sender", m.From, err)
		}
	default:
		want := Address{Name: deref(exp.From[0].Name), Email: lowerDomain(*exp.From[0].Address)}
		if m.From != want {
			diff["from"] = fmt.Sprintf("got %v want %v", m.From, want)
		}
	}
	// 3. text
	switch {
	case exp.Text != nil:
		// Text keeps no NUL or other C0 control characters, by design.
		if got, want := normWS(m.FullText), normWS(dropControls(*exp.Text)); got != want {
			diff["text"] = fmt.Sprintf("got %q want %q", clip(got), clip(want))
		}
	case exp.TextFromHTML > 0:
		if normWS(m.FullText) == "" {
			diff["text"] = "no text rendered from the HTML body"
		}
	default:
		if got := normWS(m.FullText); got != "" {
			diff["text"] = fmt.Sprintf("got %q want no text", clip(got))
		}
	}
	// 4. attachments: names, types, sizes, in order
	var got, want []string
	for _, a := range m.Attachments {
		name := "-"
		if a.NameGiven {
			name = a.Filename
		}
		got = append(got, fmt.Sprintf("%s|%s|%d", name, a.DeclaredType, a.Size))
	}
	for _, a := range exp.Attachments {
		name := "-"
		if a.Name != nil && strings.TrimSpace(*a.Name) != "" {
			name = storage.SanitizeFilename(*a.Name)
		}
		// The RFC 2045/2046 defaults for a part without Content-Type.
		ct := "text/plain"
		if a.Kind == "Message" {
			ct = "message/rfc822"
		}
		if a.ContentType != nil {
			ct = strings.ToLower(*a.ContentType)
		}
		size := -1
		if a.Size != nil {
			size = *a.Size
		}
		want = append(want, fmt.Sprintf("%s|%s|%d", name, ct, size))
	}
	if len(got) == len(want) {
		for i := range want {
			if strings.HasSuffix(want[i], "|-1") { // nested message: size not compared
				got[i] = got[i][:strings.LastIndexByte(got[i], '|')] + "|-1"
			}
		}
	}
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		diff["attachments"] = fmt.Sprintf("got [%s] want [%s]", strings.Join(got, "; "), strings.Join(want, "; "))
	}
	return diff
}

func dropControls(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\n' && r != '\t' && r != '\r' {
			return -1
		}
		return r
	}, s)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func lowerDomain(a string) string {
	if i := strings.LastIndexByte(a, '@'); i >= 0 {
		return a[:i+1] + strings.ToLower(a[i+1:])
	}
	return a
}

func clip(s string) string {
	if len(s) > 160 {
		return s[:160] + "…"
	}
	return s
}

// TestStalwartCorpus parses every message of the shared stalwart corpus and
// compares subject, from, text and attachments with mail-parser's
// expectations, both as IMAP delivers it (CRLF) and with LF line ends.
func TestStalwartCorpus(t *testing.T) {
	seen := map[string]bool{} // known differences that still occur
	for _, variant := range []struct {
		name, summaries string
		convert         func([]byte) []byte
	}{
		{"crlf", "expected-summary.crlf.jsonl", toCRLF},
		{"lf", "expected-summary.jsonl", toLF},
	} {
		t.Run(variant.name, func(t *testing.T) {
			fields, matched := 0, 0
			perField := map[string]int{}
			perSet := map[string][2]int{} // sub-folder -> messages, fully matching
			for _, exp := range readSummaries(t, variant.summaries) {
				raw, err := os.ReadFile(testenv.SharedData("mail", "stalwart", exp.File))
				if err != nil {
					t.Fatal(err)
				}
				m, perr := Parse(variant.convert(raw), Options{})
				diff := compareSummary(exp, m, perr)
				fields += 4
				matched += 4 - len(diff)
				set, _, _ := strings.Cut(exp.File, "/")
				c := perSet[set]
				c[0]++
				if len(diff) == 0 {
					c[1]++
				}
				perSet[set] = c
				keys := make([]string, 0, len(diff))
				for k := range diff {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for _, k := range keys {
					perField[k]++
					if _, ok := knownDifferences[exp.File+" "+k]; ok {
						seen[exp.File+" "+k] = true
						continue
					}
					t.Errorf("%s %s: %s", exp.File, k, diff[k])
				}
			}
			t.Logf("%s: %d/%d fields match (%.1f%%); mismatches per field: %v; messages matching on all four fields per set: %v",
				variant.name, matched, fields, 100*float64(matched)/float64(fields), perField, perSet)
		})
	}
	for k := range knownDifferences {
		if !seen[k] {
			t.Errorf("%s now matches: remove it from knownDifferences and testdata/DIFFERENCES.md", k)
		}
	}
}

// TestMalformedCorpus: every message of the shared malformed corpus yields a
// Message, or a typed error the caller quarantines; never a panic, and
// quickly.
func TestMalformedCorpus(t *testing.T) {
	var files []string
	for _, dir := range []string{testenv.SharedData("mail", "malformed"), testenv.SharedData("mail", "stalwart", "malformed")} {
		err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".raw") || strings.HasSuffix(p, ".eml")) {
				files = append(files, p)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(files) < 60 {
		t.Fatalf("malformed corpus: only %d files found", len(files))
	}
	quarantined := 0
	var empty []string // nothing recovered at all
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		m, err := Parse(raw, Options{})
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s: took %v", f, d)
		}
		switch {
		case err == nil && m != nil:
		case errors.Is(err, ErrNoSender) && m != nil:
			quarantined++
		default:
			t.Errorf("%s: Parse = %v, %v; want a Message or a quarantine error", f, m, err)
			continue
		}
		if m.Subject == "" && strings.TrimSpace(m.FullText) == "" && len(m.Attachments) == 0 {
			empty = append(empty, filepath.Base(filepath.Dir(f))+"/"+filepath.Base(f))
		}
	}
	t.Logf("%d malformed messages: %d parsed, %d quarantined (no usable sender); nothing recovered from %v",
		len(files), len(files)-quarantined, quarantined, empty)
}
