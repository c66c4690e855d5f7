-- contact-router schema, version 9: teams.
--   An agent gives its team at sign-in (AgentService.SignIn's `team`; '' for none). The
--   sign-in row of agent_status_log records it, so a report finds the team an agent
--   was in when it answered a contact (its latest sign-in at or before then) even after
--   the agent moved to another team; agents.team is the team of its latest sign-in.
ALTER TABLE agent_status_log ADD COLUMN team text NOT NULL DEFAULT '';
ALTER TABLE agents ADD COLUMN team text NOT NULL DEFAULT '';

-- A contact's team: the latest sign-in of its agent at or before a moment, with the team
-- read from the index.
CREATE INDEX agent_status_log_team_idx ON agent_status_log (agent_id, at DESC)
    INCLUDE (team) WHERE kind = 'signed_in';
-- Whether a team filter names a team any agent ever signed in with.
CREATE INDEX agent_status_log_teams_idx ON agent_status_log (team)
    WHERE kind = 'signed_in' AND team <> '';

-- The sign-in views gain the team, at the end (their columns are a stable interface).
CREATE OR REPLACE VIEW agent_sessions AS
SELECT
    s.agent_id,
    s.at AS signed_in_at,
    (SELECT min(o.at) FROM agent_status_log AS o
     WHERE o.agent_id = s.agent_id AND o.kind = 'signed_out' AND o.at >= s.at) AS signed_out_at,
    s.team
FROM agent_status_log AS s
WHERE s.kind = 'signed_in';
