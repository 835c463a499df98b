package ollamatest

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/ollama/ollama/fs/ggml"
	"github.com/stretchr/testify/require"
)

// The tiny model decodes with Ollama's own reader: architecture, shapes
// and tokenizer as llama.cpp expects them, deterministic per seed.
func TestTinyGGUFDecodes(t *testing.T) {
	dir := t.TempDir()
	a, b, c := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "c")
	require.NoError(t, WriteTinyGGUF(a, 1))
	require.NoError(t, WriteTinyGGUF(b, 1))
	require.NoError(t, WriteTinyGGUF(c, 2))
	ab, err := os.ReadFile(a)
	require.NoError(t, err)
	bb, _ := os.ReadFile(b)
	cb, _ := os.ReadFile(c)
	require.Equal(t, ab, bb, "deterministic per seed")
	require.NotEqual(t, ab, cb)
	require.Less(t, len(ab), 600<<10)

	g, _, err := ggml.Decode(bytes.NewReader(ab), -1)
	require.NoError(t, err)
	kv := g.KV()
	require.Equal(t, "llama", kv.Architecture())
	require.EqualValues(t, 64, kv.Uint("embedding_length"))
	require.EqualValues(t, 2, kv.Uint("block_count"))
	require.EqualValues(t, 259, kv.Uint("vocab_size"))
	require.Len(t, g.Tensors().GroupLayers()["blk.0"], 9)
	require.Len(t, g.Tensors().GroupLayers()["blk.1"], 9)
	var n int
	for _, l := range g.Tensors().GroupLayers() {
		n += len(l)
	}
	require.Equal(t, 21, n)
	require.EqualValues(t, 115_392, paramCount(g), "parameters (F32: 4 bytes each)")
}

func paramCount(g *ggml.GGML) uint64 {
	var n uint64
	for _, l := range g.Tensors().GroupLayers() {
		for _, t := range l {
			n += t.Size() / 4
		}
	}
	return n
}
