package models

import (
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
)

// Service is a line of support customers file tickets against.
type Service struct {
	ID              uuid.UUID `gorm:"column:id;primaryKey" json:"id"`
	OrgID           uuid.UUID `gorm:"column:org_id" json:"org_id"`
	Name            string    `gorm:"column:name" json:"name"`
	Description     string    `gorm:"column:description" json:"description"`
	IsActive        bool      `gorm:"column:is_active" json:"is_active"`
	DefaultPriority *Priority `gorm:"column:default_priority" json:"default_priority"`
	CreatedAt       time.Time `gorm:"column:created_at" json:"created_at"`
	UpdatedAt       time.Time `gorm:"column:updated_at" json:"updated_at"`
}

// TableName implements gorm's Tabler.
func (Service) TableName() string { return "services" }

// BeforeCreate assigns a UUIDv7 id.
func (s *Service) BeforeCreate(*gorm.DB) error { ensureID(&s.ID); return nil }

// SLAPolicy sets response and resolution targets for a service and/or a
// priority (nil = any). At most one active policy exists per scope.
// BusinessHours, Timezone and Holidays nil mean "the organisation's".
type SLAPolicy struct {
	ID               uuid.UUID     `gorm:"column:id;primaryKey" json:"id"`
	OrgID            uuid.UUID     `gorm:"column:org_id" json:"org_id"`
	Name             string        `gorm:"column:name" json:"name"`
	ServiceID        *uuid.UUID    `gorm:"column:service_id" json:"service_id"`
	Priority         *Priority     `gorm:"column:priority" json:"priority"`
	UseBusinessHours bool          `gorm:"column:use_business_hours" json:"use_business_hours"`
	BusinessHours    JSONB         `gorm:"column:business_hours" json:"business_hours"`
	Timezone         *string       `gorm:"column:timezone" json:"timezone"`
	Holidays         JSONB         `gorm:"column:holidays" json:"holidays"`
	EscalationRules  JSONB         `gorm:"column:escalation_rules;default:'[]'" json:"escalation_rules"`
	ClockStart       SLAClockStart `gorm:"column:clock_start;default:accepted" json:"clock_start"`
	IsActive         bool          `gorm:"column:is_active" json:"is_active"`
	CreatedAt        time.Time     `gorm:"column:created_at" json:"created_at"`
	UpdatedAt        time.Time     `gorm:"column:updated_at" json:"updated_at"`

	Targets []SLATarget `gorm:"foreignKey:PolicyID;references:ID" json:"targets,omitempty"`
}

// TableName implements gorm's Tabler.
func (SLAPolicy) TableName() string { return "sla_policies" }

// BeforeCreate assigns a UUIDv7 id.
func (p *SLAPolicy) BeforeCreate(*gorm.DB) error { ensureID(&p.ID); return nil }

// SLATarget is the pair of targets a policy sets for one priority.
type SLATarget struct {
	PolicyID             uuid.UUID `gorm:"column:policy_id;primaryKey" json:"policy_id"`
	OrgID                uuid.UUID `gorm:"column:org_id" json:"org_id"`
	Priority             Priority  `gorm:"column:priority;primaryKey" json:"priority"`
	FirstResponseMinutes int       `gorm:"column:first_response_minutes" json:"first_response_minutes"`
	ResolutionMinutes    int       `gorm:"column:resolution_minutes" json:"resolution_minutes"`
}

// TableName implements gorm's Tabler.
func (SLATarget) TableName() string { return "sla_targets" }

