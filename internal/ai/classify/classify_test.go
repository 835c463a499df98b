package classify

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/atumdesk/atumdesk/internal/ai/textvec"
)

func examples(n int) []Example {
	var out []Example
	for i := range n {
		out = append(out,
			Example{Features: textvec.Features(fmt.Sprintf("password reset login %d", i)), Label: "account"},
			Example{Features: textvec.Features(fmt.Sprintf("invoice refund charged %d", i)), Label: "billing"},
			Example{Features: textvec.Features(fmt.Sprintf("vpn wifi network down %d", i)), Label: "network"})
	}
	return out
}

func TestTrainPredictAndRoundTrip(t *testing.T) {
	m, err := Train(examples(20), Options{})
	require.NoError(t, err)
	require.Equal(t, []string{"account", "billing", "network"}, m.Labels)
	p := m.Predict(textvec.Features("I need a password reset"))
	require.Equal(t, "account", p[0].Label)
	require.Greater(t, p[0].Prob, 0.6)
	var sum float64
	for _, x := range p {
		sum += x.Prob
	}
	require.InDelta(t, 1, sum, 1e-9)

	b, err := m.MarshalBinary()
	require.NoError(t, err)
	var back Model
	require.NoError(t, back.UnmarshalBinary(b))
	require.Equal(t, m.Labels, back.Labels)
	require.Equal(t, m.Keys, back.Keys)
	q := back.Predict(textvec.Features("I need a password reset"))
	require.Equal(t, p[0].Label, q[0].Label)
	require.InDelta(t, p[0].Prob, q[0].Prob, 0.01, "int8 weights barely move probabilities")
	require.Error(t, back.UnmarshalBinary([]byte("not a model")))
}

func TestTooLittleData(t *testing.T) {
	_, err := Train(examples(1), Options{}) // one example per label: below MinPerClass
	require.ErrorIs(t, err, ErrTooLittleData)
	one := examples(5)[:1]
	_, err = Train(append(one, one...), Options{MinPerClass: 1})
	require.ErrorIs(t, err, ErrTooLittleData, "a single label is no classifier")
}

func TestStratifiedFolds(t *testing.T) {
	ex := examples(10)
	folds := StratifiedFolds(ex, 5, 1)
	per := map[[2]any]int{}
	for i, e := range ex {
		per[[2]any{folds[i], e.Label}]++
	}
	for _, n := range per {
		require.Equal(t, 2, n, "each label evenly over the folds")
	}
	require.Equal(t, folds, StratifiedFolds(ex, 5, 1))
}
