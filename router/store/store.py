"""The store: translates domain values to named statements and rows back to values."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

import asyncpg
import structlog

from router.domain import (
    AgentEvent,
    AgentEventKind,
    Channel,
    Contact,
    ContactEvent,
    ContactEventKind,
    ContactState,
    Event,
    PreferenceSource,
)
from router.domain.events import Intervention
from router.errors import StartupError, StoreUnavailable
from router.store.active_lock import ActiveLock
from router.store.callback_rows import callback_upsert, with_callbacks
from router.store.event_feed import EventFeed
from router.store.fetch import fetch
from router.store.group_commit import GroupCommit, Write
from router.store.migrations import migrate
from router.store.outage import OUTAGE
from router.store.queries import QUERIES
from router.store.reports import REPLICA_REFUSALS, REPLICA_SETTING, Replica, Reports
from router.store.restore_read import contacts_from_rows, open_contacts, open_contacts_and_seq
from router.store.retention import RetentionStore

log = structlog.get_logger(__name__)

REPLICA_CONNECT_SECONDS = 10.0
"""How long a connection to the reporting replica may take before a report gives up."""


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    kind: ContactEventKind
    at: datetime
    agent_id: str | None
    offer_id: str | None
    reason: str | None
    intervention: Intervention | None = None


@dataclass(frozen=True, slots=True)
class Erasure:
    """What one erasure changed (its audit row, but for who asked and why)."""

    id: int
    erased_at: datetime
    contacts: int
    comments: int
    pseudonym: str


class Store:
    """The only owner of SQL in contact-router.

    Reads use a pool. Writes go through one group commit, started by `become_active`
    on the connection that holds the active router's lock.
    """

    def __init__(self, pool: asyncpg.Pool, dsn: str, replica: Replica | None = None) -> None:
        self._pool = pool
        self._lock = ActiveLock(dsn)
        self._writer: GroupCommit | None = None
        self._replica = replica
        self._checking: asyncio.Task[None] | None = None
        self.reports = Reports(pool, replica)
        self.events = EventFeed(pool, dsn)
        self.retention = RetentionStore(pool)
        """The retention job's statements, on the pool (router/retention.py)."""
        """The recorded events in commit order, by cursor and live (event_feed.py)."""
        self.writer_factory: Callable[[ActiveLock], GroupCommit] = GroupCommit
        """Makes the writer on becoming active (router/tracing.py's when tracing is on)."""

    @classmethod
    async def open(
        cls,
        dsn: str,
        *,
        min_size: int = 2,
        max_size: int = 10,
        reporting_dsn: str | None = None,
    ) -> Store:
        """A pool on `dsn`. StoreUnavailable if the server cannot be reached (retrying
        may help); StartupError if it refuses the database or the user (it will not).

        With `reporting_dsn` (a read replica), a second pool there for the reports'
        reads. It connects on first use, so a replica that is down does not stop the
        router from routing: `check_reporting` says at start whether it answers, and
        each report it cannot serve is UNAVAILABLE, naming it."""
        url = urlsplit(dsn)
        server = _server_of(dsn)
        try:
            pool = await asyncpg.create_pool(
                dsn, min_size=min_size, max_size=max_size, init=_init_connection
            )
        except OUTAGE as error:
            raise StoreUnavailable(f"cannot connect to PostgreSQL at {server}: {error}") from error
        except asyncpg.InvalidCatalogNameError as error:
            database = url.path.lstrip("/")
            raise StartupError(
                f"PostgreSQL at {server}: {error}: create it (CREATE DATABASE "
                f'"{database}"), or name an existing one in --database-url (ROUTER_DATABASE_URL)'
            ) from error
        except asyncpg.InvalidAuthorizationSpecificationError as error:
            raise StartupError(
                f"PostgreSQL at {server} refused user {url.username or '(none)'!r}: {error}: "
                "check the user and password in --database-url (ROUTER_DATABASE_URL)"
            ) from error
        replica = None
        if reporting_dsn is not None:
            replica = Replica(
                await asyncpg.create_pool(
                    reporting_dsn,
                    min_size=0,
                    max_size=max_size,
                    init=_init_connection,
                    timeout=REPLICA_CONNECT_SECONDS,
                ),
                _server_of(reporting_dsn),
            )
        return cls(pool, dsn, replica)

    def check_reporting(self) -> None:
        """Log, soon, whether the reporting replica answers and is a standby; nothing
        without one. In the background, and never failing: routing does not need it."""
        if self._replica is not None and self._checking is None:
            self._checking = asyncio.create_task(
                _check_replica(self._replica), name="reporting-database-check"
            )

    async def try_become_active(self) -> bool:
        """become_active() if the lock is free now; False (a standby) if it is not."""
        if not await self._lock.try_acquire():
            return False
        self._start_writer()
        return True

    async def become_active(self, poll_seconds: float = 0.1) -> None:
        """Wait until this router holds the active lock (a standby waits here), then
        start writing on the lock's connection."""
        await self._lock.acquire(poll_seconds)
        self._start_writer()

    def _start_writer(self) -> None:
        self._writer = self.writer_factory(self._lock)
        self._writer.start()

    @property
    def writer(self) -> GroupCommit:
        if self._writer is None:
            raise StoreUnavailable("this router is not the active one")
        return self._writer

    async def close(self) -> None:
        if self._writer is not None:
            await self._writer.close()
        await self._lock.release()
        await self._pool.close()
        if self._checking is not None:
            self._checking.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checking
        if self._replica is not None:
            await self._replica.pool.close()

    async def migrate(self) -> list[str]:
        async with self._pool.acquire() as connection:
            applied = await migrate(connection)
            # Rows of a month without a partition land in the DEFAULT one; keep ahead.
            await connection.execute(QUERIES["add_event_partitions"], 3)
            return applied

    # ------------------------------------------------------------ writes

    def insert_contact(
        self, contact: Contact, after_commit: Callable[[], None]
    ) -> asyncio.Future[None]:
        """Queue the insert of a new contact; `after_commit` runs once it is durable.

        Not retried: while PostgreSQL is down a submission fails at once and the
        gateway, which still holds the contact, retries with the same key.
        """
        return self.writer.enqueue(
            [
                contact_insert(contact),
                event_insert(ContactEventKind.SUBMITTED, contact.id, contact.queued_at),
            ],
            retry=False,
            after_commit=after_commit,
        )

    def record(self, events: Sequence[Event]) -> asyncio.Future[None]:
        """Queue the rows for `events`; retried until PostgreSQL takes them."""
        return self.writer.enqueue(self.writes_for(events))

    def record_voided(self, requeued: Sequence[ContactEvent]) -> asyncio.Future[None]:
        """Queue a restart's voided offers (REQUEUED at one instant) as one statement."""
        ids = [UUID(event.contact.id) for event in requeued]
        writes = [("requeue_voided", (ids, requeued[0].at))] if requeued else []
        return self.writer.enqueue(writes)

    def writes_for(self, events: Iterable[Event]) -> list[Write]:
        """The rows that record `events` (offer withdrawals record nothing)."""
        writes: list[Write] = []
        # The row needs only the last state of each contact; the history is in the events.
        latest: dict[str, ContactEvent] = {}
        closed: dict[str, float] = {}  # contacts whose wait ended with closed seconds
        for event in events:
            if isinstance(event, ContactEvent):
                latest[event.contact.id] = event
                if event.contact.closed_wait and event.kind in _WAIT_ENDS:
                    closed[event.contact.id] = event.contact.closed_wait
                writes.append(
                    event_insert(
                        event.kind,
                        event.contact.id,
                        event.at,
                        event.agent_id,
                        event.offer.id if event.offer else None,
                        event.reason,
                        event.intervention,
                    )
                )
            elif isinstance(event, AgentEvent):
                if event.kind is AgentEventKind.SIGNED_IN:
                    writes.append(
                        (
                            "upsert_agent",
                            (event.agent_id, sorted(event.skills), event.at, event.team),
                        )
                    )
                writes.append(
                    (
                        "insert_agent_status",
                        (
                            event.agent_id,
                            event.kind,
                            event.status,
                            event.reason,
                            event.connected,
                            event.at,
                            event.team,
                            *_audit(event.intervention),
                        ),
                    )
                )
        writes.extend(contact_update(e.contact, e.at) for e in latest.values())
        writes.extend(
            callback_upsert(e.contact) for e in latest.values() if e.contact.callback is not None
        )
        writes.extend(("record_closed_wait", (UUID(c), s)) for c, s in closed.items())
        return writes

    # ------------------------------------------------------------ erasure

    async def erase_customer(
        self, customer_id: str, pseudonym: str, at: datetime, requested_by: str, reason: str
    ) -> Erasure:
        """Erase `customer_id`'s personal data from their finished contacts and their
        feedback, and write the audit row, in one transaction (queries.sql,
        erase_customer). Not through the group commit: the router's writes never touch
        these columns, so no ordering with them is needed."""
        row = await self._fetchrow(
            "erase_customer", customer_id, pseudonym, at, requested_by, reason
        )
        assert row is not None  # an INSERT ... SELECT without WHERE returns its row
        return Erasure(
            id=row["id"],
            erased_at=at,
            contacts=row["contacts_erased"],
            comments=row["comments_erased"],
            pseudonym=pseudonym,
        )

    # ------------------------------------------------------------- reads

    async def contact_by_id(self, contact_id: str) -> Contact | None:
        row = await self._fetchrow("contact_by_id", UUID(contact_id))
        return None if row is None else (await self._with_callbacks([contact_from_row(row)]))[0]

    async def contact_by_key(self, key: str) -> Contact | None:
        row = await self._fetchrow("contact_by_key", key)
        return None if row is None else (await self._with_callbacks([contact_from_row(row)]))[0]

    async def open_contacts(self) -> list[Contact]:
        return await open_contacts(self._pool)

    async def open_contacts_and_seq(self) -> tuple[list[Contact], int]:
        """The open contacts and the event number they are current to, in one snapshot
        (restore_read.open_contacts_and_seq). StoreUnavailable during an outage."""
        return await open_contacts_and_seq(self._pool)

    async def contacts_by_ids(self, contact_ids: Iterable[str]) -> list[Contact]:
        """The contacts of these ids that exist, in any state."""
        ids = list(contact_ids)
        return with_callbacks(
            contacts_from_rows(await self._fetch("contacts_by_ids", ids)),
            await self._fetch("callbacks_of", ids),
        )

    async def _with_callbacks(self, contacts: list[Contact]) -> list[Contact]:
        ids = [UUID(c.id) for c in contacts]
        return with_callbacks(contacts, await self._fetch("callbacks_of", ids))

    async def previous_agents(self, limit: int) -> list[tuple[str, str]]:
        """(customer id, agent id) of the `limit` most recent completions, oldest first:
        replayed in order, the newest completion of each customer wins."""
        rows = await self._fetch("previous_agents", limit)
        return [(r["customer_id"], r["agent_id"]) for r in reversed(rows)]

    async def answers_since(self, since: datetime) -> list[tuple[str, Channel, datetime]]:
        """(agent id, channel, when) of each answer since `since`, oldest first."""
        rows = await self._fetch("answers_since", since)
        return [(r["agent_id"], Channel(r["channel"]), r["at"]) for r in rows]

    async def contact_events(self, contact_id: str) -> list[RecordedEvent]:
        rows = await self._fetch("contact_events_of", UUID(contact_id))
        return [
            RecordedEvent(
                ContactEventKind(r["kind"]),
                r["at"],
                r["agent_id"],
                None if r["offer_id"] is None else str(r["offer_id"]),
                r["reason"],
                None
                if r["supervisor"] is None
                else Intervention(r["supervisor"], r["supervisor_reason"] or ""),
            )
            for r in rows
        ]

    async def _fetch(self, name: str, *args: Any) -> list[asyncpg.Record]:
        return await fetch(self._pool, name, *args)

    async def _fetchrow(self, name: str, *args: Any) -> asyncpg.Record | None:
        rows = await self._fetch(name, *args)
        return rows[0] if rows else None


