// Package textvec turns ticket text into features: hashed word unigrams and
// bigrams plus character n-grams of each word (which survive typos and
// inflections). Features feed the classifier (sparse, weighted) and the
// built-in embedding (the same features signed-hashed into a fixed
// dimension and L2-normalised). Everything is a pure function of the
// text: no vocabulary, no corpus statistics, so a stored vector stays
// comparable with vectors computed later.
package textvec

import (
	"math"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Feature is one hashed feature and its weight.
type Feature struct {
	Hash   uint64
	Weight float32
}

// Weights of the feature kinds: words carry the meaning, bigrams the
// phrasing ("cancel order" vs "change order"), character n-grams the
// misspelt and inflected forms.
const (
	wordWeight    = 1.0
	bigramWeight  = 0.8
	charWeight    = 0.35
	stopwordScale = 0.25 // very common function words matter less
	minGram       = 3
	maxGram       = 5
	maxRunes      = 4000 // longer text adds little and costs linearly
)

// Tokens splits text into lower-case word tokens. Runs of digits become
// "0" (order numbers and amounts say little about the request), and
// tokens are cut at any rune that is neither a letter nor a digit.
func Tokens(text string) []string {
	if utf8.RuneCountInString(text) > maxRunes {
		n := 0
		for i := range text {
			if n == maxRunes {
				text = text[:i]
				break
			}
			n++
		}
	}
	var out []string
	var b strings.Builder
	digits := false
	flush := func() {
		if b.Len() > 0 {
			tok := b.String()
			if digits && isDigits(tok) {
				tok = "0"
			}
			out = append(out, tok)
			b.Reset()
		}
		digits = false
	}
	for _, r := range text {
		switch {
		case unicode.IsLetter(r):
			b.WriteRune(unicode.ToLower(r))
		case unicode.IsDigit(r):
			b.WriteRune(r)
			digits = true
		case r == '\'' || r == '\u2019':
			// "can't" → "cant": apostrophes join, they do not split.
		default:
			flush()
		}
	}
	flush()
	return out
}

func isDigits(s string) bool {
	for _, r := range s {
		if !unicode.IsDigit(r) {
			return false
		}
	}
	return true
}

// Features returns the weighted features of text, merged by hash and
// sorted by hash. Term frequencies are damped: a feature seen n times
// weighs w·(1+ln n).
func Features(text string) []Feature {
	toks := Tokens(text)
	type acc struct {
		w float32 // the largest weight the feature was seen with
		n int     // how often
	}
	counts := make(map[uint64]acc, len(toks)*8)
	add := func(h uint64, w float32) {
		a := counts[h]
		a.w, a.n = max(a.w, w), a.n+1
		counts[h] = a
	}
	for i, t := range toks {
		w := float32(wordWeight)
		if stopwords[t] {
			w *= stopwordScale
		}
		add(hashString(1, t), w)
		if i > 0 {
			bw := float32(bigramWeight)
			if stopwords[t] && stopwords[toks[i-1]] {
				bw *= stopwordScale
			}
			add(hashPair(2, toks[i-1], t), bw)
		}
		if stopwords[t] || t == "0" {
			continue
		}
		charGrams(t, func(h uint64) { add(h, charWeight) })
	}
	out := make([]Feature, 0, len(counts))
	for h, a := range counts {
		out = append(out, Feature{Hash: h, Weight: a.w * (1 + float32(math.Log(float64(a.n))))})
	}
	slices.SortFunc(out, func(a, b Feature) int {
		switch {
		case a.Hash < b.Hash:
			return -1
		case a.Hash > b.Hash:
			return 1
		}
		return 0
	})
	return out
}

// charGrams calls fn with the hash of every character n-gram (minGram to
// maxGram runes) of "<word>", boundaries included.
func charGrams(word string, fn func(uint64)) {
	rs := make([]rune, 0, len(word)+2)
	rs = append(rs, '<')
	rs = append(rs, []rune(word)...)
	rs = append(rs, '>')
	for n := minGram; n <= maxGram; n++ {
		for i := 0; i+n <= len(rs); i++ {
			if n == len(rs) {
				continue // the whole word is already a word feature
			}
			fn(hashRunes(3, rs[i:i+n]))
		}
	}
}

// FNV-1a, seeded with the feature kind so a word and an n-gram that
// spell the same never collide on purpose.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func hashString(kind byte, s string) uint64 {
	h := uint64(fnvOffset)
	h = (h ^ uint64(kind)) * fnvPrime
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * fnvPrime
	}
	return mix(h)
}

func hashPair(kind byte, a, b string) uint64 {
	h := uint64(fnvOffset)
	h = (h ^ uint64(kind)) * fnvPrime
	for i := 0; i < len(a); i++ {
		h = (h ^ uint64(a[i])) * fnvPrime
	}
	h = (h ^ ' ') * fnvPrime
	for i := 0; i < len(b); i++ {
		h = (h ^ uint64(b[i])) * fnvPrime
	}
	return mix(h)
}

func hashRunes(kind byte, rs []rune) uint64 {
	h := uint64(fnvOffset)
	h = (h ^ uint64(kind)) * fnvPrime
	for _, r := range rs {
		h = (h ^ uint64(r&0xff)) * fnvPrime
		if r > 0xff {
			h = (h ^ uint64(r>>8)) * fnvPrime
			h = (h ^ uint64(r>>16)) * fnvPrime
		}
	}
	return mix(h)
}

// mix spreads FNV's weak low bits (splitmix64 finaliser) so h % dim and
// the sign bit are independent.
func mix(h uint64) uint64 {
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

// Embed writes the L2-normalised signed-hash embedding of features into
// dst (len(dst) is the dimension) and returns dst. Text without features
// gives the zero vector.
func Embed(dst []float32, feats []Feature) []float32 {
	clear(dst)
	d := uint64(len(dst))
	for _, f := range feats {
		i := f.Hash % d
		if f.Hash>>63 == 1 {
			dst[i] -= f.Weight
		} else {
			dst[i] += f.Weight
		}
	}
	Normalize(dst)
	return dst
}

// Normalize scales v to unit length in place (the zero vector stays zero).
func Normalize(v []float32) {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	if s == 0 {
		return
	}
	inv := float32(1 / math.Sqrt(s))
	for i := range v {
		v[i] *= inv
	}
}

// Dot is the inner product of two equally long vectors (the cosine of
// unit vectors).
func Dot(a, b []float32) float32 {
	var s0, s1, s2, s3 float32
	n := min(len(a), len(b))
	i := 0
	for ; i+4 <= n; i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < n; i++ {
		s0 += a[i] * b[i]
	}
	return s0 + s1 + s2 + s3
}

// stopwords are English function words; they keep a quarter of their
// weight rather than none (negation and "my"/"your" still carry a little).
var stopwords = func() map[string]bool {
	m := map[string]bool{}
	for w := range strings.FieldsSeq(`a an the and or but if of to in on at by for with from as is are was were be been
		being am do does did doing have has had having i me my mine myself we us our you your yours he him his she her it its
		they them their this that these those there here what which who whom whose when where why how can could would should
		will shall may might must just so than too very also about into over under again then once all any both each few more
		most other some such only own same up down out off please hi hello thanks thank want need like get got im ive id
		would could help assistance know tell let`) {
		m[w] = true
	}
	return m
}()
