package models

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// The ticket status machine. Transitions is the one table of who may move a
// ticket from which status to which; everything else (the API, the desk, the
// README's table) reads it.

// Mover is who may make a transition.
type Mover string

const (
	ByManager       Mover = "manager"        // a manager or admin of the organisation
	ByStaff         Mover = "staff"          // an agent, manager or admin
	ByRequester     Mover = "requester"      // the ticket's requester, whatever their role
	ByCustomerReply Mover = "customer_reply" // automatic: a public reply from the requester's side
)

// Transition is one allowed move of the status machine.
type Transition struct {
	From TicketStatus
	To   TicketStatus
	By   []Mover
	Via  string // how the move is made
}

const (
	viaStatus = "POST /tickets/{id}/status"
	viaReply  = "POST /tickets/{id}/comments"
)

// Transitions is the status machine. Closed and cancelled are terminal: a
// ticket in either is read-only.
var Transitions = []Transition{
	{StatusNew, StatusAccepted, []Mover{ByManager}, "POST /tickets/{id}/accept (SLA clock starts)"},
	{StatusNew, StatusCancelled, []Mover{ByManager, ByRequester}, viaStatus},
	{StatusAccepted, StatusAssigned, []Mover{ByManager}, "POST /tickets/{id}/assign (the agent is notified)"},
	{StatusAccepted, StatusCancelled, []Mover{ByManager, ByRequester}, viaStatus},
	{StatusAssigned, StatusInProgress, []Mover{ByStaff}, viaStatus},
	{StatusAssigned, StatusCancelled, []Mover{ByManager, ByRequester}, viaStatus},
	{StatusInProgress, StatusWaitingCustomer, []Mover{ByStaff}, viaStatus},
	{StatusInProgress, StatusResolved, []Mover{ByStaff}, viaStatus},
	{StatusInProgress, StatusCancelled, []Mover{ByManager, ByRequester}, viaStatus},
	{StatusWaitingCustomer, StatusInProgress, []Mover{ByStaff, ByCustomerReply}, viaStatus + "; or any customer reply"},
	{StatusWaitingCustomer, StatusResolved, []Mover{ByStaff}, viaStatus},
	{StatusWaitingCustomer, StatusCancelled, []Mover{ByManager, ByRequester}, viaStatus},
	{StatusResolved, StatusInProgress, []Mover{ByStaff, ByCustomerReply}, viaStatus + "; or a customer reply within the reopen window"},
	{StatusResolved, StatusClosed, []Mover{ByStaff, ByRequester}, viaStatus},
}

// DefaultReopenWindow is how long after resolution a customer reply reopens
// a ticket, unless the organisation's settings.reopen_window_hours or the
// configuration say otherwise.
const DefaultReopenWindow = 7 * 24 * time.Hour

// ReadOnly reports whether a ticket in status s accepts no more changes or
// comments.
func (s TicketStatus) ReadOnly() bool { return s == StatusClosed || s == StatusCancelled }

// IsOpen reports whether work on the ticket is still ongoing (not resolved,
// closed or cancelled).
func (s TicketStatus) IsOpen() bool { return s.Valid() && s != StatusResolved && !s.ReadOnly() }

// permits reports whether a caller with role, who is or is not the ticket's
// requester, counts as m. Automatic movers are never a caller.
func (m Mover) permits(role Role, isRequester bool) bool {
	switch m {
	case ByManager:
		return role.AtLeast(RoleManager)
	case ByStaff:
		return role.IsStaff()
	case ByRequester:
		return isRequester && role.Valid()
	}
	return false
}

// Allowed lists, in workflow order, the statuses a caller may move a ticket
// in status from to. Never nil, so it serialises as [].
func Allowed(from TicketStatus, role Role, isRequester bool) []TicketStatus {
	out := []TicketStatus{}
	for _, t := range Transitions {
		if t.From == from && !slices.Contains(out, t.To) &&
			slices.ContainsFunc(t.By, func(m Mover) bool { return m.permits(role, isRequester) }) {
			out = append(out, t.To)
		}
	}
	slices.SortFunc(out, func(a, b TicketStatus) int {
		return slices.Index(TicketStatuses, a) - slices.Index(TicketStatuses, b)
	})
	return out
}

// CanTransition reports whether the caller may move a ticket from from to to.
func CanTransition(from, to TicketStatus, role Role, isRequester bool) bool {
	return slices.Contains(Allowed(from, role, isRequester), to)
}

// AfterCustomerReply is the status a public reply from the requester's side
// moves a ticket to: waiting_customer goes back to in_progress, and a ticket
// resolved less than window ago is reopened. changed is false when the
// status stays.
func AfterCustomerReply(from TicketStatus, resolvedAt *time.Time, now time.Time, window time.Duration) (to TicketStatus, changed bool) {
	switch from {
	case StatusWaitingCustomer:
		return StatusInProgress, true
	case StatusResolved:
		if resolvedAt != nil && now.Sub(*resolvedAt) <= window {
			return StatusInProgress, true
		}
	}
	return from, false
}

// TransitionsMarkdown renders Transitions as a Markdown table for the README.
func TransitionsMarkdown() string {
	var b strings.Builder
	b.WriteString("| from | to | who | how |\n| --- | --- | --- | --- |\n")
	for _, t := range Transitions {
		who := make([]string, len(t.By))
		for i, m := range t.By {
			who[i] = string(m)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", t.From, t.To, strings.Join(who, ", "), t.Via)
	}
	b.WriteString("\nclosed and cancelled are terminal: the ticket is read-only (changes and comments get 409).\n")
	return b.String()
}
