package pipeline

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// IntakeVersion is the version of the Intake payload on TopicInbound.
const IntakeVersion = 1

// Channels a ticket can arrive through (the tickets.channel column).
const (
	ChannelWeb   = "web"   // the portal, signed in
	ChannelAPI   = "api"   // REST
	ChannelForm  = "form"  // the anonymous public web form
	ChannelEmail = "email" // the IMAP poller
)

// Intake is one accepted submission, normalised, whatever channel it came
// from. Every channel produces exactly this onto TopicInbound (keyed by
// TicketID) before it acknowledges the submitter; the persister turns it
// into a ticket. TicketID is assigned at intake, so replaying the topic
// finds the ticket already stored and creates nothing.
type Intake struct {
	Version        int                        `json:"v"`
	TicketID       uuid.UUID                  `json:"ticket_id"`
	OrgID          uuid.UUID                  `json:"org_id"`
	Channel        string                     `json:"channel"`
	Requester      Requester                  `json:"requester"`
	Subject        string                     `json:"subject"`
	Text           string                     `json:"text"`                 // plain-text body
	HTML           string                     `json:"html,omitempty"`       // sanitised HTML body
	ServiceID      *uuid.UUID                 `json:"service_id,omitempty"` // as chosen by the submitter
	Priority       string                     `json:"priority,omitempty"`   // as chosen by the submitter
	CustomFields   map[string]json.RawMessage `json:"custom_fields,omitempty"`
	AttachmentIDs  []uuid.UUID                `json:"attachment_ids,omitempty"`
	IdempotencyKey string                     `json:"idempotency_key"`
	// IdempotencyScope separates the keys of different submitters (a user
	// id, or "email:" and an address); (org, scope, key) is unique.
	IdempotencyScope string `json:"idempotency_scope"`
	// RequestHash is the hex sha-256 of the submission's content, stored
	// with the key so a key reused for another request is recognised.
	RequestHash string `json:"request_hash"`
	// E-mail threading (ChannelEmail only).
	MessageID  string   `json:"message_id,omitempty"`
	InReplyTo  string   `json:"in_reply_to,omitempty"`
	References []string `json:"references,omitempty"`
	// AutoSubmitted: the mail was written by a machine (an auto-reply,
	// bulk or list mail, our own loop header; ingest/mail's verdict). The
	// ticket is kept but never acknowledged (tickets.auto_submitted).
	AutoSubmitted bool      `json:"auto_submitted,omitempty"`
	ReceivedAt    time.Time `json:"received_at"`
	ClientIP      string    `json:"client_ip,omitempty"`
	UserAgent     string    `json:"user_agent,omitempty"`
	RequestID     string    `json:"request_id,omitempty"`
}

// Requester is who the ticket is for: a known user, or an e-mail address
// that the persister finds or creates as a customer of the organisation.
type Requester struct {
	UserID *uuid.UUID `json:"user_id,omitempty"`
	Email  string     `json:"email"`
	Name   string     `json:"name,omitempty"`
}
