package imap

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
)

// Message is one e-mail fetched from a mailbox, handed to the Sink.
type Message struct {
	MailboxID uuid.UUID
	OrgID     uuid.UUID
	// Address is the mailbox's address (e.g. support@acme.test): the
	// organisation and channel the mail arrived through.
	Address string
	Folder  string
	// UIDValidity and UID identify the message on the server. A replay from
	// quarantine carries the values recorded when it was quarantined.
	UIDValidity uint32
	UID         uint32
	// MessageID is the Message-ID header without angle brackets; "" when the
	// message has none (or an unusable one).
	MessageID string
	// SHA256 (hex) names the raw bytes in the raw store; RawPath is where
	// they are (Raw holds the same bytes).
	SHA256  string
	RawPath string
	Raw     []byte
	// InternalDate is the server's arrival time (zero on replay).
	InternalDate time.Time
	// Replay is true when an admin replayed the message from quarantine.
	Replay bool
}

// DedupeKey is the message's identity within its mailbox: "mid:<Message-ID>",
// or "sha256:<hex>" when it has no Message-ID. The poller never hands on a
// message whose (MailboxID, DedupeKey) it has recorded as ingested.
func (m *Message) DedupeKey() string { return dedupeKey(m.MessageID, m.SHA256) }

func dedupeKey(messageID, sha string) string {
	if messageID != "" {
		return "mid:" + messageID
	}
	return "sha256:" + sha
}

// Sink receives fetched messages; the IMAP process connects it to ingest
// (parse, then produce to the inbound topic with acks from all replicas).
//
// Contract:
//   - Deliver returns nil only once the message is durable downstream. Only
//     then does the poller record it as ingested, flag or move it on the
//     server and advance the mailbox's last UID.
//   - Delivery is at-least-once. The poller skips messages it recorded as
//     ingested (by mailbox + DedupeKey, across UIDVALIDITY resets), but a
//     crash between Deliver returning nil and that record being written
//     hands the same message again: downstream must treat (MailboxID,
//     DedupeKey) — equivalently mailbox + UIDVALIDITY + UID, or Message-ID —
//     as the idempotency key.
//   - An error wrapped with Permanent (e.g. no usable sender) quarantines the
//     message at once; any other error is retried a few times with backoff,
//     then the message is quarantined. A quarantined message never blocks
//     the mailbox and can be replayed by an admin.
//   - ctx is cancelled when the poller stops or loses the mailbox's lease;
//     an error returned then is not counted as a failed attempt.
//   - Deliver is called concurrently for different mailboxes; for one
//     mailbox, fetched messages come one at a time in UID order, but a
//     replay may run alongside them.
type Sink interface {
	Deliver(ctx context.Context, m *Message) error
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(ctx context.Context, m *Message) error

// Deliver implements Sink.
func (f SinkFunc) Deliver(ctx context.Context, m *Message) error { return f(ctx, m) }

// permanentError marks a sink error that retrying cannot fix.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as not retryable: the message is quarantined at once.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}
