package ai

import (
	"cmp"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/atumdesk/atumdesk/internal/ai/classify"
	"github.com/atumdesk/atumdesk/internal/ai/textvec"
	"github.com/atumdesk/atumdesk/internal/ai/vecindex"
)

// EvalRow is one labelled ticket of an evaluation file (the columns of
// ../shared/data/tickets/train.csv: id, subject, body, category, priority,
// intent).
type EvalRow struct {
	ID, Subject, Body, Category, Priority, Intent string
}

// ReadEvalCSV reads an evaluation file; columns are found by header name.
func ReadEvalCSV(r io.Reader) ([]EvalRow, error) {
	cr := csv.NewReader(r)
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("ai: eval csv header: %w", err)
	}
	col := map[string]int{}
	for i, h := range head {
		col[strings.ToLower(strings.TrimSpace(h))] = i
	}
	for _, need := range []string{"body", "category"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("ai: eval csv: no %q column", need)
		}
	}
	get := func(rec []string, name string) string {
		if i, ok := col[name]; ok && i < len(rec) {
			return rec[i]
		}
		return ""
	}
	var out []EvalRow
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("ai: eval csv: %w", err)
		}
		out = append(out, EvalRow{ID: get(rec, "id"), Subject: get(rec, "subject"), Body: get(rec, "body"),
			Category: get(rec, "category"), Priority: get(rec, "priority"), Intent: get(rec, "intent")})
	}
}

// CalibrationBin is one row of a reliability table: predictions whose
// confidence fell in [Lo, Hi).
type CalibrationBin struct {
	Lo, Hi         float64
	N              int
	MeanConfidence float64
	Accuracy       float64
}

// EvalReport is what Evaluate measured. Category is the coarse label
// (the product's service), Intent the fine one (the product's category,
// which also re-ranks similar tickets).
type EvalReport struct {
	N                      int
	CategoryAccuracy       float64
	CategoryMacroF1        float64
	IntentAccuracy         float64
	IntentMacroF1          float64
	PrecisionAt5           float64 // same intent among the 5 most similar, as Service.Similar ranks them
	PlainPrecisionAt5      float64 // by vector similarity alone
	CategoryECE, IntentECE float64
	CategoryCalibration    []CalibrationBin
	IntentCalibration      []CalibrationBin
}

// ECE is the larger of the two expected calibration errors.
func (r EvalReport) ECE() float64 { return max(r.CategoryECE, r.IntentECE) }

// Summary is the one-line result.
func (r EvalReport) Summary() string {
	return fmt.Sprintf("accuracy=%.4f macro_f1=%.4f intent_macro_f1=%.4f precision_at_5=%.4f ece=%.4f",
		r.CategoryAccuracy, r.CategoryMacroF1, r.IntentMacroF1, r.PrecisionAt5, r.ECE())
}

// EvalOptions tune Evaluate.
type EvalOptions struct {
	Folds    int    // cross-validation folds when there is no test set (default 5)
	Seed     uint64 // fold assignment (default 1)
	Progress func(line string)
}

type scored struct {
	conf    float64
	correct bool
}

type evalTally struct {
	catPred, catGold, intPred, intGold []string
	cat, intent                        []scored
	p5, plain5                         float64
	queries                            int
}

// Evaluate trains the built-in classifiers and embeddings as the product
// does (same features, calibration and model encoding) and scores them:
// with test nil, stratified k-fold cross-validation on train; else train
// on train and score test.
func Evaluate(train, test []EvalRow, opt EvalOptions) (EvalReport, error) {
	if opt.Folds <= 0 {
		opt.Folds = 5
	}
	if opt.Seed == 0 {
		opt.Seed = 1
	}
	if opt.Progress == nil {
		opt.Progress = func(string) {}
	}
	if len(train) == 0 {
		return EvalReport{}, errors.New("ai: eval: no training rows")
	}
	intentOf := func(r EvalRow) string { return cmp.Or(r.Intent, r.Category) }
	var t evalTally
	if test != nil {
		start := time.Now()
		if err := evalSplit(train, test, intentOf, &t); err != nil {
			return EvalReport{}, err
		}
		opt.Progress(fmt.Sprintf("train %d, test %d: %s (%.1fs)", len(train), len(test), t.progress(), time.Since(start).Seconds()))
		return t.report(), nil
	}
	ex := make([]classify.Example, len(train))
	for i, r := range train {
		ex[i] = classify.Example{Label: intentOf(r)}
	}
	folds := classify.StratifiedFolds(ex, opt.Folds, opt.Seed)
	for f := range opt.Folds {
		start := time.Now()
		var tr, te []EvalRow
		for i, r := range train {
			if folds[i] == f {
				te = append(te, r)
			} else {
				tr = append(tr, r)
			}
		}
		if err := evalSplit(tr, te, intentOf, &t); err != nil {
			return EvalReport{}, err
		}
		opt.Progress(fmt.Sprintf("fold %d/%d: train %d, test %d: %s (%.1fs)", f+1, opt.Folds, len(tr), len(te), t.progress(),
			time.Since(start).Seconds()))
	}
	return t.report(), nil
}

