package pipeline

import (
	"bytes"
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/internal/audit"
	"github.com/atumdesk/atumdesk/models"
)

// PersisterGroupID is the consumer group of the persisters on TopicInbound.
const PersisterGroupID = "atumdesk-persister"

// Rejection reasons (atumdesk_persister_rejected_total{reason}): a rejected
// message is logged and skipped, never retried.
const (
	RejectMalformed   = "malformed"           // not an Intake JSON document
	RejectVersion     = "unsupported_version" // an Intake version this build does not know
	RejectInvalid     = "invalid"             // a field the database would refuse
	RejectUnknownOrg  = "unknown_org"
	RejectUnknownUser = "unknown_user" // Requester.UserID is not a user of the org
	RejectDatabase    = "db_rejected"  // the database refused this one intake (an unforeseen constraint)
)

// What a duplicate matched (atumdesk_persister_duplicates_total{reason}).
const (
	dupTicketID    = "ticket_id"     // the ticket exists: a replay
	dupIdempotency = "idempotency"   // another ticket holds the (org, scope, key)
	dupMessageID   = "message_id"    // another ticket was opened by the same e-mail
	dupInBatch     = "batch_replica" // the same ticket id twice in one batch (a producer retry)
)

// TicketCreatedData is the Data of an EventTicketCreated event.
type TicketCreatedData struct {
	ID          uuid.UUID  `json:"id"`
	Number      int64      `json:"number"`
	Subject     string     `json:"subject"`
	Status      string     `json:"status"`
	Priority    string     `json:"priority"`
	Channel     string     `json:"channel"`
	ServiceID   *uuid.UUID `json:"service_id"`
	RequesterID uuid.UUID  `json:"requester_id"`
	CreatedAt   time.Time  `json:"created_at"`
	// PriorityExplicit: the submitter chose the priority (the triage stage
	// never overrides a human's choice).
	PriorityExplicit bool `json:"priority_explicit"`
}

// Persister turns Intake messages from TopicInbound into tickets. Its Handle
// is idempotent: the ticket id (assigned at intake), the (org, scope,
// idempotency key) and the (org, e-mail Message-ID) are each unique, so a
// replayed message, a retried submission or a re-fetched e-mail creates
// nothing new.
type Persister struct {
	db  *gorm.DB
	log *slog.Logger
	m   persisterMetrics
	now func() time.Time
}

type persisterMetrics struct {
	persisted  prometheus.Counter
	rejected   *prometheus.CounterVec
	duplicates *prometheus.CounterVec
	batchSize  prometheus.Histogram
	batchSecs  prometheus.Histogram
}

// NewPersister returns a persister writing with db and registering its
// metrics on reg (collectors already registered by an earlier persister of
// the process are reused).
func NewPersister(db *gorm.DB, log *slog.Logger, reg prometheus.Registerer) (*Persister, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := persisterMetrics{
		persisted: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "atumdesk", Subsystem: "persister", Name: "tickets_total",
			Help: "Tickets created by the persister.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "atumdesk", Subsystem: "persister", Name: "rejected_total",
			Help: "Inbound messages skipped because they cannot become a ticket, by reason.",
		}, []string{"reason"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "atumdesk", Subsystem: "persister", Name: "duplicates_total",
			Help: "Inbound messages that created nothing because their ticket exists, by what matched (ticket_id, idempotency, message_id, batch_replica).",
		}, []string{"reason"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "atumdesk", Subsystem: "persister", Name: "batch_size",
			Help:    "Messages per persisted batch.",
			Buckets: []float64{1, 5, 10, 25, 50, 100, 250, 500, 1000},
		}),
		batchSecs: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "atumdesk", Subsystem: "persister", Name: "batch_seconds",
			Help:    "Time to persist one batch (one transaction), including retries of isolated messages.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
	}
	var err error
	if reg != nil {
		if m.persisted, err = register(reg, m.persisted); err != nil {
			return nil, err
		}
		if m.rejected, err = register(reg, m.rejected); err != nil {
			return nil, err
		}
		if m.duplicates, err = register(reg, m.duplicates); err != nil {
			return nil, err
		}
		if m.batchSize, err = register(reg, m.batchSize); err != nil {
			return nil, err
		}
		if m.batchSecs, err = register(reg, m.batchSecs); err != nil {
			return nil, err
		}
	}
	return &Persister{db: db, log: log, m: m, now: time.Now}, nil
}

