package imap

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/models"
)

// errLeaseLost: the mailbox row is no longer ours (lease expired and taken,
// mailbox deactivated or deleted); the session stops without touching it.
var errLeaseLost = errors.New("imap: mailbox lease lost")

// mailbox is a mailboxes row as the poller needs it: connection settings,
// position and the version of the settings.
type mailbox struct {
	ID             uuid.UUID           `gorm:"column:id"`
	OrgID          uuid.UUID           `gorm:"column:org_id"`
	Address        string              `gorm:"column:address"`
	IMAPHost       string              `gorm:"column:imap_host"`
	IMAPPort       int                 `gorm:"column:imap_port"`
	IMAPTLS        models.IMAPSecurity `gorm:"column:imap_tls"`
	IMAPUsername   string              `gorm:"column:imap_username"`
	CredentialsRef string              `gorm:"column:credentials_ref"`
	PasswordEnc    []byte              `gorm:"column:password_enc"`
	Folder         string              `gorm:"column:folder"`
	AfterIngest    string              `gorm:"column:after_ingest"`
	UIDValidity    *int64              `gorm:"column:uid_validity"`
	LastUID        int64               `gorm:"column:last_uid"`
	ConfigVersion  int                 `gorm:"column:config_version"`
}

const mailboxColumns = `m.id, m.org_id, m.address, m.imap_host, m.imap_port, m.imap_tls, m.imap_username,
	m.credentials_ref, m.password_enc, m.folder, m.after_ingest, m.uid_validity, m.last_uid, m.config_version`

// store is the poller's PostgreSQL state: leases, positions, the dedupe
// record and the quarantine. Every write to a mailbox row is fenced by the
// lease (lease_owner = owner), so a poller that lost its lease cannot move
// the position of the one that took over.
type store struct {
	db    *gorm.DB
	owner string
	ttl   time.Duration
}

func (s *store) ttlMillis() int64 { return s.ttl.Milliseconds() }

// notIn keeps `id NOT IN ?` meaningful for an empty list.
func notIn(ids []uuid.UUID) []uuid.UUID {
	if len(ids) == 0 {
		return []uuid.UUID{uuid.Nil}
	}
	return ids
}

// renewed is a lease renewed: the mailbox and its settings version.
type renewed struct {
	ID            uuid.UUID `gorm:"column:id"`
	ConfigVersion int       `gorm:"column:config_version"`
}

// renew extends the leases on held; mailboxes missing from the answer were
// lost (expired and taken over, deactivated, deleted).
func (s *store) renew(ctx context.Context, held []uuid.UUID) ([]renewed, error) {
	var out []renewed
	if len(held) == 0 {
		return nil, nil
	}
	err := s.db.WithContext(ctx).Raw(`
		UPDATE mailboxes SET lease_expires_at = now() + ? * interval '1 millisecond'
		WHERE lease_owner = ? AND lease_expires_at > now() AND is_active AND id IN ?
		RETURNING id, config_version`, s.ttlMillis(), s.owner, held).Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("imap: renew leases: %w", err)
	}
	return out, nil
}

// acquire takes up to limit active mailboxes that nobody holds (or whose
// holder stopped renewing), skipping those in running. Rows locked by a
// concurrent acquirer are skipped, so two processes never take one mailbox.
func (s *store) acquire(ctx context.Context, running []uuid.UUID, limit int) ([]mailbox, error) {
	var out []mailbox
	err := s.db.WithContext(ctx).Raw(`
		UPDATE mailboxes m SET lease_owner = ?, lease_expires_at = now() + ? * interval '1 millisecond'
		FROM (
			SELECT id FROM mailboxes
			WHERE is_active AND id NOT IN ?
			  AND (lease_owner IS NULL OR lease_owner = ? OR lease_expires_at IS NULL OR lease_expires_at <= now())
			ORDER BY id
			LIMIT ?
			FOR UPDATE SKIP LOCKED
		) c
		WHERE m.id = c.id
		RETURNING `+mailboxColumns, s.owner, s.ttlMillis(), notIn(running), s.owner, limit).Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("imap: acquire leases: %w", err)
	}
	return out, nil
}

// release gives leases up (on shutdown), so another process takes over at
// once instead of after the TTL.
func (s *store) release(ctx context.Context, ids []uuid.UUID) error {
	if len(ids) == 0 {
		return nil
	}
	return s.db.WithContext(ctx).Exec(`
		UPDATE mailboxes SET lease_owner = NULL, lease_expires_at = NULL
		WHERE lease_owner = ? AND id IN ?`, s.owner, ids).Error
}

// load re-reads a held mailbox (settings and position) before a session.
func (s *store) load(ctx context.Context, id uuid.UUID) (*mailbox, error) {
	var out []mailbox
	err := s.db.WithContext(ctx).Raw(`SELECT `+mailboxColumns+` FROM mailboxes m
		WHERE m.id = ? AND m.lease_owner = ? AND m.is_active`, id, s.owner).Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("imap: load mailbox: %w", err)
	}
	if len(out) == 0 {
		return nil, errLeaseLost
	}
	return &out[0], nil
}

