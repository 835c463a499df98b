-- +goose Up
-- Tenancy and authentication: organisations, users and the credentials they hold.
--
-- Conventions used by every migration in this directory:
--   * ids are uuid; the application generates UUIDv7 (time-ordered, so B-tree
--     inserts stay append-mostly). gen_random_uuid() is only a fallback for
--     hand-written SQL.
--   * every tenant table carries org_id, and references between two tenant
--     tables are composite (org_id, x_id) -> x(org_id, id). The database itself
--     then refuses a row that points into another organisation, whatever the
--     application does. Parents expose UNIQUE (org_id, id) for that purpose.
--   * organisations are deactivated, never deleted: references to
--     organizations use the default NO ACTION.
--   * enums are text + CHECK, so adding a value is one ALTER, not a type rewrite.

-- pg_trgm is a trusted extension since PostgreSQL 13: the database owner may
-- create it without superuser rights.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- set_updated_at keeps updated_at honest for hand-written UPDATEs. It only
-- fills the column when the statement did not set it itself, so imports and
-- gorm (which sets it) keep their values.
-- +goose StatementBegin
CREATE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END;
$$;
-- +goose StatementEnd

CREATE TABLE organizations (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    slug           text NOT NULL UNIQUE
                   CHECK (slug ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    name           text NOT NULL CHECK (btrim(name) <> ''),
    timezone       text NOT NULL DEFAULT 'UTC',
    -- NULL business_hours means "around the clock".
    business_hours jsonb,
    holidays       jsonb NOT NULL DEFAULT '[]',
    -- CIDRs (or bare addresses) allowed to reach the staff API; empty = any.
    -- The cast validates every element; the API should validate first so the
    -- user gets a 4xx rather than this error.
    allowed_ips    text[] NOT NULL DEFAULT '{}'
                   CHECK (allowed_ips::inet[] IS NOT NULL),
    settings       jsonb NOT NULL DEFAULT '{}',
    -- Public key embedded in the web form; NULL disables the form.
    form_key       text UNIQUE,
    is_active      boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TRIGGER organizations_updated_at BEFORE UPDATE ON organizations
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Human ticket numbers are per organisation and gap-free in practice, so they
-- come from a counter row rather than a sequence (sequences are global and
-- leak numbers on rollback). The row lock taken by
--   UPDATE ticket_counters SET last_number = last_number + 1
--   WHERE org_id = $1 RETURNING last_number
-- serialises ticket creation within one organisation until commit: keep that
-- transaction short.
CREATE TABLE ticket_counters (
    org_id      uuid PRIMARY KEY REFERENCES organizations (id) ON DELETE CASCADE,
    last_number bigint NOT NULL DEFAULT 0 CHECK (last_number >= 0)
);

-- Every organisation gets its counter row, so the UPDATE above always finds one.
-- +goose StatementBegin
CREATE FUNCTION organizations_create_counter() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ticket_counters (org_id) VALUES (NEW.id) ON CONFLICT DO NOTHING;
    RETURN NEW;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER organizations_counter AFTER INSERT ON organizations
    FOR EACH ROW EXECUTE FUNCTION organizations_create_counter();

-- next_ticket_number is the same allocation as an upsert: it also works for an
-- organisation whose counter row is missing (e.g. restored from a partial dump).
-- +goose StatementBegin
CREATE FUNCTION next_ticket_number(p_org_id uuid) RETURNS bigint
LANGUAGE sql AS $$
    INSERT INTO ticket_counters AS c (org_id, last_number) VALUES (p_org_id, 1)
    ON CONFLICT (org_id) DO UPDATE SET last_number = c.last_number + 1
    RETURNING c.last_number;
$$;
-- +goose StatementEnd

CREATE TABLE users (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id              uuid NOT NULL REFERENCES organizations (id),
    email               text NOT NULL
                        CHECK (char_length(email) <= 320 AND email ~ '^[^@[:space:]]+@[^@[:space:]]+$'),
    name                text NOT NULL DEFAULT '',
    role                text NOT NULL
                        CHECK (role IN ('customer_user', 'customer_admin', 'agent', 'manager', 'admin')),
    -- NULL for customers known only by e-mail (they never set a password).
    password_hash       text,
    is_active           boolean NOT NULL DEFAULT true,
    -- The application encrypts the TOTP secret before storing it.
    totp_secret         text,
    totp_enabled        boolean NOT NULL DEFAULT false,
    -- Last accepted TOTP time step: a code is accepted once (replay protection).
    totp_last_step      bigint,
    timezone            text,
    locale              text,
    email_verified_at   timestamptz,
    failed_login_count  integer NOT NULL DEFAULT 0 CHECK (failed_login_count >= 0),
    locked_until        timestamptz,
    last_login_at       timestamptz,
    password_changed_at timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_org_id_id_key UNIQUE (org_id, id),
    CONSTRAINT users_totp_needs_secret CHECK (NOT totp_enabled OR totp_secret IS NOT NULL)
);

-- E-mail addresses are unique per organisation, case-insensitively: the same
-- person may be a customer of two tenants.
CREATE UNIQUE INDEX users_org_email_key ON users (org_id, lower(email));
CREATE INDEX users_org_role_idx ON users (org_id, role);
CREATE INDEX users_email_trgm_idx ON users USING gin (email gin_trgm_ops);
CREATE INDEX users_name_trgm_idx ON users USING gin (name gin_trgm_ops);

CREATE TRIGGER users_updated_at BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Refresh tokens rotate on every use; all tokens descending from one login
-- share family_id, so reuse of a spent token revokes the whole family.
CREATE TABLE refresh_tokens (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     uuid NOT NULL,
    org_id      uuid NOT NULL REFERENCES organizations (id),
    family_id   uuid NOT NULL,
    -- sha-256 of the opaque token; the token itself is never stored.
    token_hash  bytea NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    revoked_at  timestamptz,
    replaced_by uuid REFERENCES refresh_tokens (id) ON DELETE SET NULL,
    ip          text,
    user_agent  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (org_id, user_id) REFERENCES users (org_id, id) ON DELETE CASCADE
);

CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_expires_idx ON refresh_tokens (expires_at);

-- Single-use tokens sent by e-mail: password reset, address verification,
-- invitations and portal magic links.
CREATE TABLE user_tokens (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id     uuid NOT NULL REFERENCES organizations (id),
    user_id    uuid NOT NULL,
    purpose    text NOT NULL
               CHECK (purpose IN ('password_reset', 'email_verify', 'invite', 'magic_link')),
    token_hash bytea NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (org_id, user_id) REFERENCES users (org_id, id) ON DELETE CASCADE
);

CREATE INDEX user_tokens_user_idx ON user_tokens (user_id, purpose);
CREATE INDEX user_tokens_expires_idx ON user_tokens (expires_at);

-- API keys act as the user who owns them. Keys are long random strings, so a
-- plain sha-256 is enough and lets every request find its key by one index
-- lookup (a slow password hash per request would be a self-inflicted DoS).
CREATE TABLE api_keys (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id       uuid NOT NULL REFERENCES organizations (id),
    user_id      uuid NOT NULL,
    name         text NOT NULL,
    -- First characters of the key, shown in the UI to tell keys apart.
    key_prefix   text NOT NULL,
    key_hash     bytea NOT NULL UNIQUE CHECK (octet_length(key_hash) = 32),
    scopes       text[] NOT NULL DEFAULT '{}',
    last_used_at timestamptz,
    expires_at   timestamptz,
    revoked_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (org_id, user_id) REFERENCES users (org_id, id) ON DELETE CASCADE
);

CREATE INDEX api_keys_org_idx ON api_keys (org_id, created_at);
CREATE INDEX api_keys_user_idx ON api_keys (user_id);

-- +goose Down
-- Forward-only: roll back by restoring a backup.