// register registers c on reg, or returns the collector registered before
// under the same name (a restarted loop in the same process).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	if err != nil {
		return c, fmt.Errorf("pipeline: register metric: %w", err)
	}
	return c, nil
}

// RunPersister consumes TopicInbound in group PersisterGroupID with p until
// ctx ends (cfg.GroupID and cfg.Topic are set here). Offsets are committed
// only after the batch's transaction committed; see Consume.
func RunPersister(ctx context.Context, cfg ConsumerConfig, p *Persister) error {
	cfg.GroupID = PersisterGroupID
	cfg.Topic = TopicInbound
	return Consume(ctx, cfg, p.Handle)
}

// pending is one decoded intake on its way to the database.
type pending struct {
	in          Intake
	offset      int64
	partition   int
	scopedKey   string
	messageID   *string
	serviceID   *uuid.UUID
	priority    string
	requesterID uuid.UUID
	number      int64
	createdAt   time.Time
}

// outcome is what one transaction did; metrics are recorded only once it
// committed, so a retried batch is not counted twice.
type outcome struct {
	created    []*pending
	rejected   map[string]int
	duplicates map[string]int
}

func (o *outcome) reject(reason string)    { bump(&o.rejected, reason, 1) }
func (o *outcome) duplicate(reason string) { bump(&o.duplicates, reason, 1) }

func (o *outcome) merge(x outcome) {
	o.created = append(o.created, x.created...)
	for r, n := range x.rejected {
		bump(&o.rejected, r, n)
	}
	for r, n := range x.duplicates {
		bump(&o.duplicates, r, n)
	}
}

func bump(m *map[string]int, reason string, n int) {
	if *m == nil {
		*m = map[string]int{}
	}
	(*m)[reason] += n
}

// Handle persists a batch of TopicInbound messages in one transaction with
// a constant number of statements. Messages that can never become a ticket
// are logged, counted and skipped. Any other error (PostgreSQL down, a
// deadlock, a concurrent persister) is returned: nothing of the batch is
// committed, and Consume hands the same batch again.
//
// If the database refuses the batch because of its data (a constraint or a
// value it cannot parse), each message is retried in a transaction of its
// own and only the offending ones are skipped: one bad message never blocks
// its partition.
func (p *Persister) Handle(ctx context.Context, batch []kafka.Message) error {
	start := time.Now()
	var skipped outcome
	items := p.decode(batch, &skipped)
	total := skipped
	if len(items) > 0 {
		out, err := p.persist(ctx, items)
		switch {
		case err == nil:
			total.merge(out)
		case isDataError(err):
			p.log.WarnContext(ctx, "persister: batch refused by the database; isolating messages", "err", err, "messages", len(items))
			for _, it := range items {
				out, err := p.persist(ctx, []*pending{it})
				if isDataError(err) {
					p.log.ErrorContext(ctx, "persister: intake refused by the database; skipped",
						"err", err, "ticket_id", it.in.TicketID, "org_id", it.in.OrgID, "partition", it.partition, "offset", it.offset)
					total.reject(RejectDatabase)
					continue
				}
				if err != nil {
					return err
				}
				total.merge(out)
			}
		default:
			return err
		}
	}
	p.m.persisted.Add(float64(len(total.created)))
	for r, n := range total.rejected {
		p.m.rejected.WithLabelValues(r).Add(float64(n))
	}
	for r, n := range total.duplicates {
		p.m.duplicates.WithLabelValues(r).Add(float64(n))
	}
	p.m.batchSize.Observe(float64(len(batch)))
	p.m.batchSecs.Observe(time.Since(start).Seconds())
	return nil
}

// isDataError reports a refusal caused by the data rather than the
// database's state: SQLSTATE classes 22 (data exception) and 23 (integrity
// constraint violation).
func isDataError(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (strings.HasPrefix(pe.Code, "22") || strings.HasPrefix(pe.Code, "23"))
}

