package notify

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"net/mail"
	"strings"
	"time"

	"github.com/google/uuid"

	slacore "github.com/atumdesk/atumdesk/internal/sla"
	"github.com/atumdesk/atumdesk/models"
	"github.com/atumdesk/atumdesk/pipeline"
)

type ticketRow struct {
	ID              uuid.UUID
	OrgID           uuid.UUID
	Number          int64
	Subject         string
	Status          models.TicketStatus
	Priority        models.Priority
	RequesterID     uuid.UUID
	AssignedTo      *uuid.UUID
	SourceMessageID *string
	AutoSubmitted   bool
	IsDuplicateOf   *uuid.UUID
	OrgName         string
	OrgTimezone     string
	OrgSettings     string
}

type userRow struct {
	ID             uuid.UUID
	Email          string
	Name           string
	Role           models.Role
	IsActive       bool
	EmailBouncedAt *time.Time
}

// recipient is one addressee of a plan; suppress, when set, is why they
// get no mail.
type recipient struct {
	user     userRow
	suppress string
}

// plan is the notification one event calls for.
type plan struct {
	kind    string
	t       *ticketRow
	staff   bool // to staff: no ticket token, no Reply-To, no thread
	csat    bool // create the CSAT survey before sending
	to      []recipient
	from    mail.Address // empty Address: no sender
	replyTo *mail.Address
	view    view
}

// plan decides what ev calls for; nil when no mail at all.
func (h *Handler) plan(ctx context.Context, ev *pipeline.Event) (*plan, error) {
	var build func(context.Context, *pipeline.Event, *plan) (bool, error)
	switch ev.Type {
	case pipeline.EventDedupPassed:
		build = h.planAck
	case pipeline.EventCommentAdded:
		build = h.planReply
	case pipeline.EventStatusChanged:
		build = h.planStatus
	case pipeline.EventSLAThreshold, pipeline.EventSLABreached:
		build = h.planSLA
	default:
		return nil, nil
	}
	t, err := h.loadTicket(ctx, ev.OrgID, ev.TicketID)
	if err != nil || t == nil {
		return nil, err
	}
	pl := &plan{t: t, view: view{Org: t.OrgName, Number: t.Number, Subject: oneLine(t.Subject, 200),
		Link: h.link("/portal/tickets/" + t.ID.String())}}
	ok, err := build(ctx, ev, pl)
	if err != nil || !ok {
		return nil, err
	}
	if !pl.staff && h.cfg.Signer == nil {
		return nil, fmt.Errorf("notify: no token signer configured")
	}
	if err := h.sender(ctx, pl); err != nil {
		return nil, err
	}
	return pl, nil
}

func (h *Handler) loadTicket(ctx context.Context, orgID, id uuid.UUID) (*ticketRow, error) {
	var rows []ticketRow
	err := h.db.WithContext(ctx).Raw(`SELECT t.id, t.org_id, t.number, t.subject, t.status, t.priority, t.requester_id,
			t.assigned_to, t.source_message_id, t.auto_submitted, t.is_duplicate_of,
			o.name AS org_name, o.timezone AS org_timezone, o.settings::text AS org_settings
		FROM tickets t JOIN organizations o ON o.id = t.org_id
		WHERE t.org_id = ? AND t.id = ?`, orgID, id).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("notify: load ticket %s: %w", id, err)
	}
	if len(rows) == 0 {
		h.log.WarnContext(ctx, "notify: ticket not found; nothing sent", "ticket_id", id, "org_id", orgID)
		return nil, nil
	}
	return &rows[0], nil
}

const userColumns = `id, email, name, role, is_active, email_bounced_at`

// requester is the ticket's requester as a recipient.
func (h *Handler) requester(ctx context.Context, t *ticketRow) (recipient, error) {
	var u userRow
	err := h.db.WithContext(ctx).Raw(`SELECT `+userColumns+` FROM users WHERE org_id = ? AND id = ?`,
		t.OrgID, t.RequesterID).Scan(&u).Error
	if err != nil {
		return recipient{}, fmt.Errorf("notify: load requester: %w", err)
	}
	if u.ID == uuid.Nil {
		return recipient{}, fmt.Errorf("notify: requester %s of ticket %s not found", t.RequesterID, t.ID)
	}
	return recipient{user: u, suppress: userSuppressed(u)}, nil
}

