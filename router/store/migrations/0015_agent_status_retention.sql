-- contact-router schema, version 15: retention of the agent status log.
--   The retention job deletes agent_status_log rows older than the timings cutoff,
--   keeping each agent's latest row of each kind before it (a supervisor's rows and the
--   agent's own apart): the status, the session and the team an agent had at the
--   cutoff are what reports of the kept range read (agent_status_periods,
--   report_agent_sessions, a contact's team). retention_runs records how many went.
ALTER TABLE retention_runs ADD COLUMN agent_status_deleted bigint NOT NULL DEFAULT 0;
