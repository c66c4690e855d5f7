-- contact-router schema, version 1.
-- Timestamps are timestamptz (UTC). Durations in the view are seconds.

CREATE TABLE contacts (
    id               uuid PRIMARY KEY,
    idempotency_key  text NOT NULL UNIQUE,
    channel          text NOT NULL CHECK (channel IN ('phone', 'chat', 'email')),
    customer_id      text NOT NULL,
    attributes       jsonb NOT NULL DEFAULT '{}'::jsonb,
    required_skills  text[] NOT NULL DEFAULT '{}',
    priority_boost   double precision NOT NULL DEFAULT 1.0,
    state            text NOT NULL CHECK (
        state IN ('queued', 'offered', 'connected', 'wrap_up', 'completed', 'abandoned')
    ),
    queued_at        timestamptz NOT NULL,
    offered_at       timestamptz,
    answered_at      timestamptz,
    ended_at         timestamptz,
    completed_at     timestamptz,
    abandoned_at     timestamptz,
    agent_id         text,
    offer_id         uuid,
    disposition      text,
    offer_count      integer NOT NULL DEFAULT 0,
    updated_at       timestamptz NOT NULL
);

-- Reports select by arrival time; the restart rebuild selects open contacts.
CREATE INDEX contacts_queued_at_idx ON contacts (queued_at, channel);
CREATE INDEX contacts_open_idx ON contacts (state)
    WHERE state NOT IN ('completed', 'abandoned');

-- Append-only history of every contact transition.
CREATE TABLE contact_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    contact_id  uuid NOT NULL REFERENCES contacts (id),
    kind        text NOT NULL CHECK (kind IN (
        'submitted', 'offered', 'declined', 'offer_timed_out', 'answered',
        'ended', 'completed', 'abandoned', 'requeued'
    )),
    at          timestamptz NOT NULL,
    agent_id    text,
    offer_id    uuid,
    reason      text
);
CREATE INDEX contact_events_contact_idx ON contact_events (contact_id, id);
CREATE INDEX contact_events_at_idx ON contact_events (at);

-- Agents seen by the router, with the skills of their last sign-in.
CREATE TABLE agents (
    id            text PRIMARY KEY,
    skills        text[] NOT NULL DEFAULT '{}',
    first_seen_at timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL
);

-- Append-only log of agent status and presence changes (attendance, occupancy).
CREATE TABLE agent_status_log (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    agent_id   text NOT NULL,
    kind       text NOT NULL CHECK (kind IN (
        'signed_in', 'signed_out', 'status_changed', 'connected', 'disconnected'
    )),
    status     text NOT NULL CHECK (status IN ('offline', 'ready', 'away')),
    reason     text NOT NULL DEFAULT '',
    connected  boolean NOT NULL,
    at         timestamptz NOT NULL
);
CREATE INDEX agent_status_log_agent_idx ON agent_status_log (agent_id, at);

-- Per-contact timings for reporting jobs that read SQL. Seconds; NULL where the
-- step has not happened. handle = talk + ACW, only once completed.
CREATE VIEW contact_timings AS
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
    EXTRACT(EPOCH FROM COALESCE(c.answered_at, c.abandoned_at) - c.queued_at)::double precision
        AS wait_seconds,
    EXTRACT(EPOCH FROM c.ended_at - c.answered_at)::double precision AS talk_seconds,
    EXTRACT(EPOCH FROM c.completed_at - c.ended_at)::double precision AS acw_seconds,
    EXTRACT(EPOCH FROM c.completed_at - c.answered_at)::double precision AS handle_seconds
FROM contacts AS c;