// decode parses and checks the messages, dropping what the database would
// refuse and replicas of the same ticket id within the batch.
func (p *Persister) decode(batch []kafka.Message, o *outcome) []*pending {
	items := make([]*pending, 0, len(batch))
	seenID := make(map[uuid.UUID]bool, len(batch))
	seenMsg := map[string]bool{}
	for _, m := range batch {
		var in Intake
		if err := json.Unmarshal(m.Value, &in); err != nil {
			p.log.Error("persister: malformed intake; skipped", "err", err, "partition", m.Partition, "offset", m.Offset)
			o.reject(RejectMalformed)
			continue
		}
		if in.Version != IntakeVersion {
			p.log.Error("persister: unsupported intake version; skipped", "version", in.Version, "ticket_id", in.TicketID,
				"partition", m.Partition, "offset", m.Offset)
			o.reject(RejectVersion)
			continue
		}
		it := &pending{in: in, partition: m.Partition, offset: m.Offset}
		if reason := it.prepare(p.now()); reason != "" {
			p.log.Error("persister: invalid intake; skipped", "reason", reason, "ticket_id", in.TicketID, "org_id", in.OrgID,
				"partition", m.Partition, "offset", m.Offset)
			o.reject(RejectInvalid)
			continue
		}
		if seenID[in.TicketID] {
			o.duplicate(dupInBatch)
			continue
		}
		seenID[in.TicketID] = true
		if it.messageID != nil {
			k := in.OrgID.String() + "\x00" + *it.messageID
			if seenMsg[k] {
				o.duplicate(dupMessageID)
				continue
			}
			seenMsg[k] = true
		}
		items = append(items, it)
	}
	return items
}

// prepare normalises the intake and checks what the schema's constraints
// check, so that one message cannot fail a whole batch. It returns why the
// intake is invalid, or "".
func (it *pending) prepare(now time.Time) string {
	in := &it.in
	if in.TicketID == uuid.Nil || in.OrgID == uuid.Nil {
		return "ticket_id and org_id are required"
	}
	switch in.Channel {
	case ChannelWeb, ChannelAPI, ChannelForm, ChannelEmail:
	default:
		return "unknown channel"
	}
	// PostgreSQL text cannot hold NUL.
	in.Subject = noNUL(in.Subject)
	in.Text, in.HTML = noNUL(in.Text), noNUL(in.HTML)
	in.Requester.Name = noNUL(in.Requester.Name)
	in.Requester.Email = strings.ToLower(strings.TrimSpace(noNUL(in.Requester.Email)))
	if n := utf8.RuneCountInString(in.Subject); n < 1 || n > 1000 {
		return "subject must be 1..1000 characters"
	}
	if in.Priority != "" && !models.Priority(in.Priority).Valid() {
		return "unknown priority"
	}
	if k := noNUL(in.IdempotencyKey); k == "" || utf8.RuneCountInString(k) > 255 || k != in.IdempotencyKey {
		return "idempotency key must be 1..255 characters"
	}
	in.IdempotencyScope = noNUL(in.IdempotencyScope)
	if _, err := hex.DecodeString(in.RequestHash); err != nil {
		return "request hash is not hex"
	}
	fields := make(map[string]json.RawMessage, len(in.CustomFields))
	for k, v := range in.CustomFields {
		if v, ok := cleanJSON(v); ok {
			fields[noNUL(k)] = v
		}
	}
	in.CustomFields = fields
	if in.Requester.UserID == nil && !validEmail(in.Requester.Email) {
		return "requester needs a user id or a valid e-mail address"
	}
	it.scopedKey = in.IdempotencyKey
	if in.IdempotencyScope != "" {
		// tickets.idempotency_key is unique per org, the key table per
		// (org, scope): qualify the key so two submitters' equal keys do not
		// collide.
		it.scopedKey = in.IdempotencyScope + ":" + in.IdempotencyKey
	}
	if in.Channel == ChannelEmail && in.MessageID != "" {
		id := noNUL(in.MessageID)
		it.messageID = &id
	}
	it.createdAt = in.ReceivedAt.UTC()
	if in.ReceivedAt.IsZero() {
		it.createdAt = now.UTC()
	}
	return ""
}

