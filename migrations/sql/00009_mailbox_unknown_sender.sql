-- +goose Up
-- What a mailbox does with mail from an address that is no user of its
-- organisation: 'create' makes the sender a customer (the default, as
-- before), 'quarantine' holds the message for an admin (who may add the
-- customer and replay it).
ALTER TABLE mailboxes ADD COLUMN unknown_sender text NOT NULL DEFAULT 'create'
    CHECK (unknown_sender IN ('create', 'quarantine'));

-- +goose Down
-- Forward-only: roll back by restoring a backup.
