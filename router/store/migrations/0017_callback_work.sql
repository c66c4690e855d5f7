-- contact-router schema, version 17: the dial events staffing reads.
--   Staffing for phone from history counts queued callbacks' work (report_callback_work):
--   the `dialled` and `reached` events of the range. Without an index of their own it
--   read every event of the range (five million for a month
--   at a million contacts) to keep the few that are dials; this partial index holds
--   only those, like contact_events_transfer_idx for the transfers: the month's read
--   took 0.14 s against 1.1 s (5 million events, 20,000 of them dials or reached).
--   Other events pay nothing on insert but the predicate. Building it reads
--   contact_events once (0.9 s for those 5 million; writes to the table wait meanwhile).
CREATE INDEX contact_events_dial_idx ON contact_events (at)
    WHERE kind IN ('dialled', 'reached');