// validEmail mirrors the users.email CHECK constraint.
func validEmail(s string) bool {
	at := strings.IndexByte(s, '@')
	if at <= 0 || at == len(s)-1 || strings.Count(s, "@") != 1 || utf8.RuneCountInString(s) > 320 || !utf8.ValidString(s) {
		return false
	}
	return !strings.ContainsFunc(s, unicode.IsSpace)
}

func noNUL(s string) string { return strings.ReplaceAll(s, "\x00", "") }

// cleanJSON re-encodes a JSON value without NUL characters and with lone
// surrogates replaced, both of which jsonb refuses. Numbers keep their text.
func cleanJSON(raw json.RawMessage) (json.RawMessage, bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		return nil, false
	}
	var clean func(any) any
	clean = func(v any) any {
		switch x := v.(type) {
		case string:
			return noNUL(x)
		case []any:
			for i := range x {
				x[i] = clean(x[i])
			}
		case map[string]any:
			m := make(map[string]any, len(x))
			for k, e := range x {
				m[noNUL(k)] = clean(e)
			}
			return m
		}
		return v
	}
	b, err := json.Marshal(clean(v))
	return b, err == nil
}

// jsonParam marshals rows into the one JSON parameter of a
// jsonb_to_recordset statement: a batch in one round trip and one plan,
// with no placeholder limit.
func jsonParam(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("pipeline: marshal parameter: %w", err)
	}
	return string(b), nil
}

// errConcurrentInsert makes Consume retry a batch that raced another
// persister (rebalance overlap, or the same e-mail in two partitions); the
// retry's pre-check sees the other transaction's tickets and skips them.
var errConcurrentInsert = errors.New("pipeline: persister: a concurrent transaction stored some of these tickets; retrying")

// persist stores items in one transaction: ≤ 10 statements whatever their
// number.
func (p *Persister) persist(ctx context.Context, items []*pending) (outcome, error) {
	var out outcome
	err := p.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		out = outcome{}
		live, err := p.precheck(tx, items, &out)
		if err != nil || len(live) == 0 {
			return err
		}
		if live, err = claimKeys(tx, live, &out); err != nil || len(live) == 0 {
			return err
		}
		if err := resolveRequesters(tx, live); err != nil {
			return err
		}
		if err := allocateNumbers(tx, live); err != nil {
			return err
		}
		if err := insertTickets(tx, live); err != nil {
			return err
		}
		if err := insertExtras(ctx, tx, live); err != nil {
			return err
		}
		out.created = live
		return nil
	})
	if err != nil {
		return outcome{}, err
	}
	return out, nil
}

