package models

import (
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
)

// MailIngested records a message the IMAP poller handed to ingest, keyed by
// mailbox and DedupeKey ("mid:<Message-ID>" or "sha256:<hex>"), so that a
// UIDVALIDITY reset or a re-fetch after a crash does not ingest it twice.
type MailIngested struct {
	MailboxID   uuid.UUID `gorm:"column:mailbox_id;primaryKey" json:"mailbox_id"`
	DedupeKey   string    `gorm:"column:dedupe_key;primaryKey" json:"dedupe_key"`
	UIDValidity int64     `gorm:"column:uid_validity" json:"uid_validity"`
	UID         int64     `gorm:"column:uid" json:"uid"`
	RawSHA256   string    `gorm:"column:raw_sha256" json:"raw_sha256"`
	CreatedAt   time.Time `gorm:"column:created_at;default:now()" json:"created_at"`
}

// TableName implements gorm's Tabler.
func (MailIngested) TableName() string { return "mail_ingested" }

// Quarantine statuses of a MailQuarantine row.
const (
	QuarantineHeld     = "quarantined"
	QuarantineReplay   = "replay" // an admin asked for a replay; the poller picks it up
	QuarantineReplayed = "replayed"
)

// MailQuarantine is a message ingest kept failing on, kept with its error
// and replayable from the stored raw bytes (RawSHA256; nil when the message
// was too large to store).
type MailQuarantine struct {
	ID          uuid.UUID  `gorm:"column:id;primaryKey" json:"id"`
	OrgID       uuid.UUID  `gorm:"column:org_id" json:"org_id"`
	MailboxID   uuid.UUID  `gorm:"column:mailbox_id" json:"mailbox_id"`
	UIDValidity int64      `gorm:"column:uid_validity" json:"uid_validity"`
	UID         int64      `gorm:"column:uid" json:"uid"`
	DedupeKey   string     `gorm:"column:dedupe_key" json:"dedupe_key"`
	MessageID   *string    `gorm:"column:message_id" json:"message_id"`
	RawSHA256   *string    `gorm:"column:raw_sha256" json:"raw_sha256"`
	RawSize     int64      `gorm:"column:raw_size" json:"raw_size"`
	Error       string     `gorm:"column:error" json:"error"`
	Attempts    int        `gorm:"column:attempts" json:"attempts"`
	Status      string     `gorm:"column:status;default:quarantined" json:"status"`
	CreatedAt   time.Time  `gorm:"column:created_at" json:"created_at"`
	UpdatedAt   time.Time  `gorm:"column:updated_at" json:"updated_at"`
	ReplayedAt  *time.Time `gorm:"column:replayed_at" json:"replayed_at"`
}

// TableName implements gorm's Tabler.
func (MailQuarantine) TableName() string { return "mail_quarantine" }

// BeforeCreate assigns a UUIDv7 id.
func (q *MailQuarantine) BeforeCreate(*gorm.DB) error { ensureID(&q.ID); return nil }

// Notification is one e-mail the notify stage sends (or decided not to) for
// one domain event and recipient; its MessageID threads the customer's
// reply back to the ticket. Status and Kind values are owned by
// workers/notify.
type Notification struct {
	ID        uuid.UUID  `gorm:"column:id;primaryKey" json:"id"`
	OrgID     uuid.UUID  `gorm:"column:org_id" json:"org_id"`
	TicketID  uuid.UUID  `gorm:"column:ticket_id" json:"ticket_id"`
	EventID   uuid.UUID  `gorm:"column:event_id" json:"event_id"`
	Kind      string     `gorm:"column:kind" json:"kind"`
	Recipient string     `gorm:"column:recipient" json:"recipient"`
	MessageID string     `gorm:"column:message_id" json:"message_id"`
	Status    string     `gorm:"column:status;default:pending" json:"status"`
	Reason    *string    `gorm:"column:reason" json:"reason"`
	Attempts  int        `gorm:"column:attempts" json:"attempts"`
	CreatedAt time.Time  `gorm:"column:created_at;default:now()" json:"created_at"`
	SentAt    *time.Time `gorm:"column:sent_at" json:"sent_at"`
}

// TableName implements gorm's Tabler.
func (Notification) TableName() string { return "notifications" }
