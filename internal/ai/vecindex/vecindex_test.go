package vecindex

import (
	"cmp"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

const dim = 256

// clustered returns n unit vectors around nClusters random centres (real
// embeddings cluster; uniform random vectors have no near neighbours).
func clustered(rng *rand.Rand, n, nClusters int, noise float64) [][]float32 {
	centres := make([][]float32, nClusters)
	for i := range centres {
		centres[i] = randomUnit(rng, nil, 0)
	}
	out := make([][]float32, n)
	for i := range out {
		out[i] = randomUnit(rng, centres[rng.IntN(nClusters)], noise)
	}
	return out
}

func randomUnit(rng *rand.Rand, centre []float32, noise float64) []float32 {
	v := make([]float32, dim)
	var s float64
	for i := range v {
		x := rng.NormFloat64()
		if centre != nil {
			x = float64(centre[i])*math.Sqrt(dim) + noise*x
		}
		v[i] = float32(x)
		s += x * x
	}
	inv := float32(1 / math.Sqrt(s))
	for i := range v {
		v[i] *= inv
	}
	return v
}

func dot(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

// bruteForce is the float64 ground truth.
func bruteForce(ids []uuid.UUID, vecs [][]float32, q []float32, k int, skip uuid.UUID) []uuid.UUID {
	type s struct {
		id uuid.UUID
		d  float64
	}
	all := make([]s, 0, len(vecs))
	for i, v := range vecs {
		if ids[i] != skip {
			all = append(all, s{ids[i], dot(q, v)})
		}
	}
	sort.Slice(all, func(a, b int) bool { return all[a].d > all[b].d })
	out := make([]uuid.UUID, 0, k)
	for _, x := range all[:k] {
		out = append(out, x.id)
	}
	return out
}

func recall(got []Hit, want []uuid.UUID) float64 {
	n := 0
	for _, h := range got {
		if slices.Contains(want, h.ID) {
			n++
		}
	}
	return float64(n) / float64(len(want))
}

func build(idx *Index, key Key, vecs [][]float32) []uuid.UUID {
	ids := make([]uuid.UUID, len(vecs))
	for i, v := range vecs {
		ids[i] = uuid.New()
		idx.Upsert(key, ids[i], v)
	}
	return ids
}

func TestExactSearchMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	vecs := clustered(rng, 3000, 50, 1.0)
	idx := New(Config{})
	key := Key{Org: uuid.New(), Model: "m"}
	ids := build(idx, key, vecs)
	var r float64
	for q := range 50 {
		hits := idx.Search(key, vecs[q], 10, func(id uuid.UUID) bool { return id == ids[q] })
		require.Len(t, hits, 10)
		require.True(t, slices.IsSortedFunc(hits, func(a, b Hit) int { return cmp.Compare(b.Score, a.Score) }))
		for _, h := range hits {
			require.NotEqual(t, ids[q], h.ID, "skip is honoured")
		}
		r += recall(hits, bruteForce(ids, vecs, vecs[q], 10, ids[q]))
	}
	// int8 quantisation may swap near-ties at the edge of the top 10.
	require.GreaterOrEqual(t, r/50, 0.97)
	self := idx.Search(key, vecs[7], 1, nil)
	require.Equal(t, ids[7], self[0].ID)
	require.InDelta(t, 1.0, self[0].Score, 0.02)
}

func TestPartitionsAreIsolated(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	vecs := clustered(rng, 200, 5, 0.5)
	idx := New(Config{})
	a, b := Key{Org: uuid.New(), Model: "m"}, Key{Org: uuid.New(), Model: "m"}
	aIDs, bIDs := build(idx, a, vecs), build(idx, b, vecs)
	for _, h := range idx.Search(a, vecs[0], 50, nil) {
		require.Contains(t, aIDs, h.ID)
		require.NotContains(t, bIDs, h.ID)
	}
	require.Empty(t, idx.Search(Key{Org: a.Org, Model: "other"}, vecs[0], 5, nil), "another model's partition")
	require.Empty(t, idx.Search(Key{Org: uuid.New(), Model: "m"}, vecs[0], 5, nil), "an unknown organisation")
	require.Empty(t, idx.Search(a, vecs[0][:10], 5, nil), "a query of another dimension")
	require.Equal(t, 200, idx.Len(a))
	st := idx.Stats()
	require.Equal(t, 2, st.Partitions)
	require.Equal(t, 400, st.Vectors)
}

func TestUpsertReplacesAndDeleteRemoves(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	vecs := clustered(rng, 100, 3, 0.5)
	idx := New(Config{})
	key := Key{Org: uuid.New(), Model: "m"}
	ids := build(idx, key, vecs)
	far := randomUnit(rng, nil, 0)
	idx.Upsert(key, ids[10], far) // moved
	require.Equal(t, 100, idx.Len(key))
	require.Equal(t, ids[10], idx.Search(key, far, 1, nil)[0].ID)
	idx.Delete(key, ids[10])
	idx.Delete(key, ids[10]) // twice is fine
	require.Equal(t, 99, idx.Len(key))
	for _, h := range idx.Search(key, far, 99, nil) {
		require.NotEqual(t, ids[10], h.ID)
	}
	// The vector moved into the freed slot is still found as itself.
	last := ids[99]
	require.Equal(t, last, idx.Search(key, vecs[99], 1, nil)[0].ID)
	idx.Upsert(key, uuid.New(), make([]float32, 7)) // wrong dimension: ignored
	require.Equal(t, 99, idx.Len(key))
}

// The code filter in front of the exact rescoring keeps recall high.
func TestApproximateSearchRecall(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	vecs := clustered(rng, 12_000, 400, 1.5)
	// 200 candidates of 12,000: the filter does the work it does at 1M.
	approx := New(Config{ExactBelow: 1000, Candidates: 200})
	exact := New(Config{ExactBelow: 1 << 30})
	key := Key{Org: uuid.New(), Model: "m"}
	ids := make([]uuid.UUID, len(vecs))
	for i, v := range vecs {
		ids[i] = uuid.New()
		approx.Upsert(key, ids[i], v)
		exact.Upsert(key, ids[i], v)
	}
	r := recallAt10(approx, exact, key, vecs[:50])
	t.Logf("recall@10 of the approximate regime against exact search: %.3f", r)
	require.GreaterOrEqual(t, r, 0.95)
}

// recallAt10 is the mean recall@10 of idx against exact over queries.
func recallAt10(idx, exact *Index, key Key, queries [][]float32) float64 {
	var r float64
	for _, q := range queries {
		want := exact.Search(key, q, 10, nil)
		ids := make([]uuid.UUID, len(want))
		for i, h := range want {
			ids[i] = h.ID
		}
		r += recall(idx.Search(key, q, 10, nil), ids)
	}
	return r / float64(len(queries))
}

// BenchmarkSimilar1M is the scale target: 1,000,000 ticket vectors (dim
// 256) in one organisation, similar-ticket search p95 < 50 ms, with the
// index's memory reported. Run:
//
//	go test -run '^$' -bench BenchmarkSimilar1M -benchtime 300x ./internal/ai/vecindex/
func BenchmarkSimilar1M(b *testing.B) { benchmarkSimilar(b, 1_000_000) }

// BenchmarkSimilar200K is the same at a fifth of the size (profiling).
func BenchmarkSimilar200K(b *testing.B) { benchmarkSimilar(b, 200_000) }

func benchmarkSimilar(b *testing.B, n int) {
	rng := rand.New(rand.NewPCG(9, 10))
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	idx := New(Config{})
	key := Key{Org: uuid.New(), Model: "builtin"}
	start := time.Now()
	centres := make([][]float32, 20_000)
	for i := range centres {
		centres[i] = randomUnit(rng, nil, 0)
	}
	queries := make([][]float32, 0, 1000)
	for i := range n {
		v := randomUnit(rng, centres[rng.IntN(len(centres))], 1.2)
		idx.Upsert(key, uuid.New(), v)
		if i%1000 == 0 {
			queries = append(queries, v)
		}
	}
	build := time.Since(start)
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	b.ResetTimer()
	lat := make([]time.Duration, 0, b.N)
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		hits := idx.Search(key, queries[i%len(queries)], 50, nil)
		lat = append(lat, time.Since(t0))
		if len(hits) != 50 {
			b.Fatalf("got %d hits", len(hits))
		}
	}
	b.StopTimer()
	// Recall@10 against an exact scan of the same partition.
	exact := New(Config{ExactBelow: 1 << 30})
	exact.parts[key] = idx.parts[key]
	b.ReportMetric(recallAt10(idx, exact, key, queries[:20]), "recall@10")
	slices.Sort(lat)
	p := func(q float64) float64 {
		return float64(lat[min(len(lat)-1, int(q*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(p(0.5), "p50-ms")
	b.ReportMetric(p(0.95), "p95-ms")
	b.ReportMetric(p(0.99), "p99-ms")
	b.ReportMetric(float64(idx.Stats().Bytes)/(1<<20), "index-MiB")
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "heap-MiB")
	b.ReportMetric(build.Seconds(), "build-s")
}
