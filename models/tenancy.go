package models

import (
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
)

// Organization is a tenant.
type Organization struct {
	ID            uuid.UUID   `gorm:"column:id;primaryKey" json:"id"`
	Slug          string      `gorm:"column:slug" json:"slug"`
	Name          string      `gorm:"column:name" json:"name"`
	Timezone      string      `gorm:"column:timezone;default:UTC" json:"timezone"`
	BusinessHours JSONB       `gorm:"column:business_hours" json:"business_hours"`
	Holidays      JSONB       `gorm:"column:holidays;default:'[]'" json:"holidays"`
	AllowedIPs    StringArray `gorm:"column:allowed_ips" json:"allowed_ips"`
	Settings      JSONB       `gorm:"column:settings;default:'{}'" json:"settings"`
	FormKey       *string     `gorm:"column:form_key" json:"form_key"`
	IsActive      bool        `gorm:"column:is_active" json:"is_active"`
	CreatedAt     time.Time   `gorm:"column:created_at" json:"created_at"`
	UpdatedAt     time.Time   `gorm:"column:updated_at" json:"updated_at"`
}

// TableName implements gorm's Tabler.
func (Organization) TableName() string { return "organizations" }

// BeforeCreate assigns a UUIDv7 id.
func (o *Organization) BeforeCreate(*gorm.DB) error { ensureID(&o.ID); return nil }

// TicketCounter allocates per-organisation ticket numbers. A row is created
// for every organisation by a trigger; allocate with
//
//	UPDATE ticket_counters SET last_number = last_number + 1
//	WHERE org_id = $1 RETURNING last_number
//
// or SELECT next_ticket_number($1), in the transaction that inserts the ticket.
type TicketCounter struct {
	OrgID      uuid.UUID `gorm:"column:org_id;primaryKey" json:"org_id"`
	LastNumber int64     `gorm:"column:last_number" json:"last_number"`
}

// TableName implements gorm's Tabler.
func (TicketCounter) TableName() string { return "ticket_counters" }

// User is a customer or staff member of one organisation.
type User struct {
	ID                uuid.UUID  `gorm:"column:id;primaryKey" json:"id"`
	OrgID             uuid.UUID  `gorm:"column:org_id" json:"org_id"`
	Email             string     `gorm:"column:email" json:"email"`
	Name              string     `gorm:"column:name" json:"name"`
	Role              Role       `gorm:"column:role" json:"role"`
	PasswordHash      *string    `gorm:"column:password_hash" json:"-"`
	IsActive          bool       `gorm:"column:is_active" json:"is_active"`
	TOTPSecret        *string    `gorm:"column:totp_secret" json:"-"`
	TOTPEnabled       bool       `gorm:"column:totp_enabled" json:"totp_enabled"`
	TOTPLastStep      *int64     `gorm:"column:totp_last_step" json:"-"`
	Timezone          *string    `gorm:"column:timezone" json:"timezone"`
	Locale            *string    `gorm:"column:locale" json:"locale"`
	EmailVerifiedAt   *time.Time `gorm:"column:email_verified_at" json:"email_verified_at"`
	FailedLoginCount  int        `gorm:"column:failed_login_count" json:"-"`
	LockedUntil       *time.Time `gorm:"column:locked_until" json:"locked_until"`
	LastLoginAt       *time.Time `gorm:"column:last_login_at" json:"last_login_at"`
	PasswordChangedAt *time.Time `gorm:"column:password_changed_at" json:"password_changed_at"`
	// EmailBouncedAt: mail to the address bounced (a DSN ingest read, or an
	// SMTP refusal); nothing is mailed to it until it writes to us again.
	EmailBouncedAt *time.Time `gorm:"column:email_bounced_at" json:"email_bounced_at"`
	CreatedAt      time.Time  `gorm:"column:created_at" json:"created_at"`
	UpdatedAt      time.Time  `gorm:"column:updated_at" json:"updated_at"`
}

// TableName implements gorm's Tabler.
func (User) TableName() string { return "users" }

// BeforeCreate assigns a UUIDv7 id.
func (u *User) BeforeCreate(*gorm.DB) error { ensureID(&u.ID); return nil }

// IsStaff reports whether the user works the desk.
func (u *User) IsStaff() bool { return u.Role.IsStaff() }

// IsLocked reports whether login is temporarily locked at time now.
func (u *User) IsLocked(now time.Time) bool {
	return u.LockedUntil != nil && now.Before(*u.LockedUntil)
}

// CanLogIn reports whether the user may authenticate with a password at all.
func (u *User) CanLogIn(now time.Time) bool {
	return u.IsActive && u.PasswordHash != nil && !u.IsLocked(now)
}

