// Package vecindex is the in-memory k-nearest-neighbour index behind
// "similar tickets": unit vectors partitioned by (organisation, embedding
// model), so a search never sees another organisation's tickets nor
// vectors of another model.
//
// One implementation, two regimes behind the same Search: a partition of up
// to ExactBelow vectors is scanned exactly (int8 dot products); a larger
// one is first filtered by 256-bit-per-block sign codes of a randomly
// rotated copy of each vector (Hamming distance approximates the angle,
// SimHash-style), and the closest candidates are then rescored exactly.
// Per vector it keeps dim int8 values, one float32 scale, dim/8 bytes of
// code and the ticket id: about 310 bytes at dim 256.
package vecindex

import (
	"math"
	"math/bits"
	"runtime"
	"slices"
	"sync"

	"github.com/google/uuid"
)

// Key names one partition.
type Key struct {
	Org   uuid.UUID
	Model string
}

// Hit is one search result; Score is the cosine similarity.
type Hit struct {
	ID    uuid.UUID
	Score float32
}

// Searcher is what the AI service needs from an index (exact or
// approximate).
type Searcher interface {
	Upsert(key Key, id uuid.UUID, vec []float32)
	Delete(key Key, id uuid.UUID)
	// Search returns up to k nearest vectors of the partition, best first,
	// skipping ids for which skip returns true (skip may be nil).
	Search(key Key, q []float32, k int, skip func(uuid.UUID) bool) []Hit
	Len(key Key) int
	Stats() Stats
}

// Stats describes the whole index.
type Stats struct {
	Partitions int
	Vectors    int
	Bytes      int64 // estimated heap held by vectors, codes, ids and maps
}

// Config tunes the index; zero values get the defaults noted.
type Config struct {
	// ExactBelow: partitions with at most this many vectors are scanned
	// exactly (default 50,000).
	ExactBelow int
	// Candidates rescored exactly after the code filter (default
	// max(1000, 50·k, n/250)).
	Candidates int
	// Workers scanning one large partition in parallel (default GOMAXPROCS).
	Workers int
}

// Index implements Searcher.
type Index struct {
	cfg   Config
	mu    sync.RWMutex
	parts map[Key]*partition
	rot   sync.Map // dim → *rotation
	pool  sync.Pool
}

var _ Searcher = (*Index)(nil)

// New returns an empty index.
func New(cfg Config) *Index {
	if cfg.ExactBelow <= 0 {
		cfg.ExactBelow = 50_000
	}
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	return &Index{cfg: cfg, parts: map[Key]*partition{}}
}

type partition struct {
	mu     sync.RWMutex
	dim    int
	words  int // uint64 words of code per vector
	ids    []uuid.UUID
	pos    map[uuid.UUID]int32
	q8     []int8
	scales []float32
	codes  []uint64
}

