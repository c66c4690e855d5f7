"""A hot standby's core, kept restored by following the active router.

A standby used to wait for the active lock and then read every open contact from
PostgreSQL: 22.6 s for 500,000 waiting contacts, with no routing meanwhile. Then it
kept a copy of the contacts and rebuilt the core from it at takeover (2.5 s at
100,000). Now it keeps the core itself: it reads the open contacts once when it
starts, queues them in a core of its own, then applies each change the active router
commits, so that when it takes over the queue (sorted per class, indexed, its timers
set) is already built and current (router/domain/warm.py says what is done at the
takeover: what depends on its instant).

How it follows: by the recorded events, in commit order (router/store/event_feed.py,
the reader the event stream uses too). Every change of a contact is an event written
in the same transaction as the contact's row, so a page of events names every contact
whose row changed; the standby reads those rows again (their current state, from the
table) and applies each to its core (an open one queued or kept, a final one gone).
Nothing is inferred from an event: a row read later than its event is newer, never
older, and the later events make it read again. Why the numbers are a safe cursor (one
writer, committing one transaction at a time, under the active lock) is in
event_feed.py and docs/architecture.md.

The start is one snapshot: the open contacts and the highest event number committed,
read in one REPEATABLE READ transaction, so that the events after that number are
exactly the changes the core has not seen. After an outage the follower resumes from
its number (the events are durable): however far behind, it catches up from the
tables. At takeover, once the lock is this router's (the old router's session has
ended, its last transaction committed or rolled back), `catch_up` reads to the end:
the core then holds what a full read would find, at a fraction of the cost.

Agents are not recorded: they sign in again on their new streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncGenerator, Callable
from datetime import datetime
from typing import cast

import structlog

from router.clock import utc_now
from router.domain import Router
from router.errors import StoreUnavailable
from router.store.event_feed import StoredEvent
from router.store.store import Store

log = structlog.get_logger(__name__)


class OpenContacts:
    """The open contacts of the database as of event number `seq`, kept in `router`'s
    warm core (a router of its own, not serving until the takeover)."""

    def __init__(
        self, store: Store, router: Router, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self._store = store
        self.router = router
        self._clock = clock
        self.seq = 0
        self.loaded = False

    def __len__(self) -> int:
        return len(self.router.warm)

    async def load(self) -> None:
        """Read every open contact and the event number they are current to, in one
        snapshot, and queue them. StoreUnavailable during an outage."""
        # Hundreds of thousands of contacts that all live on: the cyclic collector would
        # only walk them again and again while they are made (see server._activate).
        gc.disable()
        try:
            contacts, seq = await self._store.open_contacts_and_seq()
            self.router.warm.apply(contacts, (), self._clock())
            self.seq = seq
            self.loaded = True
        finally:
            gc.freeze()
            gc.enable()
        log.info("standby_loaded", open_contacts=len(contacts), seq=seq)

    async def keep_current(self, retry_seconds: float = 1.0) -> None:
        """Load (unless loaded), then apply every change as it commits, until
        cancelled. An outage pauses it; it resumes from the last page applied, or
        loads again if it had not loaded yet."""
        while True:
            try:
                if not self.loaded:
                    await self.load()
                # follow() is a generator: closed here, its LISTEN connection closes too.
                pages = cast(
                    AsyncGenerator[list[StoredEvent], None], self._store.events.follow(self.seq)
                )
                async with contextlib.aclosing(pages):
                    async for page in pages:
                        await self._apply([event.contact_id for event in page], page[-1].seq)
            except StoreUnavailable as error:
                log.warning("standby_follow_paused", error=str(error), seq=self.seq)
                await asyncio.sleep(retry_seconds)

    async def catch_up(self) -> int:
        """Apply every change committed so far; how many events that was. Called once
        the active lock is held, so nothing more can commit but this router's own."""
        applied = 0
        while True:
            page = await self._store.events.read_after(self.seq)
            if not page:
                return applied
            await self._apply([event.contact_id for event in page], page[-1].seq)
            applied += len(page)

    async def _apply(self, contact_ids: list[str | None], seq: int) -> None:
        """Read again the contacts named (agent events name none) and apply them, then
        advance to `seq`: a cancelled read leaves `seq` where it was, to be read again."""
        ids = {contact_id for contact_id in contact_ids if contact_id is not None}
        current = await self._store.contacts_by_ids(ids) if ids else []
        gone = ids.difference(contact.id for contact in current)
        self.router.warm.apply(current, gone, self._clock())
        self.seq = seq