// userSuppressed is why u gets no mail at all, or "".
func userSuppressed(u userRow) string {
	switch {
	case !u.IsActive:
		return ReasonInactive
	case u.EmailBouncedAt != nil:
		return ReasonBounced
	}
	return ""
}

// planAck: the acknowledgement of a new ticket. The rate limit is
// applied when the row is claimed (deliver), under a lock per address.
func (h *Handler) planAck(ctx context.Context, ev *pipeline.Event, pl *plan) (bool, error) {
	pl.kind = KindTicketReceived
	r, err := h.requester(ctx, pl.t)
	if err != nil {
		return false, err
	}
	if r.suppress == "" {
		var acked bool
		err := h.db.WithContext(ctx).Raw(`SELECT EXISTS (SELECT 1 FROM notifications
			WHERE org_id = ? AND ticket_id = ? AND kind = ? AND event_id <> ?)`,
			pl.t.OrgID, pl.t.ID, KindTicketReceived, ev.ID).Scan(&acked).Error
		if err != nil {
			return false, fmt.Errorf("notify: earlier acknowledgement: %w", err)
		}
		switch {
		case h.cfg.AckLimit < 0:
			r.suppress = ReasonAcksOff
		case pl.t.IsDuplicateOf != nil:
			r.suppress = ReasonDuplicate
		case pl.t.AutoSubmitted:
			r.suppress = ReasonAutoSubmitted
		case acked:
			r.suppress = ReasonAcknowledged
		}
	}
	pl.to = []recipient{r}
	return true, nil
}

// planReply: a public staff reply to the requester. The comment is read
// from the database: an internal note is never mailed, whatever the event
// claims.
func (h *Handler) planReply(ctx context.Context, ev *pipeline.Event, pl *plan) (bool, error) {
	var d struct {
		CommentID uuid.UUID `json:"comment_id"`
	}
	if err := json.Unmarshal(ev.Data, &d); err != nil || d.CommentID == uuid.Nil {
		h.log.WarnContext(ctx, "notify: comment.added without a comment id; nothing sent", "event_id", ev.ID, "err", err)
		return false, nil
	}
	var rows []struct {
		Content     string
		ContentHTML *string
		IsInternal  bool
		AuthorID    *uuid.UUID
		AuthorName  *string
		AuthorRole  *models.Role
	}
	err := h.db.WithContext(ctx).Raw(`SELECT c.content, c.content_html, c.is_internal, c.author_id,
			u.name AS author_name, u.role AS author_role
		FROM comments c LEFT JOIN users u ON u.org_id = c.org_id AND u.id = c.author_id
		WHERE c.org_id = ? AND c.ticket_id = ? AND c.id = ?`, pl.t.OrgID, pl.t.ID, d.CommentID).Scan(&rows).Error
	if err != nil {
		return false, fmt.Errorf("notify: load comment %s: %w", d.CommentID, err)
	}
	if len(rows) == 0 {
		return false, nil // deleted since
	}
	c := rows[0]
	switch {
	case c.IsInternal:
		h.log.InfoContext(ctx, "notify: internal note; never e-mailed", "ticket_id", pl.t.ID, "comment_id", d.CommentID)
		return false, nil
	case c.AuthorID == nil || c.AuthorRole == nil || !c.AuthorRole.IsStaff() || *c.AuthorID == pl.t.RequesterID:
		return false, nil // the requester's side wrote it
	}
	pl.kind = KindAgentReply
	reply := &replyView{Text: c.Content}
	if c.AuthorName != nil {
		reply.Author = oneLine(*c.AuthorName, 100)
	}
	if c.ContentHTML != nil && strings.TrimSpace(*c.ContentHTML) != "" {
		// Sanitised (bluemonday) when the comment was written.
		reply.HTML = template.HTML(*c.ContentHTML)
	} else {
		reply.HTML = textHTML(c.Content)
	}
	pl.view.Reply = reply
	r, err := h.requester(ctx, pl.t)
	if err != nil {
		return false, err
	}
	pl.to = []recipient{r}
	return true, nil
}

