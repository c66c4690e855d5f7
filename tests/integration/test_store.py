"""The store against a real PostgreSQL: rows in, values out, timings and service level in SQL,
and the group commit that batches writes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import TypeVar

import asyncpg
import pytest

from router.domain import (
    AgentStatus,
    Channel,
    ContactEvent,
    ContactEventKind,
    ContactState,
    Offer,
    OfferWithdrawn,
    PreferenceSource,
    Router,
    RoutingPolicy,
)
from router.domain.service_level import service_level
from router.errors import DuplicateKey, StoreUnavailable
from router.reporting.intervals import Interval
from router.store import GroupCommit, Store
from router.store.active_lock import ActiveLock
from router.store.database_url import with_database
from router.store.group_commit import BatchTiming, Write
from router.store.reports import ContactFigures
from router.store.restore_read import open_contacts
from router.store.store import contact_from_row, contact_insert, contact_update, event_insert
from tests.integration.conftest import insert_history, make_contact

T = TypeVar("T")

T0 = datetime(2026, 3, 2, 9, 0, 0, 123456, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def utc(text: str) -> datetime:
    """'2026-03-02 12:00:00.000001' as a UTC instant."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class TestContactRows:
    async def test_insert_then_read_by_id_and_key(self, store: Store) -> None:
        """A contact reads back equal, by id and by key, with attributes, skills and time."""
        contact = make_contact(
            "call-1",
            T0,
            Channel.CHAT,
            attributes={"name": "Zoë O'Brien", "order": "A-17", "note": 'say "hi"\n'},
            required_skills=frozenset({"lang:es", "returns"}),
            priority_boost=2.5,
        )
        committed: list[bool] = []
        await store.writer.wait(store.insert_contact(contact, lambda: committed.append(True)))
        assert committed == [True]
        assert await store.contact_by_id(contact.id) == contact
        assert await store.contact_by_key("call-1") == contact
        assert await store.contact_by_id(str(uuid.uuid4())) is None
        assert await store.contact_by_key("call-2") is None

    async def test_timestamps_keep_microseconds_and_come_back_in_utc(self, store: Store) -> None:
        """A queued_at given in another zone is the same instant, read back in UTC."""
        berlin = timezone(timedelta(hours=1))
        queued_at = datetime(2026, 3, 2, 10, 0, 0, 999999, tzinfo=berlin)
        contact = make_contact("email-1", queued_at, Channel.EMAIL)
        await store.writer.wait(store.insert_contact(contact, lambda: None))
        stored = await store.contact_by_id(contact.id)
        assert stored is not None
        assert stored.queued_at == queued_at
        assert stored.queued_at.utcoffset() == timedelta(0)
        assert stored.queued_at.microsecond == 999999

    async def test_insert_records_the_submitted_event(self, store: Store) -> None:
        """The insert writes the 'submitted' event at queued_at alongside the row."""
        contact = make_contact("call-1", T0)
        await store.writer.wait(store.insert_contact(contact, lambda: None))
        events = await store.contact_events(contact.id)
        assert [(e.kind, e.at, e.agent_id, e.offer_id) for e in events] == [
            (ContactEventKind.SUBMITTED, T0, None, None)
        ]

    async def test_duplicate_key_is_rejected(self, store: Store) -> None:
        """A second insert with a known key fails with DuplicateKey; the first row stays."""
        first = make_contact("call-1", T0)
        await store.writer.wait(store.insert_contact(first, lambda: None))
        second = make_contact("call-1", at(1))
        with pytest.raises(DuplicateKey):
            await store.writer.wait(store.insert_contact(second, lambda: None))
        assert await store.contact_by_key("call-1") == first
        assert await store.contact_by_id(second.id) is None