async def _check_replica(replica: Replica) -> None:
    try:
        async with asyncio.timeout(REPLICA_CONNECT_SECONDS):
            (row,) = await fetch(replica.pool, "reporting_database")
    except (*REPLICA_REFUSALS, asyncpg.PostgresError) as error:
        log.warning(
            "reporting_database_unavailable",
            server=replica.server,
            error=str(error) or repr(error),
            hint=f"reports are UNAVAILABLE until it answers: check {REPLICA_SETTING}",
        )
        return
    log.info("reporting_database", server=replica.server, standby=row["in_recovery"])


def _server_of(dsn: str) -> str:
    """Where `dsn` points, for the messages (host and port, or the socket folder):
    never the password."""
    url = urlsplit(dsn)
    return url.netloc.rpartition("@")[2] or parse_qs(url.query).get("host", ["?"])[0]


async def _init_connection(connection: asyncpg.Connection) -> None:
    await connection.execute("SET TIME ZONE 'UTC'")


# The rows the router writes, one function per statement of queries.sql (the bench's
# bare-asyncpg baseline writes the same rows through them). Ids go as the text the
# router made them (uuid4) or read them: asyncpg encodes a uuid parameter from text in
# C, where building a UUID object first costs a few microseconds each, a dozen times
# per lifecycle.
# Enum members (state, channel, event kinds) go as they are: each is a StrEnum, a str
# whose text is its value, which asyncpg writes as any str; `.value` is a property
# run in Python, a call per column.


