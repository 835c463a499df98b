package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	gomail "github.com/wneessen/go-mail"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/internal/audit"
	"github.com/atumdesk/atumdesk/internal/csat"
	"github.com/atumdesk/atumdesk/internal/database"
	"github.com/atumdesk/atumdesk/internal/mailer"
	"github.com/atumdesk/atumdesk/models"
	"github.com/atumdesk/atumdesk/pipeline"
)

// errBusy: another run holds the notification (it is being sent).
var errBusy = errors.New("notify: notification is being sent by another run; retry")

type notificationRow struct {
	ID        uuid.UUID
	MessageID string
	Status    string
	CreatedAt time.Time
}

// claimed is one recipient's notifications row, as the claim left it.
type claimed struct {
	at       int // the event's index in the run
	ev       *pipeline.Event
	pl       *plan
	r        recipient
	row      notificationRow
	inserted bool // by this run
}

// planned is an event of a run with its plan.
type planned struct {
	at int
	ev *pipeline.Event
	pl *plan
}

// claim writes the notifications rows of ps that do not exist yet, in one
// statement (one transaction with the acknowledgement rate limit):
// pending with a fresh Message-ID, or suppressed with the reason
// (r.suppress is set to it). Rows that existed are returned as they are.
// The rows come back in the order of ps and their recipients.
func (h *Handler) claim(ctx context.Context, orgID uuid.UUID, ps []planned) ([]claimed, error) {
	var out []claimed
	limit := false // some acknowledgement is subject to the rate limit
	for _, p := range ps {
		seen := map[string]bool{}
		for _, r := range p.pl.to {
			if seen[r.user.Email] {
				continue // one row per (event, recipient)
			}
			seen[r.user.Email] = true
			switch {
			case r.suppress != "":
			case h.cfg.Mailer == nil:
				r.suppress = ReasonSMTPOff
			case p.pl.from.Address == "":
				r.suppress = ReasonNoSender
			}
			limit = limit || (r.suppress == "" && p.pl.kind == KindTicketReceived)
			out = append(out, claimed{at: p.at, ev: p.ev, pl: p.pl, r: r})
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	write := func(tx *gorm.DB) error {
		if limit {
			if err := h.ackLimit(tx, orgID, out); err != nil {
				return err
			}
		}
		return h.insert(tx, orgID, out)
	}
	db := h.db.WithContext(ctx)
	if limit {
		return out, db.Transaction(write)
	}
	return out, write(db) // one statement: no transaction needed
}

// insert writes the rows of cs in one statement and fills in each one's
// row as it is now. created_at follows the order of cs (a microsecond
// apart), so a mail's thread holds the mails sent before it in the run,
// as one by one. The rows go in sorted by key, so two runs that overlap
// wait for each other rather than deadlock.
func (h *Handler) insert(tx *gorm.DB, orgID uuid.UUID, cs []claimed) error {
	type row struct {
		ID        uuid.UUID `json:"id"`
		TicketID  uuid.UUID `json:"ticket_id"`
		EventID   uuid.UUID `json:"event_id"`
		Kind      string    `json:"kind"`
		Recipient string    `json:"recipient"`
		MessageID string    `json:"message_id"`
		Status    string    `json:"status"`
		Reason    *string   `json:"reason"`
		Ord       int       `json:"ord"`
	}
	rows := make([]row, len(cs))
	eventIDs := make([]uuid.UUID, 0, len(cs))
	for i, c := range cs {
		domain := domainOf(c.pl.from.Address)
		if domain == "" {
			domain = hostOf(h.cfg.PublicURL) // for the record only: nothing is sent
		}
		rows[i] = row{ID: models.NewID(), TicketID: c.pl.t.ID, EventID: c.ev.ID, Kind: c.pl.kind, Recipient: c.r.user.Email,
			MessageID: mailer.NewMessageID(domain), Status: StatusPending, Ord: i}
		if c.r.suppress != "" {
			rows[i].Status, rows[i].Reason = StatusSuppressed, &c.r.suppress
		}
		eventIDs = append(eventIDs, c.ev.ID)
	}
	payload, err := json.Marshal(rows)
	if err != nil {
		return err
	}
	type stored struct {
		ID        uuid.UUID
		MessageID string
		Status    string
		CreatedAt time.Time
		EventID   uuid.UUID
		Recipient string
	}
	rowOf := func(s stored) notificationRow {
		return notificationRow{ID: s.ID, MessageID: s.MessageID, Status: s.Status, CreatedAt: s.CreatedAt}
	}
	var got []stored
	err = tx.Raw(`INSERT INTO notifications (id, org_id, ticket_id, event_id, kind, recipient, message_id, status, reason, created_at)
		SELECT r.id, ?, r.ticket_id, r.event_id, r.kind, r.recipient, r.message_id, r.status, r.reason,
			now() + r.ord * interval '1 microsecond'
		FROM jsonb_to_recordset(?::jsonb) AS r(id uuid, ticket_id uuid, event_id uuid, kind text, recipient text,
			message_id text, status text, reason text, ord int)
		ORDER BY r.event_id, r.recipient
		ON CONFLICT (event_id, recipient) DO NOTHING
		RETURNING id, message_id, status, created_at, event_id, recipient`, orgID, string(payload)).Scan(&got).Error
	if err != nil {
		return fmt.Errorf("notify: insert notifications: %w", err)
	}
	type key struct {
		event     uuid.UUID
		recipient string
	}
	inserted := make(map[key]notificationRow, len(got))
	for _, g := range got {
		inserted[key{g.EventID, g.Recipient}] = rowOf(g)
	}
	var existing map[key]notificationRow
	if len(got) < len(cs) {
		// Written before (a run again, or a concurrent one): as they are.
		var old []stored
		err := tx.Raw(`SELECT id, message_id, status, created_at, event_id, recipient FROM notifications
			WHERE org_id = ? AND event_id = ANY(?::uuid[])`, orgID, database.UUIDArray(eventIDs)).Scan(&old).Error
		if err != nil {
			return fmt.Errorf("notify: read notifications: %w", err)
		}
		existing = make(map[key]notificationRow, len(old))
		for _, o := range old {
			existing[key{o.EventID, o.Recipient}] = rowOf(o)
		}
	}
	for i := range cs {
		k := key{cs[i].ev.ID, cs[i].r.user.Email}
		if n, ok := inserted[k]; ok {
			cs[i].row, cs[i].inserted = n, true
		} else if n, ok := existing[k]; ok {
			cs[i].row = n
		} else {
			return fmt.Errorf("notify: notification of event %s to %s neither written nor found", k.event, k.recipient)
		}
	}
	return nil
}

// ackLimit suppresses (ReasonRateLimited) the acknowledgements of cs
// beyond AckLimit per address within AckWindow, counting those already
// pending or sent and those of cs before it, as one by one. Transaction-
// scoped locks per address (taken in one order) make concurrent runs count
// one after the other.
func (h *Handler) ackLimit(tx *gorm.DB, orgID uuid.UUID, cs []claimed) error {
	subject := func(c claimed) bool { return c.r.suppress == "" && c.pl.kind == KindTicketReceived }
	var keys, addrs []string
	for _, c := range cs {
		if subject(c) {
			addr := strings.ToLower(c.r.user.Email)
			keys = append(keys, "atumdesk:notify:ack:"+orgID.String()+":"+addr)
			addrs = append(addrs, addr)
		}
	}
	keyList, _ := json.Marshal(keys)
	addrList, _ := json.Marshal(addrs)
	if err := tx.Exec(`SELECT pg_advisory_xact_lock(k) FROM (SELECT DISTINCT hashtextextended(key, 0) AS k
		FROM json_array_elements_text(?::json) AS key ORDER BY 1) l`, string(keyList)).Error; err != nil {
		return fmt.Errorf("notify: ack lock: %w", err)
	}
	var acks []struct {
		Addr    string
		EventID uuid.UUID
	}
	err := tx.Raw(`SELECT lower(recipient) AS addr, event_id FROM notifications
		WHERE org_id = ? AND lower(recipient) IN (SELECT json_array_elements_text(?::json)) AND kind = ?
		  AND status IN ('pending', 'sent') AND created_at > now() - make_interval(secs => ?)`,
		orgID, string(addrList), KindTicketReceived, h.cfg.AckWindow.Seconds()).Scan(&acks).Error
	if err != nil {
		return fmt.Errorf("notify: ack count: %w", err)
	}
	counted := map[string]map[uuid.UUID]bool{} // address → events with an acknowledgement that counts
	for _, a := range acks {
		if counted[a.Addr] == nil {
			counted[a.Addr] = map[uuid.UUID]bool{}
		}
		counted[a.Addr][a.EventID] = true
	}
	for i := range cs {
		if !subject(cs[i]) {
			continue
		}
		addr := strings.ToLower(cs[i].r.user.Email)
		if counted[addr] == nil {
			counted[addr] = map[uuid.UUID]bool{}
		}
		n := len(counted[addr])
		if counted[addr][cs[i].ev.ID] {
			n-- // its own, written by an earlier run
		}
		if n >= h.cfg.AckLimit {
			cs[i].r.suppress = ReasonRateLimited
			continue
		}
		counted[addr][cs[i].ev.ID] = true
	}
	return nil
}

// deliver sends the pending notification c under its row's lock and marks
// it in the same transaction. It returns the state the row reached in this
// run ("" when it was settled meanwhile, stateRetry after a transient
// failure, with the error: the event is retried), and whether the server
// refused the recipient for good (their address is marked bounced).
func (h *Handler) deliver(ctx context.Context, c claimed) (state string, bounced bool, err error) {
	ev, pl, r := c.ev, c.pl, c.r
	log := h.log.With("event_id", ev.ID, "ticket_id", pl.t.ID, "kind", pl.kind, "recipient", r.user.Email)
	if pl.csat && r.suppress == "" {
		// The invitation mail and the survey go together (csat metrics
		// count invitations); Invite is idempotent.
		t := &models.Ticket{ID: pl.t.ID, OrgID: pl.t.OrgID, RequesterID: pl.t.RequesterID, Status: pl.t.Status}
		if err := h.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			_, err := csat.Invite(ctx, tx, t)
			return err
		}); err != nil {
			return "", false, fmt.Errorf("notify: csat invite: %w", err)
		}
	}

	var sendErr error
	err = h.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var n notificationRow
		err := tx.Raw(`SELECT id, message_id, status, created_at FROM notifications
			WHERE event_id = ? AND recipient = ? FOR UPDATE NOWAIT`, ev.ID, r.user.Email).Scan(&n).Error
		if database.SQLState(err) == "55P03" {
			return errBusy
		}
		if err != nil {
			return fmt.Errorf("notify: lock notification: %w", err)
		}
		if n.ID == uuid.Nil || n.Status != StatusPending {
			return nil // settled by an earlier run
		}
		if r.suppress != "" {
			// Claimed by an earlier run (or earlier in this one); since then
			// the address bounced, the news went stale, SMTP was switched
			// off, ….
			state = StatusSuppressed
			return setStatus(tx, n.ID, StatusSuppressed, r.suppress, false)
		}
		msg, err := h.compose(ctx, tx, pl, r, n)
		if err != nil {
			log.ErrorContext(ctx, "notification not composed", "err", err)
			state = StatusFailed
			return setStatus(tx, n.ID, StatusFailed, err.Error(), false)
		}
		sendErr = h.cfg.Mailer.Send(ctx, msg)
		switch {
		case sendErr == nil:
			state = StatusSent
			return setStatus(tx, n.ID, StatusSent, "", true)
		case mailer.IsPermanent(sendErr):
			state = StatusFailed
			if err := setStatus(tx, n.ID, StatusFailed, sendErr.Error(), true); err != nil {
				return err
			}
			if recipientRejected(sendErr) {
				bounced = true
				return markBounced(ctx, tx, pl.t, r.user, n.ID)
			}
			return nil
		default:
			state = stateRetry
			return tx.Exec(`UPDATE notifications SET attempts = attempts + 1, reason = ? WHERE id = ?`,
				clip("retrying: "+sendErr.Error()), n.ID).Error
		}
	})
	if err != nil {
		return "", false, err
	}
	switch state {
	case "":
		return "", false, nil
	case stateRetry:
		h.count(pl.kind, stateRetry)
		log.WarnContext(ctx, "notification not sent; will retry", "err", sendErr)
		return stateRetry, false, fmt.Errorf("notify: send %s to %s: %w", pl.kind, r.user.Email, sendErr)
	case StatusFailed:
		log.WarnContext(ctx, "notification failed for good", "err", sendErr)
	default:
		log.InfoContext(ctx, "notification "+state)
	}
	h.count(pl.kind, state)
	return state, bounced, nil
}

