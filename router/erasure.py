"""Erasing a customer's personal data (AdminService.EraseCustomer).

The router keeps a customer's id and attributes on each contact, and their words in
feedback comments. Erasure replaces the id of their finished contacts with one random
pseudonym (shared by those contacts, so the reports that follow a customer's contacts,
returning customers, come out the same), empties their attributes and comments, and
forgets their previous agent in memory. Timings, dispositions and ratings stay: no
report changes. The contact events carry no customer data of their own (the event
stream reads it from the contact), so they are erased with it.

Refused while the customer has an open contact: the core holds its id and attributes
until it ends. Asking again is safe: nothing is left to erase, and the audit records
that it was asked. The audit row never holds the customer id.
"""

from __future__ import annotations

from uuid import uuid4

import structlog

from router.clock import utc_now
from router.store.store import Erasure, Store
from router.switchboard import Switchboard

log = structlog.get_logger(__name__)

PSEUDONYM_PREFIX = "erased-"


async def erase_customer(
    switchboard: Switchboard, store: Store, customer_id: str, requested_by: str, reason: str
) -> Erasure:
    """Erase `customer_id`'s personal data; WrongState while they have an open contact."""
    switchboard.router.forget_customer(customer_id)
    erasure = await store.erase_customer(
        customer_id, f"{PSEUDONYM_PREFIX}{uuid4().hex}", utc_now(), requested_by, reason
    )
    # Never the customer id: the log would keep what the erasure removed.
    log.info(
        "customer_erased",
        erasure_id=erasure.id,
        contacts=erasure.contacts,
        comments=erasure.comments,
        requested_by=requested_by,
    )
    return erasure
