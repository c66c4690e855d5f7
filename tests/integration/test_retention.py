"""The retention job against a real PostgreSQL, on contacts and events spread over ten
months: one run drops exactly the partitions and deletes exactly the rows beyond the
timings cutoff, anonymises exactly the contacts beyond the personal-data cutoff, leaves
open contacts and the reports of the kept range alone, and a second run changes
nothing."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from router.retention import RetentionSettings, cutoffs, month_start, months_before, run_retention
from router.store import Store
from router.store.queries import QUERIES

SETTINGS = RetentionSettings(personal_months=3, timings_months=6, batch_size=7)
MONTHS_BACK = 10
FINISHED = ("completed", "abandoned")


def partition_name(at: datetime) -> str:
    return f"contact_events_{at:%Y_%m}"


async def write_contact(
    db: asyncpg.Connection,
    queued_at: datetime,
    customer_id: str,
    *,
    state: str = "completed",
    handle: timedelta = timedelta(seconds=130),
) -> uuid.UUID:
    """One contact with its events (and feedback once completed), by SQL."""
    contact_id = uuid.uuid4()
    answered = queued_at + timedelta(seconds=10)
    completed = answered + handle
    done = state == "completed"
    await db.execute(
        "INSERT INTO contacts (id, idempotency_key, channel, customer_id, attributes, state, "
        "queued_at, offered_at, answered_at, ended_at, completed_at, agent_id, offer_count, "
        "disposition, updated_at) VALUES ($1, $2, 'phone', $3, $4::jsonb, $5, $6, $7, $8, "
        "$9, $10, $11, $12, $13, $6)",
        contact_id,
        f"key-{contact_id}",
        customer_id,
        json.dumps({"name": "Ada Lovelace"}),
        state,
        queued_at,
        answered if done else None,
        answered if done else None,
        completed - timedelta(seconds=30) if done else None,
        completed if done else None,
        "alice" if done else None,
        1 if done else 0,
        "order-status" if done else None,
    )
    events = [("submitted", queued_at)]
    if done:
        events += [
            ("offered", answered - timedelta(seconds=2)),
            ("answered", answered),
            ("ended", completed - timedelta(seconds=30)),
            ("completed", completed),
        ]
    await db.executemany(
        "INSERT INTO contact_events (contact_id, kind, at, agent_id) VALUES ($1, $2, $3, $4)",
        [(contact_id, kind, at, None if kind == "submitted" else "alice") for kind, at in events],
    )
    if done:
        await db.execute(
            "INSERT INTO contact_feedback (contact_id, rating, comment, recorded_at) "
            "VALUES ($1, 5, 'Ada was lovely', $2)",
            contact_id,
            completed,
        )
    return contact_id


async def report(db: asyncpg.Connection, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """GetContactReport's rows for [start, end) by day, with every detail, less the
    returning-customer counts (docs/operations.md: they look back into history)."""
    rows = await db.fetch(
        QUERIES["report_contacts"],
        start,
        end,
        timedelta(days=1),
        None,
        ["phone", "chat", "email"],
        [20.0, 60.0, 3600.0],
        5.0,
        False,
        True,
        "UTC",
        False,
        None,
    )
    leave_out = {"returning_answered", "returning_to_previous_agent"}
    return [{k: v for k, v in dict(r).items() if k not in leave_out} for r in rows]


async def partitions(db: asyncpg.Connection) -> set[str]:
    rows = await db.fetch(
        "SELECT c.relname FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'contact_events'::regclass"
    )
    return {r["relname"] for r in rows}


async def snapshot(db: asyncpg.Connection) -> dict[str, Any]:
    return {
        "contacts": [
            tuple(r) for r in await db.fetch("SELECT * FROM contacts ORDER BY queued_at, id")
        ],
        "events": [tuple(r) for r in await db.fetch("SELECT * FROM contact_events ORDER BY id")],
        "feedback": [
            tuple(r) for r in await db.fetch("SELECT * FROM contact_feedback ORDER BY contact_id")
        ],
        "partitions": await partitions(db),
    }


@pytest.fixture
def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
async def history(db: asyncpg.Connection, now: datetime) -> dict[str, uuid.UUID]:
    """Three finished contacts a month (the 10th, 11th and last day at 23:59:50, whose
    end falls in the next month) for ten months, the oldest month's events in the
    DEFAULT partition, and an email queued eight months ago still waiting."""
    first = month_start(months_before(now, MONTHS_BACK - 1))
    await db.execute("SELECT add_contact_event_partitions($1, $2)", first, MONTHS_BACK + 2)
    named: dict[str, uuid.UUID] = {}
    for back in range(MONTHS_BACK, -1, -1):
        month = month_start(months_before(now, back))
        next_month = month_start(month + timedelta(days=32))
        for moment, customer in (
            (month.replace(day=10, hour=9), "customer-a"),
            (month.replace(day=11, hour=9), f"customer-{back}"),
            (next_month - timedelta(seconds=10), "customer-b"),
        ):
            if moment < now - timedelta(hours=1):
                await write_contact(db, moment, customer)
    named["open"] = await write_contact(
        db, month_start(months_before(now, 8)).replace(day=12), "customer-open", state="queued"
    )
    return named


class TestRetentionRun:
    async def test_one_run_removes_and_anonymises_exactly_what_is_beyond(
        self, store: Store, db: asyncpg.Connection, now: datetime, history: dict[str, uuid.UUID]
    ) -> None:
        """Partitions entirely before the timings cutoff go (not one holding an open
        contact's events), finished contacts queued before it go with all their rows,
        the rest queued before the personal cutoff lose their customer id, attributes
        and comments, each customer under one pseudonym; the kept range reports the
        same; a second run changes nothing."""
        personal_cutoff, timings_cutoff = cutoffs(SETTINGS, now)
        assert personal_cutoff is not None
        assert timings_cutoff is not None
        before = await snapshot(db)
        kept_report = await report(db, timings_cutoff, now)
        customers_before = {
            r["id"]: r["customer_id"]
            for r in await db.fetch(
                "SELECT id, customer_id FROM contacts WHERE queued_at >= $1 AND queued_at < $2 "
                "AND state IN ('completed', 'abandoned')",
                timings_cutoff,
                personal_cutoff,
            )
        }
        old_months = {
            partition_name(month_start(months_before(now, back))) for back in range(7, MONTHS_BACK)
        }
        open_month = partition_name(month_start(months_before(now, 8)))

        run = await run_retention(store.retention, SETTINGS, now)

        assert set(run.partitions_dropped) == old_months - {open_month}
        assert run.partitions_kept == (open_month,)
        assert await partitions(db) == before["partitions"] - set(run.partitions_dropped)
        assert "contact_events_default" in await partitions(db)
        # Every finished contact queued before the timings cutoff is gone, with its rows.
        gone = {r[0] for r in before["contacts"] if r[8] < timings_cutoff and r[7] in FINISHED}
        assert run.contacts_deleted == len(gone) > 0
        remaining = await db.fetch("SELECT id, queued_at, state FROM contacts")
        assert {r["id"] for r in remaining} == {r[0] for r in before["contacts"]} - gone
        assert (
            await db.fetchval(
                "SELECT count(*) FROM contact_events WHERE contact_id = ANY($1::uuid[])", list(gone)
            )
            == 0
        )
        assert await db.fetchval("SELECT count(*) FROM contact_events_default") == 0
        # The open contact keeps everything, its event in its month's partition too.
        open_customer = await db.fetchval(
            "SELECT customer_id FROM contacts WHERE id = $1", history["open"]
        )
        assert open_customer == "customer-open"
        assert (
            await db.fetchval(
                f"SELECT count(*) FROM {open_month} WHERE contact_id = $1",
                history["open"],
            )
            == 1
        )
        # Anonymised: exactly the finished contacts kept and queued before the personal cutoff.
        rows = await db.fetch(
            "SELECT c.id, c.customer_id, c.attributes, c.queued_at, c.state, f.comment, f.rating "
            "FROM contacts AS c LEFT JOIN contact_feedback AS f ON f.contact_id = c.id"
        )
        for row in rows:
            old = row["queued_at"] < personal_cutoff and row["state"] in FINISHED
            assert row["customer_id"].startswith("retained-") is old, row
            assert (json.loads(row["attributes"]) == {}) is old, row
            if row["comment"] is not None:
                assert (row["comment"] == "") is old, row
                assert row["rating"] == 5
        anonymised = {r["id"]: r["customer_id"] for r in rows if r["id"] in customers_before}
        assert run.contacts_anonymised == len(anonymised) == len(customers_before) > 0
        # One pseudonym per customer: who came back among them still can be counted.
        pairs = {(customers_before[i], anonymised[i]) for i in anonymised}
        assert len(pairs) == len({c for c, _ in pairs}) == len({p for _, p in pairs})
        assert await report(db, timings_cutoff, now) == kept_report
        # A survey answering late keeps its rating, not its words.
        late = next(iter(anonymised))
        await store.reports.record_feedback(str(late), 2, "call me on +1555", "survey", now)
        assert (
            await db.fetchval("SELECT comment FROM contact_feedback WHERE contact_id = $1", late)
            == ""
        )
        await db.execute("UPDATE contact_feedback SET rating = 5 WHERE contact_id = $1", late)
        assert run.batches > 2  # batch_size 7: several short transactions

        after = await snapshot(db)
        again = await run_retention(store.retention, SETTINGS, now)
        assert await snapshot(db) == after
        assert again.partitions_dropped == ()
        assert (again.contacts_deleted, again.contacts_anonymised) == (0, 0)
        assert await db.fetchval("SELECT count(*) FROM retention_runs") == 2

    async def test_a_contact_open_at_the_run_is_anonymised_by_a_later_run(
        self, store: Store, db: asyncpg.Connection, now: datetime, history: dict[str, uuid.UUID]
    ) -> None:
        """The next run starts at the oldest contact still open at the last one."""
        settings = RetentionSettings(personal_months=3, timings_months=0)
        await run_retention(store.retention, settings, now)
        await db.execute(
            "UPDATE contacts SET state = 'abandoned', abandoned_at = queued_at + interval '1 min' "
            "WHERE id = $1",
            history["open"],
        )
        later = await run_retention(store.retention, settings, now + timedelta(microseconds=1))
        assert later.contacts_anonymised == 1
        customer = await db.fetchval(
            "SELECT customer_id FROM contacts WHERE id = $1", history["open"]
        )
        assert customer.startswith("retained-")

    async def test_off_changes_nothing(
        self, store: Store, db: asyncpg.Connection, now: datetime, history: dict[str, uuid.UUID]
    ) -> None:
        """0 and 0 (the default): the run records itself and touches no row."""
        before = await snapshot(db)
        run = await run_retention(store.retention, RetentionSettings(), now)
        assert (run.batches, run.partitions_dropped) == (0, ())
        assert await snapshot(db) == before


async def write_status(
    db: asyncpg.Connection,
    agent_id: str,
    kind: str,
    status: str,
    at: datetime,
    *,
    team: str = "",
    supervisor: str | None = None,
) -> None:
    await db.execute(
        QUERIES["insert_agent_status"],
        agent_id,
        kind,
        status,
        "lunch" if status == "away" else "",
        kind != "disconnected",
        at,
        team,
        supervisor,
        None if supervisor is None else "cover",
    )


@pytest.fixture
async def attendance(db: asyncpg.Connection, now: datetime) -> None:
    """Ten months of an agent's days (sign-in with a team of the month, ready, away,
    a supervisor's skills change, a lost connection, sign-out), and an agent who
    signed in eight months ago, was forced away by a supervisor, and is still at work."""
    first = month_start(months_before(now, MONTHS_BACK))
    for agent_id in ("alice", "bob"):
        await db.execute(
            "INSERT INTO agents (id, first_seen_at, last_seen_at) VALUES ($1, $2, $3)",
            agent_id,
            first,
            now,
        )
    for back in range(MONTHS_BACK, 0, -1):
        day = month_start(months_before(now, back)).replace(day=10, hour=8)
        hour = timedelta(hours=1)
        await write_status(db, "alice", "signed_in", "offline", day, team=f"team-{back}")
        await write_status(db, "alice", "status_changed", "ready", day + hour)
        await write_status(db, "alice", "status_changed", "away", day + 2 * hour)
        await write_status(
            db, "alice", "signed_in", "away", day + 3 * hour, team=f"team-{back}", supervisor="sam"
        )
        await write_status(db, "alice", "disconnected", "away", day + 4 * hour)
        await write_status(db, "alice", "connected", "away", day + 4 * hour + timedelta(minutes=1))
        await write_status(db, "alice", "status_changed", "ready", day + 5 * hour)
        await write_status(db, "alice", "signed_out", "offline", day + 8 * hour)
    eight = month_start(months_before(now, 8)).replace(day=3)
    await write_status(db, "bob", "signed_in", "offline", eight, team="night")
    await write_status(db, "bob", "status_changed", "ready", eight + timedelta(minutes=5))
    await write_status(
        db, "bob", "status_changed", "away", eight + timedelta(hours=1), supervisor="sam"
    )


async def attendance_report(store: Store, start: datetime, now: datetime) -> list[Any]:
    """What the kept range's reports read of the status log: sessions, time by status,
    the agent report's attendance, and each agent's team."""
    return [
        await store.reports.sessions(start, now),
        sorted(await store.reports.agent_status_times(start, now, now), key=repr),
        await store.reports.agents(start, now, now),
        await store.reports.agent_teams(now),
        await store.reports.agent_teams(start + timedelta(days=1)),
    ]


class TestAgentStatusRetention:
    async def test_rows_before_the_cutoff_go_but_what_reports_read_of_them(
        self, store: Store, db: asyncpg.Connection, now: datetime, attendance: None
    ) -> None:
        """Rows before the timings cutoff go, but each agent's latest of each kind
        (a supervisor's apart): bob's open session, his status, the teams and alice's
        last day read the same afterwards; a second run deletes nothing."""
        _, timings_cutoff = cutoffs(SETTINGS, now)
        assert timings_cutoff is not None
        query = (
            "SELECT agent_id, kind, supervisor IS NULL AS own, at FROM agent_status_log "
            "WHERE at < $1 ORDER BY agent_id, kind, own, at"
        )
        old = await db.fetch(query, timings_cutoff)
        latest = {(r["agent_id"], r["kind"], r["own"]): r["at"] for r in old}
        kept_report = await attendance_report(store, timings_cutoff, now)
        later_rows = await db.fetchval(
            "SELECT count(*) FROM agent_status_log WHERE at >= $1", timings_cutoff
        )

        run = await run_retention(store.retention, SETTINGS, now)

        left = await db.fetch(query, timings_cutoff)
        assert {(r["agent_id"], r["kind"], r["own"]): r["at"] for r in left} == latest
        assert len(left) == len(latest) == 9  # alice's 6 kinds, bob's 3 rows
        assert run.agent_status_deleted == len(old) - len(latest) > SETTINGS.batch_size
        assert (
            await db.fetchval(
                "SELECT count(*) FROM agent_status_log WHERE at >= $1", timings_cutoff
            )
            == later_rows
        )
        assert await attendance_report(store, timings_cutoff, now) == kept_report
        open_sessions = [s for s in kept_report[0] if s.signed_out_at is None]
        assert [s.agent_id for s in open_sessions] == ["bob"]
        assert await db.fetchval(
            "SELECT agent_status_deleted FROM retention_runs ORDER BY id DESC LIMIT 1"
        ) == len(old) - len(latest)

        again = await run_retention(store.retention, SETTINGS, now)
        assert again.agent_status_deleted == 0
        assert len(await db.fetch(query, timings_cutoff)) == 9