// RefreshToken is one rotation of a refresh token. Only the sha-256 of the
// opaque token is stored.
type RefreshToken struct {
	ID         uuid.UUID  `gorm:"column:id;primaryKey" json:"id"`
	UserID     uuid.UUID  `gorm:"column:user_id" json:"user_id"`
	OrgID      uuid.UUID  `gorm:"column:org_id" json:"org_id"`
	FamilyID   uuid.UUID  `gorm:"column:family_id" json:"family_id"`
	TokenHash  []byte     `gorm:"column:token_hash" json:"-"`
	ExpiresAt  time.Time  `gorm:"column:expires_at" json:"expires_at"`
	UsedAt     *time.Time `gorm:"column:used_at" json:"used_at"`
	RevokedAt  *time.Time `gorm:"column:revoked_at" json:"revoked_at"`
	ReplacedBy *uuid.UUID `gorm:"column:replaced_by" json:"replaced_by"`
	IP         *string    `gorm:"column:ip" json:"ip"`
	UserAgent  *string    `gorm:"column:user_agent" json:"user_agent"`
	CreatedAt  time.Time  `gorm:"column:created_at" json:"created_at"`
}

// TableName implements gorm's Tabler.
func (RefreshToken) TableName() string { return "refresh_tokens" }

// BeforeCreate assigns a UUIDv7 id.
func (t *RefreshToken) BeforeCreate(*gorm.DB) error { ensureID(&t.ID); return nil }

// Usable reports whether the token may be exchanged at time now: not
// expired, not revoked and never used before (a second use is a replay).
func (t *RefreshToken) Usable(now time.Time) bool {
	return t.UsedAt == nil && t.RevokedAt == nil && now.Before(t.ExpiresAt)
}

// UserToken is a single-use token sent by e-mail (password reset, e-mail
// verification, invitation, portal magic link).
type UserToken struct {
	ID        uuid.UUID    `gorm:"column:id;primaryKey" json:"id"`
	OrgID     uuid.UUID    `gorm:"column:org_id" json:"org_id"`
	UserID    uuid.UUID    `gorm:"column:user_id" json:"user_id"`
	Purpose   TokenPurpose `gorm:"column:purpose" json:"purpose"`
	TokenHash []byte       `gorm:"column:token_hash" json:"-"`
	ExpiresAt time.Time    `gorm:"column:expires_at" json:"expires_at"`
	UsedAt    *time.Time   `gorm:"column:used_at" json:"used_at"`
	CreatedAt time.Time    `gorm:"column:created_at" json:"created_at"`
}

// TableName implements gorm's Tabler.
func (UserToken) TableName() string { return "user_tokens" }

// BeforeCreate assigns a UUIDv7 id.
func (t *UserToken) BeforeCreate(*gorm.DB) error { ensureID(&t.ID); return nil }

// Usable reports whether the token is unused and unexpired at time now.
func (t *UserToken) Usable(now time.Time) bool {
	return t.UsedAt == nil && now.Before(t.ExpiresAt)
}

// APIKey authenticates REST calls as its owning user. Only the sha-256 of the
// key is stored; KeyPrefix is shown in the UI to tell keys apart.
type APIKey struct {
	ID         uuid.UUID   `gorm:"column:id;primaryKey" json:"id"`
	OrgID      uuid.UUID   `gorm:"column:org_id" json:"org_id"`
	UserID     uuid.UUID   `gorm:"column:user_id" json:"user_id"`
	Name       string      `gorm:"column:name" json:"name"`
	KeyPrefix  string      `gorm:"column:key_prefix" json:"key_prefix"`
	KeyHash    []byte      `gorm:"column:key_hash" json:"-"`
	Scopes     StringArray `gorm:"column:scopes" json:"scopes"`
	LastUsedAt *time.Time  `gorm:"column:last_used_at" json:"last_used_at"`
	ExpiresAt  *time.Time  `gorm:"column:expires_at" json:"expires_at"`
	RevokedAt  *time.Time  `gorm:"column:revoked_at" json:"revoked_at"`
	CreatedAt  time.Time   `gorm:"column:created_at" json:"created_at"`
}

// TableName implements gorm's Tabler.
func (APIKey) TableName() string { return "api_keys" }

// BeforeCreate assigns a UUIDv7 id.
func (k *APIKey) BeforeCreate(*gorm.DB) error { ensureID(&k.ID); return nil }

// Usable reports whether the key is neither revoked nor expired at time now.
func (k *APIKey) Usable(now time.Time) bool {
	return k.RevokedAt == nil && (k.ExpiresAt == nil || now.Before(*k.ExpiresAt))
}