// savePosition records UIDVALIDITY and the last UID handled, and clears the
// error: the session is healthy.
func (s *store) savePosition(ctx context.Context, id uuid.UUID, uidValidity uint32, lastUID uint32) error {
	res := s.db.WithContext(ctx).Exec(`
		UPDATE mailboxes SET uid_validity = ?, last_uid = ?, last_polled_at = now(), last_error = NULL
		WHERE id = ? AND lease_owner = ?`, int64(uidValidity), int64(lastUID), id, s.owner)
	if res.Error != nil {
		return fmt.Errorf("imap: save position: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return errLeaseLost
	}
	return nil
}

// saveError records why the last session failed (shown to admins).
func (s *store) saveError(ctx context.Context, id uuid.UUID, msg string) error {
	return s.db.WithContext(ctx).Exec(`UPDATE mailboxes SET last_error = ? WHERE id = ? AND lease_owner = ?`,
		truncate(msg, 1000), id, s.owner).Error
}

// known reports whether the message was ingested or quarantined before.
func (s *store) known(ctx context.Context, mailboxID uuid.UUID, key string) (bool, error) {
	var known bool
	err := s.db.WithContext(ctx).Raw(`
		SELECT EXISTS (SELECT 1 FROM mail_ingested WHERE mailbox_id = ? AND dedupe_key = ?)
		    OR EXISTS (SELECT 1 FROM mail_quarantine WHERE mailbox_id = ? AND dedupe_key = ?)`,
		mailboxID, key, mailboxID, key).Scan(&known).Error
	if err != nil {
		return false, fmt.Errorf("imap: dedupe lookup: %w", err)
	}
	return known, nil
}

// ingested records a message the sink accepted.
func (s *store) ingested(ctx context.Context, m *Message) error {
	err := s.db.WithContext(ctx).Exec(`
		INSERT INTO mail_ingested (mailbox_id, dedupe_key, uid_validity, uid, raw_sha256)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		m.MailboxID, m.DedupeKey(), int64(m.UIDValidity), int64(m.UID), m.SHA256).Error
	if err != nil {
		return fmt.Errorf("imap: record ingested: %w", err)
	}
	return nil
}

// quarantine keeps a message ingest failed on under key. raw may be
// unstored (SHA256 ""), e.g. when it was larger than the limit.
func (s *store) quarantine(ctx context.Context, m *Message, key string, size int64, attempts int, cause string) error {
	var sha, mid *string
	if m.SHA256 != "" {
		sha = &m.SHA256
	}
	if m.MessageID != "" {
		mid = &m.MessageID
	}
	err := s.db.WithContext(ctx).Exec(`
		INSERT INTO mail_quarantine (id, org_id, mailbox_id, uid_validity, uid, dedupe_key, message_id,
		                             raw_sha256, raw_size, error, attempts)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (mailbox_id, dedupe_key) DO UPDATE
		SET error = EXCLUDED.error, attempts = mail_quarantine.attempts + EXCLUDED.attempts,
		    uid_validity = EXCLUDED.uid_validity, uid = EXCLUDED.uid, status = 'quarantined'`,
		models.NewID(), m.OrgID, m.MailboxID, int64(m.UIDValidity), int64(m.UID), key, mid,
		sha, size, truncate(cause, 4000), attempts).Error
	if err != nil {
		return fmt.Errorf("imap: quarantine: %w", err)
	}
	return nil
}

// replayItem is a quarantined message an admin asked to replay.
type replayItem struct {
	ID          uuid.UUID `gorm:"column:id"`
	OrgID       uuid.UUID `gorm:"column:org_id"`
	MailboxID   uuid.UUID `gorm:"column:mailbox_id"`
	Address     string    `gorm:"column:address"`
	Folder      string    `gorm:"column:folder"`
	UIDValidity int64     `gorm:"column:uid_validity"`
	UID         int64     `gorm:"column:uid"`
	MessageID   *string   `gorm:"column:message_id"`
	RawSHA256   *string   `gorm:"column:raw_sha256"`
}

// replays lists replay requests for mailboxes this process holds.
func (s *store) replays(ctx context.Context, limit int) ([]replayItem, error) {
	var out []replayItem
	err := s.db.WithContext(ctx).Raw(`
		SELECT q.id, q.org_id, q.mailbox_id, m.address, m.folder, q.uid_validity, q.uid, q.message_id, q.raw_sha256
		FROM mail_quarantine q JOIN mailboxes m ON m.id = q.mailbox_id
		WHERE q.status = 'replay' AND m.lease_owner = ? AND m.lease_expires_at > now()
		ORDER BY q.id LIMIT ?`, s.owner, limit).Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("imap: list replays: %w", err)
	}
	return out, nil
}

// replayed marks a replay done and records the message as ingested, in one
// transaction.
func (s *store) replayed(ctx context.Context, q replayItem, m *Message) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := (&store{db: tx}).ingested(ctx, m); err != nil {
			return err
		}
		return tx.Exec(`UPDATE mail_quarantine SET status = 'replayed', replayed_at = now(), attempts = attempts + 1
			WHERE id = ?`, q.ID).Error
	})
}

// replayFailed puts a replayed message back into quarantine with its error.
func (s *store) replayFailed(ctx context.Context, id uuid.UUID, cause string) error {
	return s.db.WithContext(ctx).Exec(`UPDATE mail_quarantine SET status = 'quarantined', error = ?, attempts = attempts + 1
		WHERE id = ? AND status = 'replay'`, truncate(cause, 4000), id).Error
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && (s[n]&0xC0) == 0x80 { // keep UTF-8 whole
		n--
	}
	return s[:n]
}