class TestRecordingEvents:
    def test_one_row_update_per_contact_per_record(self, store: Store) -> None:
        """A decline (declined, requeued, offered again) updates the row once, logs thrice."""
        router = Router(RoutingPolicy(phone_reserve=0, decline_exclusion=30.0))
        for agent_id in ("ann", "bob"):
            router.sign_in(agent_id, frozenset(), {}, AgentStatus.READY, T0)
            router.connect(agent_id, T0)
        (offered,) = router.submit(make_contact("call-1", T0), T0)
        assert isinstance(offered, ContactEvent)
        assert offered.offer is not None
        _, events = router.decline(offered.offer.agent_id, offered.offer.id, at(1))
        names = [name for name, _ in store.writes_for(events)]
        assert names.count("insert_contact_event") == 3
        assert names.count("update_contact") == 1
        update = next(args for name, args in store.writes_for(events) if name == "update_contact")
        assert update[1] == "offered"

    async def test_lifecycle_of_a_call_lands_in_every_table(
        self, store: Store, db: asyncpg.Connection
    ) -> None:
        """Events the core produces become the contact row, its history and the agent log."""
        router = Router(RoutingPolicy(phone_reserve=0))
        contact = make_contact("call-1", T0)
        await store.writer.wait(store.insert_contact(contact, lambda: None))
        events = [
            *router.submit(contact, T0),
            *router.sign_in("alice", frozenset({"returns"}), {}, AgentStatus.READY, at(1)),
            *router.connect("alice", at(2)),
        ]
        offered = next(
            e for e in events if isinstance(e, ContactEvent) and e.kind is ContactEventKind.OFFERED
        )
        assert offered.offer is not None
        offer_id = offered.offer.id
        await store.writer.wait(store.record(events))

        row = await db.fetchrow("SELECT * FROM contacts WHERE id = $1::uuid", contact.id)
        assert row is not None
        assert (row["state"], row["offered_at"], row["agent_id"], str(row["offer_id"])) == (
            "offered",
            at(2),
            "alice",
            offer_id,
        )
        assert (row["offer_count"], row["updated_at"]) == (1, at(2))
        agent = await db.fetchrow("SELECT * FROM agents WHERE id = 'alice'")
        assert agent is not None
        assert (agent["skills"], agent["first_seen_at"], agent["last_seen_at"]) == (
            ["returns"],
            at(1),
            at(1),
        )

        _, answered = router.accept("alice", offer_id, at(3.5))
        _, ended = router.end("alice", contact.id, at(63.5))
        done, completed = router.complete("alice", contact.id, "return", at(93.5))
        await store.writer.wait(store.record([*answered, *ended, *completed]))

        assert await store.contact_by_id(contact.id) == done
        history = await store.contact_events(contact.id)
        assert [(e.kind, e.at, e.agent_id) for e in history] == [
            (ContactEventKind.SUBMITTED, T0, None),
            (ContactEventKind.OFFERED, at(2), "alice"),
            (ContactEventKind.ANSWERED, at(3.5), "alice"),
            (ContactEventKind.ENDED, at(63.5), "alice"),
            (ContactEventKind.COMPLETED, at(93.5), "alice"),
        ]
        assert history[1].offer_id == offer_id
        assert history[2].offer_id == offer_id
        log = await db.fetch(
            "SELECT kind, status, reason, connected, at FROM agent_status_log ORDER BY id"
        )
        assert [tuple(r) for r in log] == [
            ("signed_in", "ready", "", False, at(1)),
            ("connected", "ready", "", True, at(2)),
        ]
        timings = await db.fetchrow(
            "SELECT * FROM contact_timings WHERE contact_id = $1::uuid", contact.id
        )
        assert timings is not None
        assert (
            timings["wait_seconds"],
            timings["talk_seconds"],
            timings["acw_seconds"],
            timings["handle_seconds"],
        ) == (3.5, 60.0, 30.0, 90.0)

    async def test_timed_out_offer_requeues_and_sets_the_agent_away(
        self, store: Store, db: asyncpg.Connection
    ) -> None:
        """An expired offer writes offer_timed_out and requeued, clears the agent, logs 'missed'."""
        router = Router(RoutingPolicy(phone_reserve=0, offer_timeout=10))
        contact = make_contact("call-1", T0)
        await store.writer.wait(store.insert_contact(contact, lambda: None))
        events = [
            *router.submit(contact, T0),
            *router.sign_in("alice", frozenset(), {}, AgentStatus.READY, at(1)),
            *router.connect("alice", at(2)),
        ]
        expired = router.expire(at(12))
        assert any(isinstance(e, OfferWithdrawn) for e in expired)
        await store.writer.wait(store.record([*events, *expired]))

        row = await db.fetchrow("SELECT * FROM contacts WHERE id = $1::uuid", contact.id)
        assert row is not None
        assert (row["state"], row["agent_id"], row["offer_id"], row["offer_count"]) == (
            "queued",
            None,
            None,
            1,
        )
        assert row["queued_at"] == T0
        assert row["offered_at"] == at(2)
        history = await db.fetch(
            "SELECT kind, at, agent_id, reason FROM contact_events ORDER BY id"
        )
        assert [tuple(r) for r in history] == [
            ("submitted", T0, None, None),
            ("offered", at(2), "alice", None),
            ("offer_timed_out", at(12), "alice", None),
            ("requeued", at(12), "alice", "offer_timed_out"),
        ]
        last = await db.fetchrow(
            "SELECT kind, status, reason, connected FROM agent_status_log ORDER BY id DESC LIMIT 1"
        )
        assert last is not None
        assert tuple(last) == ("status_changed", "away", "missed", True)

    async def test_withdrawal_records_nothing(self, store: Store) -> None:
        """An offer withdrawal is a message to the agent, not a row."""
        offer = Offer(str(uuid.uuid4()), str(uuid.uuid4()), "alice", T0, at(15))
        assert store.writes_for([OfferWithdrawn(offer, "timed_out")]) == []

    async def test_sign_in_again_updates_skills_and_keeps_first_seen(
        self, store: Store, db: asyncpg.Connection
    ) -> None:
        """A second sign-in replaces the agent's skills and moves last_seen_at only."""
        router = Router(RoutingPolicy())
        first = router.sign_in("alice", frozenset({"a"}), {}, AgentStatus.READY, at(1))
        second = router.sign_in("alice", frozenset({"b", "c"}), {}, AgentStatus.READY, at(5))
        await store.writer.wait(store.record([*first, *second]))
        agent = await db.fetchrow("SELECT * FROM agents WHERE id = 'alice'")
        assert agent is not None
        assert (agent["skills"], agent["first_seen_at"], agent["last_seen_at"]) == (
            ["b", "c"],
            at(1),
            at(5),
        )
        assert await db.fetchval("SELECT count(*) FROM agent_status_log") == 2

    async def test_insert_and_updates_in_one_batch_keep_their_order(
        self, store: Store, db: asyncpg.Connection
    ) -> None:
        """Insert, offer and answer enqueued back to back commit together; the last state wins."""
        router = Router(RoutingPolicy(phone_reserve=0))
        router.sign_in("alice", frozenset(), {}, AgentStatus.READY, T0)
        router.connect("alice", T0)
        contact = make_contact("call-1", at(1))
        inserted = store.insert_contact(contact, lambda: None)
        offered = router.submit(contact, at(1))
        first = offered[0]
        assert isinstance(first, ContactEvent)
        assert first.offer is not None
        _, answered = router.accept("alice", first.offer.id, at(2))
        recorded = store.record([*offered, *answered])
        before = store.writer.stats.transactions
        await asyncio.gather(inserted, recorded)
        assert store.writer.stats.transactions == before + 1
        row = await db.fetchrow("SELECT state, answered_at FROM contacts")
        assert row is not None
        assert tuple(row) == ("connected", at(2))
        kinds = [r["kind"] for r in await db.fetch("SELECT kind FROM contact_events ORDER BY id")]
        assert kinds == ["submitted", "offered", "answered"]


