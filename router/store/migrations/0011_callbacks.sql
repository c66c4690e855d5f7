-- contact-router schema, version 11: queued callbacks.
--   * A contact may be 'unreached': a callback that ended without reaching the
--     customer (every dial found no answer or a busy line, a wrong number, or its
--     window closed). Final, like 'completed' and 'abandoned': the open-contact index,
--     anonymisation and the partition drop treat it so.
--   * contact_events may record 'callback_requested' (the contact became a callback;
--     reason "from phone|chat|email"), 'dialled' (an agent accepted its offer and
--     dials; agent_id, offer_id), 'reached' (the dial reached the customer),
--     'dial_failed' (reason no_answer, busy or wrong_number) and 'unreached' (reason
--     attempts, wrong_number or window_ended).
--   * callbacks: one row per contact that became a callback (the contact row itself is
--     the same contact, now on channel 'phone'): the number to dial (personal data:
--     anonymised with the customer id), the channel the customer first came on, its
--     window, and its dials (attempts, the first dial, reaching the customer, a pending
--     retry, the end unreached).
ALTER TABLE contacts DROP CONSTRAINT contacts_state_check;
ALTER TABLE contacts ADD CONSTRAINT contacts_state_check CHECK (
    state IN ('queued', 'offered', 'connected', 'wrap_up', 'completed', 'abandoned', 'unreached')
);

DROP INDEX contacts_open_idx;
CREATE INDEX contacts_open_idx ON contacts (state)
    WHERE state NOT IN ('completed', 'abandoned', 'unreached');

ALTER TABLE contact_events DROP CONSTRAINT contact_events_kind_check;
ALTER TABLE contact_events ADD CONSTRAINT contact_events_kind_check CHECK (kind IN (
    'submitted', 'offered', 'declined', 'offer_timed_out', 'answered',
    'ended', 'completed', 'abandoned', 'requeued', 'transferred', 'rerouted',
    'callback_requested', 'dialled', 'reached', 'dial_failed', 'unreached'
));

CREATE TABLE callbacks (
    contact_id      uuid PRIMARY KEY REFERENCES contacts (id) ON DELETE CASCADE,
    number          text NOT NULL,
    requested_from  text NOT NULL CHECK (requested_from IN ('phone', 'chat', 'email')),
    requested_at    timestamptz NOT NULL,
    not_before      timestamptz,
    not_after       timestamptz,
    attempts        integer NOT NULL DEFAULT 0,
    placed_at       timestamptz,
    reached_at      timestamptz,
    retry_at        timestamptz,
    unreached_at    timestamptz,
    last_outcome    text CHECK (
        last_outcome IN ('connected', 'no_answer', 'busy', 'wrong_number')
    )
);
-- Reports count callbacks by when they were requested.
CREATE INDEX callbacks_requested_at_idx ON callbacks (requested_at);

CREATE OR REPLACE FUNCTION anonymise_contacts(ids uuid[], pseudonyms text[])
RETURNS TABLE (contacts bigint, comments bigint)
LANGUAGE sql AS $$
WITH given AS (
    SELECT * FROM unnest(ids, pseudonyms) AS g(id, pseudonym)
), anonymised AS (
    UPDATE contacts AS c SET customer_id = g.pseudonym, attributes = '{}'::jsonb
    FROM given AS g
    WHERE c.id = g.id AND c.state IN ('completed', 'abandoned', 'unreached')
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
        'WHERE c.state NOT IN (''completed'', ''abandoned'', ''unreached''))',
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
