-- contact-router schema, version 4: personal routing.
--   * A contact keeps its preferred skills (most wanted first) and its preferred agent
--     with where that preference came from ('gateway': named at submission;
--     'previous_agent': the agent who last completed a contact for the same customer;
--     'transfer': named by the agent who transferred it), so that a restart routes it
--     as before.
--   * contact_events may record 'rerouted': the router moved a waiting contact that no
--     signed-in agent could serve to its channel's fallback skill. agent_id is NULL;
--     the reason says from which skills to which, and after how long.
--   * A customer's contacts in time order, for returning customers in reports.
ALTER TABLE contacts
    ADD COLUMN preferred_skills text[] NOT NULL DEFAULT '{}',
    ADD COLUMN preferred_agent_id text,
    ADD COLUMN preferred_agent_source text CHECK (
        preferred_agent_source IN ('gateway', 'previous_agent', 'transfer')
    );

ALTER TABLE contact_events DROP CONSTRAINT contact_events_kind_check;
ALTER TABLE contact_events ADD CONSTRAINT contact_events_kind_check CHECK (kind IN (
    'submitted', 'offered', 'declined', 'offer_timed_out', 'answered',
    'ended', 'completed', 'abandoned', 'requeued', 'transferred', 'rerouted'
));

CREATE INDEX contacts_customer_idx ON contacts (customer_id, queued_at)
    INCLUDE (completed_at, agent_id);