// precheck drops intakes whose org or requester user does not exist and
// those whose ticket is already stored (a replay, possibly after the
// idempotency key expired), and resolves the service and its default
// priority. Doing this first keeps ticket numbers free of gaps.
func (p *Persister) precheck(tx *gorm.DB, items []*pending, out *outcome) ([]*pending, error) {
	type in struct {
		I         int        `json:"i"`
		ID        uuid.UUID  `json:"id"`
		OrgID     uuid.UUID  `json:"org_id"`
		UserID    *uuid.UUID `json:"user_id"`
		ServiceID *uuid.UUID `json:"service_id"`
		MessageID *string    `json:"message_id"`
		Key       string     `json:"key"`
	}
	rows := make([]in, len(items))
	for i, it := range items {
		rows[i] = in{I: i, ID: it.in.TicketID, OrgID: it.in.OrgID, UserID: it.in.Requester.UserID,
			ServiceID: it.in.ServiceID, MessageID: it.messageID, Key: it.scopedKey}
	}
	param, err := jsonParam(rows)
	if err != nil {
		return nil, err
	}
	type result struct {
		I               int     `gorm:"column:i"`
		OrgOK           bool    `gorm:"column:org_ok"`
		UserOK          bool    `gorm:"column:user_ok"`
		ServiceOK       bool    `gorm:"column:service_ok"`
		DefaultPriority *string `gorm:"column:default_priority"`
		DupID           bool    `gorm:"column:dup_id"`
		DupMessage      bool    `gorm:"column:dup_message"`
		DupKey          bool    `gorm:"column:dup_key"`
	}
	var res []result
	// Scalar subqueries and LATERAL: one index probe per intake whatever
	// the planner thinks of the (unknown to it) number of rows; an EXISTS
	// here may be planned as a hashed sequential scan of tickets.
	err = tx.Raw(`SELECT x.i,
			(SELECT true FROM organizations o WHERE o.id = x.org_id) IS NOT NULL AS org_ok,
			(x.user_id IS NULL OR (SELECT true FROM users u WHERE u.org_id = x.org_id AND u.id = x.user_id) IS NOT NULL) AS user_ok,
			s.id IS NOT NULL AS service_ok, s.default_priority,
			(SELECT true FROM tickets t WHERE t.id = x.id) IS NOT NULL AS dup_id,
			(SELECT true FROM tickets t WHERE t.org_id = x.org_id AND t.source_message_id = x.message_id LIMIT 1) IS NOT NULL AS dup_message,
			(SELECT true FROM tickets t WHERE t.org_id = x.org_id AND t.idempotency_key = x.key LIMIT 1) IS NOT NULL AS dup_key
		FROM jsonb_to_recordset(?::jsonb) AS x(i int, id uuid, org_id uuid, user_id uuid, service_id uuid, message_id text, key text)
		LEFT JOIN LATERAL (SELECT id, default_priority FROM services WHERE org_id = x.org_id AND id = x.service_id) s ON true`, param).Scan(&res).Error
	if err != nil {
		return nil, fmt.Errorf("pipeline: persister: pre-check: %w", err)
	}
	if len(res) != len(items) {
		return nil, fmt.Errorf("pipeline: persister: pre-check returned %d rows for %d intakes", len(res), len(items))
	}
	slices.SortFunc(res, func(a, b result) int { return cmp.Compare(a.I, b.I) })
	live := make([]*pending, 0, len(items))
	for _, r := range res {
		it := items[r.I]
		switch {
		case !r.OrgOK:
			p.log.Error("persister: intake for an unknown organisation; skipped", "ticket_id", it.in.TicketID, "org_id", it.in.OrgID)
			out.reject(RejectUnknownOrg)
			continue
		case !r.UserOK:
			p.log.Error("persister: intake for an unknown requester; skipped", "ticket_id", it.in.TicketID, "org_id", it.in.OrgID,
				"user_id", it.in.Requester.UserID)
			out.reject(RejectUnknownUser)
			continue
		case r.DupID:
			out.duplicate(dupTicketID)
			continue
		case r.DupMessage:
			out.duplicate(dupMessageID)
			continue
		case r.DupKey:
			out.duplicate(dupIdempotency)
			continue
		}
		it.serviceID = it.in.ServiceID
		if it.serviceID != nil && !r.ServiceOK {
			// Checked at intake; deleted since. Keep the ticket, drop the service.
			p.log.Warn("persister: service of the intake no longer exists; ticket stored without service",
				"ticket_id", it.in.TicketID, "service_id", *it.serviceID)
			it.serviceID = nil
		}
		it.priority = it.in.Priority
		if it.priority == "" && r.DefaultPriority != nil {
			it.priority = *r.DefaultPriority
		}
		if it.priority == "" {
			it.priority = string(models.PriorityMedium)
		}
		live = append(live, it)
	}
	return live, nil
}

