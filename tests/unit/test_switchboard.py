"""The switchboard's races, on the in-memory store: no PostgreSQL, no gRPC, a fixed clock.

Each race is made deterministic by holding commits (`store.hold()`), waiting until the
switchboard has reached the store (`until_pending`, `until_waiting`), and then letting
the commit land (`release()`), fail, or time out (`expire_waits()`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from datetime import datetime, timedelta
from typing import Protocol
from uuid import uuid4

import pytest

from router.domain import (
    AgentStatus,
    Channel,
    ChannelPolicy,
    Contact,
    ContactEvent,
    ContactEventKind,
    ContactState,
    OfferWithdrawn,
    Router,
    RoutingPolicy,
    WrongState,
)
from router.errors import (
    DuplicateKey,
    QueueFull,
    QueueMemoryFull,
    ShuttingDown,
    StoreUnavailable,
    StreamReplaced,
)
from router.offer_stream import OfferStream, StreamMessage
from router.store.memory import UNTIL_SECONDS, InMemoryStore
from router.switchboard import NewContact, Switchboard
from tests.unit.conftest import T0

PHONE = Channel.PHONE


class Board(Switchboard):
    """A switchboard on an in-memory store, typed so the tests reach its controls."""

    store: InMemoryStore


class StartBoard(Protocol):
    def __call__(
        self, routing: RoutingPolicy | None = None, store: InMemoryStore | None = None
    ) -> Awaitable[Board]: ...


def fixed_clock() -> datetime:
    """The switchboard's clock in these tests: always T0."""
    return T0


def policy(**channels: ChannelPolicy) -> RoutingPolicy:
    """The default policy without the phone reserve, with some channels replaced."""
    defaults = RoutingPolicy()
    merged = {**defaults.channels, **{Channel(name): p for name, p in channels.items()}}
    return RoutingPolicy(channels=merged, phone_reserve=0)


@pytest.fixture
async def start_board() -> AsyncIterator[StartBoard]:
    """Start switchboards (a fresh in-memory store each, a fixed clock); stop them after."""
    boards: list[Board] = []

    async def start(
        routing: RoutingPolicy | None = None, store: InMemoryStore | None = None
    ) -> Board:
        board = Board(Router(routing or policy()), store or InMemoryStore(), fixed_clock)
        await board.start()
        boards.append(board)
        return board

    yield start
    for board in boards:
        # Whatever a test left held or down lands now, so that stop() can flush.
        board.store.end_outage()
        board.store.release()
        await board.stop()
        assert board.store.after_commit_errors == []


@pytest.fixture
async def board(start_board: StartBoard) -> Board:
    """A started switchboard with the default policy (no phone reserve)."""
    return await start_board()


def new_contact(key: str, channel: Channel = PHONE, **attributes: str) -> NewContact:
    return NewContact(
        idempotency_key=key,
        channel=channel,
        customer_id=f"customer-{key}",
        attributes=attributes,
        required_skills=frozenset(),
        priority_boost=1.0,
    )


def size_of(new: NewContact) -> int:
    """The bytes the queue counts for `new` once it has its id (a UUID's 36 characters)."""
    return Contact(
        id=str(uuid4()),
        idempotency_key=new.idempotency_key,
        channel=new.channel,
        customer_id=new.customer_id,
        queued_at=T0,
        attributes=dict(new.attributes),
    ).size()


async def ready(board: Board, agent_id: str) -> OfferStream:
    """Sign an agent in READY for one phone call at a time, and open its offer stream."""
    capacities = {PHONE: 1, Channel.CHAT: 0, Channel.EMAIL: 0}
    await board.sign_in(agent_id, frozenset(), capacities, AgentStatus.READY)
    return await board.open_stream(agent_id)


async def next_message(stream: OfferStream) -> StreamMessage | None:
    """The stream's next message (None once it has ended); fails rather than hang."""
    async with asyncio.timeout(UNTIL_SECONDS):
        return await stream.next()


async def messages_until_end(stream: OfferStream) -> list[StreamMessage]:
    """Every message an ended stream still delivers, in order."""
    received = []
    while (message := await next_message(stream)) is not None:
        received.append(message)
    return received


