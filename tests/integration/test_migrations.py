"""Schema migrations against a real, initially empty PostgreSQL database."""

from __future__ import annotations

import asyncio
import re

import asyncpg
import pytest

from router.domain import (
    AgentEventKind,
    AgentStatus,
    Channel,
    ContactEventKind,
    ContactState,
    DialOutcome,
    PreferenceSource,
)
from router.store import Store
from router.store.migrations import migrate, migration_files

TABLES = {
    "contacts",
    "contact_events",
    "agents",
    "agent_status_log",
    "contact_feedback",
    "channel_targets",
    "schema_migrations",
    "event_stream_origin",
    "customer_erasures",
    "retention_runs",
    "forecasts",
    "forecast_intervals",
    "callbacks",
}
VIEWS = {"contact_timings", "interval_service_level", "agent_activity", "agent_sessions"}


async def relations(db: asyncpg.Connection, kind: str) -> set[str]:
    rows = await db.fetch(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = 'public' AND table_type = $1",
        kind,
    )
    return {r["table_name"] for r in rows}


class TestMigrationFiles:
    def test_files_are_numbered_in_order(self) -> None:
        """Shipped migrations start at 0001 and are sorted by their version."""
        versions = [version for version, _ in migration_files()]
        assert versions
        assert versions[0] == "0001_initial"
        assert versions == sorted(versions)
        assert len(set(versions)) == len(versions)
        for version in versions:
            assert version[:4].isdigit()


class TestMigrate:
    async def test_applies_every_migration_in_order_and_records_it(
        self, empty_database_url: str
    ) -> None:
        """On an empty database every migration is applied once, in order, and recorded."""
        db = await asyncpg.connect(empty_database_url)
        try:
            applied = await migrate(db)
            expected = [version for version, _ in migration_files()]
            assert applied == expected
            recorded = await db.fetch(
                "SELECT version, applied_at FROM schema_migrations ORDER BY applied_at, version"
            )
            assert [r["version"] for r in recorded] == expected
            assert all(r["applied_at"] is not None for r in recorded)
        finally:
            await db.close()

    async def test_second_run_applies_nothing(self, empty_database_url: str) -> None:
        """Migrating a migrated database applies nothing and leaves one record per version."""
        db = await asyncpg.connect(empty_database_url)
        try:
            first = await migrate(db)
            assert await migrate(db) == []
            assert await db.fetchval("SELECT count(*) FROM schema_migrations") == len(first)
        finally:
            await db.close()

    async def test_concurrent_routers_apply_each_migration_once(
        self, empty_database_url: str
    ) -> None:
        """Two routers migrating at the same time: one applies everything, the other nothing."""
        first = await asyncpg.connect(empty_database_url)
        second = await asyncpg.connect(empty_database_url)
        try:
            results = await asyncio.gather(migrate(first), migrate(second))
            expected = [version for version, _ in migration_files()]
            assert sorted(results, key=len) == [[], expected]
            assert await first.fetchval("SELECT count(*) FROM schema_migrations") == len(expected)
        finally:
            await first.close()
            await second.close()

    async def test_store_migrate_on_the_template_applies_nothing(self, database_url: str) -> None:
        """Store.migrate on an already migrated database answers an empty list."""
        store = await Store.open(database_url)
        try:
            assert await store.migrate() == []
        finally:
            await store.close()

    async def test_failed_migration_leaves_no_record(self, empty_database_url: str) -> None:
        """A migration that fails is rolled back with its record, so the next run retries it."""
        db = await asyncpg.connect(empty_database_url)
        try:
            # A table in the way makes 0001 fail on its first statement.
            await db.execute("CREATE TABLE contacts (id int)")
            with pytest.raises(asyncpg.DuplicateTableError):
                await migrate(db)
            assert await db.fetchval("SELECT count(*) FROM schema_migrations") == 0
            assert await relations(db, "BASE TABLE") == {"contacts", "schema_migrations"}
            await db.execute("DROP TABLE contacts")
            assert await migrate(db) == [version for version, _ in migration_files()]
        finally:
            await db.close()


class TestSchema:
    async def test_tables_and_view_exist(self, empty_database_url: str) -> None:
        """After migrating: the tables (contact_events with its monthly partitions),
        schema_migrations and the reporting views."""
        db = await asyncpg.connect(empty_database_url)
        try:
            await migrate(db)
            tables = await relations(db, "BASE TABLE")
            assert {t for t in tables if not t.startswith("contact_events_")} == TABLES
            assert "contact_events_default" in tables
            assert await relations(db, "VIEW") == VIEWS
        finally:
            await db.close()

    async def test_view_columns(self, db: asyncpg.Connection) -> None:
        """contact_timings exposes the timestamps and the four durations in seconds."""
        rows = await db.fetch(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = 'contact_timings'"
        )
        columns = {r["column_name"]: r["data_type"] for r in rows}
        for name in ("wait_seconds", "talk_seconds", "acw_seconds", "handle_seconds"):
            assert columns[name] == "double precision"
        for name in (
            "queued_at",
            "offered_at",
            "answered_at",
            "ended_at",
            "completed_at",
            "abandoned_at",
        ):
            assert columns[name] == "timestamp with time zone"

    async def test_template_schema_equals_migrated_schema(
        self, db: asyncpg.Connection, empty_database_url: str
    ) -> None:
        """The per-test database and a freshly migrated one have the same columns."""
        fresh = await asyncpg.connect(empty_database_url)
        query = (
            "SELECT table_name, column_name, data_type, is_nullable "
            "FROM information_schema.columns WHERE table_schema = 'public' "
            "ORDER BY table_name, column_name"
        )
        try:
            await migrate(fresh)
            assert [tuple(r) for r in await fresh.fetch(query)] == [
                tuple(r) for r in await db.fetch(query)
            ]
        finally:
            await fresh.close()


class TestSchemaAcceptsTheDomain:
    """Every value the store writes from a domain enum passes the schema's CHECK
    constraints: a new event kind, state, channel or source needs a migration that
    widens its constraint (docs/architecture.md, "Add an event kind")."""

    @pytest.mark.parametrize(
        ("constraint", "values"),
        [
            ("contact_events_kind_check", [k.value for k in ContactEventKind]),
            ("contacts_state_check", [s.value for s in ContactState]),
            ("contacts_channel_check", [c.value for c in Channel]),
            ("contacts_preferred_agent_source_check", [s.value for s in PreferenceSource]),
            ("agent_status_log_kind_check", [k.value for k in AgentEventKind]),
            ("agent_status_log_status_check", [s.value for s in AgentStatus]),
            ("callbacks_requested_from_check", [c.value for c in Channel]),
            ("callbacks_last_outcome_check", [o.value for o in DialOutcome]),
        ],
    )
    async def test_each_value_passes_its_constraint(
        self, db: asyncpg.Connection, constraint: str, values: list[str]
    ) -> None:
        definition: str | None = await db.fetchval(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = $1",
            constraint,
        )
        assert definition is not None, f"no constraint {constraint}"
        # CHECK ((column = ANY (ARRAY['a'::text, ...]))): the check with $1 for column.
        found = re.fullmatch(r"CHECK \(\((\w+) (= ANY .*)\)\)", definition)
        assert found is not None, definition
        column, test = found.groups()
        check = f"SELECT $1::text {test}"
        assert not await db.fetchval(check, "no-such-value"), "the check must be able to fail"
        for value in values:
            assert await db.fetchval(check, value), (
                f"{value!r} is refused by {constraint}: add a migration that widens it"
                f" (the {column} column)"
            )