func (x *Index) part(key Key, dim int, create bool) *partition {
	x.mu.RLock()
	p := x.parts[key]
	x.mu.RUnlock()
	if p != nil || !create {
		return p
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if p = x.parts[key]; p == nil {
		p = &partition{dim: dim, words: (padDim(dim) + 63) / 64, pos: map[uuid.UUID]int32{}}
		x.parts[key] = p
	}
	return p
}

// Upsert adds or replaces the vector of id. A vector whose dimension
// differs from the partition's is ignored (a model's dimension is fixed).
func (x *Index) Upsert(key Key, id uuid.UUID, vec []float32) {
	if len(vec) == 0 {
		return
	}
	p := x.part(key, len(vec), true)
	if len(vec) != p.dim {
		return
	}
	code := x.encode(vec, p.words)
	q, scale := quantize(vec)
	p.mu.Lock()
	defer p.mu.Unlock()
	i, ok := p.pos[id]
	if !ok {
		i = int32(len(p.ids))
		p.pos[id] = i
		p.ids = append(p.ids, id)
		p.q8 = append(p.q8, q...)
		p.scales = append(p.scales, scale)
		p.codes = append(p.codes, code...)
		return
	}
	copy(p.q8[int(i)*p.dim:], q)
	p.scales[i] = scale
	copy(p.codes[int(i)*p.words:], code)
}

// Delete removes id (moving the last vector into its slot).
func (x *Index) Delete(key Key, id uuid.UUID) {
	p := x.part(key, 0, false)
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	i, ok := p.pos[id]
	if !ok {
		return
	}
	last := int32(len(p.ids) - 1)
	if i != last {
		p.ids[i] = p.ids[last]
		p.pos[p.ids[i]] = i
		copy(p.q8[int(i)*p.dim:int(i+1)*p.dim], p.q8[int(last)*p.dim:])
		p.scales[i] = p.scales[last]
		copy(p.codes[int(i)*p.words:int(i+1)*p.words], p.codes[int(last)*p.words:])
	}
	delete(p.pos, id)
	p.ids = p.ids[:last]
	p.q8 = p.q8[:int(last)*p.dim]
	p.scales = p.scales[:last]
	p.codes = p.codes[:int(last)*p.words]
}

// Len is the number of vectors in the partition.
func (x *Index) Len(key Key) int {
	p := x.part(key, 0, false)
	if p == nil {
		return 0
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	return len(p.ids)
}

// Stats sums every partition.
func (x *Index) Stats() Stats {
	x.mu.RLock()
	parts := make([]*partition, 0, len(x.parts))
	for _, p := range x.parts {
		parts = append(parts, p)
	}
	x.mu.RUnlock()
	s := Stats{Partitions: len(parts)}
	for _, p := range parts {
		p.mu.RLock()
		n := len(p.ids)
		s.Vectors += n
		// slices at capacity, plus ~48 bytes per map entry (key, value,
		// bucket overhead).
		s.Bytes += int64(cap(p.q8)) + 4*int64(cap(p.scales)) + 8*int64(cap(p.codes)) + 16*int64(cap(p.ids)) + 48*int64(n)
		p.mu.RUnlock()
	}
	return s
}

// Search returns the k nearest vectors to q in the partition.
func (x *Index) Search(key Key, q []float32, k int, skip func(uuid.UUID) bool) []Hit {
	p := x.part(key, 0, false)
	if p == nil || k <= 0 || len(q) != p.dim {
		return nil
	}
	qq, qs := quantize(q)
	p.mu.RLock()
	defer p.mu.RUnlock()
	n := len(p.ids)
	if n == 0 {
		return nil
	}
	top := newTopK(k)
	if n <= x.cfg.ExactBelow {
		x.exact(p, n, k, qq, qs, skip, top)
		return top.sorted()
	}
	cands := x.cfg.Candidates
	if cands <= 0 {
		cands = max(1000, 50*k, n/250)
	}
	x.approximate(p, x.encode(q, p.words), cands, qq, qs, skip, top)
	return top.sorted()
}

// exact scores every vector, in parallel chunks when the partition is big
// enough to be worth it.
func (x *Index) exact(p *partition, n, k int, qq []int8, qs float32, skip func(uuid.UUID) bool, top *topK) {
	workers := 1
	if n >= 20_000 {
		workers = x.cfg.Workers
	}
	tops := make([]*topK, workers)
	var wg sync.WaitGroup
	chunk := (n + workers - 1) / workers
	for w := range workers {
		lo, hi := w*chunk, min(n, (w+1)*chunk)
		t := newTopK(k)
		tops[w] = t
		wg.Go(func() {
			for i := lo; i < hi; i++ {
				if skip != nil && skip(p.ids[i]) {
					continue
				}
				d := dot8(qq, p.q8[i*p.dim:(i+1)*p.dim])
				t.push(Hit{ID: p.ids[i], Score: float32(d) * qs * p.scales[i]}, i)
			}
		})
	}
	wg.Wait()
	for _, t := range tops {
		for _, h := range t.items {
			top.push(h.Hit, h.pos)
		}
	}
}

// approximate filters by code: every worker computes the Hamming distances
// of its share of the partition and their histogram; the merged histogram
// gives the cut-off distance that keeps about want candidates (distances
// are small integers: no sort); then every worker rescores its own
// candidates exactly.
func (x *Index) approximate(p *partition, code []uint64, want int, qq []int8, qs float32, skip func(uuid.UUID) bool, top *topK) {
	n := len(p.ids)
	maxDist := p.words * 64
	bufp, _ := x.pool.Get().(*[]uint16)
	if bufp == nil || cap(*bufp) < n {
		b := make([]uint16, n+n/4)
		bufp = &b
	}
	dist := (*bufp)[:n]
	defer x.pool.Put(bufp)

	workers := x.cfg.Workers
	chunk := (n + workers - 1) / workers
	hists := make([][]int, workers)
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*chunk, min(n, (w+1)*chunk)
		hists[w] = make([]int, maxDist+1)
		wg.Go(func() { hamming(code, p.codes, p.words, lo, hi, dist, hists[w]) })
	}
	wg.Wait()
	cut, seen := 0, 0
	for d := 0; d <= maxDist; d++ {
		for _, h := range hists {
			seen += h[d]
		}
		cut = d
		if seen >= want {
			break
		}
	}
	// Everything closer than the cut-off is rescored; ties at the cut-off
	// may be many, so each worker takes at most its share of want of them.
	tops := make([]*topK, workers)
	for w := range workers {
		lo, hi := w*chunk, min(n, (w+1)*chunk)
		t := newTopK(top.k)
		tops[w] = t
		wg.Go(func() {
			ties := want/workers + 1
			score := func(i int) {
				if skip != nil && skip(p.ids[i]) {
					return
				}
				d := dot8(qq, p.q8[i*p.dim:(i+1)*p.dim])
				t.push(Hit{ID: p.ids[i], Score: float32(d) * qs * p.scales[i]}, i)
			}
			for i := lo; i < hi; i++ {
				if int(dist[i]) < cut {
					score(i)
				}
			}
			for i := lo; i < hi && ties > 0; i++ {
				if int(dist[i]) == cut {
					score(i)
					ties--
				}
			}
		})
	}
	wg.Wait()
	for _, t := range tops {
		for _, h := range t.items {
			top.push(h.Hit, h.pos)
		}
	}
}

//go:norace
func hamming(code, codes []uint64, words, lo, hi int, dist []uint16, hist []int) {
	switch words {
	case 4: // dim 256, the built-in embedding: unrolled
		c0, c1, c2, c3 := code[0], code[1], code[2], code[3]
		for i := lo; i < hi; i++ {
			b := codes[i*4 : i*4+4 : i*4+4]
			d := bits.OnesCount64(b[0]^c0) + bits.OnesCount64(b[1]^c1) + bits.OnesCount64(b[2]^c2) + bits.OnesCount64(b[3]^c3)
			dist[i] = uint16(d)
			hist[d]++
		}
	default:
		for i := lo; i < hi; i++ {
			d := 0
			for w, c := range codes[i*words : (i+1)*words] {
				d += bits.OnesCount64(c ^ code[w])
			}
			dist[i] = uint16(d)
			hist[d]++
		}
	}
}

// quantize maps a vector to int8 with one scale: v ≈ scale·q.
func quantize(v []float32) ([]int8, float32) {
	var hi float32
	for _, x := range v {
		hi = max(hi, float32(math.Abs(float64(x))))
	}
	q := make([]int8, len(v))
	if hi == 0 {
		return q, 0
	}
	s := 127 / hi
	for i, x := range v {
		q[i] = int8(math.Round(float64(x * s)))
	}
	return q, hi / 127
}

// dot8 is the int8 inner product, unrolled by 8 (the compiler keeps the
// partial sums in registers). Like hamming it reads slices the caller
// holds under the partition's lock, so the race detector is left out of
// the hot loop.
//
//go:norace
func dot8(a, b []int8) int32 {
	n := len(a)
	b = b[:n]
	var s0, s1, s2, s3 int32
	i := 0
	for ; i+8 <= n; i += 8 {
		aa, bb := a[i:i+8:i+8], b[i:i+8:i+8]
		s0 += int32(aa[0])*int32(bb[0]) + int32(aa[4])*int32(bb[4])
		s1 += int32(aa[1])*int32(bb[1]) + int32(aa[5])*int32(bb[5])
		s2 += int32(aa[2])*int32(bb[2]) + int32(aa[6])*int32(bb[6])
		s3 += int32(aa[3])*int32(bb[3]) + int32(aa[7])*int32(bb[7])
	}
	for ; i < n; i++ {
		s0 += int32(a[i]) * int32(b[i])
	}
	return s0 + s1 + s2 + s3
}

// rotation is a fixed pseudo-random orthogonal transform (sign flips, a
// Walsh–Hadamard transform, a permutation), applied before taking signs so
// every code bit sees every coordinate.
type rotation struct {
	dim   int // padded to a power of two
	signs []float32
	perm  []int
}

func padDim(d int) int {
	p := 64
	for p < d {
		p *= 2
	}
	return p
}

func (x *Index) rotationFor(dim int) *rotation {
	if r, ok := x.rot.Load(dim); ok {
		return r.(*rotation)
	}
	pd := padDim(dim)
	r := &rotation{dim: pd, signs: make([]float32, pd), perm: make([]int, pd)}
	// A fixed xorshift stream: codes must be identical across processes.
	s := uint64(0x9e3779b97f4a7c15) ^ uint64(pd)
	next := func() uint64 {
		s ^= s << 13
		s ^= s >> 7
		s ^= s << 17
		return s
	}
	for i := range pd {
		r.signs[i] = 1
		if next()&1 == 1 {
			r.signs[i] = -1
		}
		r.perm[i] = i
	}
	for i := pd - 1; i > 0; i-- {
		j := int(next() % uint64(i+1))
		r.perm[i], r.perm[j] = r.perm[j], r.perm[i]
	}
	actual, _ := x.rot.LoadOrStore(dim, r)
	return actual.(*rotation)
}

// encode returns the sign code of the rotated vector.
func (x *Index) encode(v []float32, words int) []uint64 {
	r := x.rotationFor(len(v))
	buf := make([]float32, r.dim)
	for i, f := range v {
		buf[i] = f * r.signs[i]
	}
	fwht(buf)
	// A second round mixes better for sparse inputs.
	for i := range buf {
		buf[i] *= r.signs[r.perm[i]]
	}
	fwht(buf)
	code := make([]uint64, words)
	for i := range r.dim {
		if buf[r.perm[i]] > 0 {
			code[i/64] |= 1 << (i % 64)
		}
	}
	return code
}

// fwht is the in-place fast Walsh–Hadamard transform (len a power of two).
//
//go:norace
func fwht(a []float32) {
	for h := 1; h < len(a); h *= 2 {
		for i := 0; i < len(a); i += 2 * h {
			for j := i; j < i+h; j++ {
				x, y := a[j], a[j+h]
				a[j], a[j+h] = x+y, x-y
			}
		}
	}
}

// topK keeps the k best hits (a small min-heap on score; ties broken by
// position so results are deterministic).
type topK struct {
	k     int
	items []ranked
}

type ranked struct {
	Hit
	pos int
}

func newTopK(k int) *topK { return &topK{k: k, items: make([]ranked, 0, k)} }

func less(a, b ranked) bool {
	if a.Score != b.Score {
		return a.Score < b.Score
	}
	return a.pos > b.pos
}

func (t *topK) push(h Hit, pos int) {
	r := ranked{h, pos}
	if len(t.items) < t.k {
		t.items = append(t.items, r)
		t.up(len(t.items) - 1)
		return
	}
	if !less(t.items[0], r) {
		return
	}
	t.items[0] = r
	t.down(0)
}

func (t *topK) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !less(t.items[i], t.items[p]) {
			return
		}
		t.items[i], t.items[p] = t.items[p], t.items[i]
		i = p
	}
}

func (t *topK) down(i int) {
	n := len(t.items)
	for {
		l, m := 2*i+1, i
		if l < n && less(t.items[l], t.items[m]) {
			m = l
		}
		if r := l + 1; r < n && less(t.items[r], t.items[m]) {
			m = r
		}
		if m == i {
			return
		}
		t.items[i], t.items[m] = t.items[m], t.items[i]
		i = m
	}
}

func (t *topK) sorted() []Hit {
	items := slices.Clone(t.items)
	slices.SortFunc(items, func(a, b ranked) int {
		switch {
		case less(b, a):
			return -1
		case less(a, b):
			return 1
		}
		return 0
	})
	out := make([]Hit, len(items))
	for i, r := range items {
		out[i] = r.Hit
	}
	return out
}
