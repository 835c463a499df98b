// Package classify is a multinomial logistic-regression text classifier
// over textvec features, with its confidence calibrated by temperature
// scaling on out-of-fold predictions, so a reported 0.8 is right about
// 80 % of the time. Models are small (only features seen in training, at
// most MaxFeatures of them) and serialise to JSON for storage.
package classify

import (
	"cmp"
	"errors"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/atumdesk/atumdesk/internal/ai/textvec"
)

// Example is one labelled text.
type Example struct {
	Features []textvec.Feature
	Label    string
}

// Options tune training; zero values get the defaults noted.
type Options struct {
	Epochs      int     // passes over the data (default 8)
	L2          float64 // weight decay per example (default 1e-5)
	LearnRate   float64 // AdaGrad base rate (default 0.5)
	MinPerClass int     // labels with fewer examples are dropped (default 3)
	MaxFeatures int     // most frequent features kept (default 30000)
	MinDF       int     // features in fewer examples are dropped (default 2)
	CalibFolds  int     // folds for the temperature fit (default 3; 1 = no calibration)
	Seed        uint64  // shuffling seed (default 1)
}

func (o *Options) defaults() {
	if o.Epochs <= 0 {
		o.Epochs = 8
	}
	if o.L2 <= 0 {
		o.L2 = 1e-5
	}
	if o.LearnRate <= 0 {
		o.LearnRate = 0.5
	}
	if o.MinPerClass <= 0 {
		o.MinPerClass = 3
	}
	if o.MaxFeatures <= 0 {
		o.MaxFeatures = 30000
	}
	if o.MinDF <= 0 {
		o.MinDF = 2
	}
	if o.CalibFolds <= 0 {
		o.CalibFolds = 3
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
}

// ErrTooLittleData is returned when fewer than two labels have enough
// examples: the caller should not guess.
var ErrTooLittleData = errors.New("classify: too little labelled data")

// Model is a trained classifier.
type Model struct {
	Labels []string `json:"labels"`
	// Keys are the feature hashes, sorted; row i of Weights (len(Labels)
	// floats) belongs to Keys[i].
	Keys        []uint64  `json:"keys"`
	Weights     []float32 `json:"weights"`
	Bias        []float32 `json:"bias"`
	Temperature float64   `json:"temperature"`
	Examples    int       `json:"examples"`
}

// Prediction is a label with its calibrated probability.
type Prediction struct {
	Label string
	Prob  float64
}

// Train fits a model on examples.
func Train(examples []Example, opt Options) (*Model, error) {
	opt.defaults()
	examples = keepFrequent(examples, opt.MinPerClass)
	labels := labelsOf(examples)
	if len(labels) < 2 {
		return nil, ErrTooLittleData
	}
	keys := vocabulary(examples, opt.MaxFeatures, opt.MinDF)
	temp := 1.0
	if opt.CalibFolds > 1 && len(examples) >= 2*opt.CalibFolds {
		temp = fitTemperature(examples, labels, keys, opt)
	}
	m := fit(examples, labels, keys, opt)
	m.Temperature = temp
	return m, nil
}

// Predict returns every label's calibrated probability, most likely first.
func (m *Model) Predict(feats []textvec.Feature) []Prediction {
	logits := m.logits(feats)
	probs := softmax(logits, m.Temperature)
	out := make([]Prediction, len(m.Labels))
	for i, l := range m.Labels {
		out[i] = Prediction{Label: l, Prob: probs[i]}
	}
	slices.SortStableFunc(out, func(a, b Prediction) int { return cmp.Compare(b.Prob, a.Prob) })
	return out
}

// Prob returns the calibrated probability of each label, in Labels order.
func (m *Model) Prob(feats []textvec.Feature) []float64 {
	return softmax(m.logits(feats), m.Temperature)
}

func (m *Model) logits(feats []textvec.Feature) []float64 {
	k := len(m.Labels)
	out := make([]float64, k)
	for c := range k {
		out[c] = float64(m.Bias[c])
	}
	norm := featureNorm(feats)
	for _, f := range feats {
		i, ok := slices.BinarySearch(m.Keys, f.Hash)
		if !ok {
			continue
		}
		x := float64(f.Weight) / norm
		row := m.Weights[i*k : (i+1)*k]
		for c := range k {
			out[c] += x * float64(row[c])
		}
	}
	return out
}

func featureNorm(feats []textvec.Feature) float64 {
	var s float64
	for _, f := range feats {
		s += float64(f.Weight) * float64(f.Weight)
	}
	if s == 0 {
		return 1
	}
	return math.Sqrt(s)
}

func softmax(logits []float64, temp float64) []float64 {
	if temp <= 0 {
		temp = 1
	}
	hi := math.Inf(-1)
	for _, l := range logits {
		hi = max(hi, l/temp)
	}
	out := make([]float64, len(logits))
	var sum float64
	for i, l := range logits {
		out[i] = math.Exp(l/temp - hi)
		sum += out[i]
	}
	for i := range out {
		out[i] /= sum
	}
	return out
}

func keepFrequent(examples []Example, minPer int) []Example {
	n := map[string]int{}
	for _, e := range examples {
		n[e.Label]++
	}
	out := make([]Example, 0, len(examples))
	for _, e := range examples {
		if e.Label != "" && n[e.Label] >= minPer {
			out = append(out, e)
		}
	}
	return out
}

func labelsOf(examples []Example) []string {
	seen := map[string]bool{}
	var out []string
	for _, e := range examples {
		if !seen[e.Label] {
			seen[e.Label] = true
			out = append(out, e.Label)
		}
	}
	slices.Sort(out)
	return out
}

// vocabulary keeps the maxN most frequent features (by document
// frequency) among those in at least minDF examples: a feature seen once
// is mostly noise (a typo, an order number) and costs a row of weights.
func vocabulary(examples []Example, maxN, minDF int) []uint64 {
	df := map[uint64]int{}
	for _, e := range examples {
		for _, f := range e.Features {
			df[f.Hash]++
		}
	}
	keys := make([]uint64, 0, len(df))
	for h, n := range df {
		if n >= minDF {
			keys = append(keys, h)
		}
	}
	if len(keys) > maxN {
		slices.SortFunc(keys, func(a, b uint64) int {
			if c := cmp.Compare(df[b], df[a]); c != 0 {
				return c
			}
			return cmp.Compare(a, b)
		})
		keys = keys[:maxN]
	}
	slices.Sort(keys)
	return keys
}

// sparse is an example as (row index, value) pairs over the vocabulary.
type sparse struct {
	idx   []int32
	val   []float32
	label int
}

func encode(examples []Example, labels []string, keys []uint64) []sparse {
	li := map[string]int{}
	for i, l := range labels {
		li[l] = i
	}
	out := make([]sparse, 0, len(examples))
	for _, e := range examples {
		c, ok := li[e.Label]
		if !ok {
			continue
		}
		norm := featureNorm(e.Features)
		s := sparse{label: c}
		for _, f := range e.Features {
			if i, ok := slices.BinarySearch(keys, f.Hash); ok {
				s.idx = append(s.idx, int32(i))
				s.val = append(s.val, float32(float64(f.Weight)/norm))
			}
		}
		out = append(out, s)
	}
	return out
}

// fit runs AdaGrad on the softmax cross-entropy with L2 decay.
func fit(examples []Example, labels []string, keys []uint64, opt Options) *Model {
	k := len(labels)
	data := encode(examples, labels, keys)
	tr := &trainer{k: k, rate: opt.LearnRate, l2: opt.L2,
		w: make([]float64, len(keys)*k), g2: make([]float64, len(keys)*k),
		b: make([]float64, k), bg2: make([]float64, k), logits: make([]float64, k), active: make([]int, 0, k)}
	rng := rand.New(rand.NewPCG(opt.Seed, 0x9e3779b97f4a7c15))
	order := make([]int, len(data))
	for i := range order {
		order[i] = i
	}
	for range opt.Epochs {
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, n := range order {
			tr.step(&data[n])
		}
	}
	m := &Model{Labels: labels, Keys: keys, Weights: make([]float32, len(tr.w)), Bias: make([]float32, k), Temperature: 1, Examples: len(data)}
	for i, v := range tr.w {
		m.Weights[i] = float32(v)
	}
	for i, v := range tr.b {
		m.Bias[i] = float32(v)
	}
	return m
}

// trainer is the state of one training run (one goroutine).
type trainer struct {
	k        int
	rate, l2 float64
	w, g2    []float64 // weights and AdaGrad accumulators, row per feature
	b, bg2   []float64
	logits   []float64
	active   []int
}

// step is one AdaGrad update on one example. It is the training's hot
// loop and touches only the trainer's own slices, so the race detector
// (which slows it tenfold under `go test -race`) is left out.
//
//go:norace
func (tr *trainer) step(s *sparse) {
	const eps, minGrad = 1e-8, 1e-3
	k := tr.k
	copy(tr.logits, tr.b)
	for j, ix := range s.idx {
		row := tr.w[int(ix)*k : int(ix)*k+k]
		x := float64(s.val[j])
		for c := range k {
			tr.logits[c] += x * row[c]
		}
	}
	p := softmax(tr.logits, 1)
	p[s.label]--
	// Once the model fits, most classes get a negligible gradient: only
	// the others are updated (several times faster, the same model to the
	// third decimal). Weight decay rides along with the updates.
	tr.active = tr.active[:0]
	for c := range k {
		if g := p[c]; g > minGrad || g < -minGrad {
			tr.active = append(tr.active, c)
			tr.bg2[c] += g * g
			tr.b[c] -= tr.rate * g / (math.Sqrt(tr.bg2[c]) + eps)
		}
	}
	for j, ix := range s.idx {
		base := int(ix) * k
		x := float64(s.val[j])
		for _, c := range tr.active {
			g := p[c]*x + tr.l2*tr.w[base+c]
			tr.g2[base+c] += g * g
			tr.w[base+c] -= tr.rate * g / (math.Sqrt(tr.g2[base+c]) + eps)
		}
	}
}

// fitTemperature trains on folds-1 parts, predicts the held-out part, and
// picks the temperature that minimises the held-out log loss.
func fitTemperature(examples []Example, labels []string, keys []uint64, opt Options) float64 {
	folds := StratifiedFolds(examples, opt.CalibFolds, opt.Seed)
	type held struct {
		logits []float64
		label  int
	}
	li := map[string]int{}
	for i, l := range labels {
		li[l] = i
	}
	var out []held
	for f := range opt.CalibFolds {
		var train, test []Example
		for i, e := range examples {
			if folds[i] == f {
				test = append(test, e)
			} else {
				train = append(train, e)
			}
		}
		m := fit(train, labels, keys, opt)
		for _, e := range test {
			out = append(out, held{m.logits(e.Features), li[e.Label]})
		}
	}
	nll := func(t float64) float64 {
		var s float64
		for _, h := range out {
			s -= math.Log(max(softmax(h.logits, t)[h.label], 1e-12))
		}
		return s
	}
	// Golden-section search on log t over [0.05, 20].
	lo, hi := math.Log(0.05), math.Log(20)
	const phi = 0.6180339887498949
	a, b := hi-phi*(hi-lo), lo+phi*(hi-lo)
	fa, fb := nll(math.Exp(a)), nll(math.Exp(b))
	for range 40 {
		if fa < fb {
			hi, b, fb = b, a, fa
			a = hi - phi*(hi-lo)
			fa = nll(math.Exp(a))
		} else {
			lo, a, fa = a, b, fb
			b = lo + phi*(hi-lo)
			fb = nll(math.Exp(b))
		}
	}
	return math.Exp((lo + hi) / 2)
}

// StratifiedFolds assigns each example a fold in [0, k) so every label is
// spread evenly over the folds (deterministic for a seed).
func StratifiedFolds(examples []Example, k int, seed uint64) []int {
	byLabel := map[string][]int{}
	for i, e := range examples {
		byLabel[e.Label] = append(byLabel[e.Label], i)
	}
	rng := rand.New(rand.NewPCG(seed, 0x2545f4914f6cdd1d))
	out := make([]int, len(examples))
	labels := make([]string, 0, len(byLabel))
	for l := range byLabel {
		labels = append(labels, l)
	}
	slices.Sort(labels)
	next := 0
	for _, l := range labels {
		idx := byLabel[l]
		rng.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		for _, i := range idx {
			out[i] = next % k
			next++
		}
	}
	return out
}