// claimKeys records the idempotency keys; only the intakes whose key was
// new (the first submission) go on.
func claimKeys(tx *gorm.DB, items []*pending, out *outcome) ([]*pending, error) {
	type in struct {
		OrgID    uuid.UUID `json:"org_id"`
		Scope    string    `json:"scope"`
		Key      string    `json:"key"`
		Hash     string    `json:"hash"`
		TicketID uuid.UUID `json:"ticket_id"`
	}
	rows := make([]in, len(items))
	for i, it := range items {
		rows[i] = in{OrgID: it.in.OrgID, Scope: it.in.IdempotencyScope, Key: it.in.IdempotencyKey,
			Hash: it.in.RequestHash, TicketID: it.in.TicketID}
	}
	param, err := jsonParam(rows)
	if err != nil {
		return nil, err
	}
	var won []uuid.UUID
	// Sorted by the primary key so concurrent persisters wait on each other
	// in the same order instead of deadlocking.
	err = tx.Raw(`INSERT INTO idempotency_keys (org_id, scope, key, request_hash, ticket_id)
		SELECT org_id, scope, key, decode(hash, 'hex'), ticket_id
		FROM jsonb_to_recordset(?::jsonb) AS x(org_id uuid, scope text, key text, hash text, ticket_id uuid)
		ORDER BY org_id, scope, key
		ON CONFLICT DO NOTHING
		RETURNING ticket_id`, param).Scan(&won).Error
	if err != nil {
		return nil, fmt.Errorf("pipeline: persister: idempotency keys: %w", err)
	}
	winners := make(map[uuid.UUID]bool, len(won))
	for _, id := range won {
		winners[id] = true
	}
	live := items[:0:0]
	for _, it := range items {
		if winners[it.in.TicketID] {
			live = append(live, it)
		} else {
			out.duplicate(dupIdempotency)
		}
	}
	return live, nil
}

// resolveRequesters finds or creates (as customer_user without password)
// the requesters known only by e-mail address.
func resolveRequesters(tx *gorm.DB, items []*pending) error {
	type in struct {
		ID    uuid.UUID `json:"id"`
		OrgID uuid.UUID `json:"org_id"`
		Email string    `json:"email"`
		Name  string    `json:"name"`
	}
	var rows []in
	for _, it := range items {
		if it.in.Requester.UserID != nil {
			it.requesterID = *it.in.Requester.UserID
			continue
		}
		rows = append(rows, in{ID: uuid.Must(uuid.NewV7()), OrgID: it.in.OrgID, Email: it.in.Requester.Email, Name: it.in.Requester.Name})
	}
	if len(rows) == 0 {
		return nil
	}
	param, err := jsonParam(rows)
	if err != nil {
		return err
	}
	// Sorted, for the same lock order in every persister.
	err = tx.Exec(`INSERT INTO users (id, org_id, email, name, role)
		SELECT DISTINCT ON (org_id, lower(email)) id, org_id, email, coalesce(name, ''), ?
		FROM jsonb_to_recordset(?::jsonb) AS x(id uuid, org_id uuid, email text, name text)
		ORDER BY org_id, lower(email)
		ON CONFLICT (org_id, lower(email)) DO NOTHING`, string(models.RoleCustomerUser), param).Error
	if err != nil {
		return fmt.Errorf("pipeline: persister: create requesters: %w", err)
	}
	// A separate statement: its snapshot includes users that a concurrent
	// transaction committed while the insert above waited on them.
	var found []struct {
		ID    *uuid.UUID `gorm:"column:id"`
		OrgID uuid.UUID  `gorm:"column:org_id"`
		Email string     `gorm:"column:email"`
	}
	err = tx.Raw(`SELECT x.org_id, x.email,
			(SELECT u.id FROM users u WHERE u.org_id = x.org_id AND lower(u.email) = x.email) AS id
		FROM (SELECT DISTINCT org_id, lower(email) AS email FROM jsonb_to_recordset(?::jsonb) AS x(org_id uuid, email text)) x`, param).Scan(&found).Error
	if err != nil {
		return fmt.Errorf("pipeline: persister: find requesters: %w", err)
	}
	byEmail := make(map[string]uuid.UUID, len(found))
	for _, f := range found {
		if f.ID != nil {
			byEmail[f.OrgID.String()+"\x00"+f.Email] = *f.ID
		}
	}
	for _, it := range items {
		if it.in.Requester.UserID != nil {
			continue
		}
		id, ok := byEmail[it.in.OrgID.String()+"\x00"+it.in.Requester.Email]
		if !ok {
			return fmt.Errorf("pipeline: persister: requester %s of ticket %s not found after insert", it.in.Requester.Email, it.in.TicketID)
		}
		it.requesterID = id
	}
	return nil
}

