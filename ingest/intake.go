// Package ingest holds the channels through which tickets arrive: the REST
// and web-form intake here, and the e-mail poller. Every channel validates
// and normalises a submission into one pipeline.Intake and produces it to
// the inbound topic, acknowledged by every replica, before it answers.
package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/microcosm-cc/bluemonday"
	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/internal/apperr"
	"github.com/atumdesk/atumdesk/internal/database"
	"github.com/atumdesk/atumdesk/models"
	"github.com/atumdesk/atumdesk/pipeline"
)

// Limits on a submission.
const (
	MaxSubject     = 1000
	MaxDescription = 100_000
	MaxAttachments = 20
	idempotencyTTL = 24 * time.Hour
	// pendingTTL bounds how long a key whose submission is being produced
	// answers 409: if the process producing it dies, a retry is accepted
	// after this. A retry that overlaps a slow produce is still one ticket:
	// the persister keeps (org, idempotency key) unique.
	pendingTTL = 15 * time.Second
)

// Submission is what a channel received, before validation.
type Submission struct {
	Channel         string
	OrgID           uuid.UUID
	Requester       pipeline.Requester
	Subject         string
	Description     string // plain text
	DescriptionHTML string // optional rich text; sanitised here
	ServiceID       *uuid.UUID
	Priority        string
	CustomFields    map[string]json.RawMessage
	AttachmentIDs   []uuid.UUID
	IdempotencyKey  string // client-supplied or derived by the channel
	// IdempotencyScope separates keys of different submitters (user id or
	// e-mail address).
	IdempotencyScope string
	MessageID        string
	InReplyTo        string
	References       []string
	AutoSubmitted    bool // machine-written mail: the ticket is never acknowledged
	// TakeOverPending: a reservation of the key still "in progress" is
	// taken over instead of answered with 409. For a channel whose
	// submitter holds its source exclusively (the mail poller's mailbox
	// lease) such a reservation is a crashed predecessor's; producing again
	// is safe, the persister keeps one ticket per key and Message-ID.
	TakeOverPending bool
	ClientIP        string
	UserAgent       string
	RequestID       string
}

// Receipt is the answer to an accepted submission.
type Receipt struct {
	TicketID uuid.UUID
	// Replayed is true when the idempotency key had been seen: the ticket is
	// the one created for the first submission.
	Replayed bool
}

// Service accepts submissions.
type Service struct {
	db       *gorm.DB
	rdb      *redis.Client
	producer *pipeline.Producer
	log      *slog.Logger
	html     *bluemonday.Policy
	now      func() time.Time
	// fieldDefs caches each organisation's custom-field definitions, read
	// on every submission otherwise.
	fieldDefs ttlCache[uuid.UUID, []models.CustomField]
}

// New returns the intake service.
func New(db *gorm.DB, rdb *redis.Client, producer *pipeline.Producer, log *slog.Logger) *Service {
	return &Service{db: db, rdb: rdb, producer: producer, log: log, html: bluemonday.UGCPolicy(), now: time.Now,
		fieldDefs: ttlCache[uuid.UUID, []models.CustomField]{ttl: 2 * time.Second}}
}

// Submit validates sub, reserves its idempotency key and produces it to
// the inbound topic. It returns only after the broker acknowledged the
// message; if the broker is unreachable it returns an Unavailable error and
// releases the key, leaving nothing half-done.
func (s *Service) Submit(ctx context.Context, sub Submission) (*Receipt, error) {
	in, err := s.normalise(ctx, sub)
	if err != nil {
		return nil, err
	}
	hash := requestHash(in)
	in.IdempotencyScope, in.RequestHash = sub.IdempotencyScope, hash
	idemKey := idempotencyKey(in.OrgID, sub.IdempotencyScope, in.IdempotencyKey)
	prior, err := s.reserve(ctx, idemKey, in, hash, sub.IdempotencyScope, sub.TakeOverPending)
	if err != nil || prior != nil {
		return prior, err
	}
	value, err := json.Marshal(in)
	if err != nil {
		s.rdb.Del(context.WithoutCancel(ctx), idemKey)
		return nil, fmt.Errorf("ingest: marshal intake: %w", err)
	}
	err = s.producer.Publish(ctx, pipeline.Message{
		Topic: pipeline.TopicInbound, Key: []byte(in.TicketID.String()), Value: value,
		Headers: map[string]string{pipeline.HeaderMessageID: in.TicketID.String()},
	})
	if err != nil {
		// The write may still have landed; the key is released so that a
		// retry produces again with a new ticket id, and the persister's
		// (org, idempotency key) uniqueness keeps it to one ticket.
		s.rdb.Del(context.WithoutCancel(ctx), idemKey)
		s.log.WarnContext(ctx, "intake: produce failed", "err", err, "ticket_id", in.TicketID)
		return nil, &apperr.Error{Kind: apperr.Unavailable, Msg: "Ticket intake is temporarily unavailable; retry with the same Idempotency-Key.",
			RetryAfter: 5 * time.Second, Err: err}
	}
	done := "done|" + in.TicketID.String() + "|" + hash
	if err := s.rdb.Set(context.WithoutCancel(ctx), idemKey, done, idempotencyTTL).Err(); err != nil {
		s.log.WarnContext(ctx, "intake: mark idempotency key", "err", err)
	}
	return &Receipt{TicketID: in.TicketID}, nil
}

