package models

import (
	"time"

	"github.com/google/uuid"
)

// AuditLog is one append-only audit record; UPDATE, DELETE and TRUNCATE of
// audit_log fail in the database (SQLSTATE 42501, "audit_log is append-only").
// ID is an identity assigned by the database: leave it zero on Create.
// OrgID is nil for platform events.
type AuditLog struct {
	ID         int64      `gorm:"column:id;primaryKey;autoIncrement" json:"id"`
	OrgID      *uuid.UUID `gorm:"column:org_id" json:"org_id"`
	TicketID   *uuid.UUID `gorm:"column:ticket_id" json:"ticket_id"`
	UserID     *uuid.UUID `gorm:"column:user_id" json:"user_id"`
	ActorKind  ActorKind  `gorm:"column:actor_kind" json:"actor_kind"`
	Action     string     `gorm:"column:action" json:"action"`
	EntityType string     `gorm:"column:entity_type" json:"entity_type"`
	EntityID   *uuid.UUID `gorm:"column:entity_id" json:"entity_id"`
	Before     JSONB      `gorm:"column:before" json:"before"`
	After      JSONB      `gorm:"column:after" json:"after"`
	IP         *string    `gorm:"column:ip" json:"ip"`
	UserAgent  *string    `gorm:"column:user_agent" json:"user_agent"`
	RequestID  *string    `gorm:"column:request_id" json:"request_id"`
	CreatedAt  time.Time  `gorm:"column:created_at" json:"created_at"`
}

// TableName implements gorm's Tabler.
func (AuditLog) TableName() string { return "audit_log" }