// customerStatus says whether a move from → to is worth a mail to the
// requester.
func customerStatus(from, to models.TicketStatus) bool {
	switch to {
	case models.StatusWaitingCustomer, models.StatusResolved, models.StatusCancelled:
		return true
	case models.StatusInProgress:
		return from == models.StatusResolved // reopened
	}
	return false
}

// planStatus: a status change the requester cares about; resolution
// invites to the CSAT survey.
func (h *Handler) planStatus(ctx context.Context, ev *pipeline.Event, pl *plan) (bool, error) {
	var d struct {
		From   models.TicketStatus `json:"from"`
		To     models.TicketStatus `json:"to"`
		Reason string              `json:"reason"`
		Cause  string              `json:"cause"`
	}
	if err := json.Unmarshal(ev.Data, &d); err != nil {
		h.log.WarnContext(ctx, "notify: unreadable status change; nothing sent", "event_id", ev.ID, "err", err)
		return false, nil
	}
	if d.Cause != "" || (ev.ActorID != nil && *ev.ActorID == pl.t.RequesterID) || !customerStatus(d.From, d.To) {
		return false, nil // the requester's own doing, or nothing for them
	}
	pl.kind = KindStatusChanged
	pl.view.Status, pl.view.Reason = string(d.To), oneLine(d.Reason, 500)
	if d.From == models.StatusResolved && d.To == models.StatusInProgress {
		pl.view.Status = "reopened"
	}
	if d.To == models.StatusResolved {
		var answered []bool
		err := h.db.WithContext(ctx).Raw(`SELECT responded_at IS NOT NULL FROM csat_surveys WHERE org_id = ? AND ticket_id = ?`,
			pl.t.OrgID, pl.t.ID).Scan(&answered).Error
		if err != nil {
			return false, fmt.Errorf("notify: csat survey: %w", err)
		}
		if len(answered) == 0 || !answered[0] {
			pl.kind, pl.csat = KindCSATInvitation, true
			pl.view.Link += "#csat"
		}
	}
	r, err := h.requester(ctx, pl.t)
	if err != nil {
		return false, err
	}
	if r.suppress == "" && pl.t.Status != d.To {
		r.suppress = ReasonStatusMovedOn // news that is no longer true
	}
	pl.to = []recipient{r}
	return true, nil
}

// planSLA: an escalation to the staff the rule names, or to the managers.
func (h *Handler) planSLA(ctx context.Context, ev *pipeline.Event, pl *plan) (bool, error) {
	var d slacore.FiredData
	if err := json.Unmarshal(ev.Data, &d); err != nil {
		h.log.WarnContext(ctx, "notify: unreadable SLA event; nothing sent", "event_id", ev.ID, "err", err)
		return false, nil
	}
	pl.kind, pl.staff = KindSLAEscalation, true
	pl.view.Staff = true
	pl.view.Link = h.link("/desk/tickets/" + pl.t.ID.String())
	loc, err := time.LoadLocation(pl.t.OrgTimezone)
	if err != nil {
		loc = time.UTC
	}
	s := &slaView{Metric: strings.ReplaceAll(string(d.Metric), "_", " "), Breach: ev.Type == pipeline.EventSLABreached,
		Percent: d.Percent, Due: d.DueAt.In(loc).Format("Mon 2 Jan 2006 15:04 MST"), Policy: oneLine(d.PolicyName, 200),
		Priority: string(pl.t.Priority)}
	if pl.t.AssignedTo != nil {
		var name []string
		if err := h.db.WithContext(ctx).Raw(`SELECT name FROM users WHERE org_id = ? AND id = ?`, pl.t.OrgID, *pl.t.AssignedTo).
			Scan(&name).Error; err != nil {
			return false, fmt.Errorf("notify: assignee: %w", err)
		}
		if len(name) > 0 {
			s.Assignee = oneLine(name[0], 100)
		}
	}
	pl.view.SLA = s
	staff, err := h.escalationStaff(ctx, pl.t, d.Notify)
	if err != nil {
		return false, err
	}
	for _, u := range staff {
		pl.to = append(pl.to, recipient{user: u, suppress: userSuppressed(u)})
	}
	return len(pl.to) > 0, nil
}

