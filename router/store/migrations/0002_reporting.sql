-- contact-router schema, version 2: reporting.
--   * contact_events partitioned by month of `at` (a DEFAULT partition catches rows for
--     a month whose partition does not exist yet; add_contact_event_partitions moves them).
--   * contact_feedback: customers' survey ratings.
--   * channel_targets: the answer targets the router runs with, so SQL reports use the
--     same thresholds as the API.
--   * reporting views: contact_timings (extended), interval_service_level,
--     agent_activity, agent_sessions. Their columns are a stable interface: later
--     versions add columns at the end, never rename or drop.

-- ---------------------------------------------------------------- contact_events by month
ALTER TABLE contact_events RENAME TO contact_events_unpartitioned;
ALTER INDEX contact_events_contact_idx RENAME TO contact_events_unpartitioned_contact_idx;
ALTER INDEX contact_events_at_idx RENAME TO contact_events_unpartitioned_at_idx;

-- LIKE keeps the columns, defaults, identity and CHECK constraints as they stand, including
-- any event kinds a migration before this one added.
CREATE TABLE contact_events (
    LIKE contact_events_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING IDENTITY,
    -- A partitioned table's primary key must hold the partition key.
    PRIMARY KEY (id, at),
    FOREIGN KEY (contact_id) REFERENCES contacts (id)
) PARTITION BY RANGE (at);
CREATE TABLE contact_events_default PARTITION OF contact_events DEFAULT;
CREATE INDEX contact_events_contact_idx ON contact_events (contact_id, id);
CREATE INDEX contact_events_at_idx ON contact_events (at);
-- Transfers are counted per report; this keeps that cheap while they are rare.
CREATE INDEX contact_events_transfer_idx ON contact_events (contact_id)
    WHERE kind = 'transferred';

-- Create the monthly partitions of contact_events for the `months` months starting with
-- the month of `first`. A month whose rows sit in the DEFAULT partition (written before
-- its partition existed) has them moved into the new partition. Returns the partitions
-- created. Safe to call again: existing partitions are left alone.
CREATE FUNCTION add_contact_event_partitions(first timestamptz, months integer)
RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    month_start timestamptz;
    month_end timestamptz;
    partition text;
