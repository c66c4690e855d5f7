"""The event feed against a real PostgreSQL: events in commit order across both tables,
each contact event with its contact as it stood then, and a follower woken by commits."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg

from router.domain import AgentStatus, ContactEvent, Router, RoutingPolicy
from router.store import Store
from router.store.event_feed import StoredEvent
from router.store.migrations import migration_files
from tests.integration.conftest import make_contact

T0 = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def a_lifecycle(store: Store, router: Router, key: str, agent: str) -> str:
    """Sign `agent` in, submit a call it takes, answer, end and complete it: one commit
    per step, as the switchboard would. The contact's id."""
    await store.writer.wait(
        store.record(router.sign_in(agent, frozenset(), {}, AgentStatus.READY, at(0)))
    )
    contact = make_contact(key, at(1))
    await store.writer.wait(store.insert_contact(contact, lambda: None))
    events = [*router.submit(contact, at(1)), *router.connect(agent, at(2))]
    await store.writer.wait(store.record(events))
    offer = next(e.offer for e in events if isinstance(e, ContactEvent) and e.offer)
    _, answered = router.accept(agent, offer.id, at(3))
    await store.writer.wait(store.record(answered))
    _, ended = router.end(agent, contact.id, at(10))
    await store.writer.wait(store.record(ended))
    _, completed = router.complete(agent, contact.id, "order-status", at(15))
    await store.writer.wait(store.record(completed))
    return contact.id


class TestReadAfter:
    async def test_events_of_both_tables_come_in_commit_order(
        self, store: Store, db: asyncpg.Connection
    ) -> None:
        """Agent and contact events interleave as they committed, numbered upwards, and
        reading after any number gives the rest."""
        contact_id = await a_lifecycle(store, Router(RoutingPolicy(phone_reserve=0)), "c1", "ann")
        events = await store.events.read_after(0)
        kinds = [(e.kind, e.contact_id is not None) for e in events]
        assert kinds[0] == ("signed_in", False)
        assert [k for k, is_contact in kinds if is_contact] == [
            "submitted",
            "offered",
            "answered",
            "ended",
            "completed",
        ]
        seqs = [e.seq for e in events]
        assert seqs == sorted(seqs)
        assert len(set(seqs)) == len(seqs)
        assert await store.events.read_after(seqs[2]) == events[3:]
        assert await store.events.read_after(seqs[0], limit=2) == events[1:3]
        in_tables = await db.fetchval(
            "SELECT (SELECT count(*) FROM contact_events) + (SELECT count(*) FROM agent_status_log)"
        )
        assert len(events) == in_tables
        assert {e.contact_id for e in events if e.contact_id} == {contact_id}

    async def test_a_contact_event_carries_the_contact_as_it_stood_then(self, store: Store) -> None:
        """Timings that had not happened at the event are None; the disposition comes
        with completion; an agent event has its status and no contact."""
        await a_lifecycle(store, Router(RoutingPolicy(phone_reserve=0)), "c1", "ann")
        events = {e.kind: e for e in await store.events.read_after(0)}
        submitted, completed = events["submitted"], events["completed"]
        assert submitted.contact is not None
        assert completed.contact is not None
        assert submitted.contact.channel == "phone"
        assert submitted.contact.customer_id == "customer-c1"
        assert submitted.contact.queued_at == at(1)
        assert (submitted.contact.answered_at, submitted.contact.disposition) == (None, None)
        assert events["answered"].contact is not None
        assert events["answered"].contact.answered_at == at(3)
        assert events["answered"].contact.ended_at is None
        assert (completed.contact.ended_at, completed.contact.completed_at) == (at(10), at(15))
        assert completed.contact.disposition == "order-status"
        assert completed.agent_id == "ann"
        signed_in = events["signed_in"]
        assert (signed_in.agent_id, signed_in.status, signed_in.contact) == ("ann", "ready", None)

    async def test_origin_names_the_database_and_the_last_number(self, store: Store) -> None:
        """The origin is drawn once per database; last_seq is the highest number given out."""
        first = await store.events.origin()
        assert first.last_seq == 0
        await a_lifecycle(store, Router(RoutingPolicy(phone_reserve=0)), "c1", "ann")
        events = await store.events.read_after(0)
        again = await store.events.origin()
        assert (again.origin, again.oid) == (first.origin, first.oid)
        assert again.last_seq == events[-1].seq == await store.events.last_seq()