// Ticket is a customer request. Number is allocated from ticket_counters in
// the inserting transaction. The status machine lives elsewhere.
type Ticket struct {
	ID              uuid.UUID    `gorm:"column:id;primaryKey" json:"id"`
	OrgID           uuid.UUID    `gorm:"column:org_id" json:"org_id"`
	Number          int64        `gorm:"column:number" json:"number"`
	Subject         string       `gorm:"column:subject" json:"subject"`
	Description     string       `gorm:"column:description" json:"description"`
	DescriptionHTML *string      `gorm:"column:description_html" json:"description_html"`
	Status          TicketStatus `gorm:"column:status;default:new" json:"status"`
	Priority        Priority     `gorm:"column:priority;default:medium" json:"priority"`
	ServiceID       *uuid.UUID   `gorm:"column:service_id" json:"service_id"`
	Category        *string      `gorm:"column:category" json:"category"`
	Tags            StringArray  `gorm:"column:tags" json:"tags"`
	RequesterID     uuid.UUID    `gorm:"column:requester_id" json:"requester_id"`
	AssignedTo      *uuid.UUID   `gorm:"column:assigned_to" json:"assigned_to"`
	AssignedAt      *time.Time   `gorm:"column:assigned_at" json:"assigned_at"`
	AcceptedBy      *uuid.UUID   `gorm:"column:accepted_by" json:"accepted_by"`
	AcceptedAt      *time.Time   `gorm:"column:accepted_at" json:"accepted_at"`
	Channel         Channel      `gorm:"column:channel" json:"channel"`
	SourceMessageID *string      `gorm:"column:source_message_id" json:"source_message_id"`
	IdempotencyKey  *string      `gorm:"column:idempotency_key" json:"idempotency_key"`
	ParentID        *uuid.UUID   `gorm:"column:parent_id" json:"parent_id"`
	IsDuplicateOf   *uuid.UUID   `gorm:"column:is_duplicate_of" json:"is_duplicate_of"`
	// AutoSubmitted: opened by machine-written mail (ingest/mail's verdict);
	// never acknowledged.
	AutoSubmitted bool `gorm:"column:auto_submitted" json:"auto_submitted"`

	SLAPolicyID           *uuid.UUID `gorm:"column:sla_policy_id" json:"sla_policy_id"`
	SLAStartedAt          *time.Time `gorm:"column:sla_started_at" json:"sla_started_at"`
	FirstResponseDueAt    *time.Time `gorm:"column:first_response_due_at" json:"first_response_due_at"`
	ResolutionDueAt       *time.Time `gorm:"column:resolution_due_at" json:"resolution_due_at"`
	FirstRespondedAt      *time.Time `gorm:"column:first_responded_at" json:"first_responded_at"`
	ResolvedAt            *time.Time `gorm:"column:resolved_at" json:"resolved_at"`
	ClosedAt              *time.Time `gorm:"column:closed_at" json:"closed_at"`
	SLAPausedAt           *time.Time `gorm:"column:sla_paused_at" json:"sla_paused_at"`
	SLAPausedIntervals    JSONB      `gorm:"column:sla_paused_intervals;default:'[]'" json:"sla_paused_intervals"`
	FirstResponseBreached bool       `gorm:"column:first_response_breached" json:"first_response_breached"`
	ResolutionBreached    bool       `gorm:"column:resolution_breached" json:"resolution_breached"`

	// Machine annotations: changing only these leaves updated_at alone
	// (the tickets_updated_at trigger), so the triage stage's write can be
	// a HOT update.
	AISuggestedServiceID *uuid.UUID `gorm:"column:ai_suggested_service_id" json:"ai_suggested_service_id"`
	AISuggestedPriority  *Priority  `gorm:"column:ai_suggested_priority" json:"ai_suggested_priority"`
	AISuggestedCategory  *string    `gorm:"column:ai_suggested_category" json:"ai_suggested_category"`
	AIConfidence         *float32   `gorm:"column:ai_confidence" json:"ai_confidence"`
	AISuggestedAt        *time.Time `gorm:"column:ai_suggested_at" json:"ai_suggested_at"`

	CreatedAt time.Time `gorm:"column:created_at" json:"created_at"`
	UpdatedAt time.Time `gorm:"column:updated_at" json:"updated_at"`
}

// TableName implements gorm's Tabler.
func (Ticket) TableName() string { return "tickets" }

// BeforeCreate assigns a UUIDv7 id.
func (t *Ticket) BeforeCreate(*gorm.DB) error { ensureID(&t.ID); return nil }

// TicketEmbedding is a ticket's vector for similar-ticket search, kept out
// of the tickets row so that storing it is not an update of the ticket.
type TicketEmbedding struct {
	TicketID  uuid.UUID `gorm:"column:ticket_id;primaryKey" json:"ticket_id"`
	OrgID     uuid.UUID `gorm:"column:org_id" json:"org_id"`
	Model     string    `gorm:"column:model" json:"model"` // ai's model name, e.g. ai.BuiltinModel
	Embedding Vector    `gorm:"column:embedding" json:"-"`
	UpdatedAt time.Time `gorm:"column:updated_at" json:"updated_at"`
}

// TableName implements gorm's Tabler.
func (TicketEmbedding) TableName() string { return "ticket_embeddings" }

// TicketWatcher is a user following a ticket besides requester and assignee.
type TicketWatcher struct {
	TicketID  uuid.UUID `gorm:"column:ticket_id;primaryKey" json:"ticket_id"`
	UserID    uuid.UUID `gorm:"column:user_id;primaryKey" json:"user_id"`
	OrgID     uuid.UUID `gorm:"column:org_id" json:"org_id"`
	CreatedAt time.Time `gorm:"column:created_at" json:"created_at"`
}

// TableName implements gorm's Tabler.
func (TicketWatcher) TableName() string { return "ticket_watchers" }

