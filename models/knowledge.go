package models

import (
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
)

// KBCategory groups knowledge-base articles.
type KBCategory struct {
	ID          uuid.UUID `gorm:"column:id;primaryKey" json:"id"`
	OrgID       uuid.UUID `gorm:"column:org_id" json:"org_id"`
	Name        string    `gorm:"column:name" json:"name"`
	Slug        string    `gorm:"column:slug" json:"slug"`
	Description string    `gorm:"column:description" json:"description"`
	Position    int       `gorm:"column:position" json:"position"`
	CreatedAt   time.Time `gorm:"column:created_at" json:"created_at"`
	UpdatedAt   time.Time `gorm:"column:updated_at" json:"updated_at"`
}

// TableName implements gorm's Tabler.
func (KBCategory) TableName() string { return "kb_categories" }

// BeforeCreate assigns a UUIDv7 id.
func (c *KBCategory) BeforeCreate(*gorm.DB) error { ensureID(&c.ID); return nil }

// KBArticle is a knowledge-base article. The generated search column is not
// mapped; full-text search is hand-written SQL.
type KBArticle struct {
	ID         uuid.UUID  `gorm:"column:id;primaryKey" json:"id"`
	OrgID      uuid.UUID  `gorm:"column:org_id" json:"org_id"`
	CategoryID *uuid.UUID `gorm:"column:category_id" json:"category_id"`
	Title      string     `gorm:"column:title" json:"title"`
	Slug       string     `gorm:"column:slug" json:"slug"`
	Content    string     `gorm:"column:content" json:"content"`
	// ContentHTML is the sanitised HTML of a rich-text article (nil for
	// plain text); Content is always its plain text.
	ContentHTML *string      `gorm:"column:content_html" json:"content_html"`
	Visibility  KBVisibility `gorm:"column:visibility;default:public" json:"visibility"`
	IsPublished bool         `gorm:"column:is_published" json:"is_published"`
	PublishedAt *time.Time   `gorm:"column:published_at" json:"published_at"`
	AuthorID    *uuid.UUID   `gorm:"column:author_id" json:"author_id"`
	ViewCount   int64        `gorm:"column:view_count" json:"view_count"`
	CreatedAt   time.Time    `gorm:"column:created_at" json:"created_at"`
	UpdatedAt   time.Time    `gorm:"column:updated_at" json:"updated_at"`
}

// TableName implements gorm's Tabler.
func (KBArticle) TableName() string { return "kb_articles" }

// BeforeCreate assigns a UUIDv7 id.
func (a *KBArticle) BeforeCreate(*gorm.DB) error { ensureID(&a.ID); return nil }

// KBVisibility says who reads a published article: customers of the
// organisation (public) or staff only (internal).
type KBVisibility string

const (
	KBPublic   KBVisibility = "public"
	KBInternal KBVisibility = "internal"
)

// Valid reports whether v is a known visibility.
func (v KBVisibility) Valid() bool { return v == KBPublic || v == KBInternal }

// CSATSurvey is the satisfaction survey of one ticket. Rating and
// RespondedAt are set together (a CHECK enforces it).
type CSATSurvey struct {
	ID          uuid.UUID  `gorm:"column:id;primaryKey" json:"id"`
	OrgID       uuid.UUID  `gorm:"column:org_id" json:"org_id"`
	TicketID    uuid.UUID  `gorm:"column:ticket_id" json:"ticket_id"`
	RequesterID uuid.UUID  `gorm:"column:requester_id" json:"requester_id"`
	TokenHash   []byte     `gorm:"column:token_hash" json:"-"`
	Rating      *int16     `gorm:"column:rating" json:"rating"`
	Comment     *string    `gorm:"column:comment" json:"comment"`
	InvitedAt   time.Time  `gorm:"column:invited_at;default:now()" json:"invited_at"`
	RespondedAt *time.Time `gorm:"column:responded_at" json:"responded_at"`
}

// TableName implements gorm's Tabler.
func (CSATSurvey) TableName() string { return "csat_surveys" }

// BeforeCreate assigns a UUIDv7 id.
func (s *CSATSurvey) BeforeCreate(*gorm.DB) error { ensureID(&s.ID); return nil }

// ValidRating reports whether r is an accepted CSAT rating (1 to 5).
func ValidRating(r int) bool { return r >= 1 && r <= 5 }