// roundTrip trains on ex and returns the model as stored and read back.
func roundTrip(ex []classify.Example) (*classify.Model, error) {
	m, err := classify.Train(ex, classify.Options{})
	if err != nil {
		return nil, err
	}
	b, err := m.MarshalBinary()
	if err != nil {
		return nil, err
	}
	out := new(classify.Model)
	return out, out.UnmarshalBinary(b)
}

func evalSplit(train, test []EvalRow, intentOf func(EvalRow) string, t *evalTally) error {
	feats := func(r EvalRow) []textvec.Feature { return textvec.Features(r.Subject + "\n" + r.Body) }
	var catEx, intEx []classify.Example
	idx := vecindex.New(vecindex.Config{})
	key := vecindex.Key{Org: uuid.New(), Model: BuiltinModel}
	ids := make(map[uuid.UUID]int, len(train))
	for i, r := range train {
		f := feats(r)
		catEx = append(catEx, classify.Example{Features: f, Label: r.Category})
		intEx = append(intEx, classify.Example{Features: f, Label: intentOf(r)})
		id := uuid.New()
		ids[id] = i
		idx.Upsert(key, id, textvec.Embed(make([]float32, BuiltinDim), f))
	}
	catM, err := roundTrip(catEx)
	if err != nil {
		return fmt.Errorf("ai: eval: category: %w", err)
	}
	intM, err := roundTrip(intEx)
	if err != nil {
		return fmt.Errorf("ai: eval: intent: %w", err)
	}
	for _, r := range test {
		f := feats(r)
		cp := catM.Predict(f)[0]
		t.catPred, t.catGold = append(t.catPred, cp.Label), append(t.catGold, r.Category)
		t.cat = append(t.cat, scored{cp.Prob, cp.Label == r.Category})
		probs := intM.Prob(f)
		best := 0
		for i := range probs {
			if probs[i] > probs[best] {
				best = i
			}
		}
		gold := intentOf(r)
		t.intPred, t.intGold = append(t.intPred, intM.Labels[best]), append(t.intGold, gold)
		t.intent = append(t.intent, scored{probs[best], intM.Labels[best] == gold})

		// Similar tickets exactly as Service.Similar ranks them.
		hits := idx.Search(key, textvec.Embed(make([]float32, BuiltinDim), f), minCandidates, nil)
		cands := make([]Candidate, len(hits))
		for i, h := range hits {
			cands[i] = Candidate{Similarity: h.Score, Label: intentOf(train[ids[h.ID]])}
		}
		scores := RankScores(cands, intM, probs)
		order := make([]int, len(cands))
		for i := range order {
			order[i] = i
		}
		slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(scores[b], scores[a]) })
		for i := 0; i < 5 && i < len(order); i++ {
			if cands[order[i]].Label == gold {
				t.p5++
			}
			if cands[i].Label == gold {
				t.plain5++
			}
		}
		t.queries++
	}
	return nil
}

func (t *evalTally) progress() string {
	return fmt.Sprintf("category_acc=%.4f intent_acc=%.4f precision_at_5=%.4f",
		accuracy(t.cat), accuracy(t.intent), t.p5/float64(5*max(t.queries, 1)))
}

func (t *evalTally) report() EvalReport {
	r := EvalReport{N: t.queries,
		CategoryAccuracy: accuracy(t.cat), CategoryMacroF1: macroF1(t.catPred, t.catGold),
		IntentAccuracy: accuracy(t.intent), IntentMacroF1: macroF1(t.intPred, t.intGold),
		PrecisionAt5: t.p5 / float64(5*max(t.queries, 1)), PlainPrecisionAt5: t.plain5 / float64(5*max(t.queries, 1))}
	r.CategoryCalibration, r.CategoryECE = calibration(t.cat)
	r.IntentCalibration, r.IntentECE = calibration(t.intent)
	return r
}