// Comment is a public reply or, with IsInternal, a staff-only note.
type Comment struct {
	ID              uuid.UUID  `gorm:"column:id;primaryKey" json:"id"`
	OrgID           uuid.UUID  `gorm:"column:org_id" json:"org_id"`
	TicketID        uuid.UUID  `gorm:"column:ticket_id" json:"ticket_id"`
	AuthorID        *uuid.UUID `gorm:"column:author_id" json:"author_id"`
	Content         string     `gorm:"column:content" json:"content"`
	ContentHTML     *string    `gorm:"column:content_html" json:"content_html"`
	IsInternal      bool       `gorm:"column:is_internal" json:"is_internal"`
	IsAIGenerated   bool       `gorm:"column:is_ai_generated" json:"is_ai_generated"`
	Channel         Channel    `gorm:"column:channel;default:web" json:"channel"`
	SourceMessageID *string    `gorm:"column:source_message_id" json:"source_message_id"`
	// ThreadReason says why an inbound e-mail was threaded onto this
	// ticket (ThreadInReplyTo, …); nil for every other comment.
	ThreadReason *string   `gorm:"column:thread_reason" json:"thread_reason"`
	CreatedAt    time.Time `gorm:"column:created_at" json:"created_at"`
	UpdatedAt    time.Time `gorm:"column:updated_at" json:"updated_at"`
}

// Why an inbound e-mail became a comment of a ticket (comments.thread_reason).
const (
	ThreadInReplyTo    = "in_reply_to"
	ThreadReferences   = "references"
	ThreadSubjectToken = "subject_token"
	ThreadPlusAddress  = "plus_address"
)

// TableName implements gorm's Tabler.
func (Comment) TableName() string { return "comments" }

// BeforeCreate assigns a UUIDv7 id.
func (c *Comment) BeforeCreate(*gorm.DB) error { ensureID(&c.ID); return nil }

// VisibleTo reports whether a user with role r may see the comment:
// internal notes are for staff only.
func (c *Comment) VisibleTo(r Role) bool { return !c.IsInternal || r.IsStaff() }

// Attachment is a stored file; the bytes live in blob storage under StorageKey.
type Attachment struct {
	ID          uuid.UUID  `gorm:"column:id;primaryKey" json:"id"`
	OrgID       uuid.UUID  `gorm:"column:org_id" json:"org_id"`
	TicketID    *uuid.UUID `gorm:"column:ticket_id" json:"ticket_id"`
	CommentID   *uuid.UUID `gorm:"column:comment_id" json:"comment_id"`
	UploadedBy  *uuid.UUID `gorm:"column:uploaded_by" json:"uploaded_by"`
	Filename    string     `gorm:"column:filename" json:"filename"`
	MimeType    string     `gorm:"column:mime_type" json:"mime_type"`
	SizeBytes   int64      `gorm:"column:size_bytes" json:"size_bytes"`
	SHA256      []byte     `gorm:"column:sha256" json:"sha256"`
	StorageKey  string     `gorm:"column:storage_key" json:"-"`
	ContentID   *string    `gorm:"column:content_id" json:"content_id,omitempty"`
	AccessCount int64      `gorm:"column:access_count" json:"access_count"`
	CreatedAt   time.Time  `gorm:"column:created_at" json:"created_at"`
}

// TableName implements gorm's Tabler.
func (Attachment) TableName() string { return "attachments" }

// BeforeCreate assigns a UUIDv7 id.
func (a *Attachment) BeforeCreate(*gorm.DB) error { ensureID(&a.ID); return nil }

// TimeEntry is time an agent spent on a ticket.
type TimeEntry struct {
	ID        uuid.UUID `gorm:"column:id;primaryKey" json:"id"`
	OrgID     uuid.UUID `gorm:"column:org_id" json:"org_id"`
	TicketID  uuid.UUID `gorm:"column:ticket_id" json:"ticket_id"`
	UserID    uuid.UUID `gorm:"column:user_id" json:"user_id"`
	Minutes   int       `gorm:"column:minutes" json:"minutes"`
	Note      string    `gorm:"column:note" json:"note"`
	StartedAt time.Time `gorm:"column:started_at;default:now()" json:"started_at"`
	CreatedAt time.Time `gorm:"column:created_at" json:"created_at"`
}

// TableName implements gorm's Tabler.
func (TimeEntry) TableName() string { return "time_entries" }

// BeforeCreate assigns a UUIDv7 id.
func (e *TimeEntry) BeforeCreate(*gorm.DB) error { ensureID(&e.ID); return nil }

