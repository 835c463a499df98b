// Package audit appends to the audit log. The table is append-only (a
// trigger rejects UPDATE and DELETE); Write is the only way rows get in.
package audit

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"
	"gorm.io/gorm"
)

// Actor kinds.
const (
	ActorUser   = "user"
	ActorSystem = "system"
	ActorAI     = "ai"
)

// Entry is one audit row. Before and After are marshalled to JSON.
type Entry struct {
	OrgID      *uuid.UUID
	TicketID   *uuid.UUID
	UserID     *uuid.UUID
	ActorKind  string // defaults to ActorUser when UserID is set, else ActorSystem
	Action     string // e.g. "ticket.accepted", "auth.login"
	EntityType string
	EntityID   *uuid.UUID
	Before     any
	After      any
	IP         string
	UserAgent  string
	RequestID  string
}

// Write inserts e using db, which may be a transaction so the audit row
// commits together with the change it records.
func Write(ctx context.Context, db *gorm.DB, e Entry) error {
	e.ActorKind = actorKind(e)
	before, err := jsonOrNil(e.Before)
	if err != nil {
		return err
	}
	after, err := jsonOrNil(e.After)
	if err != nil {
		return err
	}
	err = db.WithContext(ctx).Exec(`INSERT INTO audit_log
		(org_id, ticket_id, user_id, actor_kind, action, entity_type, entity_id, before, after, ip, user_agent, request_id)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.OrgID, e.TicketID, e.UserID, e.ActorKind, e.Action, e.EntityType, e.EntityID, before, after,
		nullIfEmpty(e.IP), nullIfEmpty(truncate(e.UserAgent, 512)), nullIfEmpty(e.RequestID)).Error
	if err != nil {
		return fmt.Errorf("audit: write %s: %w", e.Action, err)
	}
	return nil
}

// WriteMany inserts entries in one statement (one round trip however many
// there are), in order, using db, which may be a transaction.
func WriteMany(ctx context.Context, db *gorm.DB, entries []Entry) error {
	if len(entries) == 0 {
		return nil
	}
	type row struct {
		N          int             `json:"n"`
		OrgID      *uuid.UUID      `json:"org_id"`
		TicketID   *uuid.UUID      `json:"ticket_id"`
		UserID     *uuid.UUID      `json:"user_id"`
		ActorKind  string          `json:"actor_kind"`
		Action     string          `json:"action"`
		EntityType string          `json:"entity_type"`
		EntityID   *uuid.UUID      `json:"entity_id"`
		Before     json.RawMessage `json:"before,omitempty"`
		After      json.RawMessage `json:"after,omitempty"`
		IP         *string         `json:"ip"`
		UserAgent  *string         `json:"user_agent"`
		RequestID  *string         `json:"request_id"`
	}
	rows := make([]row, len(entries))
	for i, e := range entries {
		r := row{N: i, OrgID: e.OrgID, TicketID: e.TicketID, UserID: e.UserID, ActorKind: actorKind(e),
			Action: e.Action, EntityType: e.EntityType, EntityID: e.EntityID,
			IP: strOrNil(e.IP), UserAgent: strOrNil(truncate(e.UserAgent, 512)), RequestID: strOrNil(e.RequestID)}
		var err error
		if r.Before, err = rawOrNil(e.Before); err != nil {
			return err
		}
		if r.After, err = rawOrNil(e.After); err != nil {
			return err
		}
		rows[i] = r
	}
	// The rows travel as one JSON parameter: no placeholder limit, one plan.
	param, err := json.Marshal(rows)
	if err != nil {
		return fmt.Errorf("audit: marshal: %w", err)
	}
	err = db.WithContext(ctx).Exec(`INSERT INTO audit_log
		(org_id, ticket_id, user_id, actor_kind, action, entity_type, entity_id, before, after, ip, user_agent, request_id)
		SELECT org_id, ticket_id, user_id, actor_kind, action, entity_type, entity_id, before, after, ip, user_agent, request_id
		FROM jsonb_to_recordset(?::jsonb) AS x(n int, org_id uuid, ticket_id uuid, user_id uuid, actor_kind text, action text,
			entity_type text, entity_id uuid, before jsonb, after jsonb, ip text, user_agent text, request_id text)
		ORDER BY n`, string(param)).Error
	if err != nil {
		return fmt.Errorf("audit: write %d entries: %w", len(entries), err)
	}
	return nil
}

// actorKind is e.ActorKind, defaulting to ActorUser when a user acted and
// ActorSystem otherwise.
func actorKind(e Entry) string {
	switch {
	case e.ActorKind != "":
		return e.ActorKind
	case e.UserID != nil:
		return ActorUser
	default:
		return ActorSystem
	}
}

func rawOrNil(v any) (json.RawMessage, error) {
	if v == nil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("audit: marshal: %w", err)
	}
	return b, nil
}

func strOrNil(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func jsonOrNil(v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("audit: marshal: %w", err)
	}
	return string(b), nil
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
