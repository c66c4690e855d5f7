-- contact-router schema, version 13: hours of operation.
--   * contacts.closed_wait_seconds: the seconds of the contact's wait (queued_at to its
--     first answer, or to abandoned_at) during which its hours of operation said
--     closed (ROUTER_HOURS_FILE), computed by the router when the wait ends from the
--     calendar then in force. 0 for a center without hours, and for every row before
--     this version. A column with a constant default: no table rewrite.
--   * contact_timings gains, at the end, open_wait_seconds (wait_seconds without the
--     closed seconds); short_abandon and within_target count that open wait, so that
--     a contact queued at 21:59 before a 22:00 close and answered at 08:00 the next
--     opening waited 60 s for service level. wait_seconds stays the whole wait.
--   * interval_service_level's ASA is the mean open wait; the rest as in version 12.
ALTER TABLE contacts ADD COLUMN closed_wait_seconds double precision NOT NULL DEFAULT 0;

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
        AND date_part('epoch', c.abandoned_at - c.queued_at) - c.closed_wait_seconds
            <= t.short_abandon_seconds)
        AS short_abandon,
    (c.answered_at IS NOT NULL
        AND date_part('epoch', c.answered_at - c.queued_at) - c.closed_wait_seconds
            <= t.answer_target_seconds)
        AS within_target,
    date_part('epoch', COALESCE(c.answered_at, c.abandoned_at) - c.queued_at)
        - c.closed_wait_seconds AS open_wait_seconds
FROM contacts AS c
LEFT JOIN contact_feedback AS f ON f.contact_id = c.id
LEFT JOIN channel_targets AS t ON t.channel = c.channel;

CREATE OR REPLACE VIEW interval_service_level AS
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
    avg(t.open_wait_seconds) FILTER (WHERE t.answered_at IS NOT NULL) AS asa_seconds,
    avg(t.handle_seconds) AS aht_seconds,
    avg(t.acw_seconds) AS acw_seconds
FROM contact_timings AS t
WHERE NOT EXISTS (SELECT 1 FROM callbacks AS b WHERE b.contact_id = t.contact_id)
GROUP BY 1, 2;
