package textvec

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTokens(t *testing.T) {
	require.Equal(t, []string{"cant", "log", "in", "to", "order", "0", "ünïcode", "x2"},
		Tokens("Can't log-in to ORDER #12345! Ünïcode x2"))
	require.Empty(t, Tokens(" \n\t!?"))
}

func TestFeaturesAndEmbedding(t *testing.T) {
	f := Features("Reset my password please, password reset")
	require.True(t, slices.IsSortedFunc(f, func(a, b Feature) int {
		if a.Hash < b.Hash {
			return -1
		}
		return 1
	}))
	require.Equal(t, f, Features("Reset my password please, password reset"))
	for i := 1; i < len(f); i++ {
		require.NotEqual(t, f[i-1].Hash, f[i].Hash, "merged by hash")
	}
	v := Embed(make([]float32, 256), f)
	require.InDelta(t, 1, Dot(v, v), 1e-5)
	zero := Embed(make([]float32, 256), Features("!!!"))
	require.Zero(t, Dot(zero, zero))

	pw := Embed(make([]float32, 256), Features("I forgot my password"))
	typo := Embed(make([]float32, 256), Features("i forgott my pasword"))
	other := Embed(make([]float32, 256), Features("the invoice is wrong"))
	require.Greater(t, Dot(pw, typo), Dot(pw, other)+0.25, "typos keep most character n-grams")
	require.Less(t, Dot(pw, other), float32(0.1))
}
