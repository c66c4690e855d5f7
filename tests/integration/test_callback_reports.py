"""Queued callbacks in the reports, on a hand-built history worked out by hand: counted
apart from inbound calls, with their own service level; calls created from chat and
email per interval.

The same morning as test_reports.py (2026-03-02, UTC). Callback target 900 s.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg
import pytest

from router.domain import AgentStatus, Channel, DialOutcome, Router, RoutingPolicy
from router.reporting.callbacks import callback_rows
from router.reporting.intervals import Interval
from router.store import Store
from tests.integration.conftest import make_contact
from tests.integration.test_reports import END, START, THRESHOLDS, contact, t

TARGET = 900.0


async def callback(
    db: asyncpg.Connection,
    contact_id: uuid.UUID,
    requested_from: Channel,
    *,
    attempts: int = 0,
    placed: str | None = None,
    reached: str | None = None,
    not_before: str | None = None,
) -> None:
    def at(clock: str | None) -> datetime | None:
        return None if clock is None else t(clock)

    await db.execute(
        "UPDATE contacts SET channel = 'phone' WHERE id = $1",
        contact_id,
    )
    await db.execute(
        "INSERT INTO callbacks (contact_id, number, requested_from, requested_at, not_before,"
        " attempts, placed_at, reached_at) VALUES ($1, '+14155550123', $2, $3, $4, $5, $6, $7)",
        contact_id,
        requested_from.value,
        t("10:00:30"),
        at(not_before),
        attempts,
        at(placed),
        at(reached),
    )


@pytest.fixture
async def history(db: asyncpg.Connection, store: Store) -> Store:
    # A caller who pressed 1: dialled 5 minutes after queueing, reached.
    a = await contact(db, Channel.PHONE, "10:00:00", answered="10:05:10", completed="10:09:00")
    await callback(db, a, Channel.PHONE, attempts=1, placed="10:05:00", reached="10:05:10")
    # A chat that asked for a call: first dialled 19 minutes in (late), then unreached.
    b = await contact(db, Channel.CHAT, "10:01:00", state="unreached")
    await callback(db, b, Channel.CHAT, attempts=2, placed="10:20:00")
    # An email that asked for a call after 11:00: dialled 10 minutes after, reached.
    c = await contact(db, Channel.EMAIL, "10:02:00", answered="11:10:30")
    await callback(
        db,
        c,
        Channel.EMAIL,
        attempts=1,
        placed="11:10:00",
        reached="11:10:30",
        not_before="11:00:00",
    )
    # A caller whose window closed before anyone dialled.
    d = await contact(db, Channel.PHONE, "10:03:00", state="unreached")
    await callback(db, d, Channel.PHONE)
    # A caller who cancelled the callback.
    e = await contact(db, Channel.PHONE, "10:04:00", abandoned="10:30:00")
    await callback(db, e, Channel.PHONE)
    # An inbound call answered in 10 s: the only phone contact of the inbound figures.
    await contact(db, Channel.PHONE, "10:05:00", answered="10:05:10", completed="10:08:00")
    return store


class TestCallbackReport:
    async def test_each_origin_apart_with_its_service_level(self, history: Store) -> None:
        """Per interval and origin: requested, placed (within target), reached, unreached
        (before a dial), cancelled, dials, means; service level by its own formula."""
        figures = await history.reports.callbacks(START, END, Interval.HOUR, TARGET)
        rows = {r.figures.requested_from: r for r in callback_rows(figures)}
        assert {r.figures.interval_start for r in rows.values()} == {t("10:00:00")}
        phone, chat, email = rows[Channel.PHONE], rows[Channel.CHAT], rows[Channel.EMAIL]
        f = phone.figures
        assert (f.requested, f.placed, f.placed_within_target, f.reached) == (3, 1, 1, 1)
        assert (f.unreached, f.unreached_before_dial, f.cancelled, f.dials) == (1, 1, 1, 1)
        assert f.mean_seconds_to_placed == 300.0
        assert f.mean_seconds_to_reached == 310.0
        assert phone.service_level == pytest.approx(1 / 2)
        f = chat.figures
        assert (f.requested, f.placed, f.placed_within_target, f.unreached, f.dials) == (
            1,
            1,
            0,
            1,
            2,
        )
        assert chat.service_level == 0.0
        assert chat.figures.mean_seconds_to_reached is None
        # Counted from not_before: 10 minutes, within the target.
        assert email.figures.placed_within_target == 1
        assert email.service_level == 1.0
        # "Calls created from chat and email" in the interval.
        created = sum(r.figures.requested for c, r in rows.items() if c is not Channel.PHONE)
        assert created == 2

    async def test_every_callback_is_in_one_column(
        self, history: Store, db: asyncpg.Connection
    ) -> None:
        """Beside the morning's: a caller's callback a supervisor cancelled (spam) and one
        dialled once, waiting for its retry. Each has its column, the five add up to
        requested in every row, and the cancelled one is in no term of service level."""
        spam = await contact(db, Channel.PHONE, "10:06:00", state="cancelled")
        await callback(db, spam, Channel.PHONE)
        retry = await contact(db, Channel.PHONE, "10:07:00", state="queued")
        await callback(db, retry, Channel.PHONE, attempts=1, placed="10:10:00")
        figures = await history.reports.callbacks(START, END, Interval.HOUR, TARGET)
        rows = {r.figures.requested_from: r for r in callback_rows(figures)}
        f = rows[Channel.PHONE].figures
        assert (f.requested, f.reached, f.unreached, f.cancelled) == (5, 1, 1, 1)
        assert (f.cancelled_by_supervisor, f.waiting, f.placed) == (1, 1, 2)
        assert rows[Channel.PHONE].service_level == pytest.approx(2 / 3)
        for row in rows.values():
            f = row.figures
            columns = f.reached + f.unreached + f.cancelled + f.cancelled_by_supervisor
            assert columns + f.waiting == f.requested, f.requested_from

    async def test_inbound_figures_leave_callbacks_out(
        self, history: Store, db: asyncpg.Connection
    ) -> None:
        """The contact report and the SQL view count the one inbound call only."""
        rows = await history.reports.contacts(START, END, Interval.HOUR, THRESHOLDS, 5.0)
        assert [(r.channel, r.offered, r.answered) for r in rows] == [(Channel.PHONE, 1, 1)]
        view = await db.fetch("SELECT channel, offered FROM interval_service_level")
        assert [(r["channel"], r["offered"]) for r in view] == [("phone", 1)]


class TestNumbersArePersonalData:
    async def test_anonymisation_empties_the_number_of_a_finished_callback(
        self, db: asyncpg.Connection, store: Store
    ) -> None:
        """Erasure and retention (anonymise_contacts) take the number with the customer
        id, for unreached callbacks too; an open callback keeps its number."""
        done = await contact(db, Channel.PHONE, "10:00:00", state="unreached")
        await callback(db, done, Channel.PHONE)
        waiting = await contact(db, Channel.CHAT, "10:01:00")
        await callback(db, waiting, Channel.CHAT)
        changed = await db.fetchrow(
            "SELECT * FROM anonymise_contacts($1::uuid[], ARRAY['p1', 'p2'])", [done, waiting]
        )
        assert changed is not None
        assert changed["contacts"] == 1
        numbers = await db.fetch("SELECT contact_id, number FROM callbacks ORDER BY number")
        assert [(r["contact_id"], r["number"]) for r in numbers] == [
            (done, ""),
            (waiting, "+14155550123"),
        ]


class TestCallbackRows:
    async def test_every_read_brings_the_callback_back(self, store: Store) -> None:
        """What the core wrote of a callback (a chat turned into one, dialled once, a
        retry pending) reads back equal by id, by key, among the open contacts (a cold
        start), with the committed number (a standby's load) and by ids (its follow)."""
        router = Router(RoutingPolicy(phone_reserve=0, callback_retry_delay=600.0))
        chat = make_contact("chat-1", t("10:00:00"), Channel.CHAT)
        await store.writer.wait(store.insert_contact(chat, lambda: None))
        events = list(router.submit(chat, t("10:00:00")))
        window = (None, t("12:00:00"))
        events += router.request_callback(chat.id, "+14155550123", window, t("10:01:00"))[1]
        events += router.sign_in("ann", frozenset(), {}, AgentStatus.READY, t("10:02:00"))
        events += router.connect("ann", t("10:02:00"))
        (offer,) = router.offers_for("ann")
        events += router.accept("ann", offer.id, t("10:02:05"))[1]
        busy, more = router.report_dial("ann", chat.id, DialOutcome.BUSY, t("10:02:30"))
        await store.writer.wait(store.record([*events, *more]))
        assert busy.callback is not None
        assert busy.callback.retry_at == t("10:12:30")
        assert await store.contact_by_id(chat.id) == busy
        assert await store.contact_by_key("chat-1") == busy
        assert await store.open_contacts() == [busy]
        loaded, _ = await store.open_contacts_and_seq()
        assert loaded == [busy]
        assert await store.contacts_by_ids([chat.id]) == [busy]