// reserve claims the idempotency key. A key seen before answers with the
// first submission's ticket (or a conflict if the request differs); a key
// whose first submission is still being produced is a 409 to retry.
func (s *Service) reserve(ctx context.Context, key string, in *pipeline.Intake, hash, scope string, takeOver bool) (*Receipt, error) {
	pending := "pending|" + in.TicketID.String() + "|" + hash
	ok, err := s.rdb.SetNX(ctx, key, pending, pendingTTL).Result()
	if err != nil {
		return nil, &apperr.Error{Kind: apperr.Unavailable, Msg: "Ticket intake is temporarily unavailable; retry shortly.",
			RetryAfter: 2 * time.Second, Err: err}
	}
	if ok {
		// Redis may have lost an older key; the database keeps every
		// persisted one.
		var row struct {
			TicketID    *uuid.UUID
			RequestHash []byte
		}
		err := s.db.WithContext(ctx).Raw(`SELECT ticket_id, request_hash FROM idempotency_keys WHERE org_id = ? AND scope = ? AND key = ?`,
			in.OrgID, scope, in.IdempotencyKey).Scan(&row).Error
		if err != nil {
			// PostgreSQL down: the Redis reservation still holds the key
			// for a day, and the persister's unique (org, key) stops a
			// second ticket; intake keeps accepting (tickets wait on the
			// topic).
			s.log.WarnContext(ctx, "intake: idempotency lookup skipped, database unavailable", "err", err)
			return nil, nil
		}
		if row.TicketID != nil {
			if hex.EncodeToString(row.RequestHash) != hash {
				s.rdb.Del(context.WithoutCancel(ctx), key)
				return nil, errKeyReused
			}
			s.rdb.Set(context.WithoutCancel(ctx), key, "done|"+row.TicketID.String()+"|"+hash, idempotencyTTL)
			return &Receipt{TicketID: *row.TicketID, Replayed: true}, nil
		}
		return nil, nil
	}
	v, err := s.rdb.Get(ctx, key).Result()
	if errors.Is(err, redis.Nil) {
		return s.reserve(ctx, key, in, hash, scope, takeOver) // expired between the calls
	}
	if err != nil {
		return nil, &apperr.Error{Kind: apperr.Unavailable, Msg: "Ticket intake is temporarily unavailable; retry shortly.",
			RetryAfter: 2 * time.Second, Err: err}
	}
	parts := strings.SplitN(v, "|", 3)
	if len(parts) != 3 {
		return nil, fmt.Errorf("ingest: corrupt idempotency entry %q", v)
	}
	if parts[2] != hash {
		return nil, errKeyReused
	}
	if parts[0] == "pending" && takeOver {
		if err := s.rdb.Del(ctx, key).Err(); err != nil {
			return nil, &apperr.Error{Kind: apperr.Unavailable, Msg: "Ticket intake is temporarily unavailable; retry shortly.",
				RetryAfter: 2 * time.Second, Err: err}
		}
		return s.reserve(ctx, key, in, hash, scope, false) // once: a live competitor's reservation is answered with 409
	}
	if parts[0] == "pending" {
		return nil, &apperr.Error{Kind: apperr.Conflict, Msg: "A request with this Idempotency-Key is in progress; retry shortly.",
			RetryAfter: time.Second}
	}
	id, err := uuid.Parse(parts[1])
	if err != nil {
		return nil, fmt.Errorf("ingest: corrupt idempotency entry %q", v)
	}
	return &Receipt{TicketID: id, Replayed: true}, nil
}

var errKeyReused = &apperr.Error{Kind: apperr.Invalid, Msg: "This Idempotency-Key was used for a different request.",
	Fields: map[string]string{"Idempotency-Key": "reused with a different request body"}}

