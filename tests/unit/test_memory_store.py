"""The in-memory store keeps the real store's rules, and the real store fits the interface."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from typing_extensions import get_protocol_members

from router.domain import (
    AgentStatus,
    Channel,
    Contact,
    ContactEvent,
    ContactState,
    Event,
    Offer,
    OfferWithdrawn,
    Router,
    RoutingPolicy,
)
from router.errors import DuplicateKey, StoreUnavailable
from router.store import GroupCommit, Store
from router.store.interface import CommitWaiter, SwitchboardStore
from router.store.memory import InMemoryStore
from tests.unit.conftest import T0, build_contact

# mypy checks these: both stores are SwitchboardStores, both writers CommitWaiters.
REAL_STORE: type[SwitchboardStore] = Store
MEMORY_STORE: type[SwitchboardStore] = InMemoryStore
REAL_WRITER: type[CommitWaiter] = GroupCommit


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def appending(target: list[str], value: str) -> Callable[[], None]:
    """An after-commit hook that appends `value` to `target`."""
    return lambda: target.append(value)


def shape(function: Callable[..., object]) -> tuple[bool, list[tuple[str, object, object]]]:
    """Whether `function` is a coroutine function, and its parameters' names, kinds and
    defaults (annotations are strings here, spelled per module, so they are left to mypy)."""
    parameters = inspect.signature(function).parameters.values()
    return (
        inspect.iscoroutinefunction(function),
        [(p.name, p.kind, p.default) for p in parameters],
    )


def answered_and_completed(router: Router, contact: Contact, start: float) -> list[Event]:
    """Events of `contact` queued and offered to alice at `start` + 1 s, answered at + 2 s,
    ended at + 30 s and completed at + 60 s."""
    events = router.submit(contact, at(start + 1))
    offer = next(e.offer for e in events if isinstance(e, ContactEvent) and e.offer)
    _, answered = router.accept("alice", offer.id, at(start + 2))
    _, ended = router.end("alice", contact.id, at(start + 30))
    _, completed = router.complete("alice", contact.id, "done", at(start + 60))
    return [*events, *answered, *ended, *completed]


class TestInterface:
    @pytest.mark.parametrize("store", [Store, InMemoryStore], ids=["real", "memory"])
    def test_a_store_has_each_member_with_its_parameters(self, store: type) -> None:
        """Every member of SwitchboardStore exists, async or not as declared, same parameters."""
        for name in sorted(get_protocol_members(SwitchboardStore)):
            declared = inspect.getattr_static(SwitchboardStore, name)
            found = inspect.getattr_static(store, name)
            if isinstance(declared, property):
                assert isinstance(found, property), name
            else:
                assert shape(found) == shape(declared), name

    @pytest.mark.parametrize("writer", [GroupCommit, InMemoryStore], ids=["real", "memory"])
    def test_a_writer_waits_as_declared(self, writer: type) -> None:
        """The real group commit and the in-memory store wait with CommitWaiter's parameters."""
        for name in get_protocol_members(CommitWaiter):
            declared = shape(inspect.getattr_static(CommitWaiter, name))
            assert shape(inspect.getattr_static(writer, name)) == declared, name


