-- contact-router schema, version 12: queued callbacks apart from inbound service level.
--   * interval_service_level leaves queued callbacks out (contacts with a row in
--     callbacks), as report_contacts does: a callback's customer is not holding on a
--     line, and its service level has a formula of its own (report_callbacks,
--     docs/reporting.md). The same columns and definitions otherwise.
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
    avg(t.wait_seconds) FILTER (WHERE t.answered_at IS NOT NULL) AS asa_seconds,
    avg(t.handle_seconds) AS aht_seconds,
    avg(t.acw_seconds) AS acw_seconds
FROM contact_timings AS t
WHERE NOT EXISTS (SELECT 1 FROM callbacks AS b WHERE b.contact_id = t.contact_id)
GROUP BY 1, 2;