// normalise validates sub and builds the intake message.
func (s *Service) normalise(ctx context.Context, sub Submission) (*pipeline.Intake, error) {
	fields := map[string]string{}
	subject := oneLine(sub.Subject)
	switch {
	case subject == "":
		fields["subject"] = "is required"
	case utf8.RuneCountInString(subject) > MaxSubject:
		fields["subject"] = fmt.Sprintf("must be at most %d characters", MaxSubject)
	}
	text := strings.TrimSpace(strings.ToValidUTF8(strings.ReplaceAll(sub.Description, "\x00", ""), "\uFFFD"))
	html := ""
	if strings.TrimSpace(sub.DescriptionHTML) != "" {
		html = s.html.Sanitize(sub.DescriptionHTML)
		if text == "" {
			text = strings.TrimSpace(bluemonday.StrictPolicy().Sanitize(sub.DescriptionHTML))
		}
	}
	switch {
	case text == "":
		fields["description"] = "is required"
	case len(text) > MaxDescription || len(html) > 4*MaxDescription:
		fields["description"] = fmt.Sprintf("must be at most %d bytes", MaxDescription)
	}
	email := strings.ToLower(strings.TrimSpace(sub.Requester.Email))
	if a, err := mail.ParseAddress(email); err != nil || a.Address != email {
		fields["email"] = "must be a valid e-mail address"
	}
	priority := sub.Priority
	if priority != "" && !models.Priority(priority).Valid() {
		fields["priority"] = "must be one of low, medium, high, critical"
	}
	if len(sub.AttachmentIDs) > MaxAttachments {
		fields["attachment_ids"] = fmt.Sprintf("at most %d attachments", MaxAttachments)
	}
	if k := sub.IdempotencyKey; k == "" || len(k) > 255 {
		fields["Idempotency-Key"] = "must be 1..255 characters"
	}
	if err := apperr.Fields(fields); err != nil {
		return nil, err
	}
	if err := s.checkReferences(ctx, sub, fields); err != nil {
		return nil, err
	}
	if err := apperr.Fields(fields); err != nil {
		return nil, err
	}
	return &pipeline.Intake{
		Version: pipeline.IntakeVersion, TicketID: uuid.Must(uuid.NewV7()), OrgID: sub.OrgID, Channel: sub.Channel,
		Requester: pipeline.Requester{UserID: sub.Requester.UserID, Email: email, Name: oneLine(sub.Requester.Name)},
		Subject:   subject, Text: text, HTML: html, ServiceID: sub.ServiceID, Priority: priority,
		CustomFields: sub.CustomFields, AttachmentIDs: sub.AttachmentIDs, IdempotencyKey: sub.IdempotencyKey,
		MessageID: sub.MessageID, InReplyTo: sub.InReplyTo, References: sub.References, AutoSubmitted: sub.AutoSubmitted,
		ReceivedAt: s.now().UTC(), ClientIP: sub.ClientIP, UserAgent: sub.UserAgent, RequestID: sub.RequestID,
	}, nil
}

// checkReferences verifies that the service, custom fields and uploads
// named by the submission belong to its organisation.
func (s *Service) checkReferences(ctx context.Context, sub Submission, fields map[string]string) error {
	db := s.db.WithContext(ctx)
	if sub.ServiceID != nil {
		var n int64
		if err := db.Raw(`SELECT count(*) FROM services WHERE id = ? AND org_id = ? AND is_active`, *sub.ServiceID, sub.OrgID).Scan(&n).Error; err != nil {
			return database.Classify(err)
		}
		if n == 0 {
			fields["service_id"] = "is not a service of this organisation"
		}
	}
	defs, err := s.fieldDefs.get(sub.OrgID, func() ([]models.CustomField, error) {
		var defs []models.CustomField
		return defs, db.Where("org_id = ? AND is_active", sub.OrgID).Find(&defs).Error
	})
	if err != nil {
		err = database.Classify(err)
		if len(sub.CustomFields) > 0 || !apperr.IsKind(err, apperr.Unavailable) {
			return err
		}
		// Without the definitions a required field cannot be checked;
		// accept rather than lose the ticket while PostgreSQL is down.
		s.log.WarnContext(ctx, "intake: custom fields unchecked, database unavailable", "err", err)
	}
	known := map[string]models.CustomField{}
	for _, d := range defs {
		known[d.Key] = d
		if _, ok := sub.CustomFields[d.Key]; d.Required && !ok {
			fields["custom_fields."+d.Key] = "is required"
		}
	}
	for k, v := range sub.CustomFields {
		d, ok := known[k]
		if !ok {
			fields["custom_fields."+k] = "is not a field of this organisation"
			continue
		}
		if reason := checkFieldValue(d, v); reason != "" {
			fields["custom_fields."+k] = reason
		}
	}
	if len(sub.AttachmentIDs) > 0 {
		var n int64
		q := db.Raw(`SELECT count(*) FROM attachments WHERE id IN ? AND org_id = ? AND ticket_id IS NULL AND comment_id IS NULL AND uploaded_by = ?`,
			sub.AttachmentIDs, sub.OrgID, sub.Requester.UserID)
		if sub.Channel == pipeline.ChannelEmail {
			// Stored by the mail sink from the message itself (no uploader).
			q = db.Raw(`SELECT count(*) FROM attachments WHERE id IN ? AND org_id = ? AND ticket_id IS NULL AND comment_id IS NULL AND uploaded_by IS NULL`,
				sub.AttachmentIDs, sub.OrgID)
		}
		if err := q.Scan(&n).Error; err != nil {
			return database.Classify(err)
		}
		if int(n) != len(uniq(sub.AttachmentIDs)) {
			fields["attachment_ids"] = "must be your own unattached uploads"
		}
	}
	return nil
}

