// Package models holds the gorm models of every table in migrations/sql and
// the rules that belong to a single entity.
//
// Conventions:
//   - ids are UUIDv7 set by a BeforeCreate hook when left zero (see NewID);
//   - nullable columns are pointers; jsonb is JSONB, text[] is StringArray;
//   - generated columns (tickets.search, kb_articles.search) are not mapped:
//     search is done in hand-written SQL;
//   - booleans carry no gorm default tag, so the Go value is what is stored
//     (set IsActive explicitly on Create);
//   - secrets (hashes, TOTP secret) are tagged json:"-".
package models

// All returns one zero value of every model, in migration order (useful for
// schema checks in tests).
func All() []any {
	return []any{
		&Organization{}, &TicketCounter{}, &User{}, &RefreshToken{}, &UserToken{}, &APIKey{},
		&Service{}, &SLAPolicy{}, &SLATarget{}, &Ticket{}, &TicketEmbedding{}, &TicketWatcher{}, &Comment{},
		&Attachment{}, &TimeEntry{}, &TicketRelationship{}, &CustomField{}, &CustomFieldValue{},
		&CannedResponse{}, &SLAEscalation{}, &SLABreach{},
		&KBCategory{}, &KBArticle{}, &CSATSurvey{},
		&AuditLog{},
		&IdempotencyKey{}, &OutboxEvent{}, &ProcessedEvent{}, &Mailbox{},
		&MailIngested{}, &MailQuarantine{}, &Notification{},
	}
}
