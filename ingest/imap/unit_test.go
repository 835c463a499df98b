package imap

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseMessageID(t *testing.T) {
	for in, want := range map[string]string{
		"Message-ID: <abc@example.test>\r\n\r\n":                "abc@example.test",
		"Message-Id:   <abc@example.test>  \r\n":                "abc@example.test",
		"message-id: abc@example.test\r\n":                      "abc@example.test",
		"Message-ID:\r\n <folded@example.test>\r\n\r\n":         "folded@example.test",
		"Message-ID: <a b@example.test>\r\n":                    "",
		"Message-ID: <>\r\n":                                    "",
		"Message-ID: (comment) <c@example.test> (more)\r\n\r\n": "c@example.test",
		"Subject: no id\r\n\r\n":                                "",
		"":                                                      "",
		"garbage without colon\r\n":                             "",
	} {
		require.Equal(t, want, parseMessageID([]byte(in)), "%q", in)
	}
	long := "Message-ID: <" + strings.Repeat("x", 950) + "@e>\r\n"
	require.Empty(t, parseMessageID([]byte(long)))
}

func TestRawStore(t *testing.T) {
	dir := t.TempDir()
	s, err := NewRawStore(dir)
	require.NoError(t, err)
	raw := []byte("Subject: hi\r\n\r\nbody\r\n")
	sha, path, err := s.Put(raw)
	require.NoError(t, err)
	require.Len(t, sha, 64)
	require.Equal(t, filepath.Join(dir, sha[:2], sha[2:4], sha+".eml"), path)
	// idempotent
	sha2, path2, err := s.Put(raw)
	require.NoError(t, err)
	require.Equal(t, sha, sha2)
	require.Equal(t, path, path2)
	got, _, err := s.Get(sha)
	require.NoError(t, err)
	require.Equal(t, raw, got)
	// tampering is detected
	require.NoError(t, os.WriteFile(path, []byte("Subject: changed\r\n\r\n"), 0o600))
	_, _, err = s.Get(sha)
	require.ErrorContains(t, err, "does not match")
	// missing and invalid names
	_, _, err = s.Get(strings.Repeat("0", 64))
	require.ErrorContains(t, err, "missing")
	_, _, err = s.Get("../../etc/passwd")
	require.ErrorContains(t, err, "invalid")
	entries, err := os.ReadDir(filepath.Join(dir, "tmp"))
	require.NoError(t, err)
	require.Empty(t, entries, "no temporary files left")
}

func TestJitterAndDefaults(t *testing.T) {
	for range 1000 {
		d := jitter(time.Second)
		require.GreaterOrEqual(t, d, 800*time.Millisecond)
		require.LessOrEqual(t, d, 1200*time.Millisecond)
	}
	c := Config{}
	require.Error(t, c.defaults(), "DB and Sink are required")
	require.Error(t, (&Config{DB: nil}).defaults())
	require.True(t, IsPermanent(Permanent(os.ErrClosed)))
	require.ErrorIs(t, Permanent(os.ErrClosed), os.ErrClosed)
	require.False(t, IsPermanent(os.ErrClosed))
	require.Nil(t, Permanent(nil))
}

func TestTLSConfig(t *testing.T) {
	c, err := TLSConfig("")
	require.NoError(t, err)
	require.Nil(t, c)
	_, err = TLSConfig(filepath.Join(t.TempDir(), "missing.pem"))
	require.Error(t, err)
	empty := filepath.Join(t.TempDir(), "empty.pem")
	require.NoError(t, os.WriteFile(empty, []byte("not a certificate"), 0o600))
	_, err = TLSConfig(empty)
	require.ErrorContains(t, err, "no PEM certificate")
	c, err = TLSConfig(envOr("ATUMDESK_TEST_MAIL_CA", "../../data/mail/tls/cert.pem"))
	require.NoError(t, err)
	require.NotNil(t, c.RootCAs)
}
