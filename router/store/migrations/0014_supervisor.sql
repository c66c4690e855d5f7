-- contact-router schema, version 14: the supervisor's actions (SupervisorService).
--   * A contact may end 'cancelled' (a supervisor removed it: not a customer, spam), at
--     cancelled_at. Final like completed and abandoned, and counted apart from both:
--     not an abandon, not in service level (answered within threshold / (answered +
--     abandoned - short abandoned) has it in neither term).
--   * A contact's preferred agent may come from 'supervisor' (assigned by name).
--   * contact_events may record 'priority_changed', 'skills_changed' (the reason says
--     from what to what), 'assigned' (agent_id: the agent named) and 'cancelled'.
--   * Both event tables record who acted and why: supervisor (the supervisor token's
--     name) and supervisor_reason, NULL for what the router, an agent or a gateway did.
--     In agent_status_log they mark a status forced, a sign-out forced, or a change of
--     skills and capacities (a 'signed_in' row, as a SignIn of a signed-in agent).
--   * Where finished contacts are told apart from open ones ('completed', 'abandoned',
--     'unreached'), 'cancelled' joins them: the open contacts' index, retention and
--     erasure.
ALTER TABLE contacts DROP CONSTRAINT contacts_state_check;
ALTER TABLE contacts ADD CONSTRAINT contacts_state_check CHECK (
    state IN (
        'queued', 'offered', 'connected', 'wrap_up', 'completed', 'abandoned', 'unreached',
        'cancelled'
    )
);
ALTER TABLE contacts ADD COLUMN cancelled_at timestamptz;
ALTER TABLE contacts DROP CONSTRAINT contacts_preferred_agent_source_check;
ALTER TABLE contacts ADD CONSTRAINT contacts_preferred_agent_source_check CHECK (
    preferred_agent_source IN ('gateway', 'previous_agent', 'transfer', 'supervisor')
);

DROP INDEX contacts_open_idx;
CREATE INDEX contacts_open_idx ON contacts (state)
    WHERE state NOT IN ('completed', 'abandoned', 'unreached', 'cancelled');

ALTER TABLE contact_events DROP CONSTRAINT contact_events_kind_check;
ALTER TABLE contact_events ADD CONSTRAINT contact_events_kind_check CHECK (kind IN (
    'submitted', 'offered', 'declined', 'offer_timed_out', 'answered',
    'ended', 'completed', 'abandoned', 'requeued', 'transferred', 'rerouted',
    'callback_requested', 'dialled', 'reached', 'dial_failed', 'unreached',
    'priority_changed', 'skills_changed', 'assigned', 'cancelled'
));
ALTER TABLE contact_events
    ADD COLUMN supervisor text,
    ADD COLUMN supervisor_reason text;
ALTER TABLE agent_status_log
    ADD COLUMN supervisor text,
    ADD COLUMN supervisor_reason text;

-- The same as migration 0011's, with 'cancelled' among the finished states.
CREATE OR REPLACE FUNCTION anonymise_contacts(ids uuid[], pseudonyms text[])
RETURNS TABLE (contacts bigint, comments bigint)
LANGUAGE sql AS $$
WITH given AS (
    SELECT * FROM unnest(ids, pseudonyms) AS g(id, pseudonym)
), anonymised AS (
    UPDATE contacts AS c SET customer_id = g.pseudonym, attributes = '{}'::jsonb
    FROM given AS g
    WHERE c.id = g.id AND c.state IN ('completed', 'abandoned', 'unreached', 'cancelled')
    RETURNING c.id
), numbers AS (
    UPDATE callbacks AS b SET number = ''
    FROM anonymised AS a
    WHERE b.contact_id = a.id AND b.number <> ''
    RETURNING b.contact_id
), emptied AS (
    UPDATE contact_feedback AS f SET comment = ''
    FROM anonymised AS a
    WHERE f.contact_id = a.id AND f.comment <> ''
    RETURNING f.contact_id
)
-- (numbers runs though nothing reads it: a data-modifying WITH always does)
SELECT (SELECT count(*) FROM anonymised), (SELECT count(*) FROM emptied)
$$;

CREATE OR REPLACE FUNCTION drop_contact_event_partition(partition text)
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    open_events boolean;
BEGIN
    EXECUTE format(
        'SELECT EXISTS (SELECT 1 FROM contacts AS c JOIN %I AS e ON e.contact_id = c.id '
        'WHERE c.state NOT IN (''completed'', ''abandoned'', ''unreached'', ''cancelled''))',
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

-- interval_service_level (as in version 13): a cancelled contact is not still waiting;
-- it is counted in `cancelled` (a new last column) and, as before, in neither term of
-- service level.
CREATE OR REPLACE VIEW interval_service_level AS
SELECT
    date_bin('15 minutes', t.queued_at, TIMESTAMPTZ '2000-01-03 00:00:00+00') AS interval_start,
    t.channel,
    count(*) AS offered,
    count(*) FILTER (WHERE t.answered_at IS NOT NULL) AS answered,
    count(*) FILTER (WHERE t.abandoned_at IS NOT NULL) AS abandoned,
    count(*) FILTER (WHERE t.short_abandon) AS short_abandoned,
    count(*) FILTER (WHERE t.within_target) AS answered_within_target,
    count(*) FILTER (
        WHERE t.answered_at IS NULL AND t.abandoned_at IS NULL AND t.state <> 'cancelled'
    ) AS still_waiting,
    (count(*) FILTER (WHERE t.within_target))::double precision / NULLIF(
        count(*) FILTER (WHERE t.answered_at IS NOT NULL)
        + count(*) FILTER (WHERE t.abandoned_at IS NOT NULL)
        - count(*) FILTER (WHERE t.short_abandon), 0) AS service_level,
    avg(t.open_wait_seconds) FILTER (WHERE t.answered_at IS NOT NULL) AS asa_seconds,
    avg(t.handle_seconds) AS aht_seconds,
    avg(t.acw_seconds) AS acw_seconds,
    count(*) FILTER (WHERE t.state = 'cancelled') AS cancelled
FROM contact_timings AS t
WHERE NOT EXISTS (SELECT 1 FROM callbacks AS b WHERE b.contact_id = t.contact_id)
GROUP BY 1, 2;
