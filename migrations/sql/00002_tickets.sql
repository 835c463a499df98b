-- +goose Up
-- Services, SLA policies, tickets and everything hanging off a ticket.

CREATE TABLE services (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id           uuid NOT NULL REFERENCES organizations (id),
    name             text NOT NULL CHECK (btrim(name) <> ''),
    description      text NOT NULL DEFAULT '',
    is_active        boolean NOT NULL DEFAULT true,
    default_priority text CHECK (default_priority IN ('low', 'medium', 'high', 'critical')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT services_org_id_id_key UNIQUE (org_id, id)
);

CREATE UNIQUE INDEX services_org_name_key ON services (org_id, lower(name));

CREATE TRIGGER services_updated_at BEFORE UPDATE ON services
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- A policy applies to a service and/or a priority; NULL means "any". The most
-- specific active policy wins, so at most one active policy per scope.
-- business_hours/timezone/holidays NULL mean "inherit the organisation's".
CREATE TABLE sla_policies (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id             uuid NOT NULL REFERENCES organizations (id),
    name               text NOT NULL CHECK (btrim(name) <> ''),
    service_id         uuid,
    priority           text CHECK (priority IN ('low', 'medium', 'high', 'critical')),
    use_business_hours boolean NOT NULL DEFAULT true,
    business_hours     jsonb,
    timezone           text,
    holidays           jsonb,
    escalation_rules   jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(escalation_rules) = 'array'),
    -- When the SLA clock starts: when a manager accepts the ticket, or at creation.
    clock_start        text NOT NULL DEFAULT 'accepted' CHECK (clock_start IN ('accepted', 'created')),
    is_active          boolean NOT NULL DEFAULT true,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT sla_policies_org_id_id_key UNIQUE (org_id, id),
    -- Services are deactivated rather than deleted while a policy uses them.
    FOREIGN KEY (org_id, service_id) REFERENCES services (org_id, id)
);

CREATE UNIQUE INDEX sla_policies_active_scope_key ON sla_policies (org_id, service_id, priority)
    NULLS NOT DISTINCT WHERE is_active;
CREATE INDEX sla_policies_service_idx ON sla_policies (service_id) WHERE service_id IS NOT NULL;

CREATE TRIGGER sla_policies_updated_at BEFORE UPDATE ON sla_policies
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE sla_targets (
    policy_id              uuid NOT NULL,
    org_id                 uuid NOT NULL REFERENCES organizations (id),
    priority               text NOT NULL CHECK (priority IN ('low', 'medium', 'high', 'critical')),
    first_response_minutes integer NOT NULL CHECK (first_response_minutes > 0),
    resolution_minutes     integer NOT NULL CHECK (resolution_minutes > 0),
    PRIMARY KEY (policy_id, priority),
    FOREIGN KEY (org_id, policy_id) REFERENCES sla_policies (org_id, id) ON DELETE CASCADE
);

