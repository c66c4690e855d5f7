-- contact-router schema, version 6: the event stream (EventService.StreamEvents, and a
-- standby that follows the active router).
--   * event_seq numbers every contact event and agent status change in commit order:
--     both tables take `seq` from it by default. Only the active router writes these
--     tables, one transaction at a time (router/store/group_commit.py, on the connection
--     that holds the active lock), so a transaction's numbers are all above those of
--     every transaction committed before it: a reader that has seen seq N has seen every
--     row numbered below N that will ever commit (docs/architecture.md, "The event
--     stream"). Rows recorded before this version are numbered in time order.
--   * The active router sends NOTIFY contact_router_events inside each transaction that
--     records events, so readers wake when it commits.
--   * event_stream_origin: a random id drawn once per database, which with the
--     database's oid names it in every cursor, so a cursor of another database (a copy
--     made from a template keeps the id, not the oid) is refused.
CREATE SEQUENCE event_seq AS bigint;

ALTER TABLE contact_events ADD COLUMN seq bigint;
ALTER TABLE agent_status_log ADD COLUMN seq bigint;

CREATE TEMPORARY TABLE numbered ON COMMIT DROP AS
SELECT source, id, row_number() OVER (ORDER BY at, source, id) AS seq
FROM (
    SELECT 'agent' AS source, id, at FROM agent_status_log
    UNION ALL
    SELECT 'contact' AS source, id, at FROM contact_events
) AS recorded;
UPDATE contact_events AS e SET seq = n.seq
FROM numbered AS n WHERE n.source = 'contact' AND n.id = e.id;
UPDATE agent_status_log AS l SET seq = n.seq
FROM numbered AS n WHERE n.source = 'agent' AND n.id = l.id;
SELECT setval('event_seq', coalesce((SELECT max(seq) FROM numbered), 0) + 1, false);

ALTER TABLE contact_events ALTER COLUMN seq SET DEFAULT nextval('event_seq');
ALTER TABLE contact_events ALTER COLUMN seq SET NOT NULL;
ALTER TABLE agent_status_log ALTER COLUMN seq SET DEFAULT nextval('event_seq');
ALTER TABLE agent_status_log ALTER COLUMN seq SET NOT NULL;
-- A partitioned table's unique index must hold the partition key: seq is unique by
-- construction (one sequence), the index is for reading by cursor.
CREATE INDEX contact_events_seq_idx ON contact_events (seq);
CREATE UNIQUE INDEX agent_status_log_seq_idx ON agent_status_log (seq);

CREATE TABLE event_stream_origin (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    one_row     boolean NOT NULL DEFAULT true UNIQUE CHECK (one_row),
    created_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO event_stream_origin DEFAULT VALUES;
