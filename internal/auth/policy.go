package auth

import (
	"slices"

	"github.com/atumdesk/atumdesk/models"
)

// Permission is an "object:action" string. The route table names one for
// every route; this file is the one place that says which role holds which.
type Permission string

// Public marks routes that need no authentication.
const Public Permission = ""

// Authenticated is held by every signed-in user.
const Authenticated Permission = "session:use"

const (
	OrgsRead  Permission = "orgs:read"
	OrgsWrite Permission = "orgs:write"

	UsersRead  Permission = "users:read"
	UsersWrite Permission = "users:write"

	TicketsCreate Permission = "tickets:create"
	TicketsRead   Permission = "tickets:read"   // scope narrowed for customers by Scope()
	TicketsUpdate Permission = "tickets:update" // staff changes: status, priority, service
	TicketsAccept Permission = "tickets:accept"
	TicketsAssign Permission = "tickets:assign"
	// TicketsTransition lets a caller ask for a status change; which changes
	// they may make is the status machine's business (models.Allowed).
	TicketsTransition Permission = "tickets:transition"

	CommentsCreate   Permission = "comments:create"
	CommentsInternal Permission = "comments:internal"

	StreamRead Permission = "stream:read"
	AuditRead  Permission = "audit:read"
	// TicketsAudit reads one ticket's history (staff; IP and user agent
	// only with AuditRead).
	TicketsAudit Permission = "tickets:audit"
	// CSATSubmit rates a resolved ticket (customers; only its requester,
	// checked by the handler). CSATRead reads the satisfaction metrics.
	CSATSubmit Permission = "csat:submit"
	CSATRead   Permission = "csat:read"
	TasksAdmin Permission = "tasks:admin"
	// MailboxesAdmin manages the organisation's IMAP mailboxes and their
	// quarantined messages.
	MailboxesAdmin Permission = "mailboxes:admin"
	// SLARead reads SLA policies, breaches and compliance (staff);
	// SLAManage creates, changes and deactivates policies.
	SLARead   Permission = "sla:read"
	SLAManage Permission = "sla:manage"
	// AIUse reads AI suggestions: triage, similar tickets, KB articles and
	// reply drafts (staff only: they draw on the whole organisation).
	AIUse Permission = "ai:use"
	// ServicesRead lists the organisation's services (customers only the
	// active ones: they pick one when filing); ServicesManage creates,
	// changes and deletes or deactivates them.
	ServicesRead   Permission = "services:read"
	ServicesManage Permission = "services:manage"
	// CannedUse reads one's own and the shared canned responses and writes
	// one's own; CannedShare also shares them and changes shared ones.
	CannedUse   Permission = "canned:use"
	CannedShare Permission = "canned:share"
	// KBRead reads the knowledge base (customers: published public
	// articles only); KBWrite writes draft articles; KBPublish publishes,
	// changes published articles and manages categories.
	KBRead    Permission = "kb:read"
	KBWrite   Permission = "kb:write"
	KBPublish Permission = "kb:publish"
)

var customer = []Permission{Authenticated, OrgsRead, TicketsCreate, TicketsRead, TicketsTransition, CommentsCreate, StreamRead,
	ServicesRead, KBRead}
var staff = append(slices.Clone(customer), UsersRead, TicketsUpdate, CommentsInternal, TicketsAudit, SLARead, AIUse,
	CannedUse, KBWrite)

// grants is the policy: role -> permissions.
var grants = map[models.Role][]Permission{
	models.RoleCustomerUser:  append(slices.Clone(customer), CSATSubmit),
	models.RoleCustomerAdmin: append(slices.Clone(customer), UsersRead, UsersWrite, CSATSubmit),
	models.RoleAgent:         staff,
	models.RoleManager: append(slices.Clone(staff), UsersWrite, TicketsAccept, TicketsAssign, AuditRead, CSATRead, SLAManage,
		CannedShare, KBPublish),
	models.RoleAdmin: append(slices.Clone(staff), UsersWrite, TicketsAccept, TicketsAssign, AuditRead, OrgsWrite, TasksAdmin, CSATRead, MailboxesAdmin, SLAManage,
		ServicesManage, CannedShare, KBPublish),
}

// Can reports whether role holds perm. Public is held by everyone.
func Can(role models.Role, perm Permission) bool {
	if perm == Public {
		return true
	}
	return slices.Contains(grants[role], perm)
}

// CanGrant reports whether a user of role grantor may create or manage a
// user holding role target: only roles strictly below one's own, and a
// customer_admin only customer users.
func CanGrant(grantor, target models.Role) bool {
	if !target.Valid() || !Can(grantor, UsersWrite) {
		return false
	}
	if grantor == models.RoleCustomerAdmin {
		return target == models.RoleCustomerUser
	}
	return target.Rank() < grantor.Rank()
}