def contact_insert(contact: Contact) -> Write:
    return (
        "insert_contact",
        (
            contact.id,
            contact.idempotency_key,
            contact.channel,
            contact.customer_id,
            json.dumps(dict(contact.attributes)),
            sorted(contact.required_skills),
            contact.priority_boost,
            contact.state,
            contact.queued_at,
            list(contact.preferred_skills),
            contact.preferred_agent_id,
            contact.preferred_agent_source,
        ),
    )


def event_insert(
    kind: ContactEventKind,
    contact_id: str,
    at: datetime,
    agent_id: str | None = None,
    offer_id: str | None = None,
    reason: str | None = None,
    intervention: Intervention | None = None,
) -> Write:
    return (
        "insert_contact_event",
        (
            contact_id,
            kind,
            at,
            agent_id,
            offer_id,
            reason,
            *_audit(intervention),
        ),
    )


def _audit(intervention: Intervention | None) -> tuple[str | None, str | None]:
    """The supervisor and reason columns of an event row."""
    if intervention is None:
        return None, None
    return intervention.supervisor, intervention.reason


def contact_update(contact: Contact, at: datetime) -> Write:
    return (
        "update_contact",
        (
            contact.id,
            contact.state,
            contact.offered_at,
            contact.answered_at,
            contact.ended_at,
            contact.completed_at,
            contact.abandoned_at,
            contact.agent_id,
            contact.offer_id,
            contact.disposition,
            contact.offer_count,
            at,
            sorted(contact.required_skills),
            list(contact.preferred_skills),
            contact.preferred_agent_id,
            contact.preferred_agent_source,
            contact.priority_boost,
            contact.cancelled_at,
        ),
    )


_WAIT_ENDS = (ContactEventKind.ANSWERED, ContactEventKind.ABANDONED)


def contact_from_row(row: asyncpg.Record) -> Contact:
    return Contact(
        id=str(row["id"]),
        idempotency_key=row["idempotency_key"],
        channel=Channel(row["channel"]),
        customer_id=row["customer_id"],
        queued_at=row["queued_at"],
        attributes=json.loads(row["attributes"]),
        required_skills=frozenset(row["required_skills"]),
        priority_boost=row["priority_boost"],
        state=ContactState(row["state"]),
        offered_at=row["offered_at"],
        answered_at=row["answered_at"],
        ended_at=row["ended_at"],
        completed_at=row["completed_at"],
        abandoned_at=row["abandoned_at"],
        agent_id=row["agent_id"],
        offer_id=None if row["offer_id"] is None else str(row["offer_id"]),
        disposition=row["disposition"],
        offer_count=row["offer_count"],
        preferred_skills=tuple(row["preferred_skills"]),
        preferred_agent_id=row["preferred_agent_id"],
        preferred_agent_source=(
            None
            if row["preferred_agent_source"] is None
            else PreferenceSource(row["preferred_agent_source"])
        ),
        cancelled_at=row["cancelled_at"],
    )
