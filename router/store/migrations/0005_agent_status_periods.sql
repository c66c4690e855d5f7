-- contact-router schema, version 5: agent status periods as a function.
--   agent_status_periods(range_start, range_end, as_of): each stretch of an agent's time
--   in one status and away reason within [range_start, range_end), cut at as_of (now)
--   for the status an agent is still in. The status an agent had at range_start counts
--   from there. The agent report and time by status read it (report_agents,
--   report_agent_status in queries.sql); a reporting job may too.
--   One SQL SELECT, neither STRICT nor VOLATILE: PostgreSQL inlines it into the query
--   that calls it, so its plan is the query's own (a range scan of agent_status_log by
--   time and one lookup per agent for its status at range_start).
CREATE FUNCTION agent_status_periods(
    range_start timestamptz, range_end timestamptz, as_of timestamptz
)
RETURNS TABLE (agent_id text, status text, reason text, period tstzrange)
LANGUAGE sql STABLE
AS $$
WITH status_rows AS (
    SELECT l.agent_id, l.status, l.reason, l.at, l.id
    FROM agent_status_log AS l
    WHERE l.at >= $1 AND l.at < $2
    UNION ALL
    SELECT last.agent_id, last.status, last.reason, last.at, last.id
    FROM agents AS a
    CROSS JOIN LATERAL (
        SELECT * FROM agent_status_log AS l
        WHERE l.agent_id = a.id AND l.at < $1
        ORDER BY l.at DESC, l.id DESC LIMIT 1
    ) AS last
),
periods AS (
    SELECT
        s.agent_id, s.status, s.reason,
        tstzrange(s.at, coalesce(lead(s.at) OVER (PARTITION BY s.agent_id ORDER BY s.at, s.id), $3))
            * tstzrange($1, least($2, $3)) AS period
    FROM status_rows AS s
)
SELECT p.agent_id, p.status, p.reason, p.period FROM periods AS p WHERE NOT isempty(p.period)
$$;
