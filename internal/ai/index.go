package ai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/segmentio/kafka-go"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/internal/ai/vecindex"
	"github.com/atumdesk/atumdesk/internal/database"
	"github.com/atumdesk/atumdesk/models"
	"github.com/atumdesk/atumdesk/pipeline"
)

// StoreVector stores a ticket's vector (ticket_embeddings) in tx. It is an
// upsert that writes nothing when the stored vector is already this one (a
// redelivered task adds no row version), and nothing when the organisation
// has no such ticket (as an UPDATE of a missing row would), without failing
// the transaction. It reports whether a row was written.
func StoreVector(ctx context.Context, tx *gorm.DB, orgID, ticketID uuid.UUID, model string, vec []float32) (bool, error) {
	n, err := StoreVectors(ctx, tx, orgID, []TicketVector{{TicketID: ticketID, Model: model, Vec: vec}})
	return n > 0, err
}

// TicketVector is one ticket's vector and the model that made it.
type TicketVector struct {
	TicketID uuid.UUID
	Model    string
	Vec      []float32
}

// StoreVectors is StoreVector for several tickets of one organisation in
// one statement. A ticket given twice keeps its last vector. It returns how
// many rows were written.
func StoreVectors(ctx context.Context, tx *gorm.DB, orgID uuid.UUID, vecs []TicketVector) (int64, error) {
	// The vectors travel as one bytea (a copy each way, no text rendering),
	// each row naming its slice of it; the rest as one JSON parameter.
	type row struct {
		TicketID uuid.UUID `json:"ticket_id"`
		Model    string    `json:"model"`
		Off      int       `json:"off"` // in bytes, from 1 as substring counts
		Len      int       `json:"len"`
	}
	last := make(map[uuid.UUID]int, len(vecs))
	for i, v := range vecs {
		last[v.TicketID] = i // an upsert may not touch a row twice
	}
	rows := make([]row, 0, len(last))
	var all models.Vector
	for i, v := range vecs {
		if last[v.TicketID] != i {
			continue
		}
		rows = append(rows, row{TicketID: v.TicketID, Model: v.Model, Off: 4*len(all) + 1, Len: 4 * len(v.Vec)})
		all = append(all, v.Vec...)
	}
	if len(rows) == 0 {
		return 0, nil
	}
	param, err := json.Marshal(rows)
	if err != nil {
		return 0, fmt.Errorf("ai: store vectors: %w", err)
	}
	// The id array tells the planner how few tickets are meant (it counts
	// a function over JSON as 100 rows).
	ids := make([]uuid.UUID, len(rows))
	for i, r := range rows {
		ids[i] = r.TicketID
	}
	res := tx.WithContext(ctx).Exec(`INSERT INTO ticket_embeddings (ticket_id, org_id, model, embedding)
		SELECT t.id, t.org_id, v.model, substring(?::bytea FROM v.off FOR v.len)
		FROM jsonb_to_recordset(?::jsonb) AS v(ticket_id uuid, model text, off int, len int)
		JOIN tickets t ON t.org_id = ? AND t.id = ANY(?::uuid[]) AND t.id = v.ticket_id
		ON CONFLICT (ticket_id) DO UPDATE SET model = excluded.model, embedding = excluded.embedding, updated_at = now()
		WHERE ticket_embeddings.org_id = excluded.org_id
			AND (ticket_embeddings.model, ticket_embeddings.embedding) IS DISTINCT FROM (excluded.model, excluded.embedding)`,
		all, string(param), orgID, database.UUIDArray(ids))
	if res.Error != nil {
		return 0, fmt.Errorf("ai: store %d vector(s): %w", len(rows), res.Error)
	}
	return res.RowsAffected, nil
}

// partState tracks whether a partition has been loaded from PostgreSQL.
// Its mutex serialises the load with updates, so an update that arrives
// during the load is applied after it, never lost under it.
type partState struct {
	mu     sync.Mutex
	loaded bool
}

func (s *Service) partState(key vecindex.Key) *partState {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := s.parts[key]
	if ps == nil {
		ps = &partState{}
		s.parts[key] = ps
	}
	return ps
}

// ensureLoaded loads the partition from PostgreSQL once per process.
func (s *Service) ensureLoaded(ctx context.Context, key vecindex.Key) error {
	ps := s.partState(key)
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.loaded {
		return nil
	}
	start := time.Now()
	n, err := s.loadPartition(ctx, key)
	if err != nil {
		return err
	}
	ps.loaded = true
	s.log.InfoContext(ctx, "ai: similar-ticket index loaded", "org_id", key.Org, "model", key.Model, "vectors", n,
		"seconds", time.Since(start).Seconds())
	return nil
}