// TicketRelationship links two tickets of one organisation: source <kind> target.
type TicketRelationship struct {
	ID             uuid.UUID        `gorm:"column:id;primaryKey" json:"id"`
	OrgID          uuid.UUID        `gorm:"column:org_id" json:"org_id"`
	SourceTicketID uuid.UUID        `gorm:"column:source_ticket_id" json:"source_ticket_id"`
	TargetTicketID uuid.UUID        `gorm:"column:target_ticket_id" json:"target_ticket_id"`
	Kind           RelationshipKind `gorm:"column:kind" json:"kind"`
	CreatedBy      *uuid.UUID       `gorm:"column:created_by" json:"created_by"`
	CreatedAt      time.Time        `gorm:"column:created_at" json:"created_at"`
}

// TableName implements gorm's Tabler.
func (TicketRelationship) TableName() string { return "ticket_relationships" }

// BeforeCreate assigns a UUIDv7 id.
func (r *TicketRelationship) BeforeCreate(*gorm.DB) error { ensureID(&r.ID); return nil }

// CustomField is an organisation-defined ticket field. Options is a JSON
// array of allowed values for select fields.
type CustomField struct {
	ID        uuid.UUID       `gorm:"column:id;primaryKey" json:"id"`
	OrgID     uuid.UUID       `gorm:"column:org_id" json:"org_id"`
	Key       string          `gorm:"column:key" json:"key"`
	Label     string          `gorm:"column:label" json:"label"`
	FieldType CustomFieldType `gorm:"column:field_type" json:"field_type"`
	Options   JSONB           `gorm:"column:options" json:"options"`
	Required  bool            `gorm:"column:required" json:"required"`
	Position  int             `gorm:"column:position" json:"position"`
	IsActive  bool            `gorm:"column:is_active" json:"is_active"`
	CreatedAt time.Time       `gorm:"column:created_at" json:"created_at"`
	UpdatedAt time.Time       `gorm:"column:updated_at" json:"updated_at"`
}

// TableName implements gorm's Tabler.
func (CustomField) TableName() string { return "custom_fields" }

// BeforeCreate assigns a UUIDv7 id.
func (f *CustomField) BeforeCreate(*gorm.DB) error { ensureID(&f.ID); return nil }

// CustomFieldValue is one ticket's value for one custom field (JSON-encoded).
type CustomFieldValue struct {
	TicketID  uuid.UUID `gorm:"column:ticket_id;primaryKey" json:"ticket_id"`
	FieldID   uuid.UUID `gorm:"column:field_id;primaryKey" json:"field_id"`
	OrgID     uuid.UUID `gorm:"column:org_id" json:"org_id"`
	Value     JSONB     `gorm:"column:value" json:"value"`
	UpdatedAt time.Time `gorm:"column:updated_at" json:"updated_at"`
}

// TableName implements gorm's Tabler.
func (CustomFieldValue) TableName() string { return "custom_field_values" }

// CannedResponse is a reusable reply; personal unless IsShared.
type CannedResponse struct {
	ID        uuid.UUID  `gorm:"column:id;primaryKey" json:"id"`
	OrgID     uuid.UUID  `gorm:"column:org_id" json:"org_id"`
	Title     string     `gorm:"column:title" json:"title"`
	Content   string     `gorm:"column:content" json:"content"`
	CreatedBy *uuid.UUID `gorm:"column:created_by" json:"created_by"`
	IsShared  bool       `gorm:"column:is_shared" json:"is_shared"`
	CreatedAt time.Time  `gorm:"column:created_at" json:"created_at"`
	UpdatedAt time.Time  `gorm:"column:updated_at" json:"updated_at"`
}

// TableName implements gorm's Tabler.
func (CannedResponse) TableName() string { return "canned_responses" }

// BeforeCreate assigns a UUIDv7 id.
func (c *CannedResponse) BeforeCreate(*gorm.DB) error { ensureID(&c.ID); return nil }

// SLAEscalation records that escalation step Level (a position in the
// policy's escalation_rules) fired for one SLA clock of a ticket. Insert with
// ON CONFLICT DO NOTHING to notify each step exactly once.
type SLAEscalation struct {
	TicketID uuid.UUID `gorm:"column:ticket_id;primaryKey" json:"ticket_id"`
	OrgID    uuid.UUID `gorm:"column:org_id" json:"org_id"`
	Target   SLAMetric `gorm:"column:target;primaryKey" json:"target"`
	Level    int       `gorm:"column:level;primaryKey;autoIncrement:false" json:"level"`
	FiredAt  time.Time `gorm:"column:fired_at;default:now()" json:"fired_at"`
}

// TableName implements gorm's Tabler.
func (SLAEscalation) TableName() string { return "sla_escalations" }
