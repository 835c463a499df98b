package ingest

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/internal/audit"
	"github.com/atumdesk/atumdesk/internal/database"
)

// Bounces are recorded where they arrive: in the mailbox they come back
// to, by ingest. A delivery failure report (DSN) names the recipients that
// failed; each that is a user of the mailbox's organisation gets
// users.email_bounced_at, with an audit row, and the notify stage sends
// that address nothing more until it writes to us again (clearBounce) or
// an agent clears the mark. A bounce never becomes a ticket or a comment.

// markBounced sets email_bounced_at for the users of org among addrs and
// returns how many were marked.
func markBounced(ctx context.Context, db *gorm.DB, org uuid.UUID, addrs []string, messageID string) (int, error) {
	lower := make([]string, 0, len(addrs))
	for _, a := range addrs {
		if a = strings.ToLower(strings.TrimSpace(a)); a != "" && len(lower) < 100 {
			lower = append(lower, a)
		}
	}
	if len(lower) == 0 {
		return 0, nil
	}
	n := 0
	err := db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var marked []struct {
			ID    uuid.UUID `gorm:"column:id"`
			Email string    `gorm:"column:email"`
		}
		err := tx.Raw(`UPDATE users SET email_bounced_at = now() WHERE org_id = ? AND lower(email) IN ? RETURNING id, email`,
			org, lower).Scan(&marked).Error
		if err != nil {
			return fmt.Errorf("ingest: mark bounced: %w", err)
		}
		for _, u := range marked {
			id := u.ID
			err := audit.Write(ctx, tx, audit.Entry{OrgID: &org, Action: "user.email_bounced", EntityType: "user", EntityID: &id,
				After: map[string]any{"email": u.Email, "bounce_message_id": messageID}, UserAgent: "atumdesk-imap"})
			if err != nil {
				return err
			}
		}
		n = len(marked)
		return nil
	})
	return n, database.Classify(err)
}

// clearBounce lifts the bounce mark of the user of org with address email:
// mail from the address shows it works again.
func clearBounce(ctx context.Context, db *gorm.DB, org uuid.UUID, email string) error {
	err := db.WithContext(ctx).Exec(`UPDATE users SET email_bounced_at = NULL
		WHERE org_id = ? AND lower(email) = lower(?) AND email_bounced_at IS NOT NULL`, org, email).Error
	return database.Classify(err)
}