func checkFieldValue(d models.CustomField, v json.RawMessage) string {
	var x any
	if err := json.Unmarshal(v, &x); err != nil {
		return "is not valid JSON"
	}
	switch d.FieldType {
	case models.CustomFieldType("number"):
		if _, ok := x.(float64); !ok {
			return "must be a number"
		}
	case models.CustomFieldType("checkbox"):
		if _, ok := x.(bool); !ok {
			return "must be true or false"
		}
	case models.CustomFieldType("date"):
		s, ok := x.(string)
		if _, err := time.Parse(time.DateOnly, s); !ok || err != nil {
			return "must be a date YYYY-MM-DD"
		}
	case models.CustomFieldType("select"):
		s, ok := x.(string)
		var opts []string
		_ = json.Unmarshal(d.Options, &opts)
		found := false
		for _, o := range opts {
			found = found || o == s
		}
		if !ok || !found {
			return "must be one of the field's options"
		}
	default:
		s, ok := x.(string)
		if !ok || len(s) > 10_000 {
			return "must be a string of at most 10000 bytes"
		}
	}
	return ""
}

// requestHash identifies the content of a submission, so that an
// idempotency key reused with different content is refused.
func requestHash(in *pipeline.Intake) string {
	h := sha256.New()
	enc := json.NewEncoder(h)
	_ = enc.Encode([]any{in.Channel, in.Requester.Email, in.Subject, in.Text, in.HTML, in.ServiceID, in.Priority, in.CustomFields, in.AttachmentIDs})
	return hex.EncodeToString(h.Sum(nil))
}

// idempotencyKey is the Redis key reserving a submission's idempotency key.
func idempotencyKey(org uuid.UUID, scope, key string) string {
	return fmt.Sprintf("atumdesk:idem:%s:%s:%s", org, scope, hashKey(key))
}

func hashKey(k string) string {
	s := sha256.Sum256([]byte(k))
	return hex.EncodeToString(s[:16])
}

// oneLine collapses whitespace and drops control characters: subjects and
// names end up in e-mail headers.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	return strings.Join(strings.Fields(s), " ")
}

func uniq(ids []uuid.UUID) map[uuid.UUID]struct{} {
	m := make(map[uuid.UUID]struct{}, len(ids))
	for _, id := range ids {
		m[id] = struct{}{}
	}
	return m
}

// Stored reports whether the ticket has been persisted.
func (s *Service) Stored(ctx context.Context, orgID, ticketID uuid.UUID) (bool, error) {
	var n int64
	err := s.db.WithContext(ctx).Raw(`SELECT count(*) FROM tickets WHERE id = ? AND org_id = ?`, ticketID, orgID).Scan(&n).Error
	return n > 0, database.Classify(err)
}

// WaitStored polls until the ticket is persisted or ctx ends.
func (s *Service) WaitStored(ctx context.Context, orgID, ticketID uuid.UUID) (bool, error) {
	delay := 5 * time.Millisecond
	for {
		ok, err := s.Stored(ctx, orgID, ticketID)
		if ok || (err != nil && ctx.Err() == nil) {
			return ok, err
		}
		select {
		case <-ctx.Done():
			return false, nil
		case <-time.After(delay):
		}
		delay = min(delay*2, 100*time.Millisecond)
	}
}
