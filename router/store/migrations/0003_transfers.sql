-- contact-router schema, version 3: transfers.
--   * contact_events may record 'transferred': an agent handed a connected contact back
--     to the queue for an agent with given skills or for a named agent. The event's
--     agent_id is the agent who transferred it, its reason says to whom ("to skills
--     billing", "to agent bob"); the next leg follows as offered and answered events.
--     The contact keeps its queued_at and first answered_at, so its wait counts once.
-- On a partitioned table the constraint is replaced on every partition at once.
ALTER TABLE contact_events DROP CONSTRAINT contact_events_kind_check;
ALTER TABLE contact_events ADD CONSTRAINT contact_events_kind_check CHECK (kind IN (
    'submitted', 'offered', 'declined', 'offer_timed_out', 'answered',
    'ended', 'completed', 'abandoned', 'requeued', 'transferred'
));