// loadPartition streams the partition's vectors straight from pgx (bytea
// rows are copied, not parsed: 5,000 vectors of 256 dims in ~20 ms).
func (s *Service) loadPartition(ctx context.Context, key vecindex.Key) (int, error) {
	sqlDB, err := s.db.DB()
	if err != nil {
		return 0, fmt.Errorf("ai: load index: %w", err)
	}
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		return 0, fmt.Errorf("ai: load index: %w", err)
	}
	defer conn.Close()
	n := 0
	err = conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("ai: load index: driver connection is %T, not pgx", dc)
		}
		rows, err := sc.Conn().Query(ctx, `SELECT ticket_id, embedding FROM ticket_embeddings
			WHERE org_id = $1 AND model = $2`, key.Org, key.Model)
		if err != nil {
			return err
		}
		defer rows.Close()
		var id uuid.UUID
		var vec models.Vector
		for rows.Next() {
			if err := rows.Scan(&id, &vec); err != nil {
				return err
			}
			s.index.Upsert(key, id, vec)
			n++
		}
		return rows.Err()
	})
	if err != nil {
		return 0, fmt.Errorf("ai: load index %s/%s: %w", key.Org, key.Model, err)
	}
	return n, nil
}

// LoadIndex loads every (organisation, model) partition that has vectors;
// call it at start so the first similar-ticket query is fast (partitions
// not loaded are loaded on first use anyway).
func (s *Service) LoadIndex(ctx context.Context) error {
	var keys []struct {
		OrgID uuid.UUID
		Model string
	}
	if err := s.db.WithContext(ctx).Raw(`SELECT DISTINCT org_id, model FROM ticket_embeddings`).Scan(&keys).Error; err != nil {
		return fmt.Errorf("ai: index partitions: %w", err)
	}
	for _, k := range keys {
		if err := s.ensureLoaded(ctx, vecindex.Key{Org: k.OrgID, Model: k.Model}); err != nil {
			return err
		}
	}
	return nil
}

// IndexTicket puts a ticket's vector into this process's index (when its
// partition is loaded; otherwise the load reads it from PostgreSQL).
func (s *Service) IndexTicket(_ context.Context, orgID, ticketID uuid.UUID, model string, vec []float32) {
	key := vecindex.Key{Org: orgID, Model: model}
	ps := s.partState(key)
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.loaded {
		s.index.Upsert(key, ticketID, vec)
	}
}

// vectorRef names a stored vector: a ticket of an organisation.
type vectorRef struct {
	OrgID, TicketID uuid.UUID
}

// indexFromDB re-reads the stored vectors of refs into the index, in one
// query.
func (s *Service) indexFromDB(ctx context.Context, refs []vectorRef) error {
	orgs, tickets := make([]uuid.UUID, len(refs)), make([]uuid.UUID, len(refs))
	for i, r := range refs {
		orgs[i], tickets[i] = r.OrgID, r.TicketID
	}
	var rows []struct {
		OrgID     uuid.UUID
		TicketID  uuid.UUID
		Model     string
		Embedding models.Vector
	}
	err := s.db.WithContext(ctx).Raw(`SELECT e.org_id, e.ticket_id, e.model, e.embedding
		FROM unnest(?::uuid[], ?::uuid[]) AS q(org_id, ticket_id)
		JOIN ticket_embeddings e ON e.ticket_id = q.ticket_id AND e.org_id = q.org_id`,
		database.UUIDArray(orgs), database.UUIDArray(tickets)).Scan(&rows).Error
	if err != nil {
		return fmt.Errorf("ai: read %d vector(s): %w", len(refs), err)
	}
	for _, r := range rows {
		if r.Model != "" && len(r.Embedding) > 0 {
			s.IndexTicket(ctx, r.OrgID, r.TicketID, r.Model, r.Embedding)
		}
	}
	return nil
}

// SyncConfig configures RunIndexSync.
type SyncConfig struct {
	Brokers []string
	Topic   string // default pipeline.TopicEvents
	// Since: events from this long before the start are re-read, so a
	// vector stored while the process was starting is not missed (default 1 min).
	Since time.Duration
}

