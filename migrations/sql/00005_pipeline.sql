-- +goose Up
-- Pipeline bookkeeping: intake idempotency, transactional outbox, consumer
-- dedup, and the IMAP mailboxes the poller reads.

-- Written by ingest before the submission is acknowledged. ticket_id is the
-- id ingest assigned (UUIDv7, generated up front); the ticket row itself is
-- written later by the pipeline, hence no foreign key.
CREATE TABLE idempotency_keys (
    org_id       uuid NOT NULL REFERENCES organizations (id),
    scope        text NOT NULL,
    key          text NOT NULL CHECK (key <> '' AND char_length(key) <= 255),
    -- sha-256 of the canonical request: the same key with another body is a 409/422.
    request_hash bytea NOT NULL,
    ticket_id    uuid,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, scope, key)
);

-- Expiry sweeps.
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);

-- Transactional outbox: domain events are inserted in the same transaction as
-- the change they describe and published to Kafka by the relay. The identity
-- gives the relay a cheap, ordered cursor.
CREATE TABLE outbox (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id     uuid NOT NULL UNIQUE,
    topic        text NOT NULL,
    key          text NOT NULL DEFAULT '',
    event_type   text NOT NULL,
    payload      jsonb NOT NULL,
    attempts     integer NOT NULL DEFAULT 0,
    last_error   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);

-- The relay's work list stays tiny however large the published history grows.
CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_published_idx ON outbox (published_at) WHERE published_at IS NOT NULL;

-- Consumer-side dedup for at-least-once delivery: a handler inserts
-- (consumer, event_id) in its own transaction and skips on conflict.
CREATE TABLE processed_events (
    consumer     text NOT NULL,
    event_id     uuid NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

CREATE INDEX processed_events_processed_idx ON processed_events (processed_at);

-- IMAP mailboxes. The poller keeps its position (UIDVALIDITY + last UID) here
-- instead of re-scanning by date, and holds a lease so exactly one poller
-- reads a mailbox at a time. The password is not stored: credentials_ref
-- names the secret (environment variable or file) that holds it.
CREATE TABLE mailboxes (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id             uuid NOT NULL REFERENCES organizations (id),
    name               text NOT NULL DEFAULT '',
    address            text NOT NULL CHECK (address ~ '^[^@[:space:]]+@[^@[:space:]]+$'),
    imap_host          text NOT NULL,
    imap_port          integer NOT NULL DEFAULT 993 CHECK (imap_port BETWEEN 1 AND 65535),
    imap_tls           text NOT NULL DEFAULT 'tls' CHECK (imap_tls IN ('tls', 'starttls', 'none')),
    imap_username      text NOT NULL,
    credentials_ref    text NOT NULL,
    folder             text NOT NULL DEFAULT 'INBOX',
    default_service_id uuid,
    uid_validity       bigint,
    last_uid           bigint NOT NULL DEFAULT 0 CHECK (last_uid >= 0),
    last_polled_at     timestamptz,
    last_error         text,
    lease_owner        text,
    lease_expires_at   timestamptz,
    is_active          boolean NOT NULL DEFAULT true,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (org_id, default_service_id) REFERENCES services (org_id, id)
        ON DELETE SET NULL (default_service_id)
);

-- An address routes inbound mail to exactly one organisation.
CREATE UNIQUE INDEX mailboxes_address_key ON mailboxes (lower(address));
CREATE INDEX mailboxes_org_idx ON mailboxes (org_id);

CREATE TRIGGER mailboxes_updated_at BEFORE UPDATE ON mailboxes
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- +goose Down
-- Forward-only: roll back by restoring a backup.
