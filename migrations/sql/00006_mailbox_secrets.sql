-- +goose Up
-- E-mail channel: mailbox passwords encrypted at rest, what the poller does
-- with a message once it is ingested, the poller's dedupe record and the
-- quarantine of messages that failed ingest.

-- password_enc is sealed by internal/secretbox (AES-256-GCM, key from
-- ATUMDESK_SECRET_KEY, the mailbox id as associated data so a sealed password
-- cannot be copied onto another mailbox). credentials_ref = 'secretbox' says
-- the password lives there; the API never returns either column.
-- config_version is bumped by every change of the connection settings, so
-- a running poller notices and reconnects (updated_at also moves on every
-- lease renewal, so it cannot tell).
ALTER TABLE mailboxes
    ADD COLUMN password_enc bytea,
    ADD COLUMN after_ingest text NOT NULL DEFAULT 'seen'
        CHECK (after_ingest = 'seen' OR (after_ingest LIKE 'move:%' AND char_length(after_ingest) BETWEEN 6 AND 260)),
    ADD COLUMN config_version integer NOT NULL DEFAULT 1;
ALTER TABLE mailboxes ALTER COLUMN credentials_ref SET DEFAULT 'secretbox';

-- Messages handed to ingest successfully. The poller looks here before it
-- hands a message on, so a UIDVALIDITY reset (every UID renumbered) or a
-- message fetched again after a crash is not ingested twice.
-- dedupe_key: 'mid:<Message-ID>', or 'sha256:<hex of the raw message>' when
-- the message has no Message-ID.
CREATE TABLE mail_ingested (
    mailbox_id   uuid NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    dedupe_key   text NOT NULL CHECK (char_length(dedupe_key) BETWEEN 5 AND 1000),
    uid_validity bigint NOT NULL,
    uid          bigint NOT NULL,
    raw_sha256   text NOT NULL CHECK (raw_sha256 ~ '^[0-9a-f]{64}$'),
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (mailbox_id, dedupe_key)
);

-- A message ingest kept failing on: kept with its error, flagged/moved on the
-- server like any other so the mailbox goes on, replayable by an admin
-- (status 'replay' asks the poller that holds the mailbox to hand it to
-- ingest again from the stored raw bytes).
CREATE TABLE mail_quarantine (
    id           uuid PRIMARY KEY,
    org_id       uuid NOT NULL REFERENCES organizations (id),
    mailbox_id   uuid NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    uid_validity bigint NOT NULL,
    uid          bigint NOT NULL,
    dedupe_key   text NOT NULL,
    message_id   text,
    -- NULL when the raw message was not stored (larger than the limit).
    raw_sha256   text CHECK (raw_sha256 ~ '^[0-9a-f]{64}$'),
    raw_size     bigint NOT NULL DEFAULT 0,
    error        text NOT NULL,
    attempts     integer NOT NULL DEFAULT 0,
    status       text NOT NULL DEFAULT 'quarantined' CHECK (status IN ('quarantined', 'replay', 'replayed')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    replayed_at  timestamptz,
    UNIQUE (mailbox_id, dedupe_key)
);

CREATE INDEX mail_quarantine_org_idx ON mail_quarantine (org_id, id);
CREATE INDEX mail_quarantine_replay_idx ON mail_quarantine (mailbox_id) WHERE status = 'replay';

CREATE TRIGGER mail_quarantine_updated_at BEFORE UPDATE ON mail_quarantine
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- +goose Down
-- Forward-only: roll back by restoring a backup.
