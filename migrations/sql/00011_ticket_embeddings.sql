-- +goose Up
-- Cheap per-ticket writes for the pipeline stages. Every stage UPDATE of
-- tickets used to be a non-HOT update (all 17 indexes, 3 of them GIN,
-- rewritten each time): the trigger bumped the indexed updated_at and the
-- pages were full.

-- 1. Ticket vectors live in their own table: writing one no longer writes a
-- new version of the ticket, and the tickets row loses ~1 KB (256 dims).
-- The vector is float32 little-endian bytea (dims = octet_length / 4): a
-- memcpy to send and to receive, where real[] costs a text or per-element
-- binary conversion on both sides.
CREATE TABLE ticket_embeddings (
    ticket_id  uuid PRIMARY KEY,
    -- No own reference to organizations: the ticket's carries it, and a
    -- second one would KEY SHARE-lock the one organisation row on every write.
    org_id     uuid NOT NULL,
    model      text NOT NULL CHECK (model <> ''),
    embedding  bytea NOT NULL CHECK (octet_length(embedding) > 0 AND octet_length(embedding) % 4 = 0),
    updated_at timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (org_id, ticket_id) REFERENCES tickets (org_id, id) ON DELETE CASCADE
);

-- Vectors do not compress; keep them in the row (up to a page) rather than in
-- TOAST, so loading a partition is one sequential read.
ALTER TABLE ticket_embeddings ALTER COLUMN embedding SET STORAGE MAIN;

-- The similar-ticket index loads one (organisation, model) partition at a time.
CREATE INDEX ticket_embeddings_org_model_idx ON ticket_embeddings (org_id, model);

-- float4send is big-endian: reverse each element's 4 bytes.
INSERT INTO ticket_embeddings (ticket_id, org_id, model, embedding, updated_at)
SELECT t.id, t.org_id, t.embedding_model,
       (SELECT string_agg(substr(b, 4, 1) || substr(b, 3, 1) || substr(b, 2, 1) || substr(b, 1, 1), ''::bytea ORDER BY i)
        FROM unnest(t.embedding) WITH ORDINALITY AS u (x, i), float4send(u.x) AS b),
       t.updated_at
FROM tickets t
WHERE t.embedding_model IS NOT NULL AND t.embedding_model <> ''
  AND cardinality(t.embedding) > 0 AND array_position(t.embedding, NULL) IS NULL;

ALTER TABLE tickets DROP COLUMN embedding, DROP COLUMN embedding_model;

-- 2. Machine annotations do not make a ticket "updated": updated_at moves
-- only when a column outside the list below changes, so the triage stage's
-- UPDATE touches no indexed column and can be a HOT update. The row is
-- compared whole, machine columns blanked, so a column added later counts
-- as a human change unless it is added here. (Measured per call: ~8 µs for
-- a one-line ticket, ~14 µs for 1 KB of text; to_jsonb(OLD/NEW) minus the
-- keys cost 50-250 µs, mostly rendering search.)
-- search is maintained by a column trigger instead of GENERATED ... STORED
-- (PostgreSQL 15 recomputes a stored generated column on every UPDATE of a
-- table with a BEFORE UPDATE trigger: 100 µs for 1 KB of text, and where
-- search sits in TOAST, from ~800 characters, the fresh value never
-- compares equal, so no update of such a ticket was HOT), so an UPDATE that does not touch subject or
-- description neither recomputes it nor rewrites it.
ALTER TABLE tickets ALTER COLUMN search DROP EXPRESSION;
-- +goose StatementBegin
CREATE FUNCTION tickets_set_search() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.search := setweight(to_tsvector('simple', coalesce(NEW.subject, '')), 'A') ||
                  setweight(to_tsvector('simple', coalesce(NEW.description, '')), 'B');
    RETURN NEW;
END;
$$;
-- +goose StatementEnd
-- Fires on INSERT and only on UPDATEs that name subject, description or
-- search itself (so search cannot be written to anything else).
CREATE TRIGGER tickets_search BEFORE INSERT OR UPDATE OF subject, description, search ON tickets
    FOR EACH ROW EXECUTE FUNCTION tickets_set_search();

-- +goose StatementBegin
CREATE FUNCTION tickets_set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    o tickets := OLD;
    n tickets := NEW;
BEGIN
    -- The statement set updated_at itself (gorm does): keep its value.
    IF NEW.updated_at IS DISTINCT FROM OLD.updated_at THEN
        RETURN NEW;
    END IF;
    o.ai_suggested_service_id := NULL; n.ai_suggested_service_id := NULL;
    o.ai_suggested_priority := NULL;   n.ai_suggested_priority := NULL;
    o.ai_suggested_category := NULL;   n.ai_suggested_category := NULL;
    o.ai_confidence := NULL;           n.ai_confidence := NULL;
    o.ai_suggested_at := NULL;         n.ai_suggested_at := NULL;
    -- search is derived from subject and description (tickets_search).
    o.search := NULL;                  n.search := NULL;
    -- *<> compares the stored images: no equality operator needed for any
    -- column type, and a value rewritten unchanged is no change.
    IF o *<> n THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END;
$$;
-- +goose StatementEnd

CREATE OR REPLACE TRIGGER tickets_updated_at BEFORE UPDATE ON tickets
    FOR EACH ROW EXECUTE FUNCTION tickets_set_updated_at();

-- Free space on every new page for the next version of its rows, so an
-- update that changes no indexed column stays on the page (HOT). 80: in a
-- 5,000-ticket run every triage UPDATE was HOT with one-line descriptions at
-- 80-90 and with 400-character ones only at 80 (90 and 100: 80 %). Existing
-- pages keep their fill until rewritten (VACUUM FULL, pg_repack).
ALTER TABLE tickets SET (fillfactor = 80);

-- +goose Down
-- Forward-only: roll back by restoring a backup.
