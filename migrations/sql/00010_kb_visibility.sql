-- +goose Up
-- Knowledge base: staff-only (internal) articles, and rich-text bodies kept
-- the way comments keep theirs.

-- public: customers of the organisation read it once published;
-- internal: staff only, published or not.
ALTER TABLE kb_articles
    ADD COLUMN visibility text NOT NULL DEFAULT 'public' CHECK (visibility IN ('public', 'internal')),
    -- Sanitised HTML rendering of content (bluemonday), NULL for plain text.
    -- content stays the plain text: search, AI suggestions and excerpts use it.
    ADD COLUMN content_html text;

-- Lists page by id (UUIDv7, newest first) within an organisation.
CREATE INDEX kb_articles_org_id_idx ON kb_articles (org_id, id);

-- +goose Down
-- Forward-only: roll back by restoring a backup.