CREATE TABLE tickets (
    id                      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id                  uuid NOT NULL REFERENCES organizations (id),
    number                  bigint NOT NULL CHECK (number > 0),
    subject                 text NOT NULL CHECK (char_length(subject) BETWEEN 1 AND 1000),
    description             text NOT NULL DEFAULT '',
    -- Sanitised HTML rendering of description (bluemonday), NULL for plain text.
    description_html        text,
    status                  text NOT NULL DEFAULT 'new'
                            CHECK (status IN ('new', 'accepted', 'assigned', 'in_progress',
                                              'waiting_customer', 'resolved', 'closed', 'cancelled')),
    priority                text NOT NULL DEFAULT 'medium'
                            CHECK (priority IN ('low', 'medium', 'high', 'critical')),
    service_id              uuid,
    category                text,
    tags                    text[] NOT NULL DEFAULT '{}',
    requester_id            uuid NOT NULL,
    assigned_to             uuid,
    assigned_at             timestamptz,
    accepted_by             uuid,
    accepted_at             timestamptz,
    channel                 text NOT NULL CHECK (channel IN ('web', 'api', 'form', 'email')),
    -- Message-ID of the e-mail that opened the ticket (ingest dedup and threading).
    source_message_id       text,
    idempotency_key         text,
    parent_id               uuid,
    is_duplicate_of         uuid,

    -- SLA. Due times are computed by the sla package and stored, so sweeps
    -- are index scans; pauses (waiting_customer) are kept as
    -- [{"from": ..., "to": ...}] so due times can be recomputed.
    sla_policy_id           uuid,
    sla_started_at          timestamptz,
    first_response_due_at   timestamptz,
    resolution_due_at       timestamptz,
    first_responded_at      timestamptz,
    resolved_at             timestamptz,
    closed_at               timestamptz,
    sla_paused_at           timestamptz,
    sla_paused_intervals    jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(sla_paused_intervals) = 'array'),
    first_response_breached boolean NOT NULL DEFAULT false,
    resolution_breached     boolean NOT NULL DEFAULT false,

    -- AI triage suggestions; never applied without a human or an explicit rule.
    ai_suggested_service_id uuid,
    ai_suggested_priority   text CHECK (ai_suggested_priority IN ('low', 'medium', 'high', 'critical')),
    ai_suggested_category   text,
    ai_confidence           real CHECK (ai_confidence BETWEEN 0 AND 1),
    ai_suggested_at         timestamptz,
    -- pgvector is not packaged for Debian 12's PostgreSQL 15; similarity is
    -- computed in the application over candidate rows.
    embedding               real[],
    embedding_model         text,

    -- 'simple' configuration: tickets arrive in many languages and stemming
    -- for the wrong one does more harm than none.
    search                  tsvector GENERATED ALWAYS AS (
                                setweight(to_tsvector('simple', coalesce(subject, '')), 'A') ||
                                setweight(to_tsvector('simple', coalesce(description, '')), 'B')
                            ) STORED,

    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT tickets_org_id_id_key UNIQUE (org_id, id),
    CONSTRAINT tickets_org_number_key UNIQUE (org_id, number),
    CONSTRAINT tickets_not_own_parent CHECK (parent_id <> id),
    CONSTRAINT tickets_not_own_duplicate CHECK (is_duplicate_of <> id),
    FOREIGN KEY (org_id, service_id) REFERENCES services (org_id, id),
    -- Users are deactivated, not deleted; anonymise a requester instead.
    FOREIGN KEY (org_id, requester_id) REFERENCES users (org_id, id),
    FOREIGN KEY (org_id, assigned_to) REFERENCES users (org_id, id) ON DELETE SET NULL (assigned_to),
    FOREIGN KEY (org_id, accepted_by) REFERENCES users (org_id, id) ON DELETE SET NULL (accepted_by),
    FOREIGN KEY (org_id, parent_id) REFERENCES tickets (org_id, id) ON DELETE SET NULL (parent_id),
    FOREIGN KEY (org_id, is_duplicate_of) REFERENCES tickets (org_id, id) ON DELETE SET NULL (is_duplicate_of),
    FOREIGN KEY (org_id, sla_policy_id) REFERENCES sla_policies (org_id, id) ON DELETE SET NULL (sla_policy_id),
    FOREIGN KEY (org_id, ai_suggested_service_id) REFERENCES services (org_id, id)
        ON DELETE SET NULL (ai_suggested_service_id)
);

