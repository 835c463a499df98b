package models

import (
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
)

// SLABreach records that one SLA clock of a ticket breached: the due time
// missed and when the breach fired. At most one per (ticket, kind); the sla
// worker inserts it with ON CONFLICT DO NOTHING.
type SLABreach struct {
	ID         uuid.UUID  `gorm:"column:id" json:"id"`
	OrgID      uuid.UUID  `gorm:"column:org_id" json:"org_id"`
	TicketID   uuid.UUID  `gorm:"column:ticket_id;primaryKey" json:"ticket_id"`
	Kind       SLAMetric  `gorm:"column:kind;primaryKey" json:"kind"`
	PolicyID   *uuid.UUID `gorm:"column:policy_id" json:"policy_id"`
	DueAt      time.Time  `gorm:"column:due_at" json:"due_at"`
	BreachedAt time.Time  `gorm:"column:breached_at;default:now()" json:"breached_at"`
}

// TableName implements gorm's Tabler.
func (SLABreach) TableName() string { return "sla_breaches" }

// BeforeCreate assigns a UUIDv7 id.
func (b *SLABreach) BeforeCreate(*gorm.DB) error { ensureID(&b.ID); return nil }
