"""What the switchboard needs of a store, and nothing more: the seam its unit tests use.

The real `Store` (PostgreSQL, with the group commit as its writer) satisfies it, and so
does `InMemoryStore` (router/store/memory.py), which the switchboard's unit tests run on.
Reports, migrations and the active lock are the server's business, not the switchboard's,
and are not part of it.

The rules an implementation keeps, because the switchboard relies on them:

- Writes are queued synchronously, in call order, and committed in that order: the
  switchboard changes memory and enqueues with no await in between, so rows follow the
  changes.
- `insert_contact` is not retried: when the store cannot take it (PostgreSQL down) it
  raises StoreUnavailable at once, or its commit fails with it; a second contact with the
  same idempotency key fails with DuplicateKey. Its `after_commit` hook runs once the
  row is durable, even if nobody waits any more, after the hooks of earlier writes.
- `record` is kept until it commits: during an outage its commit future is released
  (the caller goes on) and the rows are written, hooks and all, when the store returns.
  Events that record nothing (an offer withdrawal, none at all) are committed at once.
- `writer.wait` waits for a commit future without cancelling it when the caller gives
  up, and raises StoreUnavailable when the commit fails or takes too long (`retry`
  only changes the message: a kept write "will be written").
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

from router.domain import Channel, Contact, ContactEvent, Event


class CommitWaiter(Protocol):
    """Waits for a queued write's commit (the real one is the group commit)."""

    async def wait(self, done: asyncio.Future[None], *, retry: bool = True) -> None:
        """Return once `done` is committed (or released during an outage);
        StoreUnavailable if it fails or takes too long."""
        ...


class SwitchboardStore(Protocol):
    """The reads, writes and commit waits of the switchboard (see the module's rules)."""

    @property
    def writer(self) -> CommitWaiter:
        """Waits for commits; StoreUnavailable when this store cannot write at all."""
        ...

    # ------------------------------------------------------------ writes

    def insert_contact(
        self, contact: Contact, after_commit: Callable[[], None]
    ) -> asyncio.Future[None]:
        """Queue a new contact's row; `after_commit` runs once it is durable."""
        ...

    def record(self, events: Sequence[Event]) -> asyncio.Future[None]:
        """Queue the rows for `events`, kept (and retried) until they commit."""
        ...

    def record_voided(self, requeued: Sequence[ContactEvent]) -> asyncio.Future[None]:
        """Queue a restart's voided offers (REQUEUED, reason restart, at one instant)."""
        ...

    # ------------------------------------------------------------- reads

    async def contact_by_id(self, contact_id: str) -> Contact | None:
        """The contact as last committed, or None."""
        ...

    async def contact_by_key(self, key: str) -> Contact | None:
        """The contact submitted with this idempotency key, as last committed, or None."""
        ...

    async def open_contacts(self) -> list[Contact]:
        """The open contacts (in no final state), in no particular order: the restore
        orders them (PostgreSQL's sort of 500,000 rows cost more than the restore's)."""
        ...

    async def previous_agents(self, limit: int) -> list[tuple[str, str]]:
        """(customer id, agent id) of the `limit` most recent completions, oldest first."""
        ...

    async def answers_since(self, since: datetime) -> list[tuple[str, Channel, datetime]]:
        """(agent id, channel, when) of each answer since `since`, oldest first."""
        ...
