-- contact-router schema, version 16: the group commit's batch in one statement.
--   write_batch(...) writes a whole batch of the group commit in one round trip and one
--   implicit transaction: one statement per kind of write, each over all of that
--   kind's rows at once, in the order that respects foreign keys (parents first).
--   It replaces the `write` statement (executemany of one row per write, which opened
--   the tables and indexes of every kind for each row) and, for batches of only these
--   kinds, BEGIN / an executemany per kind / NOTIFY / COMMIT (five round trips or more).
--   Each argument is an array of one composite type per kind (the fields in the order
--   of that kind's statement in queries.sql), NULL when the batch has none.
--   Rows for one contact (an update, a callback, a closed wait) or one agent that come
--   twice in a batch are written once, as the last one says: what the statements one
--   after another would have left (an agent first seen in the batch keeps the first
--   sign-in's time). Events keep the batch's order, so their seq numbers do too.
CREATE TYPE write_insert_contact AS (
    id uuid, idempotency_key text, channel text, customer_id text, attributes jsonb,
    required_skills text[], priority_boost double precision, state text,
    queued_at timestamptz, preferred_skills text[], preferred_agent_id text,
    preferred_agent_source text
);
CREATE TYPE write_update_contact AS (
    id uuid, state text, offered_at timestamptz, answered_at timestamptz,
    ended_at timestamptz, completed_at timestamptz, abandoned_at timestamptz,
    agent_id text, offer_id uuid, disposition text, offer_count integer,
    updated_at timestamptz, required_skills text[], preferred_skills text[],
    preferred_agent_id text, preferred_agent_source text,
    priority_boost double precision, cancelled_at timestamptz
);
CREATE TYPE write_contact_event AS (
    contact_id uuid, kind text, at timestamptz, agent_id text, offer_id uuid,
    reason text, supervisor text, supervisor_reason text
);
CREATE TYPE write_agent AS (id text, skills text[], at timestamptz, team text);
CREATE TYPE write_agent_status AS (
    agent_id text, kind text, status text, reason text, connected boolean,
    at timestamptz, team text, supervisor text, supervisor_reason text
);
CREATE TYPE write_callback AS (
    contact_id uuid, channel text, number text, requested_from text,
    requested_at timestamptz, not_before timestamptz, not_after timestamptz,
    attempts integer, placed_at timestamptz, reached_at timestamptz,
    retry_at timestamptz, unreached_at timestamptz, last_outcome text
);
CREATE TYPE write_closed_wait AS (id uuid, seconds double precision);

CREATE FUNCTION write_batch(
    new_contacts write_insert_contact[],
    contact_updates write_update_contact[],
    callback_rows write_callback[],
    closed_waits write_closed_wait[],
    contact_events_rows write_contact_event[],
    agent_rows write_agent[],
    agent_status_rows write_agent_status[]
) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF new_contacts IS NOT NULL THEN
        INSERT INTO contacts (
            id, idempotency_key, channel, customer_id, attributes, required_skills,
            priority_boost, state, queued_at, updated_at,
            preferred_skills, preferred_agent_id, preferred_agent_source
        )
        SELECT r.id, r.idempotency_key, r.channel, r.customer_id, r.attributes,
            r.required_skills, r.priority_boost, r.state, r.queued_at, r.queued_at,
            r.preferred_skills, r.preferred_agent_id, r.preferred_agent_source
        FROM unnest(new_contacts) AS r;
    END IF;
    IF contact_updates IS NOT NULL THEN
        UPDATE contacts AS c SET
            state = r.state, offered_at = r.offered_at, answered_at = r.answered_at,
            ended_at = r.ended_at, completed_at = r.completed_at,
            abandoned_at = r.abandoned_at, agent_id = r.agent_id, offer_id = r.offer_id,
            disposition = r.disposition, offer_count = r.offer_count,
            updated_at = r.updated_at, required_skills = r.required_skills,
            preferred_skills = r.preferred_skills,
            preferred_agent_id = r.preferred_agent_id,
            preferred_agent_source = r.preferred_agent_source,
            priority_boost = r.priority_boost, cancelled_at = r.cancelled_at
        FROM (
            SELECT DISTINCT ON (u.id) u.*
            FROM unnest(contact_updates) WITH ORDINALITY AS u
            ORDER BY u.id, u.ordinality DESC
        ) AS r
        WHERE c.id = r.id;
    END IF;
    IF callback_rows IS NOT NULL THEN
        -- A chat or email that became a callback is a phone contact now.
        UPDATE contacts AS c SET channel = r.channel
        FROM (
            SELECT DISTINCT ON (b.contact_id) b.contact_id, b.channel
            FROM unnest(callback_rows) WITH ORDINALITY AS b
            ORDER BY b.contact_id, b.ordinality DESC
        ) AS r
        WHERE c.id = r.contact_id AND c.channel <> r.channel;
        INSERT INTO callbacks (
            contact_id, number, requested_from, requested_at, not_before, not_after,
            attempts, placed_at, reached_at, retry_at, unreached_at, last_outcome
        )
        SELECT DISTINCT ON (r.contact_id) r.contact_id, r.number, r.requested_from,
            r.requested_at, r.not_before, r.not_after, r.attempts, r.placed_at,
            r.reached_at, r.retry_at, r.unreached_at, r.last_outcome
        FROM unnest(callback_rows) WITH ORDINALITY AS r
        ORDER BY r.contact_id, r.ordinality DESC
        ON CONFLICT (contact_id) DO UPDATE SET
            number = EXCLUDED.number, not_before = EXCLUDED.not_before,
            not_after = EXCLUDED.not_after, attempts = EXCLUDED.attempts,
            placed_at = EXCLUDED.placed_at, reached_at = EXCLUDED.reached_at,
            retry_at = EXCLUDED.retry_at, unreached_at = EXCLUDED.unreached_at,
            last_outcome = EXCLUDED.last_outcome;
    END IF;
    IF closed_waits IS NOT NULL THEN
        UPDATE contacts AS c SET closed_wait_seconds = r.seconds
        FROM (
            SELECT DISTINCT ON (w.id) w.id, w.seconds
            FROM unnest(closed_waits) WITH ORDINALITY AS w
            ORDER BY w.id, w.ordinality DESC
        ) AS r
        WHERE c.id = r.id;
    END IF;
    IF contact_events_rows IS NOT NULL THEN
        INSERT INTO contact_events (
            contact_id, kind, at, agent_id, offer_id, reason, supervisor, supervisor_reason
        )
        SELECT r.contact_id, r.kind, r.at, r.agent_id, r.offer_id, r.reason,
            r.supervisor, r.supervisor_reason
        FROM unnest(contact_events_rows) WITH ORDINALITY AS r
        ORDER BY r.ordinality;
    END IF;
    IF agent_rows IS NOT NULL THEN
        INSERT INTO agents (id, skills, first_seen_at, last_seen_at, team)
        SELECT DISTINCT ON (r.id) r.id, r.skills,
            min(r.at) OVER (PARTITION BY r.id), r.at, r.team
        FROM unnest(agent_rows) WITH ORDINALITY AS r
        ORDER BY r.id, r.ordinality DESC
        ON CONFLICT (id) DO UPDATE SET
            skills = EXCLUDED.skills, last_seen_at = EXCLUDED.last_seen_at,
            team = EXCLUDED.team;
    END IF;
    IF agent_status_rows IS NOT NULL THEN
        INSERT INTO agent_status_log (
            agent_id, kind, status, reason, connected, at, team, supervisor,
            supervisor_reason
        )
        SELECT r.agent_id, r.kind, r.status, r.reason, r.connected, r.at, r.team,
            r.supervisor, r.supervisor_reason
        FROM unnest(agent_status_rows) WITH ORDINALITY AS r
        ORDER BY r.ordinality;
    END IF;
    IF contact_events_rows IS NOT NULL OR agent_status_rows IS NOT NULL THEN
        -- Readers of the event stream (and a standby) wake when this commits.
        PERFORM pg_notify('contact_router_events', '');
    END IF;
END
$$;