def finished_contact(key: str) -> Contact:
    """A contact submitted with `key` an hour ago and abandoned: a row, not in memory."""
    return Contact(
        id=str(uuid4()),
        idempotency_key=key,
        channel=PHONE,
        customer_id=f"customer-{key}",
        queued_at=T0 - timedelta(hours=1),
        state=ContactState.ABANDONED,
        abandoned_at=T0 - timedelta(minutes=59),
    )


def committed_kinds(store: InMemoryStore, contact_id: str) -> list[ContactEventKind]:
    return [event.kind for event in store.events.get(contact_id, [])]


class TestStart:
    async def test_start_queues_the_open_contacts_of_the_store(
        self, start_board: StartBoard
    ) -> None:
        """Rows left open by an earlier run are queued again, and offered once an agent comes."""
        store = InMemoryStore()
        waiting = Contact(
            id=str(uuid4()),
            idempotency_key="k1",
            channel=PHONE,
            customer_id="customer-k1",
            queued_at=T0 - timedelta(seconds=5),
        )
        store.seed(waiting)
        board = await start_board(store=store)
        assert board.router.contact(waiting.id).state is ContactState.QUEUED
        stream = await ready(board, "alice")
        message = await next_message(stream)
        assert isinstance(message, tuple)
        assert message[0].contact_id == waiting.id


class TestSubmit:
    async def test_a_new_submission_costs_its_insert_alone(self, board: Board) -> None:
        """A new key is queued after one commit of its row, with no read."""
        contact, duplicate = await board.submit(new_contact("k1"))
        assert not duplicate
        assert board.router.contact(contact.id).state is ContactState.QUEUED
        assert board.store.contacts[contact.id].idempotency_key == "k1"
        assert board.store.reads == {
            "open_contacts": 1,
            "previous_agents": 1,
            "answers_since": 1,
        }

    async def test_same_key_at_once_makes_one_contact(self, board: Board) -> None:
        """Two submissions with one key at once: one row; the second answer is a duplicate."""
        board.store.hold()
        first = asyncio.create_task(board.submit(new_contact("k1")))
        second = asyncio.create_task(board.submit(new_contact("k1")))
        await board.store.until_waiting(1)
        assert board.store.pending_writes == 1
        board.store.release()
        (contact, first_duplicate), (again, second_duplicate) = await asyncio.gather(first, second)
        assert (first_duplicate, second_duplicate) == (False, True)
        assert again == contact
        assert list(board.store.contacts) == [contact.id]
        assert [c.id for c in board.router.contacts()] == [contact.id]

    async def test_a_key_recorded_before_answers_with_its_row(self, board: Board) -> None:
        """A key whose contact left memory (finished) gets the stored contact, no new row,
        for one read of that row."""
        earlier = finished_contact("k1")
        board.store.seed(earlier)
        contact, duplicate = await board.submit(new_contact("k1"))
        assert (contact, duplicate) == (earlier, True)
        assert list(board.store.contacts) == [earlier.id]
        assert list(board.router.contacts()) == []
        assert board.store.reads.get("contact_by_key") == 1
        assert "contact_by_id" not in board.store.reads

    async def test_a_key_conflict_without_a_row_is_retryable(self, board: Board) -> None:
        """A duplicate key whose row cannot be read is StoreUnavailable; a retry succeeds."""
        board.store.fail_next_commit(DuplicateKey("idempotency key 'k1' exists"))
        with pytest.raises(StoreUnavailable, match="idempotency key conflict"):
            await board.submit(new_contact("k1"))
        assert list(board.router.contacts()) == []
        contact, duplicate = await board.submit(new_contact("k1"))
        assert not duplicate
        assert board.router.contact(contact.id).idempotency_key == "k1"

    async def test_a_caller_who_gives_up_still_gets_its_contact_queued(self, board: Board) -> None:
        """Cancelled before the commit: the contact reaches the queue when the commit lands."""
        board.store.hold()
        submission = asyncio.create_task(board.submit(new_contact("k1")))
        await board.store.until_waiting(1)
        submission.cancel()
        with pytest.raises(asyncio.CancelledError):
            await submission
        assert board.router.contact_with_key("k1") is None
        board.store.release()
        queued = board.router.contact_with_key("k1")
        assert queued is not None
        assert queued.state is ContactState.QUEUED
        assert committed_kinds(board.store, queued.id) == [ContactEventKind.SUBMITTED]
        assert await board.submit(new_contact("k1")) == (queued, True)

    async def test_a_queued_contact_is_offered_and_the_offer_recorded(self, board: Board) -> None:
        """Once its row commits the contact is offered at once, and the offer is recorded."""
        stream = await ready(board, "alice")
        contact, _ = await board.submit(new_contact("k1"))
        message = await next_message(stream)
        assert isinstance(message, tuple)
        offer, offered = message
        assert (offer.contact_id, offer.agent_id) == (contact.id, "alice")
        assert offered.state is ContactState.OFFERED
        assert committed_kinds(board.store, contact.id) == [
            ContactEventKind.SUBMITTED,
            ContactEventKind.OFFERED,
        ]


