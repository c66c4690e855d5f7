-- contact-router schema, version 18: write_batch (version 16) is no longer used.
--   The group commit writes a small batch with one executemany of the `write`
--   statement again, and a larger one as a transaction of one executemany per kind.
--   On a quiet machine, in the same latency rounds and at the same rate, write_batch
--   doubled PostgreSQL's CPU (54-58% of a core against 29-34%) and a commit of 3 to 8
--   rows took 1.5-3.0 ms against 0.8-0.9 ms (bench/RESULTS.md, issue 18, the end of
--   the second session of 2026-12-05): the composite arrays and the PL/pgSQL call cost
--   more than the tables opened once per batch saved.
DROP FUNCTION write_batch;
DROP TYPE write_insert_contact, write_update_contact, write_contact_event, write_agent,
    write_agent_status, write_callback, write_closed_wait;
