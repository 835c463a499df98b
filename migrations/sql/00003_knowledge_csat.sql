-- +goose Up
-- Knowledge base and customer satisfaction surveys.

CREATE TABLE kb_categories (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id      uuid NOT NULL REFERENCES organizations (id),
    name        text NOT NULL CHECK (btrim(name) <> ''),
    slug        text NOT NULL CHECK (slug ~ '^[a-z0-9]([a-z0-9-]*[a-z0-9])?$'),
    description text NOT NULL DEFAULT '',
    position    integer NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT kb_categories_org_id_id_key UNIQUE (org_id, id),
    CONSTRAINT kb_categories_org_slug_key UNIQUE (org_id, slug)
);

CREATE TRIGGER kb_categories_updated_at BEFORE UPDATE ON kb_categories
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE kb_articles (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id       uuid NOT NULL REFERENCES organizations (id),
    category_id  uuid,
    title        text NOT NULL CHECK (btrim(title) <> ''),
    slug         text NOT NULL CHECK (slug ~ '^[a-z0-9]([a-z0-9-]*[a-z0-9])?$'),
    content      text NOT NULL DEFAULT '',
    is_published boolean NOT NULL DEFAULT false,
    published_at timestamptz,
    author_id    uuid,
    view_count   bigint NOT NULL DEFAULT 0 CHECK (view_count >= 0),
    -- Same 'simple' configuration as tickets.search, for the same reason.
    search       tsvector GENERATED ALWAYS AS (
                     setweight(to_tsvector('simple', coalesce(title, '')), 'A') ||
                     setweight(to_tsvector('simple', coalesce(content, '')), 'B')
                 ) STORED,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT kb_articles_org_slug_key UNIQUE (org_id, slug),
    FOREIGN KEY (org_id, category_id) REFERENCES kb_categories (org_id, id) ON DELETE SET NULL (category_id),
    FOREIGN KEY (org_id, author_id) REFERENCES users (org_id, id) ON DELETE SET NULL (author_id)
);

CREATE INDEX kb_articles_category_idx ON kb_articles (org_id, category_id);
CREATE INDEX kb_articles_published_idx ON kb_articles (org_id, updated_at) WHERE is_published;
CREATE INDEX kb_articles_search_idx ON kb_articles USING gin (search);
CREATE INDEX kb_articles_title_trgm_idx ON kb_articles USING gin (title gin_trgm_ops);

CREATE TRIGGER kb_articles_updated_at BEFORE UPDATE ON kb_articles
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- One survey per ticket, sent when it is resolved. Customers answer through a
-- link carrying a random token (they need not log in); only its sha-256 is kept.
CREATE TABLE csat_surveys (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id       uuid NOT NULL REFERENCES organizations (id),
    ticket_id    uuid NOT NULL UNIQUE,
    requester_id uuid NOT NULL,
    token_hash   bytea UNIQUE CHECK (octet_length(token_hash) = 32),
    rating       smallint CHECK (rating BETWEEN 1 AND 5),
    comment      text,
    invited_at   timestamptz NOT NULL DEFAULT now(),
    responded_at timestamptz,
    -- A response always carries a rating; an open invitation never does.
    CONSTRAINT csat_surveys_response_has_rating CHECK ((rating IS NULL) = (responded_at IS NULL)),
    FOREIGN KEY (org_id, ticket_id) REFERENCES tickets (org_id, id) ON DELETE CASCADE,
    FOREIGN KEY (org_id, requester_id) REFERENCES users (org_id, id)
);

CREATE INDEX csat_surveys_org_responded_idx ON csat_surveys (org_id, responded_at)
    WHERE responded_at IS NOT NULL;
CREATE INDEX csat_surveys_requester_idx ON csat_surveys (requester_id);

-- +goose Down
-- Forward-only: roll back by restoring a backup.