class TestOutage:
    async def test_a_submission_during_an_outage_fails_at_once(self, board: Board) -> None:
        """PostgreSQL down: StoreUnavailable before any write, and nothing is queued."""
        board.store.start_outage()
        with pytest.raises(StoreUnavailable):
            await board.submit(new_contact("k1"))
        assert board.store.pending_writes == 0
        assert board.store.contacts == {}
        assert list(board.router.contacts()) == []
        assert board.router.contact_with_key("k1") is None

    async def test_a_submission_refused_in_an_outage_gives_its_room_back(
        self, start_board: StartBoard
    ) -> None:
        """After an outage refused a submission, the queue still has all its room."""
        board = await start_board(policy(phone=ChannelPolicy(20.0, 1, 1, max_queue=1)))
        board.store.start_outage()
        with pytest.raises(StoreUnavailable):
            await board.submit(new_contact("k1"))
        board.store.end_outage()
        contact, _ = await board.submit(new_contact("k2"))
        assert board.router.contact(contact.id).state is ContactState.QUEUED

    async def test_a_commit_failing_as_the_outage_begins_queues_nothing(
        self, start_board: StartBoard
    ) -> None:
        """The insert's commit fails: StoreUnavailable, no row, and the room is given back."""
        board = await start_board(policy(phone=ChannelPolicy(20.0, 1, 1, max_queue=1)))
        board.store.fail_next_commit(StoreUnavailable("connection lost"))
        with pytest.raises(StoreUnavailable, match="connection lost"):
            await board.submit(new_contact("k1"))
        assert board.store.contacts == {}
        assert list(board.router.contacts()) == []
        board.store.end_outage()
        contact, duplicate = await board.submit(new_contact("k1"))
        assert not duplicate
        assert board.router.contact(contact.id).state is ContactState.QUEUED

    async def test_changes_during_an_outage_go_on_and_are_written_after(self, board: Board) -> None:
        """A sign-in during an outage answers at once; its rows land when PostgreSQL returns."""
        board.store.start_outage()
        agent = await board.sign_in("alice", frozenset(), {PHONE: 1}, AgentStatus.READY)
        assert agent.status is AgentStatus.READY
        assert board.store.agent_events == []
        board.store.end_outage()
        board.store.commit()
        assert [e.agent_id for e in board.store.agent_events] == ["alice"]


