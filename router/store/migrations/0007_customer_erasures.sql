-- contact-router schema, version 7: erasing a customer's personal data.
--   * customer_erasures: one row per AdminService.EraseCustomer call, the audit of who
--     asked, when, why and how much was erased. It never holds the customer's id: the
--     pseudonym is what their contacts' customer_id became (one random name per
--     erasure), so an auditor can see which contacts were erased, not whose they were.
CREATE TABLE customer_erasures (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    erased_at        timestamptz NOT NULL,
    requested_by     text NOT NULL,
    reason           text NOT NULL DEFAULT '',
    pseudonym        text NOT NULL,
    contacts_erased  integer NOT NULL,
    comments_erased  integer NOT NULL
);
