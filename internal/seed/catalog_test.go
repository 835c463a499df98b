package seed_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/atumdesk/atumdesk/internal/seed"
	"github.com/atumdesk/atumdesk/internal/testenv"
)

// TestDemoIsIdempotent runs the seed twice: the second run adds nothing.
func TestDemoIsIdempotent(t *testing.T) {
	db, _ := testenv.DB(t)
	ctx := context.Background()
	count := func() map[string]int64 {
		out := map[string]int64{}
		for _, table := range []string{"organizations", "users", "services", "sla_policies", "kb_categories", "kb_articles", "canned_responses"} {
			var n int64
			require.NoError(t, db.Raw(`SELECT count(*) FROM `+table).Scan(&n).Error)
			out[table] = n
		}
		return out
	}
	_, err := seed.Demo(ctx, db, "")
	require.NoError(t, err)
	first := count()
	require.EqualValues(t, 4, first["kb_articles"])
	require.EqualValues(t, 3, first["canned_responses"])
	_, err = seed.Demo(ctx, db, "")
	require.NoError(t, err)
	require.Equal(t, first, count())
}
