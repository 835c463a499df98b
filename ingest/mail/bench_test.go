package mail

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/atumdesk/atumdesk/internal/testenv"
)

// corpus loads every message of the shared stalwart corpus (CRLF, as IMAP
// delivers it) and the reply samples.
func corpus(tb testing.TB) [][]byte {
	tb.Helper()
	var out [][]byte
	for _, pattern := range []string{
		testenv.SharedData("mail", "stalwart", "*", "*.eml"),
		filepath.Join("testdata", "replies", "*.eml"),
	} {
		files, err := filepath.Glob(pattern)
		if err != nil {
			tb.Fatal(err)
		}
		for _, f := range files {
			raw, err := os.ReadFile(f)
			if err != nil {
				tb.Fatal(err)
			}
			out = append(out, toCRLF(raw))
		}
	}
	if len(out) < 60 {
		tb.Fatalf("corpus: %d messages", len(out))
	}
	return out
}

// BenchmarkParseCorpus reports parse throughput over the corpus in
// messages per second.
func BenchmarkParseCorpus(b *testing.B) {
	msgs := corpus(b)
	size := 0
	for _, m := range msgs {
		size += len(m)
	}
	b.SetBytes(int64(size / len(msgs)))
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		_, _ = Parse(msgs[n%len(msgs)], Options{})
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
}
