package notify

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/atumdesk/atumdesk/internal/database"
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
	// AckedBy lists (comma-separated) the events that have an
	// acknowledgement row for the ticket.
	AckedBy *string
	// CSATAnswered: nil when the ticket has no survey.
	CSATAnswered *bool
	// From the organisation (orgRow).
	OrgName     string `gorm:"-"`
	OrgTimezone string `gorm:"-"`
	OrgSettings string `gorm:"-"`
}

type userRow struct {
	ID             uuid.UUID
	Email          string
	Name           string
	Role           models.Role
	IsActive       bool
	EmailBouncedAt *time.Time
}

// orgRow is the organisation of a run, with its first active mailbox.
type orgRow struct {
	Name, Timezone, Settings string
	BoxAddress, BoxName      *string
}

type commentRow struct {
	ID          uuid.UUID
	TicketID    uuid.UUID
	Content     string
	ContentHTML *string
	IsInternal  bool
	AuthorID    *uuid.UUID
	AuthorName  *string
	AuthorRole  *models.Role
}

// facts is what the plans of a run read from the database, loaded with
// one query per kind for all its events (loadFacts).
type facts struct {
	org      orgRow
	tickets  map[uuid.UUID]*ticketRow
	users    map[uuid.UUID]userRow // requesters, and the assignees of SLA events
	comments map[uuid.UUID]commentRow
	// acks maps a ticket to the events that have (or, planned earlier in
	// this run, will have) an acknowledgement row for it.
	acks map[uuid.UUID][]uuid.UUID
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

// mails reports whether an event of type typ may call for mail.
func mails(typ string) bool {
	switch typ {
	case pipeline.EventDedupPassed, pipeline.EventCommentAdded, pipeline.EventStatusChanged,
		pipeline.EventSLAThreshold, pipeline.EventSLABreached:
		return true
	}
	return false
}

// commentOf is the comment a comment.added event names.
func commentOf(ev *pipeline.Event) (uuid.UUID, error) {
	var d struct {
		CommentID uuid.UUID `json:"comment_id"`
	}
	if err := json.Unmarshal(ev.Data, &d); err != nil {
		return uuid.Nil, err
	}
	if d.CommentID == uuid.Nil {
		return uuid.Nil, errors.New("no comment id")
	}
	return d.CommentID, nil
}

// loadFacts loads what the plans of evs (nil entries skipped) need, all
// in the organisation orgID: the organisation and its mailbox, the
// tickets (with their acknowledgements and survey), the requesters and
// assignees, the comments.
func (h *Handler) loadFacts(ctx context.Context, orgID uuid.UUID, evs []*pipeline.Event) (*facts, error) {
	f := &facts{tickets: map[uuid.UUID]*ticketRow{}, users: map[uuid.UUID]userRow{},
		comments: map[uuid.UUID]commentRow{}, acks: map[uuid.UUID][]uuid.UUID{}}
	var ticketIDs, commentIDs []uuid.UUID
	sla := map[uuid.UUID]bool{} // tickets whose assignee is named in an escalation
	for _, ev := range evs {
		if ev == nil || !mails(ev.Type) {
			continue
		}
		ticketIDs = append(ticketIDs, ev.TicketID)
		switch ev.Type {
		case pipeline.EventCommentAdded:
			if id, err := commentOf(ev); err == nil {
				commentIDs = append(commentIDs, id)
			}
		case pipeline.EventSLAThreshold, pipeline.EventSLABreached:
			sla[ev.TicketID] = true
		}
	}
	if len(ticketIDs) == 0 {
		return f, nil
	}
	db := h.db.WithContext(ctx)
	var orgs []orgRow
	err := db.Raw(`SELECT o.name, o.timezone, o.settings::text AS settings, m.address AS box_address, m.name AS box_name
		FROM organizations o LEFT JOIN LATERAL (SELECT address, name FROM mailboxes
			WHERE org_id = o.id AND is_active ORDER BY created_at, id LIMIT 1) m ON true
		WHERE o.id = ?`, orgID).Scan(&orgs).Error
	if err != nil {
		return nil, fmt.Errorf("notify: load organisation %s: %w", orgID, err)
	}
	if len(orgs) == 0 {
		return f, nil // no organisation, no tickets
	}
	f.org = orgs[0]
	var tickets []*ticketRow
	err = db.Raw(`SELECT t.id, t.org_id, t.number, t.subject, t.status, t.priority, t.requester_id,
			t.assigned_to, t.source_message_id, t.auto_submitted, t.is_duplicate_of,
			(SELECT string_agg(n.event_id::text, ',') FROM notifications n
			 WHERE n.org_id = t.org_id AND n.ticket_id = t.id AND n.kind = ?) AS acked_by,
			(SELECT s.responded_at IS NOT NULL FROM csat_surveys s WHERE s.org_id = t.org_id AND s.ticket_id = t.id) AS csat_answered
		FROM tickets t WHERE t.org_id = ? AND t.id = ANY(?::uuid[])`,
		KindTicketReceived, orgID, database.UUIDArray(ticketIDs)).Scan(&tickets).Error
	if err != nil {
		return nil, fmt.Errorf("notify: load tickets: %w", err)
	}
	var userIDs []uuid.UUID
	for _, t := range tickets {
		t.OrgName, t.OrgTimezone, t.OrgSettings = f.org.Name, f.org.Timezone, f.org.Settings
		f.tickets[t.ID] = t
		if t.AckedBy != nil {
			for s := range strings.SplitSeq(*t.AckedBy, ",") {
				if id, err := uuid.Parse(s); err == nil {
					f.acks[t.ID] = append(f.acks[t.ID], id)
				}
			}
		}
		userIDs = append(userIDs, t.RequesterID)
		if sla[t.ID] && t.AssignedTo != nil {
			userIDs = append(userIDs, *t.AssignedTo)
		}
	}
	if len(userIDs) > 0 {
		var users []userRow
		err := db.Raw(`SELECT `+userColumns+` FROM users WHERE org_id = ? AND id = ANY(?::uuid[])`,
			orgID, database.UUIDArray(userIDs)).Scan(&users).Error
		if err != nil {
			return nil, fmt.Errorf("notify: load requesters: %w", err)
		}
		for _, u := range users {
			f.users[u.ID] = u
		}
	}
	if len(commentIDs) > 0 {
		var comments []commentRow
		err := db.Raw(`SELECT c.id, c.ticket_id, c.content, c.content_html, c.is_internal, c.author_id,
				u.name AS author_name, u.role AS author_role
			FROM comments c LEFT JOIN users u ON u.org_id = c.org_id AND u.id = c.author_id
			WHERE c.org_id = ? AND c.id = ANY(?::uuid[])`, orgID, database.UUIDArray(commentIDs)).Scan(&comments).Error
		if err != nil {
			return nil, fmt.Errorf("notify: load comments: %w", err)
		}
		for _, c := range comments {
			f.comments[c.ID] = c
		}
	}
	return f, nil
}

// plan decides what ev calls for, from f; nil when no mail at all.
func (h *Handler) plan(ctx context.Context, ev *pipeline.Event, f *facts) (*plan, error) {
	var build func(context.Context, *pipeline.Event, *plan, *facts) (bool, error)
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
	t := f.tickets[ev.TicketID]
	if t == nil {
		h.log.WarnContext(ctx, "notify: ticket not found; nothing sent", "ticket_id", ev.TicketID, "org_id", ev.OrgID)
		return nil, nil
	}
	pl := &plan{t: t, view: view{Org: t.OrgName, Number: t.Number, Subject: oneLine(t.Subject, 200),
		Link: h.link("/portal/tickets/" + t.ID.String())}}
	ok, err := build(ctx, ev, pl, f)
	if err != nil || !ok {
		return nil, err
	}
	if !pl.staff && h.cfg.Signer == nil {
		return nil, fmt.Errorf("notify: no token signer configured")
	}
	h.sender(pl, f.org)
	if pl.kind == KindTicketReceived {
		// Its row is written with the run's: later events of the run see
		// the ticket acknowledged, as they would one by one.
		f.acks[t.ID] = append(f.acks[t.ID], ev.ID)
	}
	return pl, nil
}

const userColumns = `id, email, name, role, is_active, email_bounced_at`

// requester is the ticket's requester as a recipient.
func (f *facts) requester(t *ticketRow) (recipient, error) {
	u, ok := f.users[t.RequesterID]
	if !ok {
		return recipient{}, fmt.Errorf("notify: requester %s of ticket %s not found", t.RequesterID, t.ID)
	}
	return recipient{user: u, suppress: userSuppressed(u)}, nil
}

// acked reports whether the ticket has an acknowledgement other than
// eventID's.
func (f *facts) acked(ticketID, eventID uuid.UUID) bool {
	return slices.ContainsFunc(f.acks[ticketID], func(id uuid.UUID) bool { return id != eventID })
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
// applied when the row is claimed, under a lock per address.
func (h *Handler) planAck(_ context.Context, ev *pipeline.Event, pl *plan, f *facts) (bool, error) {
	pl.kind = KindTicketReceived
	r, err := f.requester(pl.t)
	if err != nil {
		return false, err
	}
	if r.suppress == "" {
		switch {
		case h.cfg.AckLimit < 0:
			r.suppress = ReasonAcksOff
		case pl.t.IsDuplicateOf != nil:
			r.suppress = ReasonDuplicate
		case pl.t.AutoSubmitted:
			r.suppress = ReasonAutoSubmitted
		case f.acked(pl.t.ID, ev.ID):
			r.suppress = ReasonAcknowledged
		}
	}
	pl.to = []recipient{r}
	return true, nil
}

// planReply: a public staff reply to the requester. The comment is read
// from the database: an internal note is never mailed, whatever the event
// claims.
func (h *Handler) planReply(ctx context.Context, ev *pipeline.Event, pl *plan, f *facts) (bool, error) {
	id, err := commentOf(ev)
	if err != nil {
		h.log.WarnContext(ctx, "notify: comment.added without a comment id; nothing sent", "event_id", ev.ID, "err", err)
		return false, nil
	}
	c, ok := f.comments[id]
	if !ok || c.TicketID != pl.t.ID {
		return false, nil // deleted since
	}
	switch {
	case c.IsInternal:
		h.log.InfoContext(ctx, "notify: internal note; never e-mailed", "ticket_id", pl.t.ID, "comment_id", id)
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
	r, err := f.requester(pl.t)
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
func (h *Handler) planStatus(ctx context.Context, ev *pipeline.Event, pl *plan, f *facts) (bool, error) {
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
	if d.To == models.StatusResolved && (pl.t.CSATAnswered == nil || !*pl.t.CSATAnswered) {
		pl.kind, pl.csat = KindCSATInvitation, true
		pl.view.Link += "#csat"
	}
	r, err := f.requester(pl.t)
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
func (h *Handler) planSLA(ctx context.Context, ev *pipeline.Event, pl *plan, f *facts) (bool, error) {
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
		if u, ok := f.users[*pl.t.AssignedTo]; ok {
			s.Assignee = oneLine(u.Name, 100)
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
func (h *Handler) sender(pl *plan, org orgRow) {
	display := func(name string) string { return oneLine(cmp.Or(strings.TrimSpace(name), pl.t.OrgName), 100) }
	var box *mail.Address
	if org.BoxAddress != nil {
		box = &mail.Address{Name: display(deref(org.BoxName)), Address: *org.BoxAddress}
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
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
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
