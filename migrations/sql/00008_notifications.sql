-- +goose Up
-- Outbound e-mail (the notify stage). One row per (domain event, recipient):
-- the unique key is what makes a redelivered notify task send nothing twice.
-- The row is written with status 'pending' and its pre-generated Message-ID
-- before the SMTP transaction and marked 'sent' after it, so a crash between
-- the two re-sends the same Message-ID (receivers collapse it) rather than
-- losing the mail. message_id is also how a customer's reply threads back to
-- its ticket (In-Reply-To/References).
CREATE TABLE notifications (
    id          uuid PRIMARY KEY,
    org_id      uuid NOT NULL REFERENCES organizations (id),
    ticket_id   uuid NOT NULL,
    event_id    uuid NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('ticket_received', 'agent_reply', 'status_changed',
                                             'csat_invitation', 'sla_escalation')),
    recipient   text NOT NULL CHECK (char_length(recipient) BETWEEN 3 AND 320),
    message_id  text NOT NULL CHECK (char_length(message_id) BETWEEN 3 AND 998),
    status      text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'suppressed', 'failed')),
    -- Why a notification was suppressed or failed (loop, bounce, rate limit, SMTP reply).
    reason      text,
    attempts    integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz,
    CONSTRAINT notifications_event_recipient_key UNIQUE (event_id, recipient),
    FOREIGN KEY (org_id, ticket_id) REFERENCES tickets (org_id, id) ON DELETE CASCADE
);

-- Threading looks a reply's In-Reply-To/References up by Message-ID.
CREATE UNIQUE INDEX notifications_org_message_key ON notifications (org_id, message_id);
CREATE INDEX notifications_ticket_idx ON notifications (ticket_id, created_at);
-- Acknowledgement rate limit per recipient.
CREATE INDEX notifications_recipient_idx ON notifications (org_id, lower(recipient), created_at);

-- A ticket opened by automatic mail (Auto-Submitted, Precedence bulk/list/junk,
-- X-Autoreply, our loop header) is kept but never acknowledged.
ALTER TABLE tickets ADD COLUMN auto_submitted boolean NOT NULL DEFAULT false;

-- A hard bounce from this address: notifications to it are suppressed until
-- the customer writes again (or an agent clears it).
ALTER TABLE users ADD COLUMN email_bounced_at timestamptz;

-- Why an inbound e-mail was threaded onto this ticket ('in_reply_to',
-- 'references', 'subject_token', 'plus_address'), shown to agents.
ALTER TABLE comments ADD COLUMN thread_reason text
    CHECK (thread_reason IN ('in_reply_to', 'references', 'subject_token', 'plus_address'));

-- +goose Down
-- Forward-only: roll back by restoring a backup.
