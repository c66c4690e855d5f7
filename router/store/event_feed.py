"""Reading the recorded events in commit order: by cursor, and live as they commit.

Every contact event and agent status change carries `seq`, a number from one sequence
taken inside the active router's serialized group commit (migration 0006): numbers
rise in commit order, across both tables, and a reader that has seen N has seen every
row below N that will ever commit. Numbers may skip (a transaction that failed), never
go back.

Two ways to read, for anyone (the event stream, a standby following the active router):

- `read_after(seq, limit)`: one page of events numbered above `seq`, in order.
- `follow(seq)`: every event above `seq`, page by page, forever: what is recorded
  first, then what commits, woken by the NOTIFY the group commit sends inside each
  transaction that records events (and every `poll_seconds` in case a notification is
  lost with its connection). A PostgreSQL outage pauses it; it resumes where it was.

`origin()` names the database, for cursors that must not be taken to another one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import structlog

from router.errors import StoreUnavailable
from router.store.fetch import fetch
from router.store.outage import OUTAGE

log = structlog.get_logger(__name__)

NOTIFY_CHANNEL = "contact_router_events"
"""The channel of the group commit's NOTIFY (queries.sql, write and notify_events)."""

PAGE = 500
"""Events per read."""


@dataclass(frozen=True, slots=True)
class ContactRecord:
    """The contact a contact event is about, as it stood at the event (timings that had
    not happened yet are None; the disposition once completed)."""

    channel: str
    customer_id: str
    attributes: Mapping[str, str]
    required_skills: tuple[str, ...]
    queued_at: datetime
    offered_at: datetime | None
    answered_at: datetime | None
    ended_at: datetime | None
    completed_at: datetime | None
    abandoned_at: datetime | None
    disposition: str | None
    cancelled_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One recorded event. A contact event has `contact_id` and `contact`; an agent
    event (a row of the agent status log) has `status` and `connected` instead."""

    seq: int
    at: datetime
    kind: str
    agent_id: str | None
    reason: str | None
    contact_id: str | None = None
    offer_id: str | None = None
    contact: ContactRecord | None = None
    status: str | None = None
    connected: bool | None = None
    supervisor: str | None = None
    """The supervisor who made it (its token's name), for a supervisor's action."""
    supervisor_reason: str | None = None

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> StoredEvent:
        contact_id = row["contact_id"]
        contact = None
        if contact_id is not None and row["channel"] is not None:
            contact = ContactRecord(
                channel=row["channel"],
                customer_id=row["customer_id"],
                attributes=json.loads(row["attributes"]),
                required_skills=tuple(sorted(row["required_skills"])),
                queued_at=row["queued_at"],
                offered_at=row["offered_at"],
                answered_at=row["answered_at"],
                ended_at=row["ended_at"],
                completed_at=row["completed_at"],
                abandoned_at=row["abandoned_at"],
                disposition=row["disposition"],
                cancelled_at=row["cancelled_at"],
            )
        return cls(
            seq=row["seq"],
            at=row["at"],
            kind=row["kind"],
            agent_id=row["agent_id"],
            reason=row["reason"],
            contact_id=None if contact_id is None else str(contact_id),
            offer_id=None if row["offer_id"] is None else str(row["offer_id"]),
            contact=contact,
            status=row["status"],
            connected=row["connected"],
            supervisor=row["supervisor"],
            supervisor_reason=row["supervisor_reason"],
        )


@dataclass(frozen=True, slots=True)
class Origin:
    """What names a database in cursors, and the highest number handed out so far."""

    origin: str
    oid: int
    last_seq: int


@dataclass(slots=True)
class _Listener:
    """The LISTEN connection of one `follow`."""

    dsn: str
    woken: asyncio.Event = field(default_factory=asyncio.Event)
    connection: asyncpg.Connection | None = None

    async def ensure(self) -> None:
        if self.connection is not None and not self.connection.is_closed():
            return
        self.connection = None
        connection = await asyncpg.connect(self.dsn)
        await connection.add_listener(NOTIFY_CHANNEL, self._notified)
        self.connection = connection
        # Whatever committed while nobody listened must be read: wake once.
        self.woken.set()

    def _notified(self, *_: Any) -> None:
        self.woken.set()

    async def close(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(*OUTAGE):
                await self.connection.close(timeout=2)
            self.connection = None


class EventFeed:
    """The recorded events of one database, read through `pool`; `dsn` for the LISTEN
    connection that `follow` opens (one per follower: share a follower, not a feed)."""

    def __init__(self, pool: asyncpg.Pool, dsn: str) -> None:
        self._pool = pool
        self._dsn = dsn

    async def origin(self) -> Origin:
        rows = await fetch(self._pool, "event_origin")
        row = rows[0]
        return Origin(str(row["origin"]), row["oid"], row["last_seq"])

    async def last_seq(self) -> int:
        """The highest number handed out so far (its transaction may not have committed)."""
        rows = await fetch(self._pool, "last_event_seq")
        return int(rows[0][0])

    async def last_committed_seq(self) -> int:
        """The highest number committed: a follower that starts there misses nothing."""
        rows = await fetch(self._pool, "last_committed_event_seq")
        return int(rows[0][0])

    async def read_after(self, seq: int, limit: int = PAGE) -> list[StoredEvent]:
        """Up to `limit` events numbered above `seq`, in commit order. StoreUnavailable
        during an outage."""
        return [
            StoredEvent.from_row(row) for row in await fetch(self._pool, "events_after", seq, limit)
        ]

    async def follow(
        self, seq: int, *, poll_seconds: float = 1.0, retry_seconds: float = 0.5
    ) -> AsyncIterator[list[StoredEvent]]:
        """Every event numbered above `seq`, in commit order, as non-empty pages: first
        what is recorded, then each commit's events as it commits. Never ends; an outage
        pauses it (logged) and it goes on from the last page it yielded."""
        listener = _Listener(self._dsn)
        try:
            while True:
                try:
                    await listener.ensure()
                    listener.woken.clear()
                    while True:
                        page = await self.read_after(seq)
                        if page:
                            seq = page[-1].seq
                            yield page
                        if len(page) < PAGE:
                            break
                except (*OUTAGE, StoreUnavailable) as error:
                    log.warning("event_feed_paused", error=repr(error), after=seq)
                    await listener.close()
                    await asyncio.sleep(retry_seconds)
                    continue
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(poll_seconds):
                        await listener.woken.wait()
        finally:
            await listener.close()