// allocateNumbers takes n numbers per organisation from ticket_counters in
// one upsert (which also covers an org whose counter row is missing). Rows
// are locked in org id order, so persisters never deadlock; each org's row
// stays locked until commit, which keeps numbers gap-free.
func allocateNumbers(tx *gorm.DB, items []*pending) error {
	type in struct {
		OrgID uuid.UUID `json:"org_id"`
		N     int64     `json:"n"`
	}
	counts := map[uuid.UUID]int64{}
	for _, it := range items {
		counts[it.in.OrgID]++
	}
	rows := make([]in, 0, len(counts))
	for org, n := range counts {
		rows = append(rows, in{OrgID: org, N: n})
	}
	param, err := jsonParam(rows)
	if err != nil {
		return err
	}
	var res []struct {
		OrgID      uuid.UUID `gorm:"column:org_id"`
		LastNumber int64     `gorm:"column:last_number"`
	}
	err = tx.Raw(`INSERT INTO ticket_counters AS c (org_id, last_number)
		SELECT org_id, n FROM jsonb_to_recordset(?::jsonb) AS x(org_id uuid, n bigint)
		ORDER BY org_id
		ON CONFLICT (org_id) DO UPDATE SET last_number = c.last_number + EXCLUDED.last_number
		RETURNING c.org_id, c.last_number`, param).Scan(&res).Error
	if err != nil {
		return fmt.Errorf("pipeline: persister: ticket numbers: %w", err)
	}
	next := make(map[uuid.UUID]int64, len(res))
	for _, r := range res {
		next[r.OrgID] = r.LastNumber - counts[r.OrgID] + 1
	}
	for _, it := range items {
		n, ok := next[it.in.OrgID]
		if !ok {
			return fmt.Errorf("pipeline: persister: no ticket number for org %s", it.in.OrgID)
		}
		it.number = n
		next[it.in.OrgID] = n + 1
	}
	return nil
}

func insertTickets(tx *gorm.DB, items []*pending) error {
	type in struct {
		ID          uuid.UUID  `json:"id"`
		OrgID       uuid.UUID  `json:"org_id"`
		Number      int64      `json:"number"`
		Subject     string     `json:"subject"`
		Description string     `json:"description"`
		HTML        *string    `json:"html"`
		Priority    string     `json:"priority"`
		ServiceID   *uuid.UUID `json:"service_id"`
		RequesterID uuid.UUID  `json:"requester_id"`
		Channel     string     `json:"channel"`
		MessageID   *string    `json:"message_id"`
		Key         string     `json:"key"`
		Auto        bool       `json:"auto"`
		CreatedAt   time.Time  `json:"created_at"`
	}
	rows := make([]in, len(items))
	for i, it := range items {
		var html *string
		if it.in.HTML != "" {
			html = &it.in.HTML
		}
		rows[i] = in{ID: it.in.TicketID, OrgID: it.in.OrgID, Number: it.number, Subject: it.in.Subject, Description: it.in.Text,
			HTML: html, Priority: it.priority, ServiceID: it.serviceID, RequesterID: it.requesterID, Channel: it.in.Channel,
			MessageID: it.messageID, Key: it.scopedKey, Auto: it.in.AutoSubmitted, CreatedAt: it.createdAt}
	}
	param, err := jsonParam(rows)
	if err != nil {
		return err
	}
	var inserted []uuid.UUID
	err = tx.Raw(`INSERT INTO tickets (id, org_id, number, subject, description, description_html, status, priority,
			service_id, requester_id, channel, source_message_id, idempotency_key, auto_submitted, created_at)
		SELECT id, org_id, number, subject, description, html, ?, priority,
			service_id, requester_id, channel, message_id, key, coalesce(auto, false), created_at
		FROM jsonb_to_recordset(?::jsonb) AS x(id uuid, org_id uuid, number bigint, subject text, description text, html text,
			priority text, service_id uuid, requester_id uuid, channel text, message_id text, key text, auto boolean, created_at timestamptz)
		ORDER BY org_id, number
		ON CONFLICT DO NOTHING
		RETURNING id`, string(models.StatusNew), param).Scan(&inserted).Error
	if err != nil {
		return fmt.Errorf("pipeline: persister: insert tickets: %w", err)
	}
	if len(inserted) != len(items) {
		// The pre-check saw none of them; another transaction committed one
		// meanwhile. Roll back (no number gap, no dangling key) and retry.
		return errConcurrentInsert
	}
	return nil
}

