"""The bare asyncpg baseline: the rows one full lifecycle records, written without the
router, on the router's own schema and statements (router/store/queries.sql).

A lifecycle is one `insert_contact`, five `insert_contact_event` (submitted, offered,
answered, ended, completed) and four `update_contact` (offered, answered, ended,
completed): what the router writes for a contact that goes straight through. Two ways:

- one transaction per lifecycle, from several connections at once;
- batched: many lifecycles per transaction, one executemany per statement, the way
  the router's group commit writes (but without the RPCs in between).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from bench.common import backend_pids, backends_cpu_seconds, cpu_seconds, percentile
from router.domain import Channel, Contact, ContactEventKind, ContactState
from router.store.migrations import migrate
from router.store.queries import QUERIES
from router.store.store import contact_insert, contact_update, event_insert

if TYPE_CHECKING:
    Connection = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]


@dataclass
class Rows:
    """The rows of a set of lifecycles, per statement, in the order they are written."""

    contacts: list[tuple[Any, ...]]
    events: list[tuple[Any, ...]]
    updates: list[tuple[Any, ...]]


def lifecycle_rows(count: int) -> Rows:
    """Each lifecycle's rows, built by the store's own row functions from the contact
    as each transition leaves it: the baseline writes exactly what the router writes."""
    rows = Rows([], [], [])
    now = datetime.now(UTC)
    times = [now + n * timedelta(milliseconds=1) for n in range(5)]
    for _ in range(count):
        key = os.urandom(12).hex()
        offer_id = str(uuid.uuid4())
        contact = Contact(str(uuid.uuid4()), key, Channel.PHONE, f"bench-{key}", now)
        rows.contacts.append(contact_insert(contact)[1])
        rows.events.append(event_insert(ContactEventKind.SUBMITTED, contact.id, now)[1])
        steps = (
            (ContactEventKind.OFFERED, {"state": ContactState.OFFERED, "offered_at": times[1]}),
            (ContactEventKind.ANSWERED, {"state": ContactState.CONNECTED, "answered_at": times[2]}),
            (ContactEventKind.ENDED, {"state": ContactState.WRAP_UP, "ended_at": times[3]}),
            (
                ContactEventKind.COMPLETED,
                {
                    "state": ContactState.COMPLETED,
                    "completed_at": times[4],
                    "disposition": "bench",
                },
            ),
        )
        contact = replace(contact, agent_id="agent", offer_id=offer_id, offer_count=1)
        for n, (kind, changes) in enumerate(steps, start=1):
            contact = replace(contact, **changes)  # type: ignore[arg-type]
            offer = offer_id if kind is ContactEventKind.OFFERED else None
            event = event_insert(kind, contact.id, times[n], "agent", offer)
            rows.events.append(event[1])
            rows.updates.append(contact_update(contact, times[n])[1])
    return rows


async def _write(connection: Connection, rows: Rows) -> None:
    async with connection.transaction():
        await connection.executemany(QUERIES["insert_contact"], rows.contacts)
        await connection.executemany(QUERIES["insert_contact_event"], rows.events)
        await connection.executemany(QUERIES["update_contact"], rows.updates)


async def _one_per_transaction(connection: Connection, rows: Rows) -> None:
    """One lifecycle, one transaction, each statement sent on its own."""
    async with connection.transaction():
        await connection.execute(QUERIES["insert_contact"], *rows.contacts[0])
        await connection.execute(QUERIES["insert_contact_event"], *rows.events[0])
        for n, update in enumerate(rows.updates, start=1):
            await connection.execute(QUERIES["update_contact"], *update)
            await connection.execute(QUERIES["insert_contact_event"], *rows.events[n])


async def commit_latency(db_url: str, *, seconds: float) -> dict[str, float]:
    """The floor under routing latency: the router sends an offer once its rows (one
    event, one contact update) are committed. Here those two rows alone, one
    transaction after another on one connection, nothing else in between."""
    rows = lifecycle_rows(1)
    connection = await asyncpg.connect(db_url)
    samples = []
    try:
        await connection.execute(QUERIES["insert_contact"], *rows.contacts[0])
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            started = time.perf_counter()
            async with connection.transaction():
                await connection.execute(QUERIES["insert_contact_event"], *rows.events[1])
                await connection.execute(QUERIES["update_contact"], *rows.updates[0])
            samples.append(1000 * (time.perf_counter() - started))
    finally:
        await connection.close()
    return {
        "offer_commit_ms_p50": percentile(samples, 0.5),
        "offer_commit_ms_p99": percentile(samples, 0.99),
        "offer_commit_ms_p99.9": percentile(samples, 0.999),
    }


FLOOR_METHODS = ("SubmitContact", "AcceptOffer", "EndContact", "CompleteContact")
"""The RPCs whose latency is compared with the commit of their own rows."""


async def rpc_floor(db_url: str, *, seconds: float) -> dict[str, dict[str, float]]:
    """The floor under each RPC's latency: the rows that RPC records, committed by bare
    asyncpg the plain way (a transaction, one execute per row), one commit after
    another on one connection, nothing else in between. SubmitContact: a contact and
    its 'submitted' event; AcceptOffer, EndContact, CompleteContact: one event and the
    contact's update. Milliseconds, p50 and p99, per method."""
    connection = await asyncpg.connect(db_url)
    figures: dict[str, dict[str, float]] = {}
    try:
        await migrate(connection)
        held = lifecycle_rows(1)
        await connection.execute(QUERIES["insert_contact"], *held.contacts[0])
        for step, method in enumerate(FLOOR_METHODS):
            samples = []
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                if step == 0:
                    fresh = lifecycle_rows(1)
                    writes = [
                        ("insert_contact", fresh.contacts[0]),
                        ("insert_contact_event", fresh.events[0]),
                    ]
                else:
                    # Steps 1-3 are the answered, ended and completed rows.
                    writes = [
                        ("insert_contact_event", held.events[step + 1]),
                        ("update_contact", held.updates[step]),
                    ]
                started = time.perf_counter()
                async with connection.transaction():
                    for name, args in writes:
                        await connection.execute(QUERIES[name], *args)
                samples.append(1000 * (time.perf_counter() - started))
            figures[method] = {
                "p50": percentile(samples, 0.5),
                "p99": percentile(samples, 0.99),
                "count": len(samples),
            }
    finally:
        await connection.close()
    return figures


