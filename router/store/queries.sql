-- Every SQL statement of contact-router, as named blocks:
--   -- name --
--   -- what it is for
--   the statement
-- Loaded once by router/store/queries.py.

-- insert_contact --
-- Record a newly submitted contact (with its 'submitted' event, written alongside).
INSERT INTO contacts (
    id, idempotency_key, channel, customer_id, attributes, required_skills,
    priority_boost, state, queued_at, updated_at
) VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, $9);

-- update_contact --
-- Write a contact's current state and timestamps after a transition.
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
    updated_at = $12
WHERE id = $1;

-- insert_contact_event --
-- Append one transition to the contact's history.
INSERT INTO contact_events (contact_id, kind, at, agent_id, offer_id, reason)
VALUES ($1, $2, $3, $4, $5, $6);

-- upsert_agent --
-- Remember an agent and the skills of its latest sign-in.
INSERT INTO agents (id, skills, first_seen_at, last_seen_at) VALUES ($1, $2, $3, $3)
ON CONFLICT (id) DO UPDATE SET skills = EXCLUDED.skills, last_seen_at = EXCLUDED.last_seen_at;

-- insert_agent_status --
-- Append one status or presence change to the agent status log.
INSERT INTO agent_status_log (agent_id, kind, status, reason, connected, at)
VALUES ($1, $2, $3, $4, $5, $6);

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
-- Contacts not yet completed or abandoned, to rebuild the queue on start.
SELECT * FROM contacts WHERE state NOT IN ('completed', 'abandoned') ORDER BY queued_at, id;

-- contact_events_of --
-- A contact's history in order.
SELECT kind, at, agent_id, offer_id, reason FROM contact_events
WHERE contact_id = $1 ORDER BY id;

-- service_level --
-- Per interval and channel, for contacts queued in [$1, $2): counts, service level
-- inputs, ASA, AHT and ACW. $3 is the interval length, $4 the channels to include,
-- $5 the channels' thresholds (same order as $4), $6 the short-abandon seconds.
WITH thresholds AS (
    SELECT * FROM unnest($4::text[], $5::double precision[]) AS t(channel, threshold)
)
SELECT
    date_bin($3::interval, t.queued_at, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS interval_start,
    t.channel,
    th.threshold,
    count(*) AS offered,
    count(*) FILTER (WHERE t.answered_at IS NOT NULL) AS answered,
    count(*) FILTER (WHERE t.abandoned_at IS NOT NULL) AS abandoned,
    count(*) FILTER (WHERE t.abandoned_at IS NOT NULL AND t.wait_seconds <= $6)
        AS short_abandoned,
    count(*) FILTER (WHERE t.answered_at IS NOT NULL AND t.wait_seconds <= th.threshold)
        AS answered_within_threshold,
    avg(t.wait_seconds) FILTER (WHERE t.answered_at IS NOT NULL) AS asa_seconds,
    avg(t.handle_seconds) FILTER (WHERE t.completed_at IS NOT NULL) AS aht_seconds,
    avg(t.acw_seconds) FILTER (WHERE t.completed_at IS NOT NULL) AS mean_acw_seconds
FROM contact_timings AS t
JOIN thresholds AS th ON th.channel = t.channel
WHERE t.queued_at >= $1 AND t.queued_at < $2
GROUP BY 1, 2, 3
ORDER BY 1, 2;