// insertExtras writes what hangs off the new tickets: custom field values,
// claimed attachments, audit rows and the ticket.created events.
func insertExtras(ctx context.Context, tx *gorm.DB, items []*pending) error {
	type fieldValue struct {
		TicketID uuid.UUID       `json:"ticket_id"`
		OrgID    uuid.UUID       `json:"org_id"`
		Key      string          `json:"key"`
		Value    json.RawMessage `json:"value"`
	}
	type claim struct {
		ID       uuid.UUID `json:"id"`
		OrgID    uuid.UUID `json:"org_id"`
		TicketID uuid.UUID `json:"ticket_id"`
	}
	var values []fieldValue
	var claims []claim
	entries := make([]audit.Entry, 0, len(items))
	events := make([]Event, 0, len(items))
	for _, it := range items {
		for k, v := range it.in.CustomFields { // cleaned by prepare
			values = append(values, fieldValue{TicketID: it.in.TicketID, OrgID: it.in.OrgID, Key: k, Value: v})
		}
		for _, a := range it.in.AttachmentIDs {
			claims = append(claims, claim{ID: a, OrgID: it.in.OrgID, TicketID: it.in.TicketID})
		}
		data := TicketCreatedData{ID: it.in.TicketID, Number: it.number, Subject: it.in.Subject, Status: string(models.StatusNew),
			Priority: it.priority, Channel: it.in.Channel, ServiceID: it.serviceID, RequesterID: it.requesterID, CreatedAt: it.createdAt,
			PriorityExplicit: it.in.Priority != ""}
		// The submitter acted when signed in (web, api); otherwise the
		// system created the ticket on the requester's behalf.
		actor := it.in.Requester.UserID
		org, ticket := it.in.OrgID, it.in.TicketID
		entries = append(entries, audit.Entry{OrgID: &org, TicketID: &ticket, UserID: actor, Action: "ticket.created",
			EntityType: "ticket", EntityID: &ticket, After: data,
			IP: it.in.ClientIP, UserAgent: it.in.UserAgent, RequestID: it.in.RequestID})
		ev, err := NewEvent(EventTicketCreated, TicketRef{OrgID: org, TicketID: ticket, RequesterID: it.requesterID},
			actor, AudiencePublic, data)
		if err != nil {
			return err
		}
		events = append(events, ev)
	}
	if len(values) > 0 {
		param, err := jsonParam(values)
		if err != nil {
			return err
		}
		// Keys that are no field of the org (deleted since intake) are dropped.
		err = tx.Exec(`INSERT INTO custom_field_values (ticket_id, field_id, org_id, value)
			SELECT x.ticket_id, f.id, x.org_id, x.value
			FROM jsonb_to_recordset(?::jsonb) AS x(ticket_id uuid, org_id uuid, key text, value jsonb)
			JOIN custom_fields f ON f.org_id = x.org_id AND f.key = x.key
			ON CONFLICT DO NOTHING`, param).Error
		if err != nil {
			return fmt.Errorf("pipeline: persister: custom field values: %w", err)
		}
	}
	if len(claims) > 0 {
		param, err := jsonParam(claims)
		if err != nil {
			return err
		}
		err = tx.Exec(`UPDATE attachments a SET ticket_id = x.ticket_id
			FROM jsonb_to_recordset(?::jsonb) AS x(id uuid, org_id uuid, ticket_id uuid)
			WHERE a.id = x.id AND a.org_id = x.org_id AND a.ticket_id IS NULL AND a.comment_id IS NULL`, param).Error
		if err != nil {
			return fmt.Errorf("pipeline: persister: claim attachments: %w", err)
		}
	}
	if err := audit.WriteMany(ctx, tx, entries); err != nil {
		return err
	}
	return EmitEvents(ctx, tx, events...)
}