-- Queues (keyset pagination on (created_at, id)).
CREATE INDEX tickets_queue_idx ON tickets (org_id, status, created_at, id);
CREATE INDEX tickets_assignee_idx ON tickets (org_id, assigned_to, status);
CREATE INDEX tickets_requester_idx ON tickets (org_id, requester_id, created_at);
CREATE INDEX tickets_org_created_idx ON tickets (org_id, created_at, id);
CREATE INDEX tickets_org_updated_idx ON tickets (org_id, updated_at, id);
CREATE INDEX tickets_service_idx ON tickets (org_id, service_id) WHERE service_id IS NOT NULL;
-- Search.
CREATE INDEX tickets_search_idx ON tickets USING gin (search);
CREATE INDEX tickets_subject_trgm_idx ON tickets USING gin (subject gin_trgm_ops);
CREATE INDEX tickets_tags_idx ON tickets USING gin (tags);
-- Exactly-once intake: one ticket per idempotency key and per e-mail.
CREATE UNIQUE INDEX tickets_idempotency_key ON tickets (org_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE UNIQUE INDEX tickets_source_message_key ON tickets (org_id, source_message_id)
    WHERE source_message_id IS NOT NULL;
-- SLA sweeps across all organisations only look at clocks still running.
CREATE INDEX tickets_first_response_due_idx ON tickets (first_response_due_at)
    WHERE first_responded_at IS NULL AND NOT first_response_breached AND first_response_due_at IS NOT NULL;
CREATE INDEX tickets_resolution_due_idx ON tickets (resolution_due_at)
    WHERE resolved_at IS NULL AND NOT resolution_breached AND resolution_due_at IS NOT NULL;
-- Foreign keys that are otherwise unindexed (for ON DELETE and "children of").
CREATE INDEX tickets_parent_idx ON tickets (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX tickets_duplicate_idx ON tickets (is_duplicate_of) WHERE is_duplicate_of IS NOT NULL;
CREATE INDEX tickets_sla_policy_idx ON tickets (sla_policy_id) WHERE sla_policy_id IS NOT NULL;

CREATE TRIGGER tickets_updated_at BEFORE UPDATE ON tickets
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Users following a ticket besides requester and assignee (CCs, colleagues).
CREATE TABLE ticket_watchers (
    ticket_id  uuid NOT NULL,
    user_id    uuid NOT NULL,
    org_id     uuid NOT NULL REFERENCES organizations (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (ticket_id, user_id),
    FOREIGN KEY (org_id, ticket_id) REFERENCES tickets (org_id, id) ON DELETE CASCADE,
    FOREIGN KEY (org_id, user_id) REFERENCES users (org_id, id) ON DELETE CASCADE
);

CREATE INDEX ticket_watchers_user_idx ON ticket_watchers (user_id);

CREATE TABLE comments (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id            uuid NOT NULL REFERENCES organizations (id),
    ticket_id         uuid NOT NULL,
    -- NULL for system messages and authors who were deleted.
    author_id         uuid,
    content           text NOT NULL,
    content_html      text,
    -- Internal notes are for staff only: never shown to customers on any channel.
    is_internal       boolean NOT NULL DEFAULT false,
    is_ai_generated   boolean NOT NULL DEFAULT false,
    channel           text NOT NULL DEFAULT 'web' CHECK (channel IN ('web', 'api', 'form', 'email')),
    -- Message-ID of the inbound e-mail, or of the outbound one we sent, so
    -- In-Reply-To/References can be threaded back to the ticket.
    source_message_id text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT comments_org_id_id_key UNIQUE (org_id, id),
    FOREIGN KEY (org_id, ticket_id) REFERENCES tickets (org_id, id) ON DELETE CASCADE,
    FOREIGN KEY (org_id, author_id) REFERENCES users (org_id, id) ON DELETE SET NULL (author_id)
);

CREATE INDEX comments_ticket_idx ON comments (ticket_id, created_at);
CREATE INDEX comments_author_idx ON comments (author_id) WHERE author_id IS NOT NULL;
CREATE UNIQUE INDEX comments_source_message_key ON comments (org_id, source_message_id)
    WHERE source_message_id IS NOT NULL;

CREATE TRIGGER comments_updated_at BEFORE UPDATE ON comments
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- An attachment may be uploaded before the ticket or comment it belongs to
-- exists; unlinked uploads older than a day are garbage-collected.
CREATE TABLE attachments (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id       uuid NOT NULL REFERENCES organizations (id),
    ticket_id    uuid,
    comment_id   uuid,
    uploaded_by  uuid,
    filename     text NOT NULL CHECK (btrim(filename) <> ''),
    mime_type    text NOT NULL,
    size_bytes   bigint NOT NULL CHECK (size_bytes >= 0),
    sha256       bytea NOT NULL CHECK (octet_length(sha256) = 32),
    storage_key  text NOT NULL UNIQUE,
    -- Content-ID of an inline e-mail part (cid: references in HTML bodies).
    content_id   text,
    access_count bigint NOT NULL DEFAULT 0 CHECK (access_count >= 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (org_id, ticket_id) REFERENCES tickets (org_id, id) ON DELETE CASCADE,
    FOREIGN KEY (org_id, comment_id) REFERENCES comments (org_id, id) ON DELETE CASCADE,
    FOREIGN KEY (org_id, uploaded_by) REFERENCES users (org_id, id) ON DELETE SET NULL (uploaded_by)
);

CREATE INDEX attachments_ticket_idx ON attachments (ticket_id) WHERE ticket_id IS NOT NULL;
CREATE INDEX attachments_comment_idx ON attachments (comment_id) WHERE comment_id IS NOT NULL;
CREATE INDEX attachments_unlinked_idx ON attachments (created_at)
    WHERE ticket_id IS NULL AND comment_id IS NULL;
CREATE INDEX attachments_org_sha256_idx ON attachments (org_id, sha256);

CREATE TABLE time_entries (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id     uuid NOT NULL REFERENCES organizations (id),
    ticket_id  uuid NOT NULL,
    user_id    uuid NOT NULL,
    minutes    integer NOT NULL CHECK (minutes > 0),
    note       text NOT NULL DEFAULT '',
    started_at timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (org_id, ticket_id) REFERENCES tickets (org_id, id) ON DELETE CASCADE,
    FOREIGN KEY (org_id, user_id) REFERENCES users (org_id, id)
);

CREATE INDEX time_entries_ticket_idx ON time_entries (ticket_id, created_at);
CREATE INDEX time_entries_user_idx ON time_entries (org_id, user_id, started_at);

CREATE TABLE ticket_relationships (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id           uuid NOT NULL REFERENCES organizations (id),
    source_ticket_id uuid NOT NULL,
    target_ticket_id uuid NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('duplicate_of', 'related', 'parent_of')),
    created_by       uuid,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ticket_relationships_unique UNIQUE (source_ticket_id, target_ticket_id, kind),
    CONSTRAINT ticket_relationships_not_self CHECK (source_ticket_id <> target_ticket_id),
    FOREIGN KEY (org_id, source_ticket_id) REFERENCES tickets (org_id, id) ON DELETE CASCADE,
    FOREIGN KEY (org_id, target_ticket_id) REFERENCES tickets (org_id, id) ON DELETE CASCADE,
    FOREIGN KEY (org_id, created_by) REFERENCES users (org_id, id) ON DELETE SET NULL (created_by)
);

CREATE INDEX ticket_relationships_target_idx ON ticket_relationships (target_ticket_id);

CREATE TABLE custom_fields (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id     uuid NOT NULL REFERENCES organizations (id),
    key        text NOT NULL CHECK (key ~ '^[a-z][a-z0-9_]{0,62}$'),
    label      text NOT NULL CHECK (btrim(label) <> ''),
    field_type text NOT NULL CHECK (field_type IN ('text', 'number', 'select', 'checkbox', 'date')),
    -- For select fields: a JSON array of the allowed values.
    options    jsonb,
    required   boolean NOT NULL DEFAULT false,
    position   integer NOT NULL DEFAULT 0,
    is_active  boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT custom_fields_org_id_id_key UNIQUE (org_id, id),
    CONSTRAINT custom_fields_org_key_key UNIQUE (org_id, key),
    CONSTRAINT custom_fields_select_has_options
        CHECK (field_type <> 'select' OR jsonb_typeof(options) = 'array')
);

CREATE TRIGGER custom_fields_updated_at BEFORE UPDATE ON custom_fields
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE custom_field_values (
    ticket_id  uuid NOT NULL,
    field_id   uuid NOT NULL,
    org_id     uuid NOT NULL REFERENCES organizations (id),
    value      jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (ticket_id, field_id),
    FOREIGN KEY (org_id, ticket_id) REFERENCES tickets (org_id, id) ON DELETE CASCADE,
    FOREIGN KEY (org_id, field_id) REFERENCES custom_fields (org_id, id) ON DELETE CASCADE
);

CREATE INDEX custom_field_values_field_idx ON custom_field_values (field_id);

CREATE TRIGGER custom_field_values_updated_at BEFORE UPDATE ON custom_field_values
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE canned_responses (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id     uuid NOT NULL REFERENCES organizations (id),
    title      text NOT NULL CHECK (btrim(title) <> ''),
    content    text NOT NULL,
    created_by uuid,
    -- Personal by default; shared responses are visible to every agent.
    is_shared  boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (org_id, created_by) REFERENCES users (org_id, id) ON DELETE SET NULL (created_by)
);

CREATE INDEX canned_responses_org_idx ON canned_responses (org_id, title);
CREATE INDEX canned_responses_creator_idx ON canned_responses (created_by) WHERE created_by IS NOT NULL;

CREATE TRIGGER canned_responses_updated_at BEFORE UPDATE ON canned_responses
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- One row per escalation step that has fired, so the sla worker (at-least-once
-- delivery) notifies each step exactly once: INSERT ... ON CONFLICT DO NOTHING.
CREATE TABLE sla_escalations (
    ticket_id uuid NOT NULL,
    org_id    uuid NOT NULL REFERENCES organizations (id),
    target    text NOT NULL CHECK (target IN ('first_response', 'resolution')),
    -- Position of the step in the policy's escalation_rules array.
    level     integer NOT NULL CHECK (level >= 0),
    fired_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (ticket_id, target, level),
    FOREIGN KEY (org_id, ticket_id) REFERENCES tickets (org_id, id) ON DELETE CASCADE
);

CREATE INDEX sla_escalations_org_idx ON sla_escalations (org_id, fired_at);

-- +goose Down
-- Forward-only: roll back by restoring a backup.