async def measure(
    db_url: str, *, seconds: float, connections: int = 8, batch: int = 200
) -> dict[str, float]:
    """Lifecycles per second written both ways, and the CPU both sides spent on them."""
    setup = await asyncpg.connect(db_url)
    try:
        await migrate(setup)
    finally:
        await setup.close()
    figures: dict[str, float] = {}
    pool = await asyncpg.create_pool(db_url, min_size=connections, max_size=connections)
    try:

        async def per_transaction(deadline: float) -> int:
            done = 0
            async with pool.acquire() as connection:
                while time.monotonic() < deadline:
                    await _one_per_transaction(connection, lifecycle_rows(1))
                    done += 1
            return done

        async def batched(deadline: float) -> int:
            done = 0
            async with pool.acquire() as connection:
                while time.monotonic() < deadline:
                    await _write(connection, lifecycle_rows(batch))
                    done += batch
            return done

        for name, writer, writers in (
            ("transaction_per_lifecycle", per_transaction, connections),
            ("batched", batched, 2),
        ):
            pids = await backend_pids(db_url)
            cpu_before = cpu_seconds(os.getpid())
            db_before = backends_cpu_seconds(pids)
            started = time.monotonic()
            counts = await asyncio.gather(*(writer(started + seconds) for _ in range(writers)))
            elapsed = time.monotonic() - started
            lifecycles = sum(counts)
            figures[f"{name}_per_second"] = lifecycles / elapsed
            figures[f"{name}_client_cpu_ms"] = (
                1000 * (cpu_seconds(os.getpid()) - cpu_before) / lifecycles
            )
            figures[f"{name}_postgres_cpu_ms"] = (
                1000 * (backends_cpu_seconds(pids) - db_before) / lifecycles
            )
    finally:
        await pool.close()
    figures.update(await commit_latency(db_url, seconds=min(seconds, 3.0)))
    figures["batch"] = batch
    figures["connections"] = connections
    return figures