BEGIN
    FOR i IN 0 .. months - 1 LOOP
        month_start := date_trunc('month', first AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
            + make_interval(months => i);
        month_end := month_start + interval '1 month';
        partition := 'contact_events_' || to_char(month_start AT TIME ZONE 'UTC', 'YYYY_MM');
        CONTINUE WHEN to_regclass(partition) IS NOT NULL;
        EXECUTE format(
            'CREATE TABLE %I (LIKE contact_events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
            partition
        );
        EXECUTE format(
            'WITH moved AS (DELETE FROM contact_events_default WHERE at >= $1 AND at < $2 '
            'RETURNING *) INSERT INTO %I SELECT * FROM moved',
            partition
        ) USING month_start, month_end;
        EXECUTE format(
            'ALTER TABLE contact_events ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
            partition, month_start, month_end
        );
        RETURN NEXT partition;
    END LOOP;
END;
$$;

-- Partitions for every month that has events, and three months ahead; then the rows.
SELECT add_contact_event_partitions(
    least(min(at), now()),
    (extract(year FROM age(date_trunc('month', now()), date_trunc('month', least(min(at), now()))))
        * 12
     + extract(month FROM age(date_trunc('month', now()), date_trunc('month', least(min(at), now()))))
    )::integer + 3
) FROM contact_events_unpartitioned;

INSERT INTO contact_events OVERRIDING SYSTEM VALUE SELECT * FROM contact_events_unpartitioned;
SELECT setval(
    pg_get_serial_sequence('contact_events', 'id'),
    coalesce((SELECT max(id) FROM contact_events_unpartitioned), 0) + 1,
    false
);
DROP TABLE contact_events_unpartitioned;

-- ---------------------------------------------------------------- feedback and targets
-- One survey answer per contact; a survey system that sends it again replaces it.
CREATE TABLE contact_feedback (
    contact_id   uuid PRIMARY KEY REFERENCES contacts (id),
    rating       smallint NOT NULL CHECK (rating BETWEEN 1 AND 5),
    comment      text NOT NULL DEFAULT '',
    source       text NOT NULL DEFAULT '',
    recorded_at  timestamptz NOT NULL
);

-- The answer target per channel and the short-abandon limit the router runs with,
-- written by the router at start (these rows are the defaults until then).
CREATE TABLE channel_targets (
    channel                text PRIMARY KEY CHECK (channel IN ('phone', 'chat', 'email')),
    answer_target_seconds  double precision NOT NULL,
    short_abandon_seconds  double precision NOT NULL
);
INSERT INTO channel_targets VALUES ('phone', 20, 5), ('chat', 60, 5), ('email', 3600, 5);

-- ---------------------------------------------------------------- indexes for reports
-- A month's contact report reads only this index (index-only scan once vacuumed).
CREATE INDEX contacts_report_idx ON contacts (queued_at)
    INCLUDE (channel, answered_at, ended_at, completed_at, abandoned_at, required_skills);
-- The agent report: contacts completed in or after the range, with who handled them.
CREATE INDEX contacts_completed_idx ON contacts (completed_at)
    INCLUDE (agent_id, answered_at, ended_at) WHERE completed_at IS NOT NULL;
-- Attendance: each agent's sign-ins and sign-outs, in time order.
CREATE INDEX agent_status_log_sessions_idx ON agent_status_log (agent_id, at)
    WHERE kind IN ('signed_in', 'signed_out');

-- ---------------------------------------------------------------- views
-- contact_timings gains, at the end: the contact's required skills, the customer's
-- rating and comment, whether it was a short abandon and whether it was answered
-- within its channel's target.
CREATE OR REPLACE VIEW contact_timings AS
SELECT
    c.id AS contact_id,
    c.channel,
    c.state,
    c.agent_id,
    c.disposition,
    c.offer_count,
    c.queued_at,
    c.offered_at,
    c.answered_at,
    c.ended_at,
    c.completed_at,
    c.abandoned_at,
    date_part('epoch', COALESCE(c.answered_at, c.abandoned_at) - c.queued_at)
        AS wait_seconds,
    date_part('epoch', c.ended_at - c.answered_at) AS talk_seconds,
    date_part('epoch', c.completed_at - c.ended_at) AS acw_seconds,
    date_part('epoch', c.completed_at - c.answered_at) AS handle_seconds,
    c.required_skills,
    f.rating,
    f.comment AS feedback_comment,
    (c.abandoned_at IS NOT NULL
        AND c.abandoned_at - c.queued_at <= make_interval(secs => t.short_abandon_seconds))
        AS short_abandon,
    (c.answered_at IS NOT NULL
        AND c.answered_at - c.queued_at <= make_interval(secs => t.answer_target_seconds))
        AS within_target
FROM contacts AS c
LEFT JOIN contact_feedback AS f ON f.contact_id = c.id
LEFT JOIN channel_targets AS t ON t.channel = c.channel;

-- Service level per 15-minute interval (by queue time) and channel, with the inputs of
-- the formula: answered within target / (answered + abandoned - short abandoned).
CREATE VIEW interval_service_level AS
SELECT
    date_bin('15 minutes', t.queued_at, TIMESTAMPTZ '2000-01-03 00:00:00+00') AS interval_start,
    t.channel,
    count(*) AS offered,
    count(*) FILTER (WHERE t.answered_at IS NOT NULL) AS answered,
    count(*) FILTER (WHERE t.abandoned_at IS NOT NULL) AS abandoned,
    count(*) FILTER (WHERE t.short_abandon) AS short_abandoned,
    count(*) FILTER (WHERE t.within_target) AS answered_within_target,
    count(*) FILTER (WHERE t.answered_at IS NULL AND t.abandoned_at IS NULL) AS still_waiting,
    (count(*) FILTER (WHERE t.within_target))::double precision / NULLIF(
        count(*) FILTER (WHERE t.answered_at IS NOT NULL)
        + count(*) FILTER (WHERE t.abandoned_at IS NOT NULL)
        - count(*) FILTER (WHERE t.short_abandon), 0) AS service_level,
    avg(t.wait_seconds) FILTER (WHERE t.answered_at IS NOT NULL) AS asa_seconds,
    avg(t.handle_seconds) AS aht_seconds,
    avg(t.acw_seconds) AS acw_seconds
FROM contact_timings AS t
GROUP BY 1, 2;

-- Every stretch of an agent's time in one status, from the status log: status is
-- offline, ready or away (with the away reason); ended_at is NULL for the current one.
CREATE VIEW agent_activity AS
SELECT
    l.agent_id,
    l.status,
    l.reason,
    l.connected,
    l.at AS started_at,
    lead(l.at) OVER w AS ended_at,
    date_part('epoch', lead(l.at) OVER w - l.at) AS seconds
FROM agent_status_log AS l
WINDOW w AS (PARTITION BY l.agent_id ORDER BY l.at, l.id);

-- Attendance: each sign-in with the sign-out that ended it (NULL while signed in).
CREATE VIEW agent_sessions AS
SELECT
    s.agent_id,
    s.at AS signed_in_at,
    (SELECT min(o.at) FROM agent_status_log AS o
     WHERE o.agent_id = s.agent_id AND o.kind = 'signed_out' AND o.at >= s.at) AS signed_out_at
FROM agent_status_log AS s
WHERE s.kind = 'signed_in';
