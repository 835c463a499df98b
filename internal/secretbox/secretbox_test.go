package secretbox_test

import (
	"bytes"
	"encoding/base64"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/atumdesk/atumdesk/internal/secretbox"
)

func TestSealOpen(t *testing.T) {
	key := bytes.Repeat([]byte{7}, secretbox.KeySize)
	b, err := secretbox.New(key)
	require.NoError(t, err)

	s1, err := b.Seal([]byte("hunter2"), []byte("mailbox-1"))
	require.NoError(t, err)
	s2, err := b.Seal([]byte("hunter2"), []byte("mailbox-1"))
	require.NoError(t, err)
	require.NotEqual(t, s1, s2, "fresh nonce per seal")
	require.NotContains(t, string(s1), "hunter2")

	pt, err := b.Open(s1, []byte("mailbox-1"))
	require.NoError(t, err)
	require.Equal(t, "hunter2", string(pt))

	// bound to its associated data
	_, err = b.Open(s1, []byte("mailbox-2"))
	require.ErrorIs(t, err, secretbox.ErrOpen)
	// tampering
	bad := bytes.Clone(s1)
	bad[len(bad)-1] ^= 1
	_, err = b.Open(bad, []byte("mailbox-1"))
	require.ErrorIs(t, err, secretbox.ErrOpen)
	// another key
	other, err := secretbox.New(bytes.Repeat([]byte{8}, secretbox.KeySize))
	require.NoError(t, err)
	_, err = other.Open(s1, []byte("mailbox-1"))
	require.ErrorIs(t, err, secretbox.ErrOpen)
	// garbage and truncation
	for _, v := range [][]byte{nil, {1}, s1[:20], append([]byte{9}, s1[1:]...)} {
		_, err = b.Open(v, []byte("mailbox-1"))
		require.ErrorIs(t, err, secretbox.ErrOpen)
	}
}

func TestParseKey(t *testing.T) {
	key := bytes.Repeat([]byte{0xfb}, 32)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		got, err := secretbox.ParseKey(" " + enc.EncodeToString(key) + "\n")
		require.NoError(t, err)
		require.Equal(t, key, got)
	}
	_, err := secretbox.ParseKey(base64.StdEncoding.EncodeToString(key[:16]))
	require.ErrorContains(t, err, "32 bytes")
	_, err = secretbox.ParseKey("not base64 !!")
	require.Error(t, err)
	_, err = secretbox.New(key[:31])
	require.Error(t, err)
	b, err := secretbox.FromBase64(base64.StdEncoding.EncodeToString(key))
	require.NoError(t, err)
	require.NotNil(t, b)
}
