-- Every SQL statement of contact-router, as named blocks:
--   -- name --
--   -- what it is for
--   the statement
-- Loaded once by router/store/queries.py.

-- insert_contact --
-- Record a newly submitted contact (with its 'submitted' event, written alongside).
INSERT INTO contacts (
    id, idempotency_key, channel, customer_id, attributes, required_skills,
    priority_boost, state, queued_at, updated_at,
    preferred_skills, preferred_agent_id, preferred_agent_source
) VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, $9, $10, $11, $12);

-- update_contact --
-- Write a contact's current state and timestamps after a transition (and its skills,
-- preferences and priority, which a transfer, a fallback or a supervisor may change).
UPDATE contacts SET
    state = $2,
    offered_at = $3,
    answered_at = $4,
    ended_at = $5,
    completed_at = $6,
    abandoned_at = $7,
    agent_id = $8,
    offer_id = $9,
    disposition = $10,
    offer_count = $11,
    updated_at = $12,
    required_skills = $13,
    preferred_skills = $14,
    preferred_agent_id = $15,
    preferred_agent_source = $16,
    priority_boost = $17,
    cancelled_at = $18
WHERE id = $1;

-- insert_contact_event --
-- Append one transition to the contact's history (with the supervisor who made it and
-- why, for a supervisor's action).
INSERT INTO contact_events (
    contact_id, kind, at, agent_id, offer_id, reason, supervisor, supervisor_reason
) VALUES ($1, $2, $3, $4, $5, $6, $7, $8);

-- upsert_agent --
-- Remember an agent and the skills and team of its latest sign-in.
INSERT INTO agents (id, skills, first_seen_at, last_seen_at, team) VALUES ($1, $2, $3, $3, $4)
ON CONFLICT (id) DO UPDATE SET
    skills = EXCLUDED.skills, last_seen_at = EXCLUDED.last_seen_at, team = EXCLUDED.team;

-- insert_agent_status --
-- Append one status or presence change to the agent status log (a sign-in with the team
-- it gave, '' otherwise; the supervisor who made it and why, for a supervisor's action).
INSERT INTO agent_status_log (
    agent_id, kind, status, reason, connected, at, team, supervisor, supervisor_reason
) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9);

