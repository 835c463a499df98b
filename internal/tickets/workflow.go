package tickets

import (
	"context"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/internal/apperr"
	"github.com/atumdesk/atumdesk/internal/sla"
	"github.com/atumdesk/atumdesk/models"
	"github.com/atumdesk/atumdesk/pipeline"
)

// MaxReason bounds the free-text reason of a status change.
const MaxReason = 2000

// Accept moves a new ticket to accepted (a manager's decision; the SLA
// clock starts from it).
func (s *Service) Accept(ctx context.Context, a Actor, id uuid.UUID) (*models.Ticket, error) {
	return s.mutate(ctx, a, id, func(c *change) error { return c.accept() })
}

func (c *change) accept() error {
	if !models.CanTransition(c.t.Status, models.StatusAccepted, c.a.Role, c.a.IsRequester(c.t)) {
		return c.invalidTransition(models.StatusAccepted)
	}
	return c.moveTo(models.StatusAccepted, "", "", map[string]any{"accepted_by": c.a.UserID, "accepted_at": c.now})
}

// Assign gives an accepted ticket to an agent (accepted -> assigned), or
// hands an assigned or in-progress ticket to another one. The assignee must
// be an active agent, manager or admin of the ticket's organisation. The
// notify stage tells the agent, from the ticket.assigned event.
func (s *Service) Assign(ctx context.Context, a Actor, id, assignee uuid.UUID) (*models.Ticket, error) {
	return s.mutate(ctx, a, id, func(c *change) error {
		if err := c.writable(); err != nil {
			return err
		}
		if !a.Role.AtLeast(models.RoleManager) {
			return apperr.New(apperr.Forbidden, "Only managers and admins assign tickets.")
		}
		newStatus := c.t.Status
		switch c.t.Status {
		case models.StatusAccepted:
			newStatus = models.StatusAssigned
		case models.StatusAssigned, models.StatusInProgress, models.StatusWaitingCustomer:
			// reassignment keeps the status
		default:
			return c.invalidTransition(models.StatusAssigned)
		}
		if err := c.checkAssignee(assignee); err != nil {
			return err
		}
		prev := c.t.AssignedTo
		if prev != nil && *prev == assignee && newStatus == c.t.Status {
			return nil // already theirs
		}
		if err := c.set(map[string]any{"assigned_to": assignee, "assigned_at": c.now}); err != nil {
			return err
		}
		if err := c.audit("ticket.assigned", "ticket", c.t.ID,
			map[string]any{"assigned_to": prev}, map[string]any{"assigned_to": assignee}); err != nil {
			return err
		}
		if err := c.emit(pipeline.EventTicketAssigned, pipeline.AudiencePublic,
			map[string]any{"assigned_to": assignee, "previous_assigned_to": prev}); err != nil {
			return err
		}
		c.t.AssignedTo = &assignee
		if newStatus != c.t.Status {
			return c.moveTo(newStatus, "", "", nil)
		}
		return nil
	})
}

func (c *change) checkAssignee(id uuid.UUID) error {
	var u struct {
		Role     models.Role
		IsActive bool
	}
	err := c.tx.Table("users").Select("role, is_active").Where("id = ? AND org_id = ?", id, c.t.OrgID).Take(&u).Error
	if err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
		return fmt.Errorf("tickets: assignee: %w", err)
	}
	if err != nil || !u.IsActive || !u.Role.IsStaff() {
		return apperr.Fields(map[string]string{"assigned_to": "must be an active agent, manager or admin of this organisation"})
	}
	return nil
}

// ChangeStatus moves a ticket to status to, if the status machine lets the
// caller. Accepting goes through the same rules as Accept; assigning needs
// an assignee, so it goes through Assign.
func (s *Service) ChangeStatus(ctx context.Context, a Actor, id uuid.UUID, to models.TicketStatus, reason string) (*models.Ticket, error) {
	if !to.Valid() {
		return nil, apperr.Fields(map[string]string{"status": "must be one of new, accepted, assigned, in_progress, waiting_customer, resolved, closed, cancelled"})
	}
	if utf8.RuneCountInString(reason) > MaxReason {
		return nil, apperr.Fields(map[string]string{"reason": fmt.Sprintf("must be at most %d characters", MaxReason)})
	}
	return s.mutate(ctx, a, id, func(c *change) error {
		if !models.CanTransition(c.t.Status, to, a.Role, a.IsRequester(c.t)) {
			return c.invalidTransition(to)
		}
		switch to {
		case models.StatusAccepted:
			return c.accept()
		case models.StatusAssigned:
			return apperr.Fields(map[string]string{"status": "assigning needs an assignee: POST /api/v1/tickets/{id}/assign with assigned_to"})
		}
		return c.moveTo(to, reason, "", nil)
	})
}

// Changes are the ticket fields staff may edit. A nil pointer leaves the
// field alone; SetService with a nil ServiceID clears the service.
type Changes struct {
	Priority   *models.Priority
	SetService bool
	ServiceID  *uuid.UUID
}

// Update applies staff edits (priority, service), audited with before and
// after values.
func (s *Service) Update(ctx context.Context, a Actor, id uuid.UUID, ch Changes) (*models.Ticket, error) {
	fields := map[string]string{}
	if ch.Priority != nil && !ch.Priority.Valid() {
		fields["priority"] = "must be one of low, medium, high, critical"
	}
	if err := apperr.Fields(fields); err != nil {
		return nil, err
	}
	if !a.Role.IsStaff() {
		return nil, apperr.New(apperr.Forbidden, "Only staff edit tickets.")
	}
	return s.mutate(ctx, a, id, func(c *change) error {
		if err := c.writable(); err != nil {
			return err
		}
		cols, before, after := map[string]any{}, map[string]any{}, map[string]any{}
		diff := map[string]any{}
		if ch.Priority != nil && *ch.Priority != c.t.Priority {
			cols["priority"], before["priority"], after["priority"] = *ch.Priority, c.t.Priority, *ch.Priority
		}
		if ch.SetService && !sameID(ch.ServiceID, c.t.ServiceID) {
			if ch.ServiceID != nil {
				if err := c.checkService(*ch.ServiceID); err != nil {
					return err
				}
			}
			cols["service_id"], before["service_id"], after["service_id"] = ch.ServiceID, c.t.ServiceID, ch.ServiceID
		}
		if len(cols) == 0 {
			return nil
		}
		for k := range cols {
			diff[k] = map[string]any{"from": before[k], "to": after[k]}
		}
		if err := c.set(cols); err != nil {
			return err
		}
		if err := c.audit("ticket.updated", "ticket", c.t.ID, before, after); err != nil {
			return err
		}
		if err := c.emit(pipeline.EventTicketUpdated, pipeline.AudiencePublic, map[string]any{"changes": diff}); err != nil {
			return err
		}
		return c.syncSLA(sla.ReasonScope) // the policy and targets may change with them
	})
}

func (c *change) checkService(id uuid.UUID) error {
	var n int64
	if err := c.tx.Table("services").Where("id = ? AND org_id = ? AND is_active", id, c.t.OrgID).Count(&n).Error; err != nil {
		return fmt.Errorf("tickets: service: %w", err)
	}
	if n == 0 {
		return apperr.Fields(map[string]string{"service_id": "must be an active service of this organisation"})
	}
	return nil
}

func sameID(a, b *uuid.UUID) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}
