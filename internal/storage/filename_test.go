package storage_test

import (
	"mime"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/atumdesk/atumdesk/internal/storage"
)

func TestSanitizeFilename(t *testing.T) {
	cases := []struct{ in, want string }{
		{"report.pdf", "report.pdf"},
		{"../../etc/passwd", "passwd"},
		{`..\..\windows\system32\drivers.txt`, "drivers.txt"},
		{"/var/www/html/shell.php", "shell.php"},
		{`C:\Users\me\Desktop\invoice.pdf`, "invoice.pdf"},
		{"..／..／secret.txt", "secret.txt"}, // full-width solidus folds to "/" first
		{"ｆｉｌｅ．ｔｘｔ", "file.txt"},           // NFKC
		{"a\x00b.txt", "ab.txt"},           // NUL
		{"bell\x07\x1b[31m.txt", "bell[31m.txt"},
		{".htaccess", "htaccess"},
		{".\u200bhtaccess", "htaccess"}, // CVE-2026-28289: ZWSP after the dot
		{"\u200b.htaccess", "htaccess"},
		{"..\u200b/..\u200b/x.txt", "x.txt"},
		{"invoice\u202egpj.exe", "invoicegpj.exe"}, // RLO stripped (the .exe is refused by Sniff)
		{"report\u2066.pdf\u2069", "report.pdf"},   // bidi isolates
		{"zero\u200dwidth\ufeff.txt", "zerowidth.txt"},
		{"hangul\u3164filler.txt", "hangulfiller.txt"},
		{"tab\there  and\r\nnewline.txt", "tab here and newline.txt"},
		{"\u00a0\u2003spaces\u3000.txt", "spaces .txt"},
		{`a<b>c:"d|e?f*.txt`, "a_b_c__d_e_f_.txt"},
		{"trailing. . ", "trailing"},
		{"", "attachment"},
		{"   ", "attachment"},
		{"...", "attachment"},
		{"dir/", "attachment"},
		{"\xff\xfe.txt", "txt"}, // invalid UTF-8 dropped, then the leading dot
		{"private\ue000use.txt", "privateuse.txt"},
		{"Bericht März 2026.xlsx", "Bericht März 2026.xlsx"},
		{"日本語のファイル.pdf", "日本語のファイル.pdf"},
	}
	for _, c := range cases {
		require.Equal(t, c.want, storage.SanitizeFilename(c.in), "%q", c.in)
	}
}

func TestSanitizeFilenameLength(t *testing.T) {
	long := storage.SanitizeFilename(strings.Repeat("x", 300) + ".pdf")
	require.Len(t, long, storage.MaxFilenameBytes)
	require.True(t, strings.HasSuffix(long, ".pdf"))

	multi := storage.SanitizeFilename(strings.Repeat("é", 200) + ".txt") // 404 bytes
	require.LessOrEqual(t, len(multi), storage.MaxFilenameBytes)
	require.True(t, utf8.ValidString(multi))
	require.True(t, strings.HasSuffix(multi, ".txt"))

	noExt := storage.SanitizeFilename(strings.Repeat("😀", 100)) // 400 bytes, cut at a rune boundary
	require.LessOrEqual(t, len(noExt), storage.MaxFilenameBytes)
	require.True(t, utf8.ValidString(noExt))
}

func TestContentDisposition(t *testing.T) {
	name := `résumé "final"; 100%.pdf`
	cd := storage.ContentDisposition(name)
	require.Equal(t, `attachment; filename="r_sum_ _final_; 100_.pdf"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22%3B%20100%25.pdf`, cd)
	disp, params, err := mime.ParseMediaType(cd)
	require.NoError(t, err)
	require.Equal(t, "attachment", disp)
	require.Equal(t, name, params["filename"], "filename* carries the exact name")
}
