"""A hot standby's copy of the open contacts (router/store/follow.py) against a real
PostgreSQL: after following a run of changes, or after missing them, it is what a full
read finds, and the core restored from it is the core restored from that read."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest

from router.domain import (
    AgentStatus,
    Channel,
    Contact,
    ContactEvent,
    ContactEventKind,
    Event,
    Router,
    RoutingPolicy,
)
from router.server import start_router
from router.store import Store
from router.store.active_lock import ActiveLock
from router.store.event_feed import PAGE
from router.store.follow import OpenContacts
from router.switchboard import NewContact
from tests.acceptance.conftest import eventually
from tests.integration.conftest import make_contact

T0 = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)
POLICY = RoutingPolicy(phone_reserve=0, decline_exclusion=0.0)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
async def standby_store(database_url: str) -> AsyncIterator[Store]:
    """A second store on the same database, as the standby process has."""
    opened = await Store.open(database_url)
    try:
        yield opened
    finally:
        await opened.close()


class Center:
    """The active router's side: the core and the store, committing each step."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.router = Router(POLICY)
        self.submitted = 0

    async def record(self, events: Sequence[Event]) -> None:
        await self.store.writer.wait(self.store.record(events))

    async def submit(self, channel: Channel, seconds: float) -> Contact:
        self.submitted += 1
        contact = make_contact(f"key-{self.submitted}", at(seconds), channel)
        await self.store.writer.wait(self.store.insert_contact(contact, lambda: None))
        await self.record(self.router.submit(contact, at(seconds)))
        return contact

    async def sign_in(self, agent_id: str, seconds: float) -> None:
        events = [
            *self.router.sign_in(agent_id, frozenset(), {}, AgentStatus.READY, at(seconds)),
            *self.router.connect(agent_id, at(seconds)),
        ]
        await self.record(events)

    def offer_of(self, agent_id: str) -> str:
        offers = self.router.offers_for(agent_id)
        assert offers, agent_id
        return offers[0].id

    async def run_of_changes(self, contacts: int) -> None:
        """Submissions on every channel; answered, ended, completed, declined, abandoned
        and offered contacts among them; a conversation, a wrap-up and an offer left
        open."""
        queued = [await self.submit(list(Channel)[n % 3], n / 10) for n in range(contacts)]
        await self.sign_in("ann", 100)
        await self.sign_in("bob", 100)
        # ann: answers, ends and completes one, then answers and ends another (wrap-up)
        for seconds, finish in ((101, True), (110, False)):
            offer_id = self.offer_of("ann")
            contact, events = self.router.accept("ann", offer_id, at(seconds))
            await self.record(events)
            _, events = self.router.end("ann", contact.id, at(seconds + 2))
            await self.record(events)
            if finish:
                _, events = self.router.complete("ann", contact.id, "resolved", at(seconds + 3))
                await self.record(events)
        # bob declines one (back to the queue), then answers the next (connected)
        _, events = self.router.decline("bob", self.offer_of("bob"), at(120))
        await self.record(events)
        contact, events = self.router.accept("bob", self.offer_of("bob"), at(121))
        await self.record(events)
        # cy signs in last and holds an offer (a restore queues its contact again).
        await self.sign_in("cy", 125)
        # A few customers leave while waiting.
        for contact in queued[-3:]:
            if self.router.contact(contact.id).state.is_waiting:
                events = self.router.abandon(contact.id, at(130))
                await self.record(events)


def restored(contacts: list[Contact]) -> tuple[object, ...]:
    """What the core looks like restored from `contacts` at one instant."""
    router = Router(POLICY)
    now = at(200)
    return picture(router, router.restore(contacts, now), now)


def taken_over(following: OpenContacts) -> tuple[object, ...]:
    """What the standby's warm core looks like once it takes over at that instant."""
    now = at(200)
    voided, events = following.router.warm.take_over(now)
    return picture(following.router, [*voided, *events], now)


def picture(router: Router, events: Sequence[Event], now: datetime) -> tuple[object, ...]:
    contacts = sorted(router.contacts(), key=lambda c: c.id)
    return (
        sorted(events, key=lambda e: e.contact.id if isinstance(e, ContactEvent) else ""),
        router.snapshot(now),
        [(c.id, c) for c in contacts],
        [(c.id, router.position(c.id, now)) for c in contacts if c.state.is_waiting],
        router.next_deadline(),
    )