// escalationStaff resolves a rule's notify list (roles, "assignee", user
// ids) to active staff; an empty list (a breach no rule covers) means the
// managers, or the admins when there are none.
func (h *Handler) escalationStaff(ctx context.Context, t *ticketRow, notify []string) ([]userRow, error) {
	roles := []string{}
	ids := []uuid.UUID{}
	for _, n := range notify {
		switch n {
		case string(models.RoleAgent), string(models.RoleManager), string(models.RoleAdmin):
			roles = append(roles, n)
		case slacore.NotifyAssignee:
			if t.AssignedTo != nil {
				ids = append(ids, *t.AssignedTo)
			}
		default:
			if id, err := uuid.Parse(n); err == nil {
				ids = append(ids, id)
			}
		}
	}
	fallback := len(notify) == 0
	if fallback {
		roles = []string{string(models.RoleManager)}
	}
	q := func(roles []string, ids []uuid.UUID) ([]userRow, error) {
		var out []userRow
		err := h.db.WithContext(ctx).Raw(`SELECT `+userColumns+` FROM users
			WHERE org_id = ? AND is_active AND role IN ('agent', 'manager', 'admin') AND (role IN ? OR id IN ?)
			ORDER BY created_at, id LIMIT ?`, t.OrgID, append(roles, ""), append(ids, uuid.Nil), MaxRecipients).Scan(&out).Error
		if err != nil {
			return nil, fmt.Errorf("notify: escalation staff: %w", err)
		}
		return out, nil
	}
	out, err := q(roles, ids)
	if err == nil && fallback && len(out) == 0 {
		out, err = q([]string{string(models.RoleAdmin)}, nil)
	}
	return out, err
}

// sender sets From and Reply-To: mail to the requester comes from the
// organisation's mailbox (Reply-To plus-addressed with the ticket token)
// or the default sender; mail to staff from the default sender first, so
// an answer does not land in the support mailbox.
func (h *Handler) sender(ctx context.Context, pl *plan) error {
	var boxes []struct{ Address, Name string }
	err := h.db.WithContext(ctx).Raw(`SELECT address, name FROM mailboxes WHERE org_id = ? AND is_active
		ORDER BY created_at, id LIMIT 1`, pl.t.OrgID).Scan(&boxes).Error
	if err != nil {
		return fmt.Errorf("notify: mailbox: %w", err)
	}
	display := func(name string) string { return oneLine(cmp.Or(strings.TrimSpace(name), pl.t.OrgName), 100) }
	var box *mail.Address
	if len(boxes) > 0 {
		box = &mail.Address{Name: display(boxes[0].Name), Address: boxes[0].Address}
	}
	var def *mail.Address
	if h.from != nil {
		def = &mail.Address{Name: display(h.from.Name), Address: h.from.Address}
	}
	first := []*mail.Address{box, def}
	if pl.staff {
		first = []*mail.Address{def, box}
	}
	for _, a := range first {
		if a != nil {
			pl.from = *a
			break
		}
	}
	if box != nil && !pl.staff {
		pl.replyTo = &mail.Address{Name: box.Name, Address: h.cfg.Signer.ReplyTo(box.Address, pl.t.ID, pl.t.Number)}
	}
	return nil
}

func (h *Handler) link(path string) string {
	if h.cfg.PublicURL == "" {
		return ""
	}
	return h.cfg.PublicURL + path
}

// oneLine folds s onto one line (no control characters: they would be
// refused in a header) and cuts it to max runes.
func oneLine(s string, max int) string {
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f || r == ' ' }), " ")
	if r := []rune(s); len(r) > max {
		s = strings.TrimSpace(string(r[:max-1])) + "…"
	}
	return s
}
