"""The switchboard: runs the routing core against the store and the agents' streams.

Every state change follows one path: the core validates and applies it in memory
(synchronously, so no other RPC interleaves), its events are enqueued for the
group commit in the same step (so rows are written in the order of the changes),
and the caller is answered once they are committed.

Offers and withdrawals are pushed to agents at once, without waiting for the commit
that records them (it follows within milliseconds, in order): a customer should not
wait for a disk. This is safe because an offer is not an acknowledgement to anyone:
if the router dies before the commit, the agent's stream dies with it (so the offer
is void) and the restarted router, finding the contact still queued, offers it again.

New contacts are the exception that keeps "acknowledged means durable" cheap:
the core learns of a contact only once its row is committed, so a submission that
fails changes nothing anywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, OrderedDict
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from uuid import uuid4

import structlog

from router.clock import utc_now
from router.domain import (
    AgentEvent,
    AgentEventKind,
    AgentStatus,
    AgentView,
    Channel,
    Contact,
    ContactEvent,
    ContactEventKind,
    ContactState,
    Event,
    NotFound,
    OfferWithdrawn,
    QueueSnapshot,
    Router,
    WrongState,
)
from router.domain.hourly_cap import WINDOW
from router.domain.wait_reason import WaitExplanation
from router.errors import (
    ChannelClosed,
    DuplicateKey,
    LimitReached,
    ShuttingDown,
    StoreUnavailable,
    StreamReplaced,
)
from router.offer_stream import OfferStream, StreamMessage
from router.store.interface import SwitchboardStore

log = structlog.get_logger(__name__)

T = TypeVar("T")

# Completed and abandoned contacts leave the core; the latest are kept here so that a
# retried Complete or Abandon, even one racing the first call's commit, gets its answer.
_FINISHED_KEPT = 10_000


@dataclass(frozen=True, slots=True)
class ContactStatus:
    contact: Contact
    queue_position: int  # in line: among contacts the same agents could serve
    estimated_wait: float | None
    wait_seconds: float
    routing_position: int = 0  # among all waiting contacts
    wait_reason: WaitExplanation | None = None


@dataclass(frozen=True, slots=True)
class NewContact:
    idempotency_key: str
    channel: Channel
    customer_id: str
    attributes: Mapping[str, str]
    required_skills: frozenset[str]
    priority_boost: float
    preferred_skills: tuple[str, ...] = ()
    preferred_agent_id: str | None = None
    queue_when_closed: bool = False  # a call outside its hours is queued, not refused


class Switchboard:
    def __init__(
        self,
        router: Router,
        store: SwitchboardStore,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        """`store`: the real Store in the server, router.store.memory.InMemoryStore in
        unit tests."""
        self.router = router
        self.store = store
        self._clock = clock
        self._streams: dict[str, OfferStream] = {}
        self._submitting: dict[str, asyncio.Future[Contact]] = {}
        # Submissions accepted for recording but not yet queued: they count against the
        # queue's limits (per channel, and in bytes) until they are queued or fail.
        self._in_flight: Counter[Channel] = Counter()
        self._in_flight_bytes = 0
        self._deadlines_changed = asyncio.Event()
        self._timer_until: datetime | None = None  # the deadline the timer sleeps until
        self._timer: asyncio.Task[None] | None = None
        self._stopping = False
        self._background: set[asyncio.Task[Any]] = set()
        self._finished: OrderedDict[str, tuple[Contact, asyncio.Future[None]]] = OrderedDict()
        self.observers: list[Callable[[Sequence[Event]], None]] = []
        """Called with each committed batch of events, after delivery (metrics)."""

    @property
    def open_streams(self) -> int:
        """Agents' offer streams open now (read by the metrics at scrape time)."""
        return len(self._streams)

    # ------------------------------------------------------------ lifecycle

    async def start(self, *, warm: bool = False) -> None:
        """Rebuild the queue from the open contacts read from PostgreSQL, or (`warm`)
        take over the core a hot standby kept restored (router/domain/warm.py); then
        start timing offers out."""
        contacts = () if warm else await self.store.open_contacts()
        now = self._clock()
        previous = await self.store.previous_agents(self.router.policy.remembered_customers)
        answers = await self.store.answers_since(now - WINDOW)
        restored = self.router.restore(contacts, now, previous, answers) if not warm else None
        voided, events = self.router.warm.take_over(now, previous, answers, restored)
        # The voided offers as one statement and one log line (with 5,000 desks, one row
        # pair and one line each took seconds while nobody was routed).
        requeued = self.store.record_voided(voided)
        for observe in self.observers:
            observe(voided)
        await self.store.writer.wait(self._record(events))
        await self.store.writer.wait(requeued)
        log.info(
            "queue_restored",
            warm=warm,
            open_contacts=len(self.router.warm),
            offers_voided=len(voided),
            previous_agents=len(previous),
            answers_last_hour=len(answers),
        )
        self._timer = asyncio.create_task(self._expire_offers(), name="offer-timeouts")

    async def stop(self) -> None:
        """Return outstanding offers to the queue, end every offer stream with a status
        its desk retries (UNAVAILABLE), flush writes. Once stopping, no offer is made:
        every agent leaves before any offer goes back to the queue."""
        self._stopping = True
        self._deadlines_changed.set()
        if self._timer is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
        self._record(self.router.disconnect_all(self._clock()))
        stopping = ShuttingDown(
            "the router is stopping: open the offer stream again (the standby or the "
            "restarted router serves it)"
        )
        for stream in self._streams.values():
            stream.end(stopping)
        self._streams.clear()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    # ------------------------------------------------------------- gateways

    async def submit(self, new: NewContact) -> tuple[Contact, bool]:
        """Durably queue a contact; (contact, True) when the key was already known."""
        key = new.idempotency_key
        active = self.router.contact_with_key(key)
        if active is not None:
            return active, True
        if self._stopping:
            raise ShuttingDown("the router is shutting down; retry with the same key")
        pending = self._submitting.get(key)
        if pending is not None:
            first = await asyncio.shield(pending)
            return await self._current(first.id), True
        contact = Contact(
            id=str(uuid4()),
            idempotency_key=key,
            channel=new.channel,
            customer_id=new.customer_id,
            queued_at=self._clock(),
            attributes=dict(new.attributes),
            required_skills=new.required_skills,
            priority_boost=new.priority_boost,
            preferred_skills=new.preferred_skills,
            preferred_agent_id=new.preferred_agent_id,
        )
        size = contact.size()
        try:
            self.router.hours.check_open(
                contact, contact.queued_at, queue_when_closed=new.queue_when_closed
            )
            self.router.check_room(
                contact.channel,
                size,
                submitting=self._in_flight[contact.channel],
                submitting_bytes=self._in_flight_bytes,
            )
        except (LimitReached, ChannelClosed):
            # A retry of a key already recorded still gets its contact.
            existing = await self.store.contact_by_key(key)
            if existing is not None:
                return existing, True
            raise
        found: asyncio.Future[Contact] = asyncio.get_running_loop().create_future()
        found.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._submitting[key] = found
        release = self._hold_room(contact.channel, size)
        commit: asyncio.Future[None] | None = None
        try:
            contact = self.router.with_preference(contact)

            def route() -> None:
                # Runs right after the insert commits, even if the caller gave up waiting:
                # a durable contact always reaches the queue.
                release()
                self._record(self.router.submit(contact, self._clock()))
                if not found.done():
                    found.set_result(contact)

            commit = self.store.insert_contact(contact, after_commit=route)
            commit.add_done_callback(lambda _: release())
            try:
                await self.store.writer.wait(commit, retry=False)
            except DuplicateKey:
                # Submitted before and no longer in memory (finished, or before a
                # restart): the key's first contact is the answer. Only this rare case
                # reads; a new submission costs its insert alone.
                existing = await self.store.contact_by_key(key)
                if existing is None:
                    raise StoreUnavailable("idempotency key conflict; retry") from None
                found.set_result(existing)
                # As the core has it now if it is active, else as stored: no second read.
                return self.router.contact_with_key(key) or existing, True
        except BaseException as error:
            if commit is None:
                # Never enqueued (an outage, a stopping router): its room goes back now;
                # an enqueued commit gives it back when it settles, whoever waits.
                release()
            if not found.done():
                found.set_exception(
                    error if isinstance(error, Exception) else StoreUnavailable("cancelled")
                )
            raise
        finally:
            if self._submitting.get(key) is found and found.done():
                del self._submitting[key]
        log.info(
            "contact_submitted",
            contact_id=contact.id,
            channel=contact.channel,
            preferred_agent_id=contact.preferred_agent_id,
        )
        return await self._current(contact.id), False

    def _hold_room(self, channel: Channel, size: int) -> Callable[[], None]:
        """Count a submission against the queue's limits until it is queued or has
        failed; the returned function gives the room back (once, whoever calls it)."""
        self._in_flight[channel] += 1
        self._in_flight_bytes += size
        held = True

        def release() -> None:
            nonlocal held
            if held:
                held = False
                self._in_flight[channel] -= 1
                self._in_flight_bytes -= size

        return release

    async def status(self, contact_id: str) -> ContactStatus:
        now = self._clock()
        try:
            contact = self.router.contact(contact_id)
        except NotFound:
            stored = await self._stored(contact_id)
            if stored is None:
                raise NotFound(f"no contact {contact_id}") from None
            return ContactStatus(stored, 0, None, stored.wait_seconds(now))
        return ContactStatus(
            contact,
            self.router.line_position(contact_id, now),
            self.router.estimated_wait(contact_id, now),
            contact.wait_seconds(now),
            self.router.position(contact_id, now),
            self.router.wait_reason(contact_id, now),
        )

    async def abandon(self, contact_id: str) -> Contact:
        try:
            events = self.router.abandon(contact_id, self._clock())
        except NotFound:
            stored = await self._stored(contact_id)
            if stored is None:
                raise
            if stored.state is ContactState.ABANDONED:
                return stored
            raise WrongState(
                f"contact {contact_id} is {stored.state.value}: "
                "only a waiting contact can be abandoned"
            ) from None
        await self._commit(events)
        return _last_contact(events, contact_id)

    # --------------------------------------------------------------- agents

    async def sign_in(
        self,
        agent_id: str,
        skills: frozenset[str],
        capacities: Mapping[Channel, int],
        status: AgentStatus,
        team: str = "",
    ) -> AgentView:
        events = self.router.sign_in(agent_id, skills, capacities, status, self._clock(), team)
        # The agent as this call left it: a SignOut landing during the commit must not
        # turn a successful sign-in into NOT_FOUND.
        agent = self.router.agent(agent_id)
        await self._commit(events)
        return agent

    async def sign_out(self, agent_id: str) -> AgentView:
        events = self.router.sign_out(agent_id, self._clock())
        await self._commit(events)
        signed_out = next(e for e in events if isinstance(e, AgentEvent))
        return AgentView(agent_id, AgentStatus.OFFLINE, "", signed_out.skills, {}, False, (), None)

    async def set_status(self, agent_id: str, status: AgentStatus, reason: str) -> AgentView:
        events = self.router.set_status(agent_id, status, reason, self._clock())
        agent = self.router.agent(agent_id)
        await self._commit(events)
        return agent

    async def open_stream(self, agent_id: str) -> OfferStream:
        """The agent is present: offers flow to the returned stream until it closes."""
        if self._stopping:
            raise ShuttingDown("the router is stopping: open the offer stream again shortly")
        self.router.agent(agent_id)
        stream = OfferStream(agent_id)
        previous = self._streams.get(agent_id)
        self._streams[agent_id] = stream
        if previous is not None:
            log.info("offer_stream_replaced", agent_id=agent_id)
            previous.end(
                StreamReplaced(
                    f"a newer offer stream for agent {agent_id} replaced this one: this "
                    "desk receives no more offers",
                    agentId=agent_id,
                )
            )
            # Offers already made went to the replaced stream: send them again.
            for offer in self.router.offers_for(agent_id):
                stream.push((offer, self.router.contact(offer.contact_id)))
        try:
            await self._commit(self.router.connect(agent_id, self._clock()))
        except BaseException:
            # The caller hung up (or the write failed) before the stream was handed
            # over: nobody will read it, so it must not stay registered.
            self.close_stream(stream)
            raise
        return stream

    def close_stream(self, stream: OfferStream) -> None:
        """The stream ended (client gone or cancelled): unanswered offers go back."""
        if self._streams.get(stream.agent_id) is not stream:
            return
        del self._streams[stream.agent_id]
        events = self.router.disconnect(stream.agent_id, self._clock())
        self._spawn(self.store.writer.wait(self._record(events)))

    async def accept(self, agent_id: str, offer_id: str) -> Contact:
        contact, events = self.router.accept(agent_id, offer_id, self._clock())
        await self._commit(events)
        return contact

    async def decline(self, agent_id: str, offer_id: str) -> Contact:
        contact, events = self.router.decline(agent_id, offer_id, self._clock())
        await self._commit(events)
        return contact

    async def end(self, agent_id: str, contact_id: str) -> Contact:
        try:
            contact, events = self.router.end(agent_id, contact_id, self._clock())
        except NotFound:
            return await self._repeated(agent_id, contact_id, lambda c: c.ended_at is not None)
        await self._commit(events)
        return contact

    async def transfer(
        self,
        agent_id: str,
        contact_id: str,
        *,
        to_skills: frozenset[str] | None,
        to_agent: str | None,
    ) -> Contact:
        contact, events = self.router.transfer(
            agent_id, contact_id, self._clock(), to_skills=to_skills, to_agent=to_agent
        )
        await self._commit(events)
        return contact

    async def complete(self, agent_id: str, contact_id: str, disposition: str) -> Contact:
        try:
            contact, events = self.router.complete(agent_id, contact_id, disposition, self._clock())
        except NotFound:
            return await self._repeated(
                agent_id,
                contact_id,
                lambda c: c.state is ContactState.COMPLETED and c.disposition == disposition,
            )
        await self._commit(events)
        return contact

    async def change(self, transition: Callable[[Router, datetime], tuple[T, list[Event]]]) -> T:
        """Run one core transition through the one path: applied in memory now, its
        events enqueued for the group commit, answered once they are committed.

        The way for an operation that needs nothing of the switchboard beyond that
        path (a supervisor's action, say) to reach the core without a method here:
        `await switchboard.change(lambda router, now: router.cancel(..., now))`.
        """
        result, events = transition(self.router, self._clock())
        await self._commit(events)
        return result

    # ------------------------------------------------------------ reporting

    def snapshot(self) -> tuple[QueueSnapshot, datetime]:
        now = self._clock()
        return self.router.snapshot(now), now

    # ------------------------------------------------------------ internals

    async def _current(self, contact_id: str) -> Contact:
        try:
            return self.router.contact(contact_id)
        except NotFound:
            stored = await self._stored(contact_id)
            if stored is None:
                raise
            return stored

    def _record(self, events: Sequence[Event]) -> asyncio.Future[None]:
        """Enqueue `events` for commit, then deliver and log them (see the module's
        docstring for why delivery does not wait for the commit)."""
        if events:
            self._wake_timer_if_sooner()
        committed = self.store.record(events)
        self._deliver(events)
        for event in events:
            if isinstance(event, ContactEvent) and event.contact.state.is_final:
                self._finished[event.contact.id] = (event.contact, committed)
                self._finished.move_to_end(event.contact.id)
                if len(self._finished) > _FINISHED_KEPT:
                    self._finished.popitem(last=False)
        return committed

    async def _repeated(
        self, agent_id: str, contact_id: str, already_done: Callable[[Contact], bool]
    ) -> Contact:
        """A call on a contact no longer in the core: a retry whose first attempt
        succeeded (its answer lost, say) gets the contact as it is; anything else is
        refused."""
        stored = await self._stored(contact_id)
        if stored is None:
            raise NotFound(f"no contact {contact_id}")
        if stored.agent_id == agent_id and already_done(stored):
            return stored
        raise WrongState(f"contact {contact_id} is {stored.state.value} and not held by {agent_id}")

    async def _stored(self, contact_id: str) -> Contact | None:
        """A contact no longer in the core: recently finished (once durable), or from
        PostgreSQL."""
        finished = self._finished.get(contact_id)
        if finished is not None:
            await self.store.writer.wait(finished[1])
            return finished[0]
        return await self.store.contact_by_id(contact_id)

    async def _commit(self, events: Sequence[Event]) -> None:
        await self.store.writer.wait(self._record(events))

    def _deliver(self, events: Sequence[Event]) -> None:
        self._push_all(events)
        for observe in self.observers:
            observe(events)

    def _push_all(self, events: Sequence[Event]) -> None:
        for event in events:
            _log_event(event)
            if isinstance(event, ContactEvent) and event.kind is ContactEventKind.OFFERED:
                assert event.offer is not None
                self._push(event.offer.agent_id, (event.offer, event.contact))
            elif isinstance(event, OfferWithdrawn):
                self._push(event.offer.agent_id, event)
            elif isinstance(event, AgentEvent) and event.kind is AgentEventKind.SIGNED_OUT:
                # Signed out (by the agent or a supervisor): its stream ends (OK).
                stream = self._streams.pop(event.agent_id, None)
                if stream is not None:
                    stream.end()

    def _push(self, agent_id: str, message: StreamMessage) -> None:
        stream = self._streams.get(agent_id)
        if stream is not None:
            stream.push(message)

    def _wake_timer_if_sooner(self) -> None:
        """Events may add deadlines (an offer's, a fallback's): wake the timer when the
        next one is now sooner than the one it sleeps until. A deadline that went away
        (an offer accepted) needs no wake-up: the timer then finds nothing to expire
        and sleeps until the next."""
        deadline = self.router.next_deadline()
        if deadline is not None and (self._timer_until is None or deadline < self._timer_until):
            self._deadlines_changed.set()

    async def _expire_offers(self) -> None:
        """Wake at the next offer deadline (or when a new offer is made) and expire.

        Stops when `_stopping` is set. asyncio.timeout, not wait_for: on Python 3.11
        wait_for can swallow a cancellation that races its inner future.
        """
        while not self._stopping:
            deadline = self.router.next_deadline()
            self._timer_until = deadline
            delay = (
                None if deadline is None else max(0.0, (deadline - self._clock()).total_seconds())
            )
            self._deadlines_changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._deadlines_changed.wait()
            if self._stopping:
                return
            events = self.router.expire(self._clock())
            if events:
                self._record(events)

    def _spawn(self, coroutine: Coroutine[Any, Any, T]) -> None:
        task = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        task.add_done_callback(lambda t: t.cancelled() or t.exception())


def _last_contact(events: Sequence[Event], contact_id: str) -> Contact:
    """The contact as the last of `events` that concerns it left it."""
    for event in reversed(events):
        if isinstance(event, ContactEvent) and event.contact.id == contact_id:
            return event.contact
    raise LookupError(contact_id)


def _log_event(event: Event) -> None:
    # Kinds, channels and statuses are StrEnums: logged as their text, no `.value` needed.
    by = None if isinstance(event, OfferWithdrawn) else event.intervention
    audit = {} if by is None else {"supervisor": by.supervisor, "supervisor_reason": by.reason}
    if isinstance(event, ContactEvent):
        log.info(
            f"contact_{event.kind}",
            contact_id=event.contact.id,
            agent_id=event.agent_id,
            channel=event.contact.channel,
            reason=event.reason,
            **audit,
        )
    elif isinstance(event, AgentEvent):
        log.info(
            f"agent_{event.kind}",
            agent_id=event.agent_id,
            status=event.status,
            reason=event.reason,
            **audit,
        )
    else:
        log.info(
            "offer_withdrawn",
            contact_id=event.offer.contact_id,
            agent_id=event.offer.agent_id,
            reason=event.reason,
        )