class TestContactTimingsView:
    async def test_durations_to_the_microsecond(self, db: asyncpg.Connection) -> None:
        """wait, talk, ACW and handle are exact differences, down to one microsecond."""
        contact_id = await insert_history(
            db,
            Channel.PHONE,
            utc("2026-03-02 09:00:00.000001"),
            answered_at=utc("2026-03-02 09:00:07.250003"),
            ended_at=utc("2026-03-02 09:12:34.567890"),
            completed_at=utc("2026-03-02 09:13:00.000000"),
        )
        row = await db.fetchrow(
            "SELECT * FROM contact_timings WHERE contact_id = $1::uuid", contact_id
        )
        assert row is not None
        assert row["wait_seconds"] == pytest.approx(7.250002, abs=1e-9)
        assert row["talk_seconds"] == pytest.approx(747.317887, abs=1e-9)
        assert row["acw_seconds"] == pytest.approx(25.432110, abs=1e-9)
        assert row["handle_seconds"] == pytest.approx(772.749997, abs=1e-9)
        assert row["state"] == "completed"

    async def test_abandoned_contact_waits_until_it_left(self, db: asyncpg.Connection) -> None:
        """An abandoned contact's wait runs to abandoned_at; it has no talk, ACW or handle."""
        contact_id = await insert_history(
            db,
            Channel.CHAT,
            utc("2026-03-02 10:00:00.500000"),
            abandoned_at=utc("2026-03-02 10:00:04.499999"),
        )
        row = await db.fetchrow(
            "SELECT * FROM contact_timings WHERE contact_id = $1::uuid", contact_id
        )
        assert row is not None
        assert row["wait_seconds"] == pytest.approx(3.999999, abs=1e-9)
        assert (row["talk_seconds"], row["acw_seconds"], row["handle_seconds"]) == (
            None,
            None,
            None,
        )

    async def test_unfinished_steps_are_null(self, db: asyncpg.Connection) -> None:
        """Waiting: no wait yet; connected: wait only; in wrap-up: talk but no ACW or handle."""
        waiting = await insert_history(db, Channel.EMAIL, utc("2026-03-02 11:00:00"))
        connected = await insert_history(
            db,
            Channel.PHONE,
            utc("2026-03-02 11:00:00"),
            answered_at=utc("2026-03-02 11:00:01.5"),
        )
        wrapping = await insert_history(
            db,
            Channel.PHONE,
            utc("2026-03-02 11:00:00"),
            answered_at=utc("2026-03-02 11:00:02"),
            ended_at=utc("2026-03-02 11:01:02"),
        )
        query = (
            "SELECT wait_seconds, talk_seconds, acw_seconds, handle_seconds "
            "FROM contact_timings WHERE contact_id = $1::uuid"
        )
        rows = {}
        for name, contact_id in (("w", waiting), ("c", connected), ("u", wrapping)):
            row = await db.fetchrow(query, contact_id)
            assert row is not None
            rows[name] = tuple(row)
        assert rows == {
            "w": (None, None, None, None),
            "c": (1.5, None, None, None),
            "u": (2.0, 60.0, None, None),
        }


