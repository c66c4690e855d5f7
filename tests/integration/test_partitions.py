"""contact_events partitioned by month: the migration keeps existing history, and every
month has somewhere to go."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg

from router.store import Store
from router.store.migrations import migrate, migration_files


async def partition_of(db: asyncpg.Connection, event_id: int) -> str:
    name = await db.fetchval(
        "SELECT tableoid::regclass::text FROM contact_events WHERE id = $1", event_id
    )
    assert isinstance(name, str)
    return name


class TestPartitioningMigration:
    async def test_existing_history_moves_into_monthly_partitions(
        self, empty_database_url: str
    ) -> None:
        """Events written under schema 1 keep their ids, land in their month's partition,
        and new events continue the id sequence."""
        db = await asyncpg.connect(empty_database_url)
        try:
            version, first_sql = migration_files()[0]
            await db.execute(first_sql)
            await db.execute(
                "CREATE TABLE schema_migrations (version text PRIMARY KEY, "
                "applied_at timestamptz NOT NULL DEFAULT now())"
            )
            await db.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
            contact_id = uuid.uuid4()
            january = datetime(2025, 1, 31, 23, 59, 59, tzinfo=UTC)
            await db.execute(
                "INSERT INTO contacts (id, idempotency_key, channel, customer_id, state, "
                "queued_at, updated_at) VALUES ($1, 'k', 'phone', 'c', 'queued', $2, $2)",
                contact_id,
                january,
            )
            for at in (january, datetime(2025, 2, 1, tzinfo=UTC)):
                await db.execute(
                    "INSERT INTO contact_events (contact_id, kind, at) "
                    "VALUES ($1, 'submitted', $2)",
                    contact_id,
                    at,
                )
            before = [tuple(r) for r in await db.fetch("SELECT * FROM contact_events ORDER BY id")]

            await migrate(db)

            after = [tuple(r) for r in await db.fetch("SELECT * FROM contact_events ORDER BY id")]
            # Migration 0006 appends the event stream's number, in time order; 0011 who
            # acted and why (NULL: no supervisor did).
            assert after == [(*row, number, None, None) for number, row in enumerate(before, 1)]
            assert await partition_of(db, before[0][0]) == "contact_events_2025_01"
            assert await partition_of(db, before[1][0]) == "contact_events_2025_02"
            new_id = await db.fetchval(
                "INSERT INTO contact_events (contact_id, kind, at) "
                "VALUES ($1, 'abandoned', now()) RETURNING id",
                contact_id,
            )
            assert new_id > before[-1][0]
            assert await db.fetchval("SELECT count(*) FROM contact_events_default") == 0
        finally:
            await db.close()


class TestPartitionsAhead:
    async def test_a_month_without_partition_goes_to_default_then_moves(
        self, db: asyncpg.Connection
    ) -> None:
        """An event far in the future is kept in DEFAULT; creating its month moves it."""
        contact_id = uuid.uuid4()
        far = datetime(2031, 5, 17, 12, 0, tzinfo=UTC)
        await db.execute(
            "INSERT INTO contacts (id, idempotency_key, channel, customer_id, state, "
            "queued_at, updated_at) VALUES ($1, 'k', 'phone', 'c', 'queued', $2, $2)",
            contact_id,
            far,
        )
        event_id = await db.fetchval(
            "INSERT INTO contact_events (contact_id, kind, at) VALUES ($1, 'submitted', $2) "
            "RETURNING id",
            contact_id,
            far,
        )
        assert await partition_of(db, event_id) == "contact_events_default"
        created = await db.fetch("SELECT add_contact_event_partitions($1, 2)", far)
        assert [r[0] for r in created] == ["contact_events_2031_05", "contact_events_2031_06"]
        assert await partition_of(db, event_id) == "contact_events_2031_05"
        assert await db.fetch("SELECT add_contact_event_partitions($1, 1)", far) == []

    async def test_router_start_keeps_three_months_ahead(
        self, store: Store, db: asyncpg.Connection
    ) -> None:
        """Store.migrate (run at every start) creates this month and the next two."""
        await store.migrate()
        months = await db.fetch(
            "SELECT to_char(date_trunc('month', now()) + make_interval(months => i), "
            "'\"contact_events_\"YYYY_MM') AS name FROM generate_series(0, 2) AS i"
        )
        for row in months:
            assert await db.fetchval("SELECT to_regclass($1)", row["name"]) is not None
