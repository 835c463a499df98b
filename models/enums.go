package models

import "slices"

// Role is a user's role within an organisation. The values match the CHECK
// constraint on users.role.
type Role string

const (
	RoleCustomerUser  Role = "customer_user"
	RoleCustomerAdmin Role = "customer_admin"
	RoleAgent         Role = "agent"
	RoleManager       Role = "manager"
	RoleAdmin         Role = "admin"
)

// Roles lists every role from least to most privileged.
var Roles = []Role{RoleCustomerUser, RoleCustomerAdmin, RoleAgent, RoleManager, RoleAdmin}

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r.Rank() > 0 }

// Rank orders roles by privilege: customer_user (1) < customer_admin <
// agent < manager < admin (5). Unknown roles rank 0, below everyone.
func (r Role) Rank() int { return slices.Index(Roles, r) + 1 }

// AtLeast reports whether r is a known role at least as privileged as min.
func (r Role) AtLeast(minRole Role) bool { return r.Valid() && r.Rank() >= minRole.Rank() }

// IsStaff reports whether r works the desk (agent, manager or admin).
func (r Role) IsStaff() bool { return r.AtLeast(RoleAgent) }

// IsCustomer reports whether r is one of the customer roles.
func (r Role) IsCustomer() bool { return r == RoleCustomerUser || r == RoleCustomerAdmin }

// TicketStatus is a ticket's status. The transitions between statuses are
// the business of the ticket status machine, not of this type.
type TicketStatus string

const (
	StatusNew             TicketStatus = "new"
	StatusAccepted        TicketStatus = "accepted"
	StatusAssigned        TicketStatus = "assigned"
	StatusInProgress      TicketStatus = "in_progress"
	StatusWaitingCustomer TicketStatus = "waiting_customer"
	StatusResolved        TicketStatus = "resolved"
	StatusClosed          TicketStatus = "closed"
	StatusCancelled       TicketStatus = "cancelled"
)

// TicketStatuses lists every status in workflow order.
var TicketStatuses = []TicketStatus{
	StatusNew, StatusAccepted, StatusAssigned, StatusInProgress,
	StatusWaitingCustomer, StatusResolved, StatusClosed, StatusCancelled,
}

// Valid reports whether s is a known status.
func (s TicketStatus) Valid() bool { return slices.Contains(TicketStatuses, s) }

// Priority is a ticket's priority.
type Priority string

const (
	PriorityLow      Priority = "low"
	PriorityMedium   Priority = "medium"
	PriorityHigh     Priority = "high"
	PriorityCritical Priority = "critical"
)

// Priorities lists every priority from lowest to highest.
var Priorities = []Priority{PriorityLow, PriorityMedium, PriorityHigh, PriorityCritical}

// Valid reports whether p is a known priority.
func (p Priority) Valid() bool { return p.Rank() > 0 }

// Rank orders priorities: low (1) < medium < high < critical (4); unknown is 0.
func (p Priority) Rank() int { return slices.Index(Priorities, p) + 1 }

// Channel is how a ticket or comment entered the system.
type Channel string

const (
	ChannelWeb   Channel = "web"   // the portal or the agent desk
	ChannelAPI   Channel = "api"   // the REST API
	ChannelForm  Channel = "form"  // the public web form (organizations.form_key)
	ChannelEmail Channel = "email" // inbound e-mail
)

// Channels lists every channel.
var Channels = []Channel{ChannelWeb, ChannelAPI, ChannelForm, ChannelEmail}

// Valid reports whether c is a known channel.
func (c Channel) Valid() bool { return slices.Contains(Channels, c) }

// RelationshipKind is the kind of a ticket_relationships row, read
// "source <kind> target".
type RelationshipKind string

const (
	RelationDuplicateOf RelationshipKind = "duplicate_of"
	RelationRelated     RelationshipKind = "related"
	RelationParentOf    RelationshipKind = "parent_of"
)

// RelationshipKinds lists every relationship kind.
var RelationshipKinds = []RelationshipKind{RelationDuplicateOf, RelationRelated, RelationParentOf}

// Valid reports whether k is a known relationship kind.
func (k RelationshipKind) Valid() bool { return slices.Contains(RelationshipKinds, k) }

// CustomFieldType is the type of a custom field's value.
type CustomFieldType string

const (
	FieldText     CustomFieldType = "text"
	FieldNumber   CustomFieldType = "number"
	FieldSelect   CustomFieldType = "select"
	FieldCheckbox CustomFieldType = "checkbox"
	FieldDate     CustomFieldType = "date"
)

// CustomFieldTypes lists every custom field type.
var CustomFieldTypes = []CustomFieldType{FieldText, FieldNumber, FieldSelect, FieldCheckbox, FieldDate}

// Valid reports whether t is a known field type.
func (t CustomFieldType) Valid() bool { return slices.Contains(CustomFieldTypes, t) }

// ActorKind says who performed an audited action.
type ActorKind string

const (
	ActorUser   ActorKind = "user"
	ActorSystem ActorKind = "system"
	ActorAI     ActorKind = "ai"
)

// ActorKinds lists every actor kind.
var ActorKinds = []ActorKind{ActorUser, ActorSystem, ActorAI}

// Valid reports whether k is a known actor kind.
func (k ActorKind) Valid() bool { return slices.Contains(ActorKinds, k) }

// SLAClockStart says when an SLA policy starts the clock.
type SLAClockStart string

const (
	ClockStartAccepted SLAClockStart = "accepted" // when a manager accepts the ticket
	ClockStartCreated  SLAClockStart = "created"  // when the ticket is created
)

// Valid reports whether c is a known clock start.
func (c SLAClockStart) Valid() bool { return c == ClockStartAccepted || c == ClockStartCreated }

// SLAMetric names one of the two SLA clocks of a ticket.
type SLAMetric string

const (
	SLAFirstResponse SLAMetric = "first_response"
	SLAResolution    SLAMetric = "resolution"
)

// Valid reports whether m is a known SLA metric.
func (m SLAMetric) Valid() bool { return m == SLAFirstResponse || m == SLAResolution }

// TokenPurpose is what a single-use e-mailed user token is for.
type TokenPurpose string

const (
	TokenPasswordReset TokenPurpose = "password_reset"
	TokenEmailVerify   TokenPurpose = "email_verify"
	TokenInvite        TokenPurpose = "invite"
	TokenMagicLink     TokenPurpose = "magic_link"
)

// TokenPurposes lists every token purpose.
var TokenPurposes = []TokenPurpose{TokenPasswordReset, TokenEmailVerify, TokenInvite, TokenMagicLink}

// Valid reports whether p is a known token purpose.
func (p TokenPurpose) Valid() bool { return slices.Contains(TokenPurposes, p) }

// IMAPSecurity is how the IMAP poller secures its connection.
type IMAPSecurity string

const (
	IMAPTLS      IMAPSecurity = "tls"
	IMAPStartTLS IMAPSecurity = "starttls"
	IMAPNone     IMAPSecurity = "none"
)

// Valid reports whether s is a known IMAP security mode.
func (s IMAPSecurity) Valid() bool { return s == IMAPTLS || s == IMAPStartTLS || s == IMAPNone }
