// Package ollamatest runs the AI provider's tests against a real Ollama
// server: it finds (or starts) the server that deploy/local/ollama.sh
// builds, writes a tiny random-weight llama GGUF (a few hundred KB, with
// Ollama's own fs/ggml writer; no weights are downloaded) and creates a
// model from it through the HTTP API.
//
// The model's answers are meaningless; its weights are "tame" (see
// WriteTinyGGUF) so that schema-constrained replies stay short. Tests
// check the protocol, the schema, timeouts and fallbacks, not content.
package ollamatest

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"

	"github.com/ollama/ollama/fs/ggml"
)

// The architecture: llama, 2 blocks, embedding 64, 4 heads of 16, FFN 128,
// context 512, a byte-fallback SentencePiece vocabulary of 259 tokens.
const (
	embd    = 64
	blocks  = 2
	heads   = 4
	headDim = embd / heads
	ffn     = 128
	ctxLen  = 512
	vocab   = 3 + 256 // <unk> <s> </s> and the 256 byte tokens
)

// byteToken is the token id of byte b.
func byteToken(b byte) int { return 3 + int(b) }

// f32 is a tensor's data, written little-endian.
type f32 []float32

func (d f32) WriteTo(w io.Writer) (int64, error) {
	buf := make([]byte, 4*len(d))
	for i, x := range d {
		binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(x))
	}
	n, err := w.Write(buf)
	return int64(n), err
}

// WriteTinyGGUF writes the tiny model to path, deterministically per seed.
//
// Tame weights keep schema-constrained JSON short: hidden dimension 0 is a
// constant "bias channel" (8 in every embedding, written by no block), so
// column 0 of output.weight is a per-token logit bias: whitespace strongly
// negative, `"`, `}`, `,` and `:` positive (strings and objects close
// early), EOS neutral (the grammar allows it only once the JSON is
// complete). Each output row also gets minus its token's embedding and the
// blocks' output projections are scaled by 0.25, so the model never
// repeats the token it just read (Ollama aborts a generation after 30
// identical tokens).
func WriteTinyGGUF(path string, seed uint64) error {
	rng := rand.New(rand.NewPCG(seed, 0x7469_6e79))
	normal := func(n int, std float64) f32 {
		out := make(f32, n)
		for i := range out {
			out[i] = float32(rng.NormFloat64() * std)
		}
		return out
	}
	ones := func(n int) f32 {
		out := make(f32, n)
		for i := range out {
			out[i] = 1
		}
		return out
	}
	// A weight mapping in → out has shape {in, out}: element [o*in + i].
	matrix := func(in, out int, scale float64) f32 {
		return normal(in*out, scale/math.Sqrt(float64(in)))
	}

	tokEmbd := normal(embd*vocab, 1)
	for t := range vocab {
		tokEmbd[t*embd] = 8 // the bias channel
	}
	output := matrix(embd, vocab, 1)
	bias := map[int]float32{}
	for _, b := range []byte(" \t\n\r") {
		bias[byteToken(b)] = -3
	}
	bias[byteToken('"')], bias[byteToken('}')] = 0.9, 0.9
	bias[byteToken(',')], bias[byteToken(':')] = 0.5, 0.5
	for t := range vocab {
		row := output[t*embd : (t+1)*embd]
		for i := 1; i < embd; i++ {
			row[i] -= tokEmbd[t*embd+i] // never the token just read
		}
		row[0] = bias[t]
	}

	ts := []ggml.Tensor{
		{Name: "token_embd.weight", Shape: []uint64{embd, vocab}, WriterTo: tokEmbd},
		{Name: "output_norm.weight", Shape: []uint64{embd}, WriterTo: ones(embd)},
		{Name: "output.weight", Shape: []uint64{embd, vocab}, WriterTo: output},
	}
	for b := range blocks {
		name := func(s string) string { return fmt.Sprintf("blk.%d.%s.weight", b, s) }
		// Output projections scaled by 0.25 and never writing the bias
		// channel (row 0 of the output dimension).
		attnOut := matrix(embd, embd, 0.25)
		ffnDown := matrix(ffn, embd, 0.25)
		clear(attnOut[:embd])
		clear(ffnDown[:ffn])
		ts = append(ts,
			ggml.Tensor{Name: name("attn_norm"), Shape: []uint64{embd}, WriterTo: ones(embd)},
			ggml.Tensor{Name: name("attn_q"), Shape: []uint64{embd, embd}, WriterTo: matrix(embd, embd, 1)},
			ggml.Tensor{Name: name("attn_k"), Shape: []uint64{embd, embd}, WriterTo: matrix(embd, embd, 1)},
			ggml.Tensor{Name: name("attn_v"), Shape: []uint64{embd, embd}, WriterTo: matrix(embd, embd, 1)},
			ggml.Tensor{Name: name("attn_output"), Shape: []uint64{embd, embd}, WriterTo: attnOut},
			ggml.Tensor{Name: name("ffn_norm"), Shape: []uint64{embd}, WriterTo: ones(embd)},
			ggml.Tensor{Name: name("ffn_gate"), Shape: []uint64{embd, ffn}, WriterTo: matrix(embd, ffn, 1)},
			ggml.Tensor{Name: name("ffn_up"), Shape: []uint64{embd, ffn}, WriterTo: matrix(embd, ffn, 1)},
			ggml.Tensor{Name: name("ffn_down"), Shape: []uint64{ffn, embd}, WriterTo: ffnDown},
		)
	}

	tokens := []string{"<unk>", "<s>", "</s>"}
	types := []int32{2, 3, 3}
	for b := range 256 {
		tokens = append(tokens, fmt.Sprintf("<0x%02X>", b))
		types = append(types, 6)
	}
	kv := ggml.KV{
		"general.architecture":                   "llama",
		"general.type":                           "model",
		"general.name":                           "atumdesk-tiny",
		"general.alignment":                      uint32(32),
		"general.file_type":                      uint32(0), // F32
		"llama.context_length":                   uint32(ctxLen),
		"llama.embedding_length":                 uint32(embd),
		"llama.block_count":                      uint32(blocks),
		"llama.feed_forward_length":              uint32(ffn),
		"llama.attention.head_count":             uint32(heads),
		"llama.attention.head_count_kv":          uint32(heads),
		"llama.attention.key_length":             uint32(headDim),
		"llama.attention.value_length":           uint32(headDim),
		"llama.attention.layer_norm_rms_epsilon": float32(1e-5),
		"llama.rope.dimension_count":             uint32(headDim),
		"llama.rope.freq_base":                   float32(10000),
		"llama.vocab_size":                       uint32(vocab),
		"tokenizer.ggml.model":                   "llama",
		"tokenizer.ggml.tokens":                  tokens,
		"tokenizer.ggml.scores":                  make([]float32, vocab),
		"tokenizer.ggml.token_type":              types,
		"tokenizer.ggml.unknown_token_id":        uint32(0),
		"tokenizer.ggml.bos_token_id":            uint32(1),
		"tokenizer.ggml.eos_token_id":            uint32(2),
		"tokenizer.ggml.add_bos_token":           true,
		"tokenizer.ggml.add_eos_token":           false,
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("ollamatest: %w", err)
	}
	if err := ggml.WriteGGUF(f, kv, ts); err != nil {
		_ = f.Close()
		return fmt.Errorf("ollamatest: write gguf: %w", err)
	}
	return f.Close()
}