// markBounced records a hard bounce at the door (the server refused the
// recipient): mail to the address stops until the customer writes again
// (ingest clears the mark) or an agent clears it.
func markBounced(ctx context.Context, tx *gorm.DB, t *ticketRow, u userRow, notificationID uuid.UUID) error {
	res := tx.Exec(`UPDATE users SET email_bounced_at = now() WHERE org_id = ? AND id = ? AND email_bounced_at IS NULL`, t.OrgID, u.ID)
	if res.Error != nil {
		return fmt.Errorf("notify: mark bounced: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return nil
	}
	return audit.Write(ctx, tx, audit.Entry{OrgID: &t.OrgID, TicketID: &t.ID, ActorKind: audit.ActorSystem, Action: "user.email_bounced",
		EntityType: "user", EntityID: &u.ID, After: map[string]any{"email": u.Email, "source": "smtp_rejected", "notification_id": notificationID}})
}

func setStatus(tx *gorm.DB, id uuid.UUID, status, reason string, attempted bool) error {
	var why any
	if reason != "" {
		why = clip(reason)
	}
	inc := 0
	if attempted {
		inc = 1
	}
	err := tx.Exec(`UPDATE notifications SET status = ?, reason = ?, attempts = attempts + ?,
		sent_at = CASE WHEN ? = 'sent' THEN now() ELSE sent_at END WHERE id = ?`, status, why, inc, status, id).Error
	if err != nil {
		return fmt.Errorf("notify: mark %s: %w", status, err)
	}
	return nil
}

// compose builds the message of n for r.
func (h *Handler) compose(ctx context.Context, tx *gorm.DB, pl *plan, r recipient, n notificationRow) (*mailer.Message, error) {
	v := pl.view
	v.Name = oneLine(r.user.Name, 100)
	o := overrideOf(pl.t.OrgSettings, pl.kind)
	out, err := h.tmpl.render(pl.kind, o, &v)
	if err != nil && o != nil {
		h.log.WarnContext(ctx, "notify: the organisation's template failed; the built-in one is used",
			"org_id", pl.t.OrgID, "kind", pl.kind, "err", err)
		out, err = h.tmpl.render(pl.kind, nil, &v)
	}
	if err != nil {
		return nil, err
	}
	msg := &mailer.Message{
		From: pl.from, To: []mail.Address{{Name: v.Name, Address: r.user.Email}}, ReplyTo: pl.replyTo,
		Subject: out.Subject, Text: out.Text, HTML: out.HTML, MessageID: n.MessageID,
		LoopToken: h.cfg.LoopToken, Headers: map[string]string{"X-Atumdesk-Notification": pl.kind},
	}
	switch pl.kind {
	case KindAgentReply: // written by a person: no Auto-Submitted
	case KindTicketReceived:
		msg.AutoSubmitted = "auto-replied"
	default:
		msg.AutoSubmitted = "auto-generated"
	}
	if pl.staff {
		return msg, nil // no token, no thread: staff answer in the desk
	}
	msg.Subject = h.cfg.Signer.Subject(out.Subject, pl.t.ID, pl.t.Number)
	refs, err := h.thread(ctx, tx, pl.t, n)
	if err != nil {
		return nil, err
	}
	if len(refs) > 0 {
		msg.References, msg.InReplyTo = refs, refs[len(refs)-1]
	}
	return msg, nil
}

// thread is the References of a new mail on ticket t, oldest first: the
// e-mail that opened the ticket, then the newest of the mails sent to the
// requester and the e-mails they wrote, before n; at most MaxReferences.
func (h *Handler) thread(ctx context.Context, tx *gorm.DB, t *ticketRow, n notificationRow) ([]string, error) {
	var rows []struct {
		MID string    `gorm:"column:mid"`
		At  time.Time `gorm:"column:at"`
	}
	err := tx.WithContext(ctx).Raw(`SELECT mid, at FROM (
			(SELECT message_id AS mid, created_at AS at FROM notifications
			 WHERE org_id = ? AND ticket_id = ? AND status = 'sent' AND kind <> ? AND created_at < ? AND id <> ?
			 ORDER BY created_at DESC LIMIT ?)
			UNION ALL
			(SELECT source_message_id, created_at FROM comments
			 WHERE org_id = ? AND ticket_id = ? AND source_message_id IS NOT NULL AND NOT is_internal AND created_at < ?
			 ORDER BY created_at DESC LIMIT ?)) m
		ORDER BY at`,
		t.OrgID, t.ID, KindSLAEscalation, n.CreatedAt, n.ID, MaxReferences,
		t.OrgID, t.ID, n.CreatedAt, MaxReferences).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("notify: thread: %w", err)
	}
	var ids []string
	add := func(s string) {
		if id := cleanID(s); id != "" && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	root := ""
	if t.SourceMessageID != nil {
		root = cleanID(*t.SourceMessageID)
	}
	for _, r := range rows {
		if id := cleanID(r.MID); id != root {
			add(id)
		}
	}
	if len(ids) > MaxReferences-1 {
		ids = ids[len(ids)-(MaxReferences-1):]
	}
	if root != "" {
		ids = append([]string{root}, ids...)
	}
	return ids, nil
}

// cleanID strips the angle brackets of a stored Message-ID; one that could
// not go into a header is dropped ("").
func cleanID(s string) string {
	s = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(s), "<"), ">")
	if s == "" || len(s) > 900 || !strings.Contains(s, "@") || strings.ContainsAny(s, "<> \t\r\n\x00") {
		return ""
	}
	return s
}

// recipientRejected reports whether the server refused the recipient
// (RCPT TO) permanently.
func recipientRejected(err error) bool {
	var se *gomail.SendError
	return errors.As(err, &se) && se.Reason == gomail.ErrSMTPRcptTo && !se.IsTemp()
}

func domainOf(addr string) string {
	_, d, ok := strings.Cut(addr, "@")
	if !ok || d == "" || strings.ContainsAny(d, "<> \t\r\n@") {
		return ""
	}
	return strings.ToLower(d)
}

// hostOf is the host name of a URL ("localhost" when there is none).
func hostOf(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Hostname() != "" && !strings.Contains(u.Hostname(), ":") {
		return strings.ToLower(u.Hostname())
	}
	return "localhost"
}

// clip bounds a stored reason.
func clip(s string) string { return oneLine(s, 1000) }