-- upsert_callback --
-- Write a callback's row (number, window, dials) and its contact's channel (a chat or
-- email that became a callback is a phone contact now), after each of its transitions.
WITH moved AS (
    UPDATE contacts SET channel = $2 WHERE id = $1 AND channel <> $2
)
INSERT INTO callbacks (
    contact_id, number, requested_from, requested_at, not_before, not_after, attempts,
    placed_at, reached_at, retry_at, unreached_at, last_outcome
) VALUES ($1, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
ON CONFLICT (contact_id) DO UPDATE SET
    number = EXCLUDED.number, not_before = EXCLUDED.not_before,
    not_after = EXCLUDED.not_after, attempts = EXCLUDED.attempts,
    placed_at = EXCLUDED.placed_at, reached_at = EXCLUDED.reached_at,
    retry_at = EXCLUDED.retry_at, unreached_at = EXCLUDED.unreached_at,
    last_outcome = EXCLUDED.last_outcome;

-- record_closed_wait --
-- The seconds of a contact's wait during which its hours of operation said closed,
-- written when its wait ends with some (a center without hours never writes it).
UPDATE contacts SET closed_wait_seconds = $2 WHERE id = $1;

-- write --
-- Any one of the seven writes above, chosen by $1 (the statement's name), with its
-- arguments in its own slots: insert_contact $2-$13, update_contact $14-$31,
-- insert_contact_event $32-$39, upsert_agent $40-$43, insert_agent_status $44-$52,
-- upsert_callback $53-$65, record_closed_wait $66-$67.
-- The group commit sends a small batch as one executemany of this statement, in the
-- order the writes were made: one round trip, one implicit transaction (asyncpg's
-- executemany is atomic), where a statement per kind needs BEGIN, one executemany
-- per kind, notify_events and COMMIT (what it still does for a larger batch, which
-- costs PostgreSQL less per row that way).
WITH insert_contact AS (
    INSERT INTO contacts (
        id, idempotency_key, channel, customer_id, attributes, required_skills,
        priority_boost, state, queued_at, updated_at,
        preferred_skills, preferred_agent_id, preferred_agent_source
    )
    SELECT $2::uuid, $3::text, $4::text, $5::text, $6::jsonb, $7::text[], $8::float8,
        $9::text, $10::timestamptz, $10::timestamptz, $11::text[], $12::text, $13::text
    WHERE $1::text = 'insert_contact'
), update_contact AS (
    UPDATE contacts SET
        state = $15::text,
        offered_at = $16::timestamptz,
        answered_at = $17::timestamptz,
        ended_at = $18::timestamptz,
        completed_at = $19::timestamptz,
        abandoned_at = $20::timestamptz,
        agent_id = $21::text,
        offer_id = $22::uuid,
        disposition = $23::text,
        offer_count = $24::int4,
        updated_at = $25::timestamptz,
        required_skills = $26::text[],
        preferred_skills = $27::text[],
        preferred_agent_id = $28::text,
        preferred_agent_source = $29::text,
        priority_boost = $30::float8,
        cancelled_at = $31::timestamptz
    WHERE $1::text = 'update_contact' AND id = $14::uuid
), insert_contact_event AS (
    INSERT INTO contact_events (
        contact_id, kind, at, agent_id, offer_id, reason, supervisor, supervisor_reason
    )
    SELECT $32::uuid, $33::text, $34::timestamptz, $35::text, $36::uuid, $37::text,
        $38::text, $39::text
    WHERE $1::text = 'insert_contact_event'
), upsert_agent AS (
    INSERT INTO agents (id, skills, first_seen_at, last_seen_at, team)
    SELECT $40::text, $41::text[], $42::timestamptz, $42::timestamptz, $43::text
    WHERE $1::text = 'upsert_agent'
    ON CONFLICT (id) DO UPDATE SET
        skills = EXCLUDED.skills, last_seen_at = EXCLUDED.last_seen_at, team = EXCLUDED.team
), insert_agent_status AS (
    INSERT INTO agent_status_log (
        agent_id, kind, status, reason, connected, at, team, supervisor, supervisor_reason
    )
    SELECT $44::text, $45::text, $46::text, $47::text, $48::bool, $49::timestamptz, $50::text,
        $51::text, $52::text
    WHERE $1::text = 'insert_agent_status'
), moved AS (
    UPDATE contacts SET channel = $54::text
    WHERE $1::text = 'upsert_callback' AND id = $53::uuid AND channel <> $54::text
), upsert_callback AS (
    INSERT INTO callbacks (
        contact_id, number, requested_from, requested_at, not_before, not_after, attempts,
        placed_at, reached_at, retry_at, unreached_at, last_outcome
    )
    SELECT $53::uuid, $55::text, $56::text, $57::timestamptz, $58::timestamptz,
        $59::timestamptz, $60::int4, $61::timestamptz, $62::timestamptz, $63::timestamptz,
        $64::timestamptz, $65::text
    WHERE $1::text = 'upsert_callback'
    ON CONFLICT (contact_id) DO UPDATE SET
        number = EXCLUDED.number, not_before = EXCLUDED.not_before,
        not_after = EXCLUDED.not_after, attempts = EXCLUDED.attempts,
        placed_at = EXCLUDED.placed_at, reached_at = EXCLUDED.reached_at,
        retry_at = EXCLUDED.retry_at, unreached_at = EXCLUDED.unreached_at,
        last_outcome = EXCLUDED.last_outcome
), record_closed_wait AS (
    UPDATE contacts SET closed_wait_seconds = $67::float8
    WHERE $1::text = 'record_closed_wait' AND id = $66::uuid
)
-- From each write that records an event, inside the transaction: readers of the
-- event stream (and a standby) wake when the batch commits (PostgreSQL sends one
-- notification per transaction for the same channel and payload).
SELECT pg_notify('contact_router_events', '')
WHERE $1::text IN ('insert_contact_event', 'insert_agent_status');

-- try_active_lock --
-- Become the active router of this database: a session-level advisory lock, held by
-- the connection that writes, so that only the lock holder's writes can commit.
SELECT pg_try_advisory_lock($1);

-- active_lock_holder --
-- The backend holding the active router's lock, if any.
SELECT pid FROM pg_locks
WHERE locktype = 'advisory' AND granted AND database = (
    SELECT oid FROM pg_database WHERE datname = current_database()
) AND objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) = $1;

-- end_backend --
-- End our own earlier session that PostgreSQL still thinks is alive (its network
-- connection died silently), so that its lock is released.
SELECT pg_terminate_backend($1);

-- heartbeat --
-- An idle writer checks its session every second: a dead one means lost lock or outage.
SELECT 1;

-- contact_by_id --
-- One contact, for GetContact once it has left memory.
SELECT * FROM contacts WHERE id = $1;

-- contact_by_key --
-- The contact a gateway submitted with this idempotency key, if any.
SELECT * FROM contacts WHERE idempotency_key = $1;

-- open_contacts --
-- Contacts not yet finished (completed, abandoned, unreached, cancelled), to rebuild the
-- queue on start: the columns of a Contact in the order of its fields
-- (store.contacts_from_rows builds each one from them by position: restoring 500,000
-- contacts costs per row and per column).
-- What is cheapest for PostgreSQL to write and the router to read, measured at 500,000:
-- queued_at as epoch seconds (this century's in a float8 are within 0.25 us of the
-- instant, and datetime.fromtimestamp rounds to the microsecond: exact; asyncpg's
-- timestamptz took 1.1 s of the router's CPU, the float and fromtimestamp 0.4 s, and
-- to_char's ISO text cost PostgreSQL 2 to 3 s), the ids
-- as text (not a UUID object, then its text), and NULL for empty attributes and
-- preferred skills. In no order: the restore orders them itself (sorting them here too
-- cost 0.6 s).
SELECT id::text, idempotency_key, channel, customer_id, date_part('epoch', queued_at),
       NULLIF(attributes, '{}'), required_skills, priority_boost,
       NULLIF(preferred_skills, '{}'), preferred_agent_id,
       preferred_agent_source, state, offered_at, answered_at, ended_at, completed_at,
       abandoned_at, agent_id, offer_id::text, disposition, offer_count
FROM contacts WHERE state NOT IN ('completed', 'abandoned', 'unreached', 'cancelled');

-- contacts_by_ids --
-- Contacts by id, with the columns of open_contacts: a standby reads again the contacts
-- that the events it follows name (router/store/follow.py).
SELECT id::text, idempotency_key, channel, customer_id, date_part('epoch', queued_at),
       NULLIF(attributes, '{}'), required_skills, priority_boost,
       NULLIF(preferred_skills, '{}'), preferred_agent_id,
       preferred_agent_source, state, offered_at, answered_at, ended_at, completed_at,
       abandoned_at, agent_id, offer_id::text, disposition, offer_count
FROM contacts WHERE id = ANY($1::uuid[]);

-- open_callbacks --
-- The callback rows of the contacts open_contacts reads (store.with_callbacks attaches
-- them), apart so that the restore of the many contacts that are not callbacks pays
-- nothing for them.
SELECT b.* FROM callbacks AS b JOIN contacts AS c ON c.id = b.contact_id
WHERE c.state NOT IN ('completed', 'abandoned', 'unreached', 'cancelled');

-- callbacks_of --
-- The callback rows of these contacts (those that are callbacks).
SELECT * FROM callbacks WHERE contact_id = ANY($1::uuid[]);

-- previous_agents --
-- The agents who completed the $1 most recent contacts, newest first: the router
-- remembers each customer's previous agent from them on start.
SELECT customer_id, agent_id FROM contacts
WHERE completed_at IS NOT NULL AND agent_id IS NOT NULL
ORDER BY completed_at DESC
LIMIT $1;

-- answers_since --
-- Each answer since $1 with its agent and channel, oldest first: the hourly caps
-- count them again on start.
SELECT e.agent_id, c.channel, e.at
FROM contact_events e JOIN contacts c ON c.id = e.contact_id
WHERE e.kind = 'answered' AND e.at >= $1 AND e.agent_id IS NOT NULL
ORDER BY e.at, e.id;

-- contact_events_of --
-- A contact's history in order.
SELECT kind, at, agent_id, offer_id, reason, supervisor, supervisor_reason FROM contact_events
WHERE contact_id = $1 ORDER BY id;

-- ====================================================================== event stream
-- Reads for the event stream and the standby (router/store/event_feed.py). seq is the
-- commit order of both tables (migration 0006).

-- events_after --
-- Up to $2 contact events and agent status changes numbered above $1, in commit order.
-- A contact event carries its contact's channel, customer, attributes and skills, and
-- those timings (with the disposition) that had happened by the event, so the same
-- event reads the same however late it is read (but offered_at: the latest offer up to
-- then that is still recorded). An agent event has no contact_id.
WITH recorded AS (
    (SELECT e.seq, e.at, e.kind, e.contact_id, e.agent_id, e.offer_id, e.reason,
            NULL::text AS status, NULL::boolean AS connected, e.supervisor,
            e.supervisor_reason
     FROM contact_events AS e WHERE e.seq > $1 ORDER BY e.seq LIMIT $2)
    UNION ALL
    (SELECT l.seq, l.at, l.kind, NULL::uuid, l.agent_id, NULL::uuid, l.reason,
            l.status, l.connected, l.supervisor, l.supervisor_reason
     FROM agent_status_log AS l WHERE l.seq > $1 ORDER BY l.seq LIMIT $2)
    ORDER BY seq LIMIT $2
)
SELECT
    r.*,
    c.channel, c.customer_id, c.attributes, c.required_skills, c.queued_at,
    CASE WHEN c.offered_at <= r.at THEN c.offered_at END AS offered_at,
    CASE WHEN c.answered_at <= r.at THEN c.answered_at END AS answered_at,
    CASE WHEN c.ended_at <= r.at THEN c.ended_at END AS ended_at,
    CASE WHEN c.completed_at <= r.at THEN c.completed_at END AS completed_at,
    CASE WHEN c.abandoned_at <= r.at THEN c.abandoned_at END AS abandoned_at,
    CASE WHEN c.completed_at <= r.at THEN c.disposition END AS disposition,
    CASE WHEN c.cancelled_at <= r.at THEN c.cancelled_at END AS cancelled_at
FROM recorded AS r
LEFT JOIN contacts AS c ON c.id = r.contact_id
ORDER BY r.seq;

-- event_origin --
-- What names this database in a cursor (its random origin id and its oid), and the
-- highest number handed out so far (a cursor above it is from the future).
SELECT o.id AS origin,
       (SELECT d.oid FROM pg_database AS d WHERE d.datname = current_database())::bigint AS oid,
       (SELECT CASE WHEN s.is_called THEN s.last_value ELSE s.last_value - 1 END FROM event_seq AS s) AS last_seq
FROM event_stream_origin AS o;

-- last_event_seq --
-- The highest number handed out so far (committed or not).
SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM event_seq;

-- last_committed_event_seq --
-- The highest number committed (0 for none): a follower that starts here misses
-- nothing, since a transaction still in flight numbers above it (one writer).
SELECT greatest(
    coalesce((SELECT max(seq) FROM contact_events), 0),
    coalesce((SELECT max(seq) FROM agent_status_log), 0)
);

-- requeue_voided --
-- A takeover's voided offers ($1, the contacts; $2, the takeover's instant), in one
-- statement: each offered contact is queued again at its place (only state, agent and
-- offer change: the rest of the row is what the restart read) with its 'requeued'
-- event. 5,000 voided offers were 10,000 rows of update_contact and
-- insert_contact_event, seconds of commit while nobody was routed (bench/RESULTS.md).
WITH requeued AS (
    UPDATE contacts SET state = 'queued', agent_id = NULL, offer_id = NULL, updated_at = $2
    WHERE id = ANY($1::uuid[])
    RETURNING id
)
INSERT INTO contact_events (contact_id, kind, at, reason)
SELECT id, 'requeued', $2, 'restart' FROM requeued;

-- notify_events --
-- Sent inside each grouped transaction that records events (see write for the
-- others): readers wake when it commits.
SELECT pg_notify('contact_router_events', '');

-- ====================================================================== reporting
-- Reads for ReportingService and `contact-router report` (router/store/reports.py).
-- Contacts count in the interval in which they were queued; agent time is cut at the
-- range's edges and at $as_of (now) for what is still going on.

-- reporting_database --
-- At start, on ROUTER_REPORTING_DATABASE_URL: it answers, and whether it is a standby.
SELECT pg_is_in_recovery() AS in_recovery;

-- report_contacts --
-- Per interval, channel (and required skill when $8) for contacts queued in [$1, $2):
-- volumes, service-level inputs and timings. Intervals are in the time zone $10 (an IANA
-- name): $4, when set, is a calendar unit ('day', 'week', 'month', 'year') and an
-- interval begins at local midnight (date_trunc with the zone: a day across a
-- daylight-saving change is 23 or 25 hours); otherwise $3 is the interval length (15 or
-- 30 minutes, an hour), binned on the zone's clock: a contact's interval starts at its
-- instant less how far its local time is into the local bin, so an hour in a zone 30
-- minutes off UTC starts at the local hour, and the repeated hour of an autumn change
-- gives two intervals. $5 channels, $6 their thresholds, $7 the short-abandon seconds.
-- Teams: with $11 (by team) each row is also per team, and $12 (unless NULL) keeps only
-- the contacts of that team. A contact's team is its agent's when it handled it: the
-- team of the agent's latest sign-in at or before the contact's last change
-- (agent_status_log_team_idx, one lookup per answered contact, only when teams are
-- asked for); a contact nobody answered has none (''). The one count of service level: GetServiceLevel, GetContactReport and
-- staffing from history all read it (the view interval_service_level counts by the same
-- definitions for readers of SQL). Transfers are events of kind 'transferred' (0 until
-- such events exist). A cancelled contact (a supervisor's: not a customer) counts in
-- offered and in cancelled, in neither term of service level, and is not still waiting.
-- $9 detail: false leaves out what only GetContactReport shows and what costs most: the
-- returning customers (0), the transfers (0) and the 90th percentile wait (NULL). Report
-- reads run with plan_cache_mode = force_custom_plan, so PostgreSQL plans each call with
-- $9 as a constant: false removes the history join (nothing refers to it), and the
-- transfers read is a one-time filter that is false (in a generic plan the history
-- lookup is one too, evaluated per contact but reading nothing).
-- Returning customers: an answered contact whose customer had a contact completed (any
-- channel, any time) before this one was queued; to the previous agent when its first
-- answer was by the agent who completed the latest of those. Each customer's completions
-- are read once (contacts_customer_idx, index only; Memoize caches them per customer) as
-- arrays sorted by completed_at, where width_bucket finds the latest before queued_at.
-- The first answerer is the contact's agent_id when it was offered at most once (every
-- answer takes an offer: one answer, no transfer); otherwise its first 'answered' event,
-- which is at answered_at (a transfer keeps the first answer), read only for returning
-- contacts. OFFSET 0 keeps timed's flags computed before the sort, not its arrays sorted.
-- The 90th percentile is taken from each group's array of answered waits rather than by
-- percentile_cont over the rows: an ordered-set aggregate makes PostgreSQL sort every row
-- by group even when its filter is false, an array_agg lets it hash the groups.
WITH thresholds AS (
    SELECT * FROM unnest($5::text[], $6::double precision[]) AS t(channel, threshold)
),
timed AS (
    SELECT
        CASE WHEN $4::text IS NOT NULL THEN date_trunc($4::text, c.queued_at, $10::text)
             ELSE c.queued_at - (
                 (c.queued_at AT TIME ZONE $10::text)
                 - date_bin($3::interval, c.queued_at AT TIME ZONE $10::text,
                            TIMESTAMP '2000-01-03 00:00:00')
             )
        END AS interval_start,
        c.id,
        c.channel,
        c.answered_at IS NOT NULL AS answered,
        c.abandoned_at IS NOT NULL AS abandoned,
        c.cancelled_at IS NOT NULL AS cancelled,
        date_part('epoch', c.answered_at - c.queued_at) - c.closed_wait_seconds <= th.threshold
            AS within_threshold,
        c.required_skills,
        date_part('epoch', COALESCE(c.answered_at, c.abandoned_at) - c.queued_at)
            AS wait_seconds,
        -- The wait while its hours said open (hours of operation): service level, short
        -- abandons and ASA count it; the wait figures stay the customer's whole wait.
        date_part('epoch', COALESCE(c.answered_at, c.abandoned_at) - c.queued_at)
            - c.closed_wait_seconds AS open_wait_seconds,
        date_part('epoch', c.ended_at - c.answered_at) AS talk_seconds,
        date_part('epoch', c.completed_at - c.ended_at) AS acw_seconds,
        date_part('epoch', c.completed_at - c.answered_at) AS handle_seconds,
        previous.agent_id IS NOT NULL AS returning,
        CASE WHEN c.offer_count <= 1 AND c.agent_id IS NOT NULL
                 THEN previous.agent_id = c.agent_id
             WHEN previous.agent_id IS NOT NULL
                 THEN previous.agent_id = (
                     SELECT e.agent_id FROM contact_events AS e
                     WHERE e.contact_id = c.id AND e.kind = 'answered' AND e.at = c.answered_at
                     ORDER BY e.id LIMIT 1
                 )
        END AS to_previous_agent,
        coalesce(handled_by.team, '') AS team
    FROM contacts AS c
    JOIN thresholds AS th ON th.channel = c.channel
    LEFT JOIN LATERAL (
        SELECT
            array_agg(p.completed_at ORDER BY p.completed_at, p.agent_id) AS completed_at,
            array_agg(p.agent_id ORDER BY p.completed_at, p.agent_id) AS agent_id
        FROM contacts AS p
        WHERE $9::boolean
          AND p.customer_id = c.customer_id AND p.queued_at < $2 AND p.completed_at < $2
    ) AS history ON true
    CROSS JOIN LATERAL (
        SELECT CASE WHEN $9::boolean AND c.answered_at IS NOT NULL THEN history.agent_id[
            width_bucket(c.queued_at - INTERVAL '1 microsecond', history.completed_at)
        ] END AS agent_id
    ) AS previous
    LEFT JOIN LATERAL (
        SELECT l.team FROM agent_status_log AS l
        WHERE ($11::boolean OR $12::text IS NOT NULL) AND c.answered_at IS NOT NULL
          AND l.agent_id = c.agent_id AND l.kind = 'signed_in' AND l.at <= c.updated_at
        ORDER BY l.at DESC LIMIT 1
    ) AS handled_by ON true
    WHERE c.queued_at >= $1 AND c.queued_at < $2
      AND ($12::text IS NULL OR coalesce(handled_by.team, '') = $12::text)
      -- Queued callbacks count apart (report_callbacks), never in these figures.
      AND NOT EXISTS (SELECT 1 FROM callbacks AS b WHERE b.contact_id = c.id)
    OFFSET 0
),
transfers AS (
    SELECT e.contact_id, count(*) AS transfers
    FROM contact_events AS e
    WHERE $9::boolean AND e.kind = 'transferred' AND e.at >= $1
    GROUP BY e.contact_id
),
figures AS (
    -- The doubles first, then the flags: the sort's tuples (a million for a month) are
    -- smaller without the alignment padding between them.
    SELECT
        t.interval_start,
        t.channel,
        s.skill,
        t.team,
        avg(t.handle_seconds) AS aht_seconds,
        avg(t.talk_seconds) AS mean_talk_seconds,
        avg(t.acw_seconds) AS mean_acw_seconds,
        max(t.wait_seconds) AS longest_wait_seconds,
        coalesce(sum(t.wait_seconds), 0) AS total_wait_seconds,
        coalesce(sum(tr.transfers), 0)::bigint AS transfers,
        count(*) AS offered,
        count(*) FILTER (WHERE t.answered) AS answered,
        count(*) FILTER (WHERE t.abandoned) AS abandoned,
        count(*) FILTER (WHERE t.abandoned AND t.open_wait_seconds <= $7) AS short_abandoned,
        count(*) FILTER (WHERE t.within_threshold) AS answered_within_threshold,
        count(*) FILTER (WHERE NOT t.answered AND NOT t.abandoned AND NOT t.cancelled)
            AS still_waiting,
        count(*) FILTER (WHERE t.cancelled) AS cancelled,
        avg(t.open_wait_seconds) FILTER (WHERE t.answered) AS asa_seconds,
        array_agg(t.wait_seconds) FILTER (WHERE $9::boolean AND t.answered) AS answered_waits,
        count(*) FILTER (WHERE t.returning) AS returning_answered,
        count(*) FILTER (WHERE t.to_previous_agent) AS returning_to_previous_agent
    FROM timed AS t
    CROSS JOIN LATERAL unnest(
        CASE WHEN $8::boolean AND cardinality(t.required_skills) > 0 THEN t.required_skills
             ELSE ARRAY['']::text[] END
    ) AS s(skill)
    LEFT JOIN transfers AS tr ON tr.contact_id = t.id
    GROUP BY 1, 2, 3, 4
)
SELECT
    f.interval_start, f.channel, f.skill, f.team, th.threshold, f.aht_seconds, f.mean_talk_seconds,
    f.mean_acw_seconds, f.longest_wait_seconds, f.total_wait_seconds, f.transfers, f.offered,
    f.answered, f.abandoned, f.short_abandoned, f.answered_within_threshold, f.still_waiting,
    f.asa_seconds, f.returning_answered, f.returning_to_previous_agent, f.cancelled,
    (SELECT percentile_cont(0.9) WITHIN GROUP (ORDER BY w) FROM unnest(f.answered_waits) AS w)
        AS p90_wait_seconds
FROM figures AS f
JOIN thresholds AS th ON th.channel = f.channel
ORDER BY f.interval_start, f.channel, f.skill, f.team;

-- report_callbacks --
-- Per interval and channel the customer first came on (requested_from), the queued
-- callbacks queued in [$1, $2), binned as report_contacts bins them ($3 length, $4
-- calendar unit, $5 IANA time zone): a callback counts in the interval its contact was
-- queued in, so "calls created from chat and email" sit where those chats and emails
-- would have. $6 is the callback target, seconds: a callback is placed within it when
-- its first dial came at most that long after its start, queued_at or, when the customer
-- asked for later, not_before. Unreached callbacks never dialled (their window closed
-- first) are counted apart, for the service level's denominator. Each callback is in
-- exactly one of reached, unreached, cancelled (by the customer), cancelled by a
-- supervisor and waiting: one reached counts as reached whatever came after (a
-- transferred customer who then hung up was reached), so the five add up to requested.
SELECT
    CASE WHEN $4::text IS NOT NULL THEN date_trunc($4::text, c.queued_at, $5::text)
         ELSE c.queued_at - (
             (c.queued_at AT TIME ZONE $5::text)
             - date_bin($3::interval, c.queued_at AT TIME ZONE $5::text,
                        TIMESTAMP '2000-01-03 00:00:00')
         )
    END AS interval_start,
    b.requested_from,
    count(*) AS requested,
    count(*) FILTER (WHERE b.placed_at IS NOT NULL) AS placed,
    count(*) FILTER (
        WHERE b.placed_at <= greatest(c.queued_at, b.not_before) + make_interval(secs => $6)
    ) AS placed_within_target,
    count(*) FILTER (WHERE b.reached_at IS NOT NULL) AS reached,
    count(*) FILTER (WHERE c.state = 'unreached') AS unreached,
    count(*) FILTER (WHERE c.state = 'unreached' AND b.placed_at IS NULL)
        AS unreached_before_dial,
    count(*) FILTER (WHERE c.state = 'abandoned' AND b.reached_at IS NULL) AS cancelled,
    count(*) FILTER (WHERE c.state = 'cancelled' AND b.reached_at IS NULL)
        AS cancelled_by_supervisor,
    count(*) FILTER (
        WHERE b.reached_at IS NULL AND c.state NOT IN ('unreached', 'abandoned', 'cancelled')
    ) AS waiting,
    coalesce(sum(b.attempts), 0)::bigint AS dials,
    avg(date_part('epoch', b.placed_at - c.queued_at)) AS mean_seconds_to_placed,
    avg(date_part('epoch', b.reached_at - c.queued_at)) AS mean_seconds_to_reached
FROM callbacks AS b
JOIN contacts AS c ON c.id = b.contact_id
WHERE c.queued_at >= $1 AND c.queued_at < $2
GROUP BY 1, 2
ORDER BY 1, 2;

-- report_callback_work --
-- Phone agents' time on queued callbacks begun in [$1, $2), per interval binned as
-- report_contacts bins them ($3 length, $4 IANA time zone; staffing's intervals are of
-- fixed length), counted in the interval the work began: each dial from its `dialled`
-- event (the agent accepted the offer) to the contact's next event (its outcome,
-- `reached` or `dial_failed`; `requeued` when the agent was lost meanwhile), and each
-- reached callback's handle time from its `reached` event to completed_at (talk and
-- wrap-up, as AHT counts them). A dial or conversation still going on counts once it
-- ends. The dials and reached events of the range come from contact_events_dial_idx
-- (migration 0017: those kinds only, in the partitions of the range), each dial's next
-- event from contact_events_contact_idx.
WITH work AS (
    SELECT e.at AS began, e.kind, n.at AS ended
    FROM contact_events AS e
    JOIN LATERAL (
        SELECT x.at FROM contact_events AS x
        WHERE x.contact_id = e.contact_id AND x.id > e.id
        ORDER BY x.id LIMIT 1
    ) AS n ON true
    WHERE e.kind = 'dialled' AND e.at >= $1 AND e.at < $2
    UNION ALL
    SELECT e.at, e.kind, c.completed_at
    FROM contact_events AS e
    JOIN contacts AS c ON c.id = e.contact_id
    WHERE e.kind = 'reached' AND e.at >= $1 AND e.at < $2 AND c.completed_at IS NOT NULL
)
SELECT
    began - ((began AT TIME ZONE $4::text)
             - date_bin($3::interval, began AT TIME ZONE $4::text,
                        TIMESTAMP '2000-01-03 00:00:00')) AS interval_start,
    count(*) FILTER (WHERE kind = 'dialled') AS dials,
    coalesce(sum(date_part('epoch', ended - began)) FILTER (WHERE kind = 'dialled'), 0)
        AS dial_seconds,
    count(*) FILTER (WHERE kind = 'reached') AS reached,
    coalesce(sum(date_part('epoch', ended - began)) FILTER (WHERE kind = 'reached'), 0)
        AS handle_seconds
