package pipeline

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/atumdesk/atumdesk/internal/testenv"
)

// TestPersisterAutoSubmitted: the flag of machine-written mail reaches
// tickets.auto_submitted, in a batch with ordinary intakes.
func TestPersisterAutoSubmitted(t *testing.T) {
	t.Parallel()
	db, _ := testenv.DB(t)
	f := newFixture(t, db, "auto")
	p, _ := newTestPersister(t, db)
	human := f.intake(1, "a@x.test")
	robot := f.intake(2, "vacation@x.test")
	robot.Channel, robot.MessageID, robot.AutoSubmitted = ChannelEmail, "auto-1@x.test", true
	require.NoError(t, p.Handle(context.Background(), messages(t, human, robot)))
	var auto []bool
	require.NoError(t, db.Raw(`SELECT auto_submitted FROM tickets WHERE id IN (?, ?) ORDER BY number`, human.TicketID, robot.TicketID).
		Scan(&auto).Error)
	require.Equal(t, []bool{false, true}, auto)
}
