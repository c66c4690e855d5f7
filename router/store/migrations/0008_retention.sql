-- contact-router schema, version 8: retention (router/retention.py).
--   * anonymise_contacts(ids, pseudonyms): the one way personal data leaves a finished
--     contact. Each contact's customer id becomes its pseudonym and its attributes go,
--     its feedback comment goes (the rating stays); timings are untouched. Open contacts
--     are left alone. Returns how many contacts and comments it changed. Erasure
--     (queries.sql erase_customer) gives all of one customer's contacts one pseudonym;
--     retention gives each customer of a run one.
--   * drop_contact_event_partition(name): detach and drop one monthly partition of
--     contact_events, unless it holds an event of an open contact (then false, and
--     nothing changes). The caller sets lock_timeout: the detach needs the table to
--     itself for a moment, and must not queue the router's writes behind a long report.
--   * retention_runs: one row per run of the retention job, what it removed and up to
--     where, so the next run starts where this one stopped.
CREATE FUNCTION anonymise_contacts(ids uuid[], pseudonyms text[])
RETURNS TABLE (contacts bigint, comments bigint)
LANGUAGE sql AS $$
WITH given AS (
    SELECT * FROM unnest(ids, pseudonyms) AS g(id, pseudonym)
), anonymised AS (
    UPDATE contacts AS c SET customer_id = g.pseudonym, attributes = '{}'::jsonb
    FROM given AS g
    WHERE c.id = g.id AND c.state IN ('completed', 'abandoned')
    RETURNING c.id
), emptied AS (
    UPDATE contact_feedback AS f SET comment = ''
    FROM anonymised AS a
    WHERE f.contact_id = a.id AND f.comment <> ''
    RETURNING f.contact_id
)
SELECT (SELECT count(*) FROM anonymised), (SELECT count(*) FROM emptied)
$$;

CREATE FUNCTION drop_contact_event_partition(partition text)
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    open_events boolean;
BEGIN
    EXECUTE format(
        'SELECT EXISTS (SELECT 1 FROM contacts AS c JOIN %I AS e ON e.contact_id = c.id '
        'WHERE c.state NOT IN (''completed'', ''abandoned''))',
        partition
    ) INTO open_events;
    IF open_events THEN
        RETURN false;
    END IF;
    EXECUTE format('ALTER TABLE contact_events DETACH PARTITION %I', partition);
    EXECUTE format('DROP TABLE %I', partition);
    RETURN true;
END;
$$;

CREATE TABLE retention_runs (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    started_at           timestamptz NOT NULL,
    finished_at          timestamptz NOT NULL,
    personal_months      integer NOT NULL,
    timings_months       integer NOT NULL,
    -- Finished contacts queued before personal_cutoff have no personal data left, but
    -- for those still open at the run: the next run starts at personal_resume_at.
    personal_cutoff      timestamptz,
    personal_resume_at   timestamptz,
    -- Rows of finished contacts queued before timings_cutoff (a month's start) are gone.
    timings_cutoff       timestamptz,
    partitions_dropped   text[] NOT NULL DEFAULT '{}',
    partitions_kept      text[] NOT NULL DEFAULT '{}',
    contacts_anonymised  bigint NOT NULL DEFAULT 0,
    comments_erased      bigint NOT NULL DEFAULT 0,
    contacts_deleted     bigint NOT NULL DEFAULT 0,
    events_deleted       bigint NOT NULL DEFAULT 0,
    batches              integer NOT NULL DEFAULT 0
);