FROM work
GROUP BY 1
ORDER BY 1;

-- report_dispositions --
-- Per channel and disposition (wrap-up code) for completed contacts queued in [$1, $2):
-- how many, their AHT, and their customers' feedback; per team too with $3, only the
-- team $4 unless NULL (a contact's team as in report_contacts).
WITH completed AS (
    SELECT
        c.channel,
        coalesce(handled_by.team, '') AS team,
        c.disposition,
        date_part('epoch', c.completed_at - c.answered_at) AS handle_seconds,
        f.rating
    FROM contacts AS c
    LEFT JOIN contact_feedback AS f ON f.contact_id = c.id
    LEFT JOIN LATERAL (
        SELECT l.team FROM agent_status_log AS l
        WHERE ($3::boolean OR $4::text IS NOT NULL)
          AND l.agent_id = c.agent_id AND l.kind = 'signed_in' AND l.at <= c.updated_at
        ORDER BY l.at DESC LIMIT 1
    ) AS handled_by ON true
    WHERE c.queued_at >= $1 AND c.queued_at < $2 AND c.completed_at IS NOT NULL
      AND ($4::text IS NULL OR coalesce(handled_by.team, '') = $4::text)
)
SELECT
    channel,
    team,
    disposition,
    count(*) AS contacts,
    avg(handle_seconds)::double precision AS aht_seconds,
    count(rating) AS ratings,
    avg(rating)::double precision AS mean_rating
FROM completed
GROUP BY 1, 2, 3
ORDER BY 1, 2, 4 DESC, 3;

-- report_feedback --
-- Customer feedback for contacts queued in [$1, $2), per channel and per agent (the
-- agent who answered): ratings and their mean. Rows with agent_id NULL are channel totals.
-- With $3 per team too (totals per channel and team), only the team $4 unless NULL.
WITH rated AS (
    SELECT c.channel, coalesce(handled_by.team, '') AS team, c.agent_id, f.rating
    FROM contact_feedback AS f
    JOIN contacts AS c ON c.id = f.contact_id
    LEFT JOIN LATERAL (
        SELECT l.team FROM agent_status_log AS l
        WHERE ($3::boolean OR $4::text IS NOT NULL) AND c.answered_at IS NOT NULL
          AND l.agent_id = c.agent_id AND l.kind = 'signed_in' AND l.at <= c.updated_at
        ORDER BY l.at DESC LIMIT 1
    ) AS handled_by ON true
    WHERE c.queued_at >= $1 AND c.queued_at < $2
      AND ($4::text IS NULL OR coalesce(handled_by.team, '') = $4::text)
)
SELECT
    channel,
    team,
    agent_id,
    count(*) AS ratings,
    avg(rating)::double precision AS mean_rating
FROM rated
GROUP BY GROUPING SETS ((channel, team), (channel, team, agent_id))
ORDER BY 1, 2, 3 NULLS FIRST;

-- report_agent_teams --
-- Each agent's team: the one its latest sign-in before $1 gave ('' for none).
SELECT a.id AS agent_id, last.team
FROM agents AS a
CROSS JOIN LATERAL (
    SELECT l.team FROM agent_status_log AS l
    WHERE l.agent_id = a.id AND l.kind = 'signed_in' AND l.at < $1
    ORDER BY l.at DESC LIMIT 1
) AS last;

-- team_known --
-- Whether any agent ever signed in with team $1 (a report's team filter names one).
SELECT EXISTS (
    SELECT 1 FROM agent_status_log WHERE kind = 'signed_in' AND team = $1
) AS known;

-- report_agents --
-- Per agent over [$1, $2), cut at $3 (now): signed-in time, ready time, time handling
-- contacts (the union of answered-to-completed stretches, so parallel chats count once),
-- and the contacts answered in the range with their handle and ACW seconds. A
-- transferred contact counts once per leg, for the agent of each leg. Status time comes
-- from agent_status_periods (migration 0005), which PostgreSQL inlines.
WITH periods AS (
    SELECT * FROM agent_status_periods($1, $2, $3)
),
presence AS (
    SELECT
        agent_id,
        coalesce(range_agg(period) FILTER (WHERE status <> 'offline'), '{}') AS signed_in,
        coalesce(range_agg(period) FILTER (WHERE status = 'ready'), '{}') AS ready
    FROM periods
    GROUP BY agent_id
),
transferred AS (
    SELECT DISTINCT e.contact_id FROM contact_events AS e WHERE e.kind = 'transferred'
),
-- Each agent's leg of a transferred contact, from its events: from that agent's answer
-- to its transfer (no wrap-up), or to the end and the completion of the last leg.
legs AS (
    SELECT
        agent_id,
        at AS answered_at,
        CASE WHEN next_kind IN ('transferred', 'ended') THEN next_at END AS ended_at,
        CASE WHEN next_kind = 'transferred' THEN next_at
             WHEN next_kind = 'ended' AND after_kind = 'completed' THEN after_at END
            AS completed_at
    FROM (
        SELECT
            e.kind, e.at, e.agent_id,
            lead(e.kind) OVER w AS next_kind, lead(e.at) OVER w AS next_at,
            lead(e.kind, 2) OVER w AS after_kind, lead(e.at, 2) OVER w AS after_at
        FROM contact_events AS e
        JOIN transferred AS t ON t.contact_id = e.contact_id
        WHERE e.kind IN ('answered', 'transferred', 'ended', 'completed')
        WINDOW w AS (PARTITION BY e.contact_id ORDER BY e.id)
    ) AS steps
    WHERE kind = 'answered'
),
handled AS (
    SELECT c.agent_id, c.answered_at, c.ended_at, c.completed_at
    FROM contacts AS c
    WHERE c.completed_at > $1 AND c.answered_at < $2
      AND NOT EXISTS (SELECT 1 FROM transferred AS t WHERE t.contact_id = c.id)
    UNION ALL
    SELECT c.agent_id, c.answered_at, c.ended_at, c.completed_at
    FROM contacts AS c
    WHERE c.state IN ('connected', 'wrap_up') AND c.answered_at < $2
      AND NOT EXISTS (SELECT 1 FROM transferred AS t WHERE t.contact_id = c.id)
    UNION ALL
    SELECT agent_id, answered_at, ended_at, completed_at
    FROM legs
    WHERE answered_at < $2 AND (completed_at IS NULL OR completed_at > $1)
),
handling AS (
    SELECT
        agent_id,
        range_agg(tstzrange(answered_at, least(coalesce(completed_at, $3), $3)))
            * tstzmultirange(tstzrange($1, least($2, $3))) AS handling,
        count(*) FILTER (WHERE answered_at >= $1) AS contacts_handled,
        count(*) FILTER (WHERE answered_at >= $1 AND completed_at IS NOT NULL) AS completed,
        avg(date_part('epoch', completed_at - answered_at)) FILTER (WHERE answered_at >= $1)
            AS aht_seconds,
        sum(date_part('epoch', completed_at - ended_at)) FILTER (WHERE answered_at >= $1)
            AS acw_seconds_total
    FROM handled
    WHERE agent_id IS NOT NULL
    GROUP BY agent_id
),
joined AS (
    SELECT
        coalesce(p.agent_id, h.agent_id) AS agent_id,
        coalesce(p.signed_in, '{}') AS signed_in,
        coalesce(p.ready, '{}') AS ready,
        coalesce(h.handling, '{}') * coalesce(p.signed_in, '{}') AS handling,
        coalesce(h.contacts_handled, 0) AS contacts_handled,
        coalesce(h.completed, 0) AS completed,
        h.aht_seconds,
        h.acw_seconds_total
    FROM presence AS p
    FULL JOIN handling AS h ON h.agent_id = p.agent_id
)
SELECT
    j.agent_id,
    j.contacts_handled,
    j.completed,
    j.aht_seconds::double precision,
    coalesce(j.acw_seconds_total, 0)::double precision AS acw_seconds_total,
    (SELECT coalesce(sum(date_part('epoch', upper(r) - lower(r))), 0) FROM unnest(j.signed_in) AS r)
        ::double precision AS signed_in_seconds,
    (SELECT coalesce(sum(date_part('epoch', upper(r) - lower(r))), 0) FROM unnest(j.ready) AS r)
        ::double precision AS ready_seconds,
    (SELECT coalesce(sum(date_part('epoch', upper(r) - lower(r))), 0) FROM unnest(j.handling) AS r)
        ::double precision AS handling_seconds,
    (SELECT coalesce(sum(date_part('epoch', upper(r) - lower(r))), 0)
     FROM unnest(j.handling + j.ready) AS r)::double precision AS available_seconds
FROM joined AS j
ORDER BY j.agent_id;

-- report_agent_status --
-- Per agent, status and away reason: seconds spent in [$1, $2), cut at $3 (now).
SELECT
    agent_id, status, CASE WHEN status = 'away' THEN reason ELSE '' END AS reason,
    sum(date_part('epoch', upper(period) - lower(period)))::double precision AS seconds
FROM agent_status_periods($1, $2, $3)
WHERE status <> 'offline'
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3;

-- report_ready_agents --
-- Agents actually staffed: per interval starting at each of $1 (length $2), the
-- time-weighted mean number of agents signed in and ready (status 'ready', whatever
-- they were handling), from agent_status_periods over [$3, $4) cut at $5 (now). An
-- agent ready for the whole interval counts 1, for half of it 0.5.
SELECT
    s.start AS interval_start,
    (coalesce(sum(date_part('epoch', upper(p.period * tstzrange(s.start, s.start + $2))
                                   - lower(p.period * tstzrange(s.start, s.start + $2)))), 0)
     / date_part('epoch', $2))::double precision AS ready_agents
FROM unnest($1::timestamptz[]) AS s(start)
LEFT JOIN agent_status_periods($3, $4, $5) AS p
    ON p.status = 'ready' AND p.period && tstzrange(s.start, s.start + $2)
GROUP BY s.start
ORDER BY s.start;

-- report_agent_sessions --
-- Attendance: each sign-in that overlaps [$1, $2), with the sign-out or next sign-in
-- that ended it (NULL while still signed in), and the supervisor who signed the agent
-- out when one did (SupervisorService.SignOutAgent; NULL otherwise). A supervisor's
-- change of a signed-in agent's skills (a 'signed_in' row with its supervisor) neither
-- starts nor ends a session.
WITH sign_ins AS (
    SELECT l.agent_id, l.at FROM agent_status_log AS l
    WHERE l.kind = 'signed_in' AND l.supervisor IS NULL AND l.at >= $1 AND l.at < $2
    UNION
    SELECT a.id, last.at
    FROM agents AS a
    CROSS JOIN LATERAL (
        SELECT l.at FROM agent_status_log AS l
        WHERE l.agent_id = a.id AND l.kind = 'signed_in' AND l.supervisor IS NULL
          AND l.at < $1
        ORDER BY l.at DESC LIMIT 1
    ) AS last
)
SELECT i.agent_id, i.at AS signed_in_at, ended.at AS signed_out_at, ended.signed_out_by
FROM sign_ins AS i
LEFT JOIN LATERAL (
    SELECT o.at, CASE WHEN o.kind = 'signed_out' THEN o.supervisor END AS signed_out_by
    FROM agent_status_log AS o
    WHERE o.agent_id = i.agent_id AND o.at > i.at
      AND (o.kind = 'signed_out' OR (o.kind = 'signed_in' AND o.supervisor IS NULL))
    ORDER BY o.at LIMIT 1
) AS ended ON true
WHERE ended.at IS NULL OR ended.at > $1
ORDER BY 1, 2;

-- record_feedback --
-- A customer's rating of a contact; sent again, it replaces the earlier one. The
-- comment of a contact whose customer was erased (its customer id is an erasure's
-- pseudonym) or whose personal data retention removed (a 'retained-' pseudonym) is not
-- kept: a survey may answer after either.
INSERT INTO contact_feedback (contact_id, rating, comment, source, recorded_at)
SELECT $1, $2,
       CASE WHEN EXISTS (
           SELECT 1 FROM contacts AS c JOIN customer_erasures AS e ON e.pseudonym = c.customer_id
           WHERE c.id = $1
       ) OR EXISTS (
           SELECT 1 FROM contacts AS c WHERE c.id = $1 AND c.customer_id LIKE 'retained-%'
       ) THEN '' ELSE $3 END,
       $4, $5
ON CONFLICT (contact_id) DO UPDATE SET
    rating = EXCLUDED.rating, comment = EXCLUDED.comment, source = EXCLUDED.source,
    recorded_at = EXCLUDED.recorded_at;

-- save_channel_targets --
-- The answer targets and short-abandon limit the router runs with, for the SQL views.
INSERT INTO channel_targets (channel, answer_target_seconds, short_abandon_seconds)
SELECT * FROM unnest($1::text[], $2::double precision[], $3::double precision[])
ON CONFLICT (channel) DO UPDATE SET
    answer_target_seconds = EXCLUDED.answer_target_seconds,
    short_abandon_seconds = EXCLUDED.short_abandon_seconds;

-- first_contact --
-- When the first contact of channel $1 queued in [$2, $3) was queued (NULL for none):
-- where a forecast's history begins (contacts_queued_at_idx).
SELECT min(queued_at) AS first_queued_at
FROM contacts
WHERE channel = $1 AND queued_at >= $2 AND queued_at < $3;

-- save_forecast --
-- A forecast as it was made ($1 made_at, $2 channel, $3 interval seconds, $4 time zone,
-- $5 history start, $6 first interval, $7 end, $8 level, $9 model) and its intervals
-- ($10 starts, $11 contacts, $12 lower, $13 upper, $14 AHT), in one statement; its id.
WITH forecast AS (
    INSERT INTO forecasts (
        made_at, channel, interval_seconds, time_zone, history_start, starts_at, ends_at,
        level, model
    ) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
    RETURNING id
), intervals AS (
    INSERT INTO forecast_intervals (
        forecast_id, interval_start, contacts, contacts_lower, contacts_upper, aht_seconds
    )
    SELECT forecast.id, i.*
    FROM forecast,
         unnest($10::timestamptz[], $11::double precision[], $12::double precision[],
                $13::double precision[], $14::double precision[]) AS i
)
SELECT id FROM forecast;

-- forecast_intervals --
-- The stored forecast of each interval of channel $1 and length $2 seconds starting in
-- [$3, $4): of forecast $5 only, or (NULL) of the forecast whose history ended latest
-- at or before the interval began (the latest made among those).
SELECT DISTINCT ON (i.interval_start)
       i.interval_start, i.forecast_id, i.contacts, i.aht_seconds
FROM forecast_intervals i
JOIN forecasts f ON f.id = i.forecast_id
WHERE f.channel = $1 AND f.interval_seconds = $2
  AND i.interval_start >= $3 AND i.interval_start < $4
  AND f.starts_at <= i.interval_start
  AND ($5::bigint IS NULL OR f.id = $5)
ORDER BY i.interval_start, f.starts_at DESC, f.made_at DESC, f.id DESC;

-- add_event_partitions --
-- Monthly partitions of contact_events for this month and the $1 - 1 months after it.
SELECT add_contact_event_partitions(now(), $1);

-- ====================================================================== erasure

-- erase_customer --
-- AdminService.EraseCustomer, in one statement (one transaction): the customer id $1
-- of their finished contacts becomes the pseudonym $2 and their attributes go; their
-- feedback comments go (ratings stay), by anonymise_contacts (migration 0008, which
-- retention uses too); the audit row records who ($4), when ($3), why ($5) and how
-- many, never the customer id. Timings are untouched: reports do not change. Open
-- contacts are left alone (the router refuses while there are any).
WITH theirs AS (
    SELECT ARRAY(
        SELECT id FROM contacts
        WHERE customer_id = $1 AND state IN ('completed', 'abandoned', 'unreached', 'cancelled')
    ) AS ids
), erased AS (
    SELECT a.* FROM theirs AS t,
        anonymise_contacts(t.ids, array_fill($2::text, ARRAY[cardinality(t.ids)])) AS a
)
INSERT INTO customer_erasures
    (erased_at, requested_by, reason, pseudonym, contacts_erased, comments_erased)
SELECT $3, $4, $5, $2, e.contacts, e.comments FROM erased AS e
RETURNING id, contacts_erased, comments_erased;

-- ====================================================================== retention

-- retention_resume_at --
-- Where the last run of the retention job left the anonymisation: finished contacts
-- queued before it have no personal data left (NULL: start from the first contact).
SELECT personal_resume_at FROM retention_runs
WHERE personal_resume_at IS NOT NULL
ORDER BY id DESC LIMIT 1;

-- retention_anonymise_batch --
-- One batch of the retention job's anonymisation: the next $4 finished contacts after
-- (queued_at, id) = ($1, $2) and queued before $3, in that order; those still holding
-- a customer's id (not yet an erasure's or a retention's pseudonym) go through
-- anonymise_contacts, each customer under one pseudonym drawn from the run's random
-- salt $5 (held in memory for the run only, so it cannot be recomputed). Returns the
-- batch's last key (no row when nothing is left) and what changed.
WITH batch AS (
    SELECT c.id, c.queued_at, c.customer_id
    FROM contacts AS c
    WHERE c.queued_at >= $1 AND (c.queued_at, c.id) > ($1, $2) AND c.queued_at < $3
      AND c.state IN ('completed', 'abandoned', 'unreached', 'cancelled')
    ORDER BY c.queued_at, c.id
    LIMIT $4
), last AS (
    SELECT b.queued_at, b.id FROM batch AS b ORDER BY b.queued_at DESC, b.id DESC LIMIT 1
), todo AS (
    SELECT
        coalesce(array_agg(b.id), '{}') AS ids,
        coalesce(array_agg(
            'retained-' || encode(sha256(convert_to($5::text || b.customer_id, 'UTF8')), 'hex')
        ), '{}') AS pseudonyms
    FROM batch AS b
    WHERE b.customer_id NOT LIKE 'erased-%' AND b.customer_id NOT LIKE 'retained-%'
)
SELECT l.queued_at, l.id, a.contacts, a.comments
FROM last AS l, todo AS t, anonymise_contacts(t.ids, t.pseudonyms) AS a;

-- retention_oldest_open --
-- The queue time of the oldest contact still open among those queued before $1: the
-- next run's anonymisation starts there, since they are anonymised once they end.
SELECT min(queued_at) AS queued_at FROM contacts
WHERE state NOT IN ('completed', 'abandoned', 'unreached', 'cancelled') AND queued_at < $1;

-- retention_partitions_before --
-- The monthly partitions of contact_events whose every row is before $1 (their upper
-- bound is at most $1), oldest first; never the DEFAULT partition.
SELECT p.name, p.upper_bound FROM (
    SELECT c.relname AS name,
        (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz
            AS upper_bound
    FROM pg_inherits AS i
    JOIN pg_class AS c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'contact_events'::regclass
) AS p
WHERE p.upper_bound <= $1
ORDER BY p.upper_bound;

-- retention_drop_partition --
-- Detach and drop the partition $1 (false: it holds an event of an open contact, kept).
-- Run with a short lock_timeout (router/store/retention.py).
SELECT drop_contact_event_partition($1) AS dropped;

-- retention_delete_batch --
-- One batch of the retention job's deletion: the next $4 finished contacts after
-- (queued_at, id) = ($1, $2) and queued before $3, with their events (those the
-- dropped partitions did not take: the DEFAULT partition's, and a contact's last
-- events in the next month) and feedback. Returns the batch's last key (no row when
-- nothing is left) and how many rows went.
WITH batch AS (
    SELECT c.id, c.queued_at
    FROM contacts AS c
    WHERE c.queued_at >= $1 AND (c.queued_at, c.id) > ($1, $2) AND c.queued_at < $3
      AND c.state IN ('completed', 'abandoned', 'unreached', 'cancelled')
    ORDER BY c.queued_at, c.id
    LIMIT $4
), last AS (
    SELECT b.queued_at, b.id FROM batch AS b ORDER BY b.queued_at DESC, b.id DESC LIMIT 1
), events AS (
    DELETE FROM contact_events AS e
    WHERE e.contact_id = ANY(ARRAY(SELECT b.id FROM batch AS b))
    RETURNING 1
), feedback AS (
    DELETE FROM contact_feedback AS f USING batch AS b WHERE f.contact_id = b.id
    RETURNING 1
), deleted AS (
    DELETE FROM contacts AS c USING batch AS b WHERE c.id = b.id
    RETURNING 1
)
SELECT l.queued_at, l.id,
    (SELECT count(*) FROM deleted) AS contacts,
    (SELECT count(*) FROM events) AS events,
    (SELECT count(*) FROM feedback) AS feedback
FROM last AS l;

-- retention_delete_agent_status_batch --
-- One batch of the retention job's deletion of agent_status_log: the rows after id $2,
-- in id order, up to $3 of them, that are before $1 and are not their agent's latest of
-- their kind before $1 (a supervisor's rows and the agent's own counted apart). What
-- the kept range's reports read of the time before it, the status, session and team
-- each agent had at $1, stays. Returns the last id deleted and how many went (no row
-- when nothing is left).
WITH batch AS (
    SELECT l.id FROM agent_status_log AS l
    WHERE l.id > $2 AND l.at < $1
      AND EXISTS (
          SELECT 1 FROM agent_status_log AS n
          WHERE n.agent_id = l.agent_id AND n.kind = l.kind
            AND (n.supervisor IS NULL) = (l.supervisor IS NULL)
            AND n.at < $1 AND (n.at, n.id) > (l.at, l.id)
      )
    ORDER BY l.id
    LIMIT $3
), deleted AS (
    DELETE FROM agent_status_log AS l USING batch AS b WHERE l.id = b.id
    RETURNING l.id
)
SELECT max(d.id) AS last_id, count(*) AS rows FROM deleted AS d HAVING count(*) > 0;

-- retention_record_run --
-- The audit of one run of the retention job.
INSERT INTO retention_runs (
    started_at, finished_at, personal_months, timings_months, personal_cutoff,
    personal_resume_at, timings_cutoff, partitions_dropped, partitions_kept,
    contacts_anonymised, comments_erased, contacts_deleted, events_deleted, batches,
    agent_status_deleted
) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
RETURNING id;
