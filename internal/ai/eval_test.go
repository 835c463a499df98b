package ai_test

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/atumdesk/atumdesk/internal/ai"
	"github.com/atumdesk/atumdesk/internal/testenv"
)

// TestEvaluateSharedTickets is the evaluation: stratified 5-fold
// cross-validation on ../shared/data/tickets/train.csv (Bitext sample,
// CDLA-Sharing-1.0; used here for evaluation only, never shipped; see its
// SOURCE.md). Targets: category macro-F1 ≥ 0.995, intent macro-F1 ≥
// 0.985, same-intent precision@5 ≥ 0.95, calibration error ≤ 0.05.
func TestEvaluateSharedTickets(t *testing.T) {
	path := testenv.SharedData("tickets", "train.csv")
	_, err := os.Stat(path)
	require.NoError(t, err, "the shared ticket data set is missing")
	var out strings.Builder
	rep, err := ai.RunEval(&out, path, "")
	require.NoError(t, err)
	t.Log("\n" + out.String())
	require.Equal(t, 5086, rep.N)
	require.GreaterOrEqual(t, rep.CategoryMacroF1, 0.995)
	require.GreaterOrEqual(t, rep.IntentMacroF1, 0.985)
	require.GreaterOrEqual(t, rep.PrecisionAt5, 0.95)
	require.LessOrEqual(t, rep.ECE(), 0.05)
	require.Contains(t, out.String(), "fold 5/5")
	require.True(t, strings.HasPrefix(strings.TrimSpace(out.String()[strings.LastIndex(strings.TrimSpace(out.String()), "\n")+1:]), "accuracy="))
}