func accuracy(s []scored) float64 {
	n := 0
	for _, x := range s {
		if x.correct {
			n++
		}
	}
	return float64(n) / float64(max(len(s), 1))
}

// macroF1 is the unweighted mean of the per-label F1 over the gold labels.
func macroF1(pred, gold []string) float64 {
	tp, fp, fn := map[string]int{}, map[string]int{}, map[string]int{}
	labels := map[string]bool{}
	for i := range gold {
		labels[gold[i]] = true
		if pred[i] == gold[i] {
			tp[gold[i]]++
		} else {
			fp[pred[i]]++
			fn[gold[i]]++
		}
	}
	var sum float64
	for l := range labels {
		p := float64(tp[l]) / math.Max(float64(tp[l]+fp[l]), 1)
		rc := float64(tp[l]) / math.Max(float64(tp[l]+fn[l]), 1)
		if p+rc > 0 {
			sum += 2 * p * rc / (p + rc)
		}
	}
	return sum / math.Max(float64(len(labels)), 1)
}

// calibration bins confidences in tenths and returns the table and the
// expected calibration error (count-weighted |accuracy − confidence|).
func calibration(s []scored) ([]CalibrationBin, float64) {
	bins := make([]CalibrationBin, 10)
	for i := range bins {
		bins[i].Lo, bins[i].Hi = float64(i)/10, float64(i+1)/10
	}
	for _, x := range s {
		b := &bins[min(int(x.conf*10), 9)]
		b.N++
		b.MeanConfidence += x.conf
		if x.correct {
			b.Accuracy++
		}
	}
	var ece float64
	for i := range bins {
		b := &bins[i]
		if b.N == 0 {
			continue
		}
		b.MeanConfidence /= float64(b.N)
		b.Accuracy /= float64(b.N)
		ece += float64(b.N) / float64(max(len(s), 1)) * math.Abs(b.Accuracy-b.MeanConfidence)
	}
	return bins, ece
}

// FormatCalibration renders a reliability table.
func FormatCalibration(name string, bins []CalibrationBin) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s calibration (confidence bin: n, mean confidence, accuracy)\n", name)
	for _, x := range bins {
		if x.N > 0 {
			fmt.Fprintf(&b, "  [%.1f, %.1f): %5d  %.3f  %.3f\n", x.Lo, x.Hi, x.N, x.MeanConfidence, x.Accuracy)
		}
	}
	return b.String()
}

// RunEval is `atumdesk ai-eval --train FILE [--test FILE]`: it prints a
// progress line per fold (or split), the calibration tables and ends with
// the one-line summary.
func RunEval(w io.Writer, trainPath, testPath string) (EvalReport, error) {
	read := func(p string) ([]EvalRow, error) {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return ReadEvalCSV(f)
	}
	train, err := read(trainPath)
	if err != nil {
		return EvalReport{}, err
	}
	var test []EvalRow
	if testPath != "" {
		if test, err = read(testPath); err != nil {
			return EvalReport{}, err
		}
	}
	rep, err := Evaluate(train, test, EvalOptions{Progress: func(line string) { fmt.Fprintln(w, line) }})
	if err != nil {
		return rep, err
	}
	fmt.Fprint(w, FormatCalibration("category", rep.CategoryCalibration))
	fmt.Fprint(w, FormatCalibration("intent", rep.IntentCalibration))
	fmt.Fprintf(w, "similar tickets: precision_at_5=%.4f (vectors alone: %.4f)\n", rep.PrecisionAt5, rep.PlainPrecisionAt5)
	fmt.Fprintln(w, rep.Summary())
	return rep, nil
}

// EvalCommand is `atumdesk ai-eval --train FILE [--test FILE]`: with only
// --train, stratified 5-fold cross-validation on it; with --test, train on
// one and score the other.
func EvalCommand(args []string, w io.Writer) error {
	fs := flag.NewFlagSet("ai-eval", flag.ContinueOnError)
	fs.SetOutput(w)
	train := fs.String("train", "", "labelled tickets (CSV: id,subject,body,category,priority,intent)")
	test := fs.String("test", "", "held-out tickets to score (default: 5-fold cross-validation on --train)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *train == "" || fs.NArg() > 0 {
		return errors.New("ai-eval: usage: atumdesk ai-eval --train FILE [--test FILE]")
	}
	_, err := RunEval(w, *train, *test)
	return err
}