THRESHOLDS = {Channel.PHONE: 20.0, Channel.CHAT: 60.0, Channel.EMAIL: 3600.0}
START = utc("2026-03-02 12:00:00")
END = utc("2026-03-02 12:30:00")


async def build_history(db: asyncpg.Connection) -> None:
    """A half hour of contacts with known answers (see TestServiceLevelQuery)."""

    def t(clock: str) -> datetime:
        return utc(f"2026-03-02 {clock}")

    phone, chat, email = Channel.PHONE, Channel.CHAT, Channel.EMAIL
    # Outside the range on both sides.
    await insert_history(db, phone, t("11:59:59.999999"), answered_at=t("12:00:05"))
    await insert_history(db, phone, t("12:30:00"), answered_at=t("12:30:05"))
    # 12:00 bin, phone.
    await insert_history(  # exactly 20 s: within; talk 60, ACW 15
        db,
        phone,
        t("12:01:00"),
        answered_at=t("12:01:20"),
        ended_at=t("12:02:20"),
        completed_at=t("12:02:35"),
    )
    await insert_history(db, phone, t("12:02:00"), answered_at=t("12:02:20.000001"))
    await insert_history(db, phone, t("12:03:00"), abandoned_at=t("12:03:03"))  # short
    await insert_history(db, phone, t("12:04:00"), abandoned_at=t("12:04:05"))  # short (= 5 s)
    await insert_history(db, phone, t("12:05:00"), abandoned_at=t("12:05:30"))
    await insert_history(  # queued in the 12:00 bin, answered in the next: counts in 12:00
        db,
        phone,
        t("12:14:59.999999"),
        answered_at=t("12:15:10"),
        ended_at=t("12:16:10"),
        completed_at=t("12:16:40"),
    )
    # 12:00 bin, chat: exactly 60 s is within, 60.5 s is not.
    await insert_history(db, chat, t("12:03:00"), answered_at=t("12:04:00"))
    await insert_history(db, chat, t("12:04:00"), answered_at=t("12:05:00.5"))
    # 12:15 bin.
    await insert_history(  # queued exactly on the boundary: the later bin
        db,
        phone,
        t("12:15:00"),
        answered_at=t("12:15:05"),
        ended_at=t("12:16:05"),
        completed_at=t("12:16:15"),
    )
    await insert_history(db, phone, t("12:29:59.999999"))  # still waiting
    await insert_history(db, email, t("12:20:00"), answered_at=t("13:19:59.999999"))


@pytest.fixture(scope="module")
async def history(server_url: str, template_database: str) -> AsyncIterator[Store]:
    """A store on a database holding build_history's contacts, shared by the read-only tests."""
    name = f"router_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
        url = with_database(server_url, name)
        db = await asyncpg.connect(url)
        try:
            await build_history(db)
        finally:
            await db.close()
        store = await Store.open(url)
        await store.become_active()
        try:
            yield store
        finally:
            await store.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


class TestServiceLevelQuery:
    async def test_fifteen_minute_bins(self, history: Store) -> None:
        """Counts per bin and channel, by queued_at, with the threshold and abandon boundaries."""
        rows = await history.reports.contacts(START, END, Interval.MINUTES_15, THRESHOLDS, 5.0)
        first, second = START, START + timedelta(minutes=15)
        assert [(r.interval_start, r.channel) for r in rows] == [
            (first, Channel.CHAT),
            (first, Channel.PHONE),
            (second, Channel.EMAIL),
            (second, Channel.PHONE),
        ]
        chat, phone, late_email, late_phone = rows
        assert counts(phone) == (6, 3, 3, 2, 2)
        assert phone.threshold_seconds == 20.0
        assert phone.asa_seconds == pytest.approx((20 + 20.000001 + 10.000001) / 3, abs=1e-9)
        assert phone.aht_seconds == pytest.approx((75 + 90) / 2, abs=1e-9)
        assert phone.mean_acw_seconds == pytest.approx((15 + 30) / 2, abs=1e-9)
        assert service_level(2, 3, 3, 2) == 0.5

        assert counts(chat) == (2, 2, 0, 0, 1)
        assert chat.threshold_seconds == 60.0
        assert chat.asa_seconds == pytest.approx(60.25, abs=1e-9)
        assert (chat.aht_seconds, chat.mean_acw_seconds) == (None, None)

        assert counts(late_phone) == (2, 1, 0, 0, 1)
        assert late_phone.asa_seconds == pytest.approx(5.0, abs=1e-9)
        assert late_phone.aht_seconds == pytest.approx(70.0, abs=1e-9)
        assert late_phone.mean_acw_seconds == pytest.approx(10.0, abs=1e-9)

        assert counts(late_email) == (1, 1, 0, 0, 1)
        assert late_email.asa_seconds == pytest.approx(3599.999999, abs=1e-9)

    async def test_hour_bin_merges_the_half_hour(self, history: Store) -> None:
        """With one-hour bins the same history is one row per channel."""
        rows = await history.reports.contacts(START, END, Interval.HOUR, THRESHOLDS, 5.0)
        assert [(r.interval_start, r.channel, counts(r)) for r in rows] == [
            (START, Channel.CHAT, (2, 2, 0, 0, 1)),
            (START, Channel.EMAIL, (1, 1, 0, 0, 1)),
            (START, Channel.PHONE, (8, 4, 3, 2, 3)),
        ]

    async def test_only_the_channels_asked_for(self, history: Store) -> None:
        """Channels without a threshold given are left out."""
        rows = await history.reports.contacts(
            START, END, Interval.MINUTES_15, {Channel.CHAT: 60.0}, 5.0
        )
        assert {r.channel for r in rows} == {Channel.CHAT}

    async def test_threshold_and_short_abandon_come_from_the_caller(self, history: Store) -> None:
        """A 10 s phone threshold and a 2 s short-abandon limit change the counts accordingly."""
        rows = await history.reports.contacts(
            START, END, Interval.MINUTES_15, {Channel.PHONE: 10.0}, 2.0
        )
        phone = rows[0]
        assert phone.threshold_seconds == 10.0
        # Only the 10.000001 s answer was near 10 s: it is now outside; no abandon is short.
        assert counts(phone) == (6, 3, 3, 0, 0)

    async def test_empty_range(self, history: Store) -> None:
        """A range with no contacts answers no rows."""
        rows = await history.reports.contacts(
            START - timedelta(hours=2), START - timedelta(hours=1), Interval.HOUR, THRESHOLDS, 5.0
        )
        assert rows == []