class TestCommits:
    async def test_a_commit_lands_after_the_call_that_enqueued_it(self) -> None:
        """Not inside insert_contact: the caller goes on first, the hook runs on commit."""
        store = InMemoryStore()
        hooks: list[str] = []
        done = store.insert_contact(build_contact("c1", queued_at=T0), appending(hooks, "c1"))
        assert (done.done(), hooks, store.contacts) == (False, [], {})
        await store.writer.wait(done)
        assert hooks == ["c1"]
        assert list(store.contacts) == ["c1"]
        assert store.transactions == 1

    async def test_commit_order_is_enqueue_order_and_hooks_follow_it(self) -> None:
        """Writes held, then released: committed in enqueue order, hooks in order after."""
        store = InMemoryStore()
        router = Router(RoutingPolicy(phone_reserve=0))
        store.hold()
        seen: list[str] = []

        def hook(contact_id: str) -> Callable[[], None]:
            # Whether the row is committed when the hook runs.
            return lambda: seen.append(f"{contact_id}:{contact_id in store.contacts}")

        first, second = build_contact("c1", queued_at=0.0), build_contact("c2", queued_at=1.0)
        signed_in = router.sign_in("alice", frozenset(), {}, AgentStatus.READY, T0)
        futures = [
            store.record([*signed_in, *router.connect("alice", T0)]),
            store.insert_contact(first, hook("c1")),
            store.record(router.submit(first, at(0))),
            store.insert_contact(second, hook("c2")),
        ]
        await store.until_pending(4)
        assert seen == []
        assert store.release() == 4
        await asyncio.gather(*futures)
        assert seen == ["c1:True", "c2:True"]
        assert [e.kind.value for e in store.committed] == [
            "signed_in",
            "connected",
            "submitted",
            "offered",
            "submitted",
        ]
        assert store.transactions == 1

    async def test_commit_lands_the_oldest_writes_first(self) -> None:
        """commit(1) lands the first write only; the next stays pending."""
        store = InMemoryStore()
        store.hold()
        first = store.insert_contact(build_contact("c1"), lambda: None)
        second = store.insert_contact(build_contact("c2"), lambda: None)
        assert store.commit(1) == 1
        assert (first.done(), second.done(), store.pending_writes) == (True, False, 1)
        assert list(store.contacts) == ["c1"]

    async def test_a_known_key_fails_its_caller_alone(self) -> None:
        """Two inserts with one key in a batch: the second is DuplicateKey, the rest commit."""
        store = InMemoryStore()
        store.hold()
        hooks: list[str] = []
        first = store.insert_contact(build_contact("a"), appending(hooks, "a"))
        duplicate = replace(build_contact("b"), idempotency_key="key-a")
        again = store.insert_contact(duplicate, appending(hooks, "b"))
        third = store.insert_contact(build_contact("c"), appending(hooks, "c"))
        store.release()
        results = await asyncio.gather(first, again, third, return_exceptions=True)
        assert results[0] is None
        assert results[2] is None
        assert isinstance(results[1], DuplicateKey)
        assert hooks == ["a", "c"]
        assert sorted(store.contacts) == ["a", "c"]

    async def test_a_forced_duplicate_refuses_the_next_insert_only(self) -> None:
        """fail_next_commit(DuplicateKey) refuses the next insert, even of a new key."""
        store = InMemoryStore()
        store.fail_next_commit(DuplicateKey("simulated"))
        with pytest.raises(DuplicateKey, match="simulated"):
            await store.writer.wait(store.insert_contact(build_contact("a"), lambda: None))
        await store.writer.wait(store.insert_contact(build_contact("b"), lambda: None))
        assert list(store.contacts) == ["b"]

    async def test_events_of_a_contact_without_a_row_are_rejected(self) -> None:
        """As the foreign key would: the write fails, nothing of it is written."""
        store = InMemoryStore()
        router = Router(RoutingPolicy(phone_reserve=0))
        router.sign_in("alice", frozenset(), {}, AgentStatus.READY, T0)
        router.connect("alice", T0)
        events = router.submit(build_contact("c1"), T0)
        assert events
        with pytest.raises(StoreUnavailable, match="write rejected"):
            await store.writer.wait(store.record(events))
        assert store.committed == []

    async def test_nothing_to_write_is_committed_at_once(self) -> None:
        """No events, or only withdrawals (messages, not rows): done in the call itself."""
        store = InMemoryStore()
        store.hold()
        withdrawn = OfferWithdrawn(Offer("offer-1", "c1", "alice", T0, at(15)), "timed_out")
        assert store.record([]).done()
        assert store.record([withdrawn]).done()
        assert store.pending_writes == 0


def connected_router() -> tuple[Router, list[Event]]:
    """A router with alice ready and connected, and the events that did it."""
    router = Router(RoutingPolicy(phone_reserve=0))
    events = router.sign_in("alice", frozenset(), {}, AgentStatus.READY, T0)
    return router, [*events, *router.connect("alice", T0)]