def warm_ids(following: OpenContacts) -> set[str]:
    return {c.id for c in following.router.contacts()}


class TestFollowing:
    async def test_follows_a_run_of_changes_to_what_a_full_read_finds(
        self, store: Store, standby_store: Store
    ) -> None:
        """A standby loaded before a run of changes and following it holds the open
        contacts a fresh read finds, and restores to the same core."""
        center = Center(store)
        await center.submit(Channel.PHONE, 0)
        following = OpenContacts(standby_store, Router(POLICY))
        keeping = asyncio.create_task(following.keep_current())
        try:
            await center.run_of_changes(20)
            last = await store.events.last_committed_seq()

            async def followed() -> bool:
                return following.seq >= last

            await eventually(followed, within=10.0, what="the standby following")
        finally:
            keeping.cancel()
            with pytest.raises(asyncio.CancelledError):
                await keeping
        fresh = await store.open_contacts()
        assert len(following) == len(fresh)
        assert taken_over(following) == restored(fresh)
        assert warm_ids(following) == {c.id for c in fresh}
        states = {c.state for c in fresh}
        assert len(states) == 4, "queued, offered, connected and wrap-up contacts"
        assert len(fresh) < center.submitted, "some contacts finished"

    async def test_catches_up_on_changes_it_missed(
        self, store: Store, standby_store: Store
    ) -> None:
        """A standby that was not following (many pages of changes behind) catches up
        from the tables: the same open contacts as a fresh read."""
        center = Center(store)
        await center.submit(Channel.CHAT, 0)
        following = OpenContacts(standby_store, Router(POLICY))
        await following.load()
        assert len(following) == 1
        await center.run_of_changes(PAGE + 50)
        applied = await following.catch_up()
        assert applied > PAGE
        assert await following.catch_up() == 0
        fresh = await store.open_contacts()
        assert len(following) == len(fresh)
        assert taken_over(following) == restored(fresh)

    async def test_load_and_number_are_one_snapshot(
        self, store: Store, standby_store: Store
    ) -> None:
        """The load's number is the last event it reflects: a contact submitted after it
        is caught up, one finished before it is not in the copy."""
        center = Center(store)
        first = await center.submit(Channel.EMAIL, 0)
        events = center.router.abandon(first.id, at(1))
        await center.record(events)
        following = OpenContacts(standby_store, Router(POLICY))
        await following.load()
        assert len(following) == 0
        assert following.seq == await store.events.last_committed_seq()
        later = await center.submit(Channel.EMAIL, 2)
        assert await following.catch_up() == 1
        assert warm_ids(following) == {later.id}
        assert following.router.position(later.id, at(3)) == 1
        kinds = [e.kind for e in await store.events.read_after(0)]
        assert kinds.count(ContactEventKind.SUBMITTED.value) == 2


class TestTakeoverFallsBackToAColdRestore:
    @pytest.mark.parametrize("failing", ["load", "catch_up"])
    async def test_a_broken_copy_does_not_stop_the_takeover(
        self, database_url: str, monkeypatch: pytest.MonkeyPatch, failing: str
    ) -> None:
        """Should the standby's copy fail (a bug, not an outage), it still takes over,
        restoring from PostgreSQL as a cold start does."""
        active = await start_router(database_url, POLICY)
        standby = None
        try:
            contact, _ = await active.switchboard.submit(
                NewContact("call-1", Channel.PHONE, "c", {}, frozenset(), 1.0)
            )

            async def broken(self: OpenContacts) -> int:
                raise RuntimeError("a bug")

            monkeypatch.setattr(OpenContacts, failing, broken)
            waiting = asyncio.Event()
            acquire = ActiveLock.acquire

            async def standing_by(self: ActiveLock, poll_seconds: float = 0.5) -> None:
                waiting.set()
                await acquire(self, poll_seconds)

            monkeypatch.setattr(ActiveLock, "acquire", standing_by)
            standby = await start_router(database_url, POLICY, wait_active=False)
            await asyncio.wait_for(waiting.wait(), 30)  # a standby, not a cold start
            await active.stop(grace=0.5)
            await asyncio.wait_for(standby.wait_active(), 30)
            restored = standby.switchboard.router.contact(contact.id)
            assert restored.state.is_waiting
            assert restored.queued_at == contact.queued_at
        finally:
            await active.stop(grace=0.5)
            if standby is not None:
                await standby.stop(grace=0.5)