def counts(row: ContactFigures) -> tuple[int, int, int, int, int]:
    """(offered, answered, abandoned, short_abandoned, answered_within_threshold)"""
    return (
        row.offered,
        row.answered,
        row.abandoned,
        row.short_abandoned,
        row.answered_within_threshold,
    )


class TestOpenContacts:
    async def test_only_contacts_not_final(self, store: Store, db: asyncpg.Connection) -> None:
        """Queued, offered, connected and wrap-up contacts come back (the restore orders
        them); no final one."""
        wrap_up = await insert_history(db, Channel.CHAT, at(1), answered_at=at(2), ended_at=at(3))
        await insert_history(
            db, Channel.PHONE, at(2), answered_at=at(3), ended_at=at(4), completed_at=at(5)
        )
        queued = await insert_history(db, Channel.EMAIL, at(4))
        await insert_history(db, Channel.PHONE, at(0), abandoned_at=at(1))
        offered = await insert_history(db, Channel.PHONE, at(3), offered_at=at(4))
        connected = await insert_history(db, Channel.PHONE, at(0.5), answered_at=at(6))
        found = sorted(await store.open_contacts(), key=lambda c: (c.queued_at, c.id))
        assert [(c.id, c.state) for c in found] == [
            (connected, ContactState.CONNECTED),
            (wrap_up, ContactState.WRAP_UP),
            (offered, ContactState.OFFERED),
            (queued, ContactState.QUEUED),
        ]
        assert found[0].answered_at == at(6)
        assert found[0].agent_id == "alice"

    async def test_every_field_reads_back_as_by_id(self, store: Store) -> None:
        """open_contacts builds each contact by column position: every field equals the
        contact read by id (which reads by column name), and the contact written."""
        base = make_contact(
            "chat-1",
            T0,
            Channel.CHAT,
            attributes={"name": "Zoë", "note": 'say "hi"\n'},
            required_skills=frozenset({"lang:es", "returns"}),
            priority_boost=2.5,
        )
        await store.writer.wait(store.insert_contact(base, lambda: None))
        plain = make_contact("email-1", at(1), Channel.EMAIL)
        await store.writer.wait(store.insert_contact(plain, lambda: None))
        # queued_at is read as epoch seconds in a float: the last microsecond of the
        # century comes back exactly.
        late = make_contact("email-2", datetime(2099, 12, 31, 23, 59, 59, 999999, UTC))
        await store.writer.wait(store.insert_contact(late, lambda: None))
        full = replace(
            base,
            preferred_skills=("billing", "vip"),
            preferred_agent_id="alice",
            preferred_agent_source=PreferenceSource.TRANSFER,
            state=ContactState.WRAP_UP,
            offered_at=at(2),
            answered_at=at(3),
            ended_at=at(4),
            completed_at=at(5),
            abandoned_at=at(6),
            agent_id="alice",
            offer_id=str(uuid.uuid4()),
            disposition="resolved",
            offer_count=3,
        )
        await store.writer.write([contact_update(full, at(5))])
        found = sorted(await store.open_contacts(), key=lambda c: c.queued_at)
        assert found == [full, plain, late]
        assert found == [await store.contact_by_id(c.id) for c in (full, plain, late)]
        assert await store.contacts_by_ids([late.id, plain.id]) in ([late, plain], [plain, late])

    async def test_empty_database(self, store: Store) -> None:
        """With no contacts there is nothing to restore."""
        assert await store.open_contacts() == []

    async def test_pages_of_any_size_read_each_contact_once(
        self, store: Store, db: asyncpg.Connection, database_url: str
    ) -> None:
        """The cold start reads the rows in pages (restore_read.py): whatever the page
        size (one row, pages that divide the rows or not, one page for all), every
        open contact comes back once, equal to the one read whole."""
        for n in range(7):
            await insert_history(db, Channel.EMAIL, at(n))
        await insert_history(db, Channel.PHONE, at(9), answered_at=at(10), ended_at=at(11))
        await insert_history(db, Channel.PHONE, at(8), abandoned_at=at(9))
        by_id = {c.id: c for c in await store.open_contacts()}
        assert len(by_id) == 8
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
        try:
            for page_rows in (1, 3, 4, 8, 100):
                found = await open_contacts(pool, page_rows)
                assert len(found) == 8, page_rows
                assert {c.id: c for c in found} == by_id, page_rows
        finally:
            await pool.close()


