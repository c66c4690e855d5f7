"""The active router runs the retention job: at activation, then every interval, with
what it did in the log and in retention_runs, and routing going on meanwhile."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import asyncpg
import grpc
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc

from router.domain import RoutingPolicy
from router.retention import RetentionSettings, month_start, months_before
from router.server import start_router
from tests.acceptance.conftest import eventually
from tests.acceptance.router_process import RouterProcess
from tests.integration.test_retention import write_contact


async def old_history(db: asyncpg.Connection, now: datetime) -> dict[str, uuid.UUID]:
    """A contact from a year ago, one from six weeks ago and one from today."""
    await db.execute(
        "SELECT add_contact_event_partitions($1, 14)", month_start(months_before(now, 12))
    )
    return {
        "year": await write_contact(db, months_before(now, 12), "customer-year"),
        "weeks": await write_contact(db, now - timedelta(weeks=6), "customer-weeks"),
        "today": await write_contact(db, now - timedelta(hours=2), "customer-today"),
    }


async def customer_of(db: asyncpg.Connection, contact_id: uuid.UUID) -> str | None:
    value: str | None = await db.fetchval(
        "SELECT customer_id FROM contacts WHERE id = $1", contact_id
    )
    return value


class TestRetentionInTheRouter:
    async def test_serve_runs_it_at_activation(
        self, database_url: str, db: asyncpg.Connection
    ) -> None:
        """ROUTER_PERSONAL_DATA_MONTHS=1 and ROUTER_TIMINGS_MONTHS=3: the year-old
        contact is deleted, the six-week-old one anonymised, today's kept; the router
        serves submissions."""
        ids = await old_history(db, datetime.now(UTC))
        process = await RouterProcess.start(
            {
                "ROUTER_DATABASE_URL": database_url,
                "ROUTER_PERSONAL_DATA_MONTHS": "1",
                "ROUTER_TIMINGS_MONTHS": "3",
            }
        )
        try:
            run = await process.wait_for("retention_run")
            assert (run["contacts_deleted"], run["contacts_anonymised"]) == (1, 1)
            assert await customer_of(db, ids["year"]) is None
            assert (await customer_of(db, ids["weeks"]) or "").startswith("retained-")
            assert await customer_of(db, ids["today"]) == "customer-today"
            async with grpc.aio.insecure_channel(process.address) as channel:
                contacts = pb_grpc.ContactServiceStub(channel)
                submitted = await contacts.SubmitContact(
                    pb.SubmitContactRequest(
                        idempotency_key="after-retention",
                        channel=pb.CHANNEL_PHONE,
                        customer_id="customer-new",
                    )
                )
            assert submitted.contact.contact_id
        finally:
            assert await process.stop() == 0
        assert await db.fetchval("SELECT count(*) FROM retention_runs") >= 1

    async def test_runs_again_every_interval_and_stops_with_the_router(
        self, database_url: str, db: asyncpg.Connection
    ) -> None:
        """With a clock a month ahead after the first run, the next run anonymises the
        contact that was recent; stopping the router stops the job."""
        now = datetime.now(UTC)
        ids = await old_history(db, now)
        clock = [now]
        running = await start_router(
            database_url,
            RoutingPolicy(),
            retention=RetentionSettings(personal_months=1, timings_months=3, interval=0.05),
            clock=lambda: clock[0],
        )
        try:
            await eventually(lambda: _runs(running.retention.runs, 1), what="the first run")
            assert await customer_of(db, ids["today"]) == "customer-today"
            clock[0] = months_before(now, -2)
            await eventually(lambda: _anonymised(db, ids["today"]), within=10, what="a later run")
            assert running.retention.running
        finally:
            await running.stop(grace=1.0)
        assert not running.retention.running


async def _runs(runs: Sequence[object], count: int) -> bool:
    return len(runs) >= count


async def _anonymised(db: asyncpg.Connection, contact_id: uuid.UUID) -> bool:
    return (await customer_of(db, contact_id) or "").startswith("retained-")