class TestQueueLimits:
    async def test_the_count_limit_counts_submissions_in_flight(
        self, start_board: StartBoard
    ) -> None:
        """max_queue 2, commits held: the third concurrent submission is QueueFull."""
        board = await start_board(policy(phone=ChannelPolicy(20.0, 1, 1, max_queue=2)))
        board.store.hold()
        first = asyncio.create_task(board.submit(new_contact("k1")))
        second = asyncio.create_task(board.submit(new_contact("k2")))
        await board.store.until_waiting(2)
        with pytest.raises(QueueFull):
            await board.submit(new_contact("k3"))
        board.store.release()
        accepted = await asyncio.gather(first, second)
        assert [duplicate for _, duplicate in accepted] == [False, False]
        assert len(board.store.contacts) == 2

    async def test_the_byte_limit_counts_submissions_in_flight(
        self, start_board: StartBoard
    ) -> None:
        """Room for two contacts' bytes, commits held: the third is QueueMemoryFull."""
        submissions = [new_contact(f"k{i}", note="x" * 100) for i in (1, 2, 3)]
        size = size_of(submissions[0])
        board = await start_board(
            RoutingPolicy(phone_reserve=0, max_contact_bytes=size, max_queue_bytes=size * 5 // 2)
        )
        board.store.hold()
        first = asyncio.create_task(board.submit(submissions[0]))
        second = asyncio.create_task(board.submit(submissions[1]))
        await board.store.until_waiting(2)
        with pytest.raises(QueueMemoryFull):
            await board.submit(submissions[2])
        board.store.release()
        await asyncio.gather(first, second)
        assert len(board.store.contacts) == 2

    async def test_a_full_queue_still_answers_a_recorded_key(self, start_board: StartBoard) -> None:
        """A retry of a recorded key gets its contact even when the queue is full."""
        board = await start_board(policy(phone=ChannelPolicy(20.0, 1, 1, max_queue=1)))
        await board.submit(new_contact("k1"))
        earlier = finished_contact("k0")
        board.store.seed(earlier)
        assert await board.submit(new_contact("k0")) == (earlier, True)
        with pytest.raises(QueueFull):
            await board.submit(new_contact("k2"))


async def wrapped_up(board: Board) -> Contact:
    """A phone contact offered to, answered and ended by alice: in its wrap-up."""
    stream = await ready(board, "alice")
    await board.submit(new_contact("k1"))
    message = await next_message(stream)
    assert isinstance(message, tuple)
    offer, _ = message
    await board.accept("alice", offer.id)
    return await board.end("alice", offer.contact_id)


class TestFinishedCache:
    async def test_a_retried_complete_racing_the_commit_gets_the_completed_contact(
        self, board: Board
    ) -> None:
        """The retry waits for the first call's commit, then answers the completed contact."""
        contact = await wrapped_up(board)
        board.store.hold()
        first = asyncio.create_task(board.complete("alice", contact.id, "return"))
        await board.store.until_waiting(1)
        retry = asyncio.create_task(board.complete("alice", contact.id, "return"))
        await board.store.until_waiting(2)
        assert not retry.done()
        board.store.release()
        completed = await first
        assert completed.state is ContactState.COMPLETED
        assert await retry == completed
        assert board.store.contacts[contact.id] == completed

    async def test_a_complete_of_another_agent_is_refused(self, board: Board) -> None:
        """Racing the first call's commit, another agent's (or disposition's) is WrongState."""
        contact = await wrapped_up(board)
        await ready(board, "bob")
        board.store.hold()
        first = asyncio.create_task(board.complete("alice", contact.id, "return"))
        await board.store.until_waiting(1)
        other = asyncio.create_task(board.complete("bob", contact.id, "return"))
        other_disposition = asyncio.create_task(board.complete("alice", contact.id, "exchange"))
        await board.store.until_waiting(3)
        board.store.release()
        await first
        with pytest.raises(WrongState):
            await other
        with pytest.raises(WrongState):
            await other_disposition

    async def test_a_retried_complete_after_a_failed_commit_is_unavailable(
        self, board: Board
    ) -> None:
        """A retry whose first call's commit timed out is told to retry, not the contact."""
        contact = await wrapped_up(board)
        board.store.hold()
        first = asyncio.create_task(board.complete("alice", contact.id, "return"))
        await board.store.until_waiting(1)
        retry = asyncio.create_task(board.complete("alice", contact.id, "return"))
        await board.store.until_waiting(2)
        assert board.store.expire_waits() == 2
        for call in (first, retry):
            with pytest.raises(StoreUnavailable, match="kept and will be written"):
                await call


class TestStreams:
    async def test_a_second_stream_replaces_the_first(self, board: Board) -> None:
        """The first stream ends StreamReplaced; open offers are sent again to the new one."""
        first = await ready(board, "alice")
        contact, _ = await board.submit(new_contact("k1"))
        sent = await next_message(first)
        second = await board.open_stream("alice")
        assert await messages_until_end(first) == []
        assert isinstance(first.ending, StreamReplaced)
        assert await next_message(second) == sent
        assert board.open_streams == 1
        assert board.router.contact(contact.id).state is ContactState.OFFERED

    async def test_closing_the_replaced_stream_keeps_the_agent(self, board: Board) -> None:
        """close_stream of the replaced stream neither disconnects the agent nor its offers."""
        first = await ready(board, "alice")
        contact, _ = await board.submit(new_contact("k1"))
        await board.open_stream("alice")
        events_before = len(board.store.committed)
        board.close_stream(first)
        assert board.router.agent("alice").connected
        assert [o.contact_id for o in board.router.offers_for("alice")] == [contact.id]
        assert board.open_streams == 1
        assert len(board.store.committed) == events_before

    async def test_closing_the_live_stream_returns_its_offers(self, board: Board) -> None:
        """close_stream of the live stream disconnects the agent; its offer goes back."""
        stream = await ready(board, "alice")
        contact, _ = await board.submit(new_contact("k1"))
        board.close_stream(stream)
        assert not board.router.agent("alice").connected
        assert board.router.contact(contact.id).state is ContactState.QUEUED
        assert board.open_streams == 0

    async def test_a_stream_whose_connect_commit_times_out_is_not_kept(self, board: Board) -> None:
        """The connect commit times out: the open fails, no stream stays, the agent is gone."""
        await board.sign_in("alice", frozenset(), {PHONE: 1}, AgentStatus.READY)
        board.store.hold()
        opening = asyncio.create_task(board.open_stream("alice"))
        await board.store.until_waiting(1)
        board.store.expire_waits()
        with pytest.raises(StoreUnavailable):
            await opening
        assert board.open_streams == 0
        assert not board.router.agent("alice").connected
        board.store.release()
        contact, _ = await board.submit(new_contact("k1"))
        assert board.router.contact(contact.id).state is ContactState.QUEUED
        kinds = [e.kind.value for e in board.store.agent_events if e.agent_id == "alice"]
        assert kinds == ["signed_in", "connected", "disconnected"]

    async def test_a_stream_whose_caller_hangs_up_during_connect_is_not_kept(
        self, board: Board
    ) -> None:
        """Cancelled during the connect commit: no stream stays registered."""
        await board.sign_in("alice", frozenset(), {PHONE: 1}, AgentStatus.READY)
        board.store.hold()
        opening = asyncio.create_task(board.open_stream("alice"))
        await board.store.until_waiting(1)
        opening.cancel()
        with pytest.raises(asyncio.CancelledError):
            await opening
        assert board.open_streams == 0
        assert not board.router.agent("alice").connected


class TestStop:
    async def test_stop_ends_every_stream_and_returns_open_offers(self, board: Board) -> None:
        """Streams end ShuttingDown after their withdrawals; offers go back, offered to nobody
        (not even to an idle agent whose stream is still open when they go back)."""
        holding = [await ready(board, "alice"), await ready(board, "bob")]
        contacts = [(await board.submit(new_contact(key)))[0] for key in ("k1", "k2")]
        offered = [await next_message(stream) for stream in holding]
        assert all(isinstance(message, tuple) for message in offered)
        idle = await ready(board, "carol")
        committed_before = len(board.store.committed)

        await board.stop()

        for stream in holding:
            assert [type(m) for m in await messages_until_end(stream)] == [OfferWithdrawn]
        assert await messages_until_end(idle) == []
        for stream in (*holding, idle):
            assert isinstance(stream.ending, ShuttingDown)
        assert board.open_streams == 0
        for contact in contacts:
            assert board.router.contact(contact.id).state is ContactState.QUEUED
        board.store.commit()
        after = board.store.committed[committed_before:]
        assert sorted(e.kind.value for e in after if isinstance(e, ContactEvent)) == [
            "requeued",
            "requeued",
        ]

    async def test_after_stop_submissions_and_streams_are_refused(self, board: Board) -> None:
        """Once stopping, a new submission and a stream open are ShuttingDown."""
        await board.sign_in("alice", frozenset(), {PHONE: 1}, AgentStatus.READY)
        await board.stop()
        with pytest.raises(ShuttingDown):
            await board.submit(new_contact("k1"))
        with pytest.raises(ShuttingDown):
            await board.open_stream("alice")
        assert board.store.contacts == {}
        assert board.open_streams == 0

    async def test_a_submission_in_flight_at_stop_is_queued_for_nobody(self, board: Board) -> None:
        """A row committing after stop() still reaches the queue, and is offered to nobody."""
        await ready(board, "alice")
        board.store.hold()
        submission = asyncio.create_task(board.submit(new_contact("k1")))
        await board.store.until_waiting(1)
        await board.stop()
        board.store.release()
        contact, duplicate = await submission
        assert not duplicate
        assert board.router.contact(contact.id).state is ContactState.QUEUED