def appending(target: list[T], value: T) -> Callable[[], None]:
    """An after-commit hook that appends `value` to `target`."""
    return lambda: target.append(value)


class TestGroupCommit:
    async def test_concurrent_writes_share_transactions(
        self, store: Store, db: asyncpg.Connection
    ) -> None:
        """200 writers enqueued at once commit in far fewer transactions, every row landing."""
        writers = 200
        contacts = [make_contact(f"call-{i}", at(i / 1000)) for i in range(writers)]
        committed: list[str] = []
        before = store.writer.stats.transactions

        async def submit(index: int) -> None:
            contact = contacts[index]
            future = store.insert_contact(contact, lambda: committed.append(contact.id))
            await store.writer.wait(future)

        await asyncio.gather(*(submit(i) for i in range(writers)))

        transactions = store.writer.stats.transactions - before
        assert 1 <= transactions < writers
        assert store.writer.stats.largest_batch > 2
        assert sorted(committed) == sorted(c.id for c in contacts)
        assert await db.fetchval("SELECT count(*) FROM contacts") == writers
        assert await db.fetchval("SELECT count(*) FROM contact_events") == writers

    async def test_after_commit_hooks_run_in_enqueue_order(self, store: Store) -> None:
        """Hooks of one batch run in the order their writes were enqueued."""
        order: list[int] = []
        futures = [
            store.insert_contact(make_contact(f"call-{i}", at(i)), appending(order, i))
            for i in range(20)
        ]
        await asyncio.gather(*futures)
        assert order == list(range(20))

    async def test_one_bad_write_fails_only_its_caller(
        self, store: Store, db: asyncpg.Connection
    ) -> None:
        """A statement error in one caller's writes fails it alone; the batch's others commit."""
        good = [make_contact(f"call-{i}", at(i)) for i in range(4)]
        hooks: list[str] = []
        futures = [store.insert_contact(c, appending(hooks, c.id)) for c in good[:2]]
        orphan_event = (
            "insert_contact_event",
            (uuid.uuid4(), "submitted", T0, None, None, None, None, None),
        )
        bad = store.writer.enqueue([orphan_event], after_commit=lambda: hooks.append("bad"))
        futures += [store.insert_contact(c, appending(hooks, c.id)) for c in good[2:]]
        failures = store.writer.stats.failures

        results = await asyncio.gather(*futures, bad, return_exceptions=True)

        assert results[:4] == [None] * 4
        assert isinstance(results[4], StoreUnavailable)
        assert "rejected" in str(results[4])
        assert sorted(hooks) == sorted(c.id for c in good)
        assert store.writer.stats.failures == failures + 1
        assert store.writer.healthy
        assert await db.fetchval("SELECT count(*) FROM contacts") == 4
        assert await db.fetchval("SELECT count(*) FROM contact_events") == 4

    async def test_an_id_that_is_not_a_uuid_fails_only_its_caller(
        self, store: Store, db: asyncpg.Connection
    ) -> None:
        """Ids go to PostgreSQL as text: one that does not parse is refused when its
        batch is encoded, and only its caller fails."""
        good = make_contact("call-1", T0)
        committed = store.insert_contact(good, lambda: None)
        bad = store.writer.enqueue(
            [
                (
                    "insert_contact_event",
                    ("not-a-uuid", "submitted", T0, None, None, None, None, None),
                )
            ]
        )
        results = await asyncio.gather(committed, bad, return_exceptions=True)
        assert results[0] is None
        assert isinstance(results[1], StoreUnavailable)
        assert "not-a-uuid" in str(results[1])
        assert await db.fetchval("SELECT count(*) FROM contacts") == 1

    async def test_writes_after_a_rejected_batch_still_commit(
        self, store: Store, db: asyncpg.Connection
    ) -> None:
        """After a rejected write the writer keeps serving later callers."""
        duplicate = make_contact("call-1", T0)
        await store.writer.wait(store.insert_contact(duplicate, lambda: None))
        with pytest.raises(DuplicateKey):
            await store.writer.wait(
                store.insert_contact(make_contact("call-1", at(1)), lambda: None)
            )
        await store.writer.wait(store.insert_contact(make_contact("call-2", at(2)), lambda: None))
        assert await db.fetchval("SELECT count(*) FROM contacts") == 2

    async def test_empty_write_resolves_at_once(self, store: Store) -> None:
        """Enqueuing no writes is already committed, and runs its hook."""
        ran: list[bool] = []
        future = store.writer.enqueue([], after_commit=lambda: ran.append(True))
        assert future.done()
        assert ran == [True]

    async def test_batches_respect_max_batch(
        self, database_url: str, db: asyncpg.Connection
    ) -> None:
        """With max_batch=10, 100 single writes take at least ten transactions of at most ten."""
        lock = ActiveLock(database_url)
        await lock.acquire()
        writer = GroupCommit(lock, max_batch=10)
        writer.start()
        try:
            writes: list[list[Write]] = [
                [("upsert_agent", (f"agent-{i}", [], T0, ""))] for i in range(100)
            ]
            await asyncio.gather(*(writer.write(w) for w in writes))
            assert writer.stats.transactions >= 10
            assert writer.stats.largest_batch <= 10
            assert writer.stats.writes == 100
        finally:
            await writer.close()
            await lock.release()
        assert await db.fetchval("SELECT count(*) FROM agents") == 100

    async def test_a_lone_write_starts_its_commit_at_once(self, database_url: str) -> None:
        """No batching timer: a write that finds the writer idle is being committed after
        two passes of the event loop (its wake-up, then the commit's start), with the
        idle heartbeat an hour away so that nothing but the write can wake the writer."""
        lock = ActiveLock(database_url)
        await lock.acquire()
        writer = GroupCommit(lock, heartbeat=3600.0)
        started: list[int] = []
        writer.on_commit_start = started.append
        writer.start()
        try:
            await writer.write([("upsert_agent", ("agent-0", [], T0, ""))])
            started.clear()
            done = writer.enqueue([("upsert_agent", ("agent-1", [], T0, ""))])
            for _ in range(2):
                await asyncio.sleep(0)
            assert started == [1]
            await writer.wait(done)
        finally:
            await writer.close()
            await lock.release()

    async def test_writes_made_during_a_commit_go_together_in_the_next(
        self, database_url: str, db: asyncpg.Connection
    ) -> None:
        """Under load the writer still batches: the writes enqueued while a commit is in
        flight are committed together, as one batch, right after it."""
        lock = ActiveLock(database_url)
        await lock.acquire()
        writer = GroupCommit(lock, heartbeat=3600.0)
        started: list[int] = []
        first_started = asyncio.Event()

        def on_start(writes: int) -> None:
            started.append(writes)
            first_started.set()

        writer.on_commit_start = on_start
        timings: list[BatchTiming] = []
        writer.on_batch = timings.append
        writer.start()
        try:
            first = writer.enqueue([("upsert_agent", ("agent-0", [], T0, ""))])
            await first_started.wait()
            later = [
                writer.enqueue([("upsert_agent", (f"agent-{i}", [], T0, ""))]) for i in (1, 2, 3)
            ]
            await asyncio.gather(first, *later)
            assert started == [1, 3]
            assert writer.stats.largest_batch == 3
            # What metrics are told: rows and callers per commit, and that the later
            # three waited (queued) behind the first commit before their own started.
            assert [(t.rows, t.callers) for t in timings] == [(1, 1), (3, 3)]
            assert timings[1].queued > 0
        finally:
            await writer.close()
            await lock.release()
        assert await db.fetchval("SELECT count(*) FROM agents") == 4

    async def test_a_commit_that_takes_too_long_fails_its_waiters_and_still_lands(
        self, database_url: str, db: asyncpg.Connection
    ) -> None:
        """A caller waits at most wait_timeout: past it, StoreUnavailable (saying whether
        the change is kept), while the commit goes on and lands once PostgreSQL lets it;
        a caller waiting again for the same commit then returns."""
        lock = ActiveLock(database_url)
        await lock.acquire()
        writer = GroupCommit(lock, wait_timeout=0.05, heartbeat=3600.0)
        writer.start()
        try:
            async with db.transaction():
                # Holds every write to agents until this transaction ends.
                await db.execute("LOCK TABLE agents IN ACCESS EXCLUSIVE MODE")
                kept = writer.enqueue([("upsert_agent", ("agent-0", [], T0, ""))])
                with pytest.raises(StoreUnavailable, match="kept and will be written"):
                    await writer.wait(kept)
                refused = writer.enqueue([("upsert_agent", ("agent-1", [], T0, ""))], retry=False)
                with pytest.raises(StoreUnavailable) as late:
                    await writer.wait(refused, retry=False)
                assert "kept" not in str(late.value)
                assert not kept.done()
            await writer.wait(kept)
            await writer.wait(refused)
        finally:
            await writer.close()
            await lock.release()
        assert await db.fetchval("SELECT count(*) FROM agents") == 2

    async def test_a_caller_that_gives_up_leaves_the_commit_to_others(
        self, database_url: str, db: asyncpg.Connection
    ) -> None:
        """Cancelling one caller's wait does not cancel the commit: another caller of the
        same commit (a retried call waits for its first attempt's) sees it land."""
        lock = ActiveLock(database_url)
        await lock.acquire()
        writer = GroupCommit(lock, heartbeat=3600.0)
        writer.start()
        try:
            async with db.transaction():
                await db.execute("LOCK TABLE agents IN ACCESS EXCLUSIVE MODE")
                done = writer.enqueue([("upsert_agent", ("agent-0", [], T0, ""))])
                first = asyncio.create_task(writer.wait(done))
                second = asyncio.create_task(writer.wait(done))
                await asyncio.sleep(0)
                first.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await first
                assert not done.cancelled()
            await second
            assert done.done()
            assert not done.cancelled()
        finally:
            await writer.close()
            await lock.release()
        assert await db.fetchval("SELECT count(*) FROM agents") == 1

    @pytest.mark.parametrize("one_statement_up_to", [16, 0], ids=["one-statement", "grouped"])
    async def test_writes_waiting_are_sent_before_the_last_commit_is_told(
        self, database_url: str, one_statement_up_to: int
    ) -> None:
        """When a commit ends with writes waiting, the next commit starts before the
        first one's after-commit hooks run (they run while it is in flight), and every
        hook still runs once, in commit order."""
        lock = ActiveLock(database_url)
        await lock.acquire()
        writer = GroupCommit(lock, heartbeat=3600.0, one_statement_up_to=one_statement_up_to)
        order: list[str] = []
        first_started = asyncio.Event()

        def on_start(writes: int) -> None:
            order.append(f"commit of {writes}")
            first_started.set()

        writer.on_commit_start = on_start
        writer.start()
        try:
            first = writer.enqueue(
                [("upsert_agent", ("agent-0", [], T0, ""))],
                after_commit=lambda: order.append("agent-0 committed"),
            )
            await first_started.wait()
            later = [
                writer.enqueue(
                    [("upsert_agent", (f"agent-{i}", [], T0, ""))],
                    after_commit=appending(order, f"agent-{i} committed"),
                )
                for i in (1, 2)
            ]
            await asyncio.gather(first, *later)
        finally:
            await writer.close()
            await lock.release()
        assert order == [
            "commit of 1",
            "commit of 2",
            "agent-0 committed",
            "agent-1 committed",
            "agent-2 committed",
        ]

    @pytest.mark.parametrize("one_statement_up_to", [16, 0], ids=["one-statement", "grouped"])
    async def test_a_batch_writes_in_the_order_the_writes_were_made(
        self, database_url: str, db: asyncpg.Connection, one_statement_up_to: int
    ) -> None:
        """One batch holding a contact's insert and its later update and events leaves the
        contact as the last write said, with its events in order, whichever way the
        batch is written (small batches as one statement, larger ones grouped)."""
        contact = make_contact("call-1", T0)
        offered = replace(
            contact, state=ContactState.OFFERED, offered_at=at(1), agent_id="a1", offer_count=1
        )
        answered = replace(offered, state=ContactState.CONNECTED, answered_at=at(2))
        lock = ActiveLock(database_url)
        await lock.acquire()
        writer = GroupCommit(lock, one_statement_up_to=one_statement_up_to)
        sizes: list[int] = []
        writer.on_commit_start = sizes.append
        writer.start()
        try:
            # Enqueued before the writer runs: one batch.
            steps = [
                writer.enqueue(
                    [
                        contact_insert(contact),
                        event_insert(ContactEventKind.SUBMITTED, contact.id, T0),
                    ]
                ),
                *(
                    writer.enqueue(
                        [event_insert(kind, contact.id, when, "a1"), contact_update(state, when)]
                    )
                    for kind, state, when in (
                        (ContactEventKind.OFFERED, offered, at(1)),
                        (ContactEventKind.ANSWERED, answered, at(2)),
                    )
                ),
            ]
            await asyncio.gather(*steps)
        finally:
            await writer.close()
            await lock.release()
        assert sizes == [6]
        row = await db.fetchrow("SELECT * FROM contacts WHERE id = $1", uuid.UUID(contact.id))
        assert row is not None
        assert contact_from_row(row) == answered
        kinds = await db.fetch(
            "SELECT kind FROM contact_events WHERE contact_id = $1 ORDER BY seq",
            uuid.UUID(contact.id),
        )
        assert [r["kind"] for r in kinds] == ["submitted", "offered", "answered"]


class TestUnreachable:
    async def test_open_fails_as_unavailable(self) -> None:
        """Opening the store on a port nobody listens on raises StoreUnavailable."""
        with pytest.raises(StoreUnavailable):
            await Store.open("postgresql://postgres@127.0.0.1:1/postgres")
