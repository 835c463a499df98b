-- +goose Up
-- SLA breaches: one row per clock of a ticket that breached, written by the
-- sla worker in the transaction that sets the ticket's breached flag. The
-- primary key (ticket_id, kind) makes the breach fire exactly once under
-- at-least-once timers (INSERT ... ON CONFLICT DO NOTHING); the row keeps
-- the due time that was missed even if a later priority change recomputes
-- the ticket's due time, and it is what GET /api/v1/sla/breaches lists.
CREATE TABLE sla_breaches (
    id          uuid NOT NULL UNIQUE,
    org_id      uuid NOT NULL REFERENCES organizations (id),
    ticket_id   uuid NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('first_response', 'resolution')),
    policy_id   uuid,
    due_at      timestamptz NOT NULL,
    breached_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (ticket_id, kind),
    FOREIGN KEY (org_id, ticket_id) REFERENCES tickets (org_id, id) ON DELETE CASCADE,
    FOREIGN KEY (org_id, policy_id) REFERENCES sla_policies (org_id, id) ON DELETE SET NULL (policy_id)
);

-- The list: an organisation's breaches newest first (keyset on the UUIDv7 id).
CREATE INDEX sla_breaches_org_id_idx ON sla_breaches (org_id, id);
CREATE INDEX sla_breaches_org_breached_idx ON sla_breaches (org_id, breached_at);
CREATE INDEX sla_breaches_policy_idx ON sla_breaches (policy_id) WHERE policy_id IS NOT NULL;

-- +goose Down
-- Forward-only: roll back by restoring a backup.
