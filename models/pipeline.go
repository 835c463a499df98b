package models

import (
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
)

// IdempotencyKey remembers an intake submission so a retry returns the same
// ticket. TicketID is the id ingest assigned; the ticket row may not exist yet.
type IdempotencyKey struct {
	OrgID       uuid.UUID  `gorm:"column:org_id;primaryKey" json:"org_id"`
	Scope       string     `gorm:"column:scope;primaryKey" json:"scope"`
	Key         string     `gorm:"column:key;primaryKey" json:"key"`
	RequestHash []byte     `gorm:"column:request_hash" json:"-"`
	TicketID    *uuid.UUID `gorm:"column:ticket_id" json:"ticket_id"`
	CreatedAt   time.Time  `gorm:"column:created_at" json:"created_at"`
}

// TableName implements gorm's Tabler.
func (IdempotencyKey) TableName() string { return "idempotency_keys" }

// OutboxEvent is a domain event written in the same transaction as the change
// it describes and published to Kafka by the relay. ID is a database identity:
// leave it zero on Create.
type OutboxEvent struct {
	ID          int64      `gorm:"column:id;primaryKey;autoIncrement" json:"id"`
	EventID     uuid.UUID  `gorm:"column:event_id" json:"event_id"`
	Topic       string     `gorm:"column:topic" json:"topic"`
	Key         string     `gorm:"column:key" json:"key"`
	EventType   string     `gorm:"column:event_type" json:"event_type"`
	Payload     JSONB      `gorm:"column:payload" json:"payload"`
	Attempts    int        `gorm:"column:attempts" json:"attempts"`
	LastError   *string    `gorm:"column:last_error" json:"last_error"`
	CreatedAt   time.Time  `gorm:"column:created_at" json:"created_at"`
	PublishedAt *time.Time `gorm:"column:published_at" json:"published_at"`
}

// TableName implements gorm's Tabler.
func (OutboxEvent) TableName() string { return "outbox" }

// BeforeCreate assigns a UUIDv7 event id.
func (e *OutboxEvent) BeforeCreate(*gorm.DB) error { ensureID(&e.EventID); return nil }

// ProcessedEvent marks an event as handled by one consumer (dedup under
// at-least-once delivery).
type ProcessedEvent struct {
	Consumer    string    `gorm:"column:consumer;primaryKey" json:"consumer"`
	EventID     uuid.UUID `gorm:"column:event_id;primaryKey" json:"event_id"`
	ProcessedAt time.Time `gorm:"column:processed_at;default:now()" json:"processed_at"`
}

// TableName implements gorm's Tabler.
func (ProcessedEvent) TableName() string { return "processed_events" }

// Mailbox is an IMAP mailbox polled for inbound e-mail. The password is
// stored sealed (PasswordEnc) when CredentialsRef is "secretbox".
type Mailbox struct {
	ID               uuid.UUID    `gorm:"column:id;primaryKey" json:"id"`
	OrgID            uuid.UUID    `gorm:"column:org_id" json:"org_id"`
	Name             string       `gorm:"column:name" json:"name"`
	Address          string       `gorm:"column:address" json:"address"`
	IMAPHost         string       `gorm:"column:imap_host" json:"imap_host"`
	IMAPPort         int          `gorm:"column:imap_port;default:993" json:"imap_port"`
	IMAPTLS          IMAPSecurity `gorm:"column:imap_tls;default:tls" json:"imap_tls"`
	IMAPUsername     string       `gorm:"column:imap_username" json:"imap_username"`
	CredentialsRef   string       `gorm:"column:credentials_ref" json:"credentials_ref"`
	Folder           string       `gorm:"column:folder;default:INBOX" json:"folder"`
	DefaultServiceID *uuid.UUID   `gorm:"column:default_service_id" json:"default_service_id"`
	UIDValidity      *int64       `gorm:"column:uid_validity" json:"uid_validity"`
	LastUID          int64        `gorm:"column:last_uid" json:"last_uid"`
	LastPolledAt     *time.Time   `gorm:"column:last_polled_at" json:"last_polled_at"`
	LastError        *string      `gorm:"column:last_error" json:"last_error"`
	LeaseOwner       *string      `gorm:"column:lease_owner" json:"lease_owner"`
	LeaseExpiresAt   *time.Time   `gorm:"column:lease_expires_at" json:"lease_expires_at"`
	IsActive         bool         `gorm:"column:is_active" json:"is_active"`
	CreatedAt        time.Time    `gorm:"column:created_at" json:"created_at"`
	UpdatedAt        time.Time    `gorm:"column:updated_at" json:"updated_at"`

	// Added by 00006: PasswordEnc is the IMAP password sealed by
	// internal/secretbox when CredentialsRef is "secretbox" (never shown);
	// AfterIngest is "seen" or "move:<folder>"; ConfigVersion is bumped by
	// every settings change so a running poller reconnects.
	PasswordEnc   []byte `gorm:"column:password_enc" json:"-"`
	AfterIngest   string `gorm:"column:after_ingest;default:seen" json:"after_ingest"`
	ConfigVersion int    `gorm:"column:config_version;default:1" json:"config_version"`
	// UnknownSender (00009): what mail from an address that is no user of
	// the organisation does: UnknownSenderCreate or UnknownSenderQuarantine.
	UnknownSender string `gorm:"column:unknown_sender;default:create" json:"unknown_sender"`
}

// Mailbox.UnknownSender values.
const (
	UnknownSenderCreate     = "create"
	UnknownSenderQuarantine = "quarantine"
)

// TableName implements gorm's Tabler.
func (Mailbox) TableName() string { return "mailboxes" }

// BeforeCreate assigns a UUIDv7 id.
func (m *Mailbox) BeforeCreate(*gorm.DB) error { ensureID(&m.ID); return nil }