class TestOutage:
    async def test_an_insert_during_an_outage_fails_at_once(self) -> None:
        """PostgreSQL down: insert_contact raises StoreUnavailable, nothing is queued."""
        store = InMemoryStore()
        store.start_outage()
        with pytest.raises(StoreUnavailable):
            store.insert_contact(build_contact("c1"), lambda: None)
        assert store.pending_writes == 0

    async def test_recorded_events_are_released_then_written_when_back(self) -> None:
        """During an outage record() lets its caller go on; the rows land after it ends."""
        store = InMemoryStore()
        _, events = connected_router()
        store.start_outage()
        done = store.record(events)
        assert done.done()
        assert store.pending_writes == 1
        assert store.commit() == 0
        store.end_outage()
        assert store.commit() == 1
        assert [e.kind.value for e in store.agent_events] == ["signed_in", "connected"]

    async def test_reads_fail_during_an_outage(self) -> None:
        """A read while PostgreSQL is down is StoreUnavailable, and is not counted."""
        store = InMemoryStore()
        store.start_outage()
        with pytest.raises(StoreUnavailable):
            await store.contact_by_key("key-c1")
        assert store.reads == {}

    async def test_a_commit_failing_as_an_outage_begins(self) -> None:
        """Pending submissions fail, pending events are kept and released, then written."""
        store = InMemoryStore()
        _, events = connected_router()
        store.hold()
        hooks: list[str] = []
        inserted = store.insert_contact(build_contact("c1"), appending(hooks, "c1"))
        recorded = store.record(events)
        store.fail_next_commit(StoreUnavailable("connection reset"))
        assert store.commit() == 0
        assert not store.healthy
        with pytest.raises(StoreUnavailable, match="connection reset"):
            await store.writer.wait(inserted)
        assert recorded.done()
        assert recorded.exception() is None
        store.end_outage()
        assert store.release() == 1
        assert hooks == []
        assert store.contacts == {}
        assert len(store.agent_events) == 2


class TestWait:
    async def test_an_expired_wait_is_unavailable_and_the_write_stays(self) -> None:
        """expire_waits: the waiter gets StoreUnavailable; the commit still lands later."""
        store = InMemoryStore()
        store.hold()
        done = store.insert_contact(build_contact("c1"), lambda: None)
        waiter = asyncio.create_task(store.writer.wait(done, retry=False))
        kept = asyncio.create_task(store.writer.wait(store.record(connected_router()[1])))
        await store.until_waiting(2)
        assert store.expire_waits() == 2
        with pytest.raises(StoreUnavailable) as refused:
            await waiter
        assert "kept" not in str(refused.value)
        with pytest.raises(StoreUnavailable, match="kept and will be written"):
            await kept
        assert store.waiting == 0
        assert store.release() == 2
        assert list(store.contacts) == ["c1"]

    async def test_a_cancelled_wait_leaves_the_commit_alone(self) -> None:
        """A caller who gives up does not cancel the commit others may wait for."""
        store = InMemoryStore()
        store.hold()
        done = store.insert_contact(build_contact("c1"), lambda: None)
        waiter = asyncio.create_task(store.writer.wait(done))
        await store.until_waiting(1)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert not done.cancelled()
        store.release()
        await store.writer.wait(done)
        assert list(store.contacts) == ["c1"]


class TestReads:
    async def test_open_contacts_in_queue_order(self) -> None:
        """Neither completed nor abandoned, by queued_at then id."""
        store = InMemoryStore()
        late, early, twin = (
            build_contact("b", queued_at=5.0),
            build_contact("z", queued_at=1.0),
            build_contact("a", queued_at=5.0),
        )
        gone = replace(build_contact("x"), state=ContactState.ABANDONED, abandoned_at=at(2))
        store.seed(late, early, twin, gone)
        assert [c.id for c in await store.open_contacts()] == ["z", "a", "b"]
        assert await store.contact_by_id("x") == gone
        assert await store.contact_by_key("key-b") == late
        assert await store.contact_by_key("key-nobody") is None
        assert store.reads == {"open_contacts": 1, "contact_by_id": 1, "contact_by_key": 2}

    async def test_previous_agents_and_answers_from_committed_events(self) -> None:
        """Completions give (customer, agent), oldest first; answers since an instant."""
        store = InMemoryStore()
        router, events = connected_router()
        await store.writer.wait(store.record(events))
        for start, key in ((0.0, "c1"), (100.0, "c2"), (200.0, "c3")):
            contact = build_contact(key, queued_at=start + 1)
            await store.writer.wait(store.insert_contact(contact, lambda: None))
            history = answered_and_completed(router, contact, start)
            await store.writer.wait(store.record(history))
        assert await store.previous_agents(2) == [
            ("customer-c2", "alice"),
            ("customer-c3", "alice"),
        ]
        assert await store.answers_since(at(102)) == [
            ("alice", Channel.PHONE, at(102)),
            ("alice", Channel.PHONE, at(202)),
        ]