// RunIndexSync keeps this process's index in step with the embed stages
// of every process: it reads the events topic (every partition, no
// consumer group, nothing committed: every replica sees every event) and
// re-reads the vectors of the ticket.embedded events, one query per batch
// of a partition's events. It returns when ctx ends.
func (s *Service) RunIndexSync(ctx context.Context, cfg SyncConfig) error {
	if len(cfg.Brokers) == 0 {
		return errors.New("ai: index sync: no Kafka brokers")
	}
	if cfg.Topic == "" {
		cfg.Topic = pipeline.TopicEvents
	}
	if cfg.Since <= 0 {
		cfg.Since = time.Minute
	}
	since := time.Now().Add(-cfg.Since)
	dialer := &kafka.Dialer{Timeout: 10 * time.Second, ClientID: "atumdesk-ai-index"}
	var parts []kafka.Partition
	for attempt := 1; ; attempt++ {
		var err error
		if parts, err = kafka.LookupPartitions(ctx, "tcp", cfg.Brokers[0], cfg.Topic); err == nil && len(parts) > 0 {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		s.log.Warn("ai: index sync: reading the events topic's partitions failed; retrying", "err", err, "attempt", attempt)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(min(time.Duration(attempt)*time.Second, 10*time.Second)):
		}
	}
	var wg sync.WaitGroup
	for _, p := range parts {
		wg.Go(func() { s.tailPartition(ctx, cfg, dialer, p.ID, since) })
	}
	wg.Wait()
	return nil
}

// Index sync takes a partition's events in batches of up to syncBatch,
// waiting at most syncGather for more after the first, so the
// ticket.embedded events of a burst cost one vector query per batch, not
// one each. The wait only delays other replicas' indexes a little.
const (
	syncBatch  = 256
	syncGather = 20 * time.Millisecond
)

func (s *Service) tailPartition(ctx context.Context, cfg SyncConfig, dialer *kafka.Dialer, part int, since time.Time) {
	log := s.log.With("component", "ai-index-sync", "partition", part)
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: cfg.Brokers, Topic: cfg.Topic, Partition: part, Dialer: dialer,
		MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 500 * time.Millisecond})
	defer r.Close()
	if err := r.SetOffsetAt(ctx, since); err != nil {
		log.Warn("ai: index sync: cannot seek; reading from the end", "err", err)
		_ = r.SetOffset(kafka.LastOffset)
	}
	batch := make([][]byte, 0, syncBatch)
	for attempt := 0; ; {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			attempt++
			log.Warn("ai: index sync: kafka read failed", "err", err, "attempt", attempt)
			select {
			case <-ctx.Done():
				return
			case <-time.After(min(time.Duration(attempt)*100*time.Millisecond, 5*time.Second)):
			}
			continue
		}
		attempt = 0
		batch = append(batch[:0], m.Value)
		gather, cancel := context.WithTimeout(ctx, syncGather)
		for len(batch) < syncBatch {
			// The short wait being over, or a failed read, ends the batch.
			m, err := r.ReadMessage(gather)
			if err != nil {
				if gather.Err() == nil {
					log.Warn("ai: index sync: kafka read failed", "err", err)
				}
				break
			}
			batch = append(batch, m.Value)
		}
		cancel()
		s.applyEvents(ctx, log, batch)
	}
}

// embeddedType is looked for in an event's bytes before it is decoded:
// most events on the topic are of other types.
var embeddedType = []byte(EventEmbedded)

// applyEvents indexes the vectors of the ticket.embedded events among
// values whose partitions this process has loaded (the others are read
// when loaded).
func (s *Service) applyEvents(ctx context.Context, log *slog.Logger, values [][]byte) {
	var refs []vectorRef
	for _, value := range values {
		if !bytes.Contains(value, embeddedType) {
			continue
		}
		var ev pipeline.Event
		if err := json.Unmarshal(value, &ev); err != nil || ev.Type != EventEmbedded {
			continue
		}
		var data struct {
			Model string `json:"embedding_model"`
		}
		_ = json.Unmarshal(ev.Data, &data)
		ps := s.partState(vecindex.Key{Org: ev.OrgID, Model: data.Model})
		ps.mu.Lock()
		loaded := ps.loaded
		ps.mu.Unlock()
		if loaded {
			refs = append(refs, vectorRef{OrgID: ev.OrgID, TicketID: ev.TicketID})
		}
	}
	if len(refs) == 0 {
		return
	}
	for attempt := 1; attempt <= 3; attempt++ {
		err := s.indexFromDB(ctx, refs)
		if err == nil || ctx.Err() != nil {
			return
		}
		log.Warn("ai: index sync: re-reading vectors failed", "vectors", len(refs), "err", err, "attempt", attempt)
		time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
	}
}
