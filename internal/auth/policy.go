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

	CommentsCreate   Permission = "comments:create"
	CommentsInternal Permission = "comments:internal"

	StreamRead Permission = "stream:read"
	AuditRead  Permission = "audit:read"
	TasksAdmin Permission = "tasks:admin"
)

var customer = []Permission{Authenticated, OrgsRead, TicketsCreate, TicketsRead, CommentsCreate, StreamRead}
var staff = append(slices.Clone(customer), UsersRead, TicketsUpdate, CommentsInternal)

// grants is the policy: role -> permissions.
var grants = map[models.Role][]Permission{
	models.RoleCustomerUser:  customer,
	models.RoleCustomerAdmin: append(slices.Clone(customer), UsersRead, UsersWrite),
	models.RoleAgent:         staff,
	models.RoleManager:       append(slices.Clone(staff), UsersWrite, TicketsAccept, TicketsAssign, AuditRead),
	models.RoleAdmin:         append(slices.Clone(staff), UsersWrite, TicketsAccept, TicketsAssign, AuditRead, OrgsWrite, TasksAdmin),
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
