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
	if e.ActorKind == "" {
		e.ActorKind = ActorSystem
		if e.UserID != nil {
			e.ActorKind = ActorUser
		}
	}
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
