package models

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRoleRankAndStaff(t *testing.T) {
	for i := 1; i < len(Roles); i++ {
		assert.Less(t, Roles[i-1].Rank(), Roles[i].Rank(), "%s < %s", Roles[i-1], Roles[i])
	}
	tests := []struct {
		role            Role
		valid, staff, c bool
	}{
		{RoleCustomerUser, true, false, true},
		{RoleCustomerAdmin, true, false, true},
		{RoleAgent, true, true, false},
		{RoleManager, true, true, false},
		{RoleAdmin, true, true, false},
		{"", false, false, false},
		{"root", false, false, false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.valid, tt.role.Valid(), tt.role)
		assert.Equal(t, tt.staff, tt.role.IsStaff(), tt.role)
		assert.Equal(t, tt.c, tt.role.IsCustomer(), tt.role)
	}
	assert.True(t, RoleManager.AtLeast(RoleAgent))
	assert.False(t, RoleAgent.AtLeast(RoleManager))
	assert.False(t, Role("root").AtLeast(RoleCustomerUser), "unknown roles grant nothing")
	assert.Equal(t, 0, Role("root").Rank())
}

func TestEnumValid(t *testing.T) {
	assert.True(t, StatusWaitingCustomer.Valid())
	assert.False(t, TicketStatus("open").Valid())
	assert.Len(t, TicketStatuses, 8)

	assert.True(t, PriorityCritical.Valid())
	assert.False(t, Priority("urgent").Valid())
	assert.Less(t, PriorityLow.Rank(), PriorityMedium.Rank())
	assert.Less(t, PriorityHigh.Rank(), PriorityCritical.Rank())

	assert.True(t, ChannelEmail.Valid())
	assert.False(t, Channel("fax").Valid())
	assert.True(t, RelationParentOf.Valid())
	assert.False(t, RelationshipKind("child_of").Valid())
	assert.True(t, FieldDate.Valid())
	assert.False(t, CustomFieldType("file").Valid())
	assert.True(t, ActorAI.Valid())
	assert.False(t, ActorKind("bot").Valid())
	assert.True(t, ClockStartCreated.Valid())
	assert.False(t, SLAClockStart("resolved").Valid())
	assert.True(t, SLAResolution.Valid())
	assert.True(t, TokenMagicLink.Valid())
	assert.True(t, IMAPStartTLS.Valid())
	assert.False(t, IMAPSecurity("ssl").Valid())
	assert.True(t, ValidRating(5))
	assert.False(t, ValidRating(0))
}

func TestCommentVisibility(t *testing.T) {
	note := Comment{IsInternal: true}
	reply := Comment{}
	assert.False(t, note.VisibleTo(RoleCustomerAdmin))
	assert.True(t, note.VisibleTo(RoleAgent))
	assert.True(t, reply.VisibleTo(RoleCustomerUser))
	assert.False(t, note.VisibleTo(""), "unknown roles see no internal notes")
}
