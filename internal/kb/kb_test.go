package kb

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSlugify(t *testing.T) {
	for in, want := range map[string]string{
		"Reset your printer":         "reset-your-printer",
		"  Getting Started — Café  ": "getting-started-cafe",
		"Ärger mit Über-Größen!":     "arger-mit-uber-grossen",
		"VPN/Wi-Fi (2026)":           "vpn-wi-fi-2026",
		"Пароль":                     "article",
		"":                           "article",
	} {
		got := Slugify(in, "article")
		require.Equal(t, want, got, in)
		require.True(t, validSlug(got), got)
	}
	long := Slugify(strings.Repeat("word ", 100), "article")
	require.True(t, validSlug(long) && len(long) <= MaxSlug-7, long)
}

func TestValidSlug(t *testing.T) {
	for _, s := range []string{"a", "a-b", "0-9"} {
		require.True(t, validSlug(s), s)
	}
	for _, s := range []string{"", "-a", "a-", "A", "a_b", "a b", "ä", strings.Repeat("a", MaxSlug+1)} {
		require.False(t, validSlug(s), s)
	}
}

func TestExcerpt(t *testing.T) {
	require.Equal(t, "a b", excerpt(" a\n\n b "))
	long := strings.Repeat("word ", 100)
	e := excerpt(long)
	require.True(t, strings.HasSuffix(e, "word…"), e)
	require.LessOrEqual(t, len([]rune(e)), excerptLen+1)
}