class TestFollow:
    async def test_follow_yields_history_then_each_commit_as_it_commits(self, store: Store) -> None:
        """A follower reads what is recorded, then is woken by the commit's NOTIFY (the
        poll is an hour: only the notification can wake it)."""
        router = Router(RoutingPolicy(phone_reserve=0))
        await a_lifecycle(store, router, "c1", "ann")
        recorded = await store.events.read_after(0)
        pages: asyncio.Queue[list[StoredEvent]] = asyncio.Queue()

        async def follow() -> None:
            async for page in store.events.follow(0, poll_seconds=3600):
                await pages.put(page)

        task = asyncio.create_task(follow())
        try:
            first = await asyncio.wait_for(pages.get(), 30)
            assert first == recorded
            await store.writer.wait(
                store.record(router.set_status("ann", AgentStatus.AWAY, "lunch", at(20)))
            )
            live = await asyncio.wait_for(pages.get(), 30)
            assert [(e.kind, e.reason) for e in live] == [("status_changed", "lunch")]
            assert live[0].seq > recorded[-1].seq
        finally:
            task.cancel()

    async def test_follow_sees_every_event_of_concurrent_writers_once_in_order(
        self, store: Store, db: asyncpg.Connection
    ) -> None:
        """While many lifecycles commit in overlapping batches, the follower's events are
        exactly the tables' rows, in seq order, none twice."""
        router = Router(RoutingPolicy(phone_reserve=0))
        seen: list[StoredEvent] = []
        done = asyncio.Event()
        expected: list[int] = []

        async def follow() -> None:
            async for page in store.events.follow(0, poll_seconds=3600):
                seen.extend(page)
                if expected and seen[-1].seq >= expected[0]:
                    done.set()

        task = asyncio.create_task(follow())
        try:
            await asyncio.gather(
                *(a_lifecycle(store, router, f"c{i}", f"agent-{i}") for i in range(40))
            )
            expected.append(await store.events.last_seq())
            if seen and seen[-1].seq >= expected[0]:
                done.set()
            await asyncio.wait_for(done.wait(), 30)
        finally:
            task.cancel()
        rows = await db.fetch(
            "SELECT seq FROM contact_events UNION ALL SELECT seq FROM agent_status_log ORDER BY 1"
        )
        assert [e.seq for e in seen] == [r["seq"] for r in rows]


class TestMigration:
    async def test_events_recorded_before_the_stream_are_numbered_in_time_order(
        self, empty_database_url: str
    ) -> None:
        """Migration 0006 numbers the rows already there by time, across both tables,
        and new rows go on above them."""
        db = await asyncpg.connect(empty_database_url)
        try:
            await db.execute(
                "CREATE TABLE schema_migrations (version text PRIMARY KEY, "
                "applied_at timestamptz NOT NULL DEFAULT now())"
            )
            for version, sql in migration_files():
                if version >= "0006":
                    break
                await db.execute(sql)
                await db.execute("INSERT INTO schema_migrations VALUES ($1)", version)
            await db.execute(
                "INSERT INTO contacts (id, idempotency_key, channel, customer_id, state, "
                "queued_at, updated_at) VALUES (gen_random_uuid(), 'k', 'chat', 'c', 'queued', "
                "$1, $1)",
                at(1),
            )
            await db.execute(
                "INSERT INTO contact_events (contact_id, kind, at) "
                "SELECT id, 'submitted', $1 FROM contacts",
                at(5),
            )
            for seconds in (7, 2):
                await db.execute(
                    "INSERT INTO agent_status_log (agent_id, kind, status, connected, at) "
                    "VALUES ('ann', 'status_changed', 'ready', true, $1)",
                    at(seconds),
                )
            store = await Store.open(empty_database_url)
            try:
                await store.migrate()
                events = await store.events.read_after(0)
                assert [(e.seq, e.at) for e in events] == [(1, at(2)), (2, at(5)), (3, at(7))]
                await db.execute(
                    "INSERT INTO agent_status_log (agent_id, kind, status, connected, at) "
                    "VALUES ('ann', 'status_changed', 'away', true, $1)",
                    at(0),
                )
                assert [e.seq for e in await store.events.read_after(3)] == [4]
            finally:
                await store.close()
        finally:
            await db.close()
