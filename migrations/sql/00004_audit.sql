-- +goose Up
-- Append-only audit log.
--
-- bigint identity rather than uuid: the log is written at ticket rate and read
-- in insertion order, and an identity is the cheapest ordered key there is.
-- ticket_id, user_id and entity_id deliberately have no foreign keys: the log
-- must outlive what it describes (and an ON DELETE SET NULL would be an UPDATE,
-- which the trigger below rejects).
CREATE TABLE audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- NULL for platform events (e.g. an organisation being created).
    org_id      uuid REFERENCES organizations (id),
    ticket_id   uuid,
    user_id     uuid,
    actor_kind  text NOT NULL CHECK (actor_kind IN ('user', 'system', 'ai')),
    action      text NOT NULL CHECK (action <> ''),
    entity_type text NOT NULL,
    entity_id   uuid,
    before      jsonb,
    after       jsonb,
    ip          text,
    user_agent  text,
    request_id  text,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX audit_log_org_created_idx ON audit_log (org_id, created_at);
CREATE INDEX audit_log_ticket_created_idx ON audit_log (ticket_id, created_at) WHERE ticket_id IS NOT NULL;

-- The trigger makes tampering loud for every role. It is defence in depth, not
-- a security boundary: the table owner can still disable triggers, so the
-- application role should also lack UPDATE/DELETE/TRUNCATE where roles are split.
-- +goose StatementBegin
CREATE FUNCTION audit_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- +goose Down
-- Forward-only: roll back by restoring a backup.
