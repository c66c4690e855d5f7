"""Queued callbacks: the customer keeps their place and an agent calls them back.

A waiting contact becomes a callback when its gateway asks (RequestCallback): a caller
who pressed 1, or a chat or email customer who asked for a call. It is the same
contact, converted in place, not a new one linked to it: its id, key and queued_at
stay, so its place in line and its wait count once, from the first moment, and there
is no second contact for the reports to pair up (the channel it came from is kept,
`Callback.requested_from`). It becomes a phone contact: offered only to agents who
take calls, holding their phone capacity. An email that waited an hour is then a call
an hour old, among the most urgent: the customer asked for a call and has waited.

Its window: it is not offered before `not_before` (nor, after a failed dial, before
`retry_at`): until then it is QUEUED but out of the queue, and Timer.CALLBACK_DUE puts
it there. A callback still waiting at `not_after` ends UNREACHED (Timer.
CALLBACK_WINDOW_ENDS); one being dialled then finishes its dial.

Dialling: the agent accepts the offer (DIALLED; its first is `placed_at`) and reports
what the dial gave. CONNECTED: the customer is reached (REACHED; answered_at is set
now, so the wait is reached - queued_at) and the conversation goes on as any other.
NO_ANSWER or BUSY: the agent is free at once, and the callback waits
RoutingPolicy.callback_retry_delay seconds before it is offered again (DIAL_FAILED),
until it has had callback_attempts dials, or its window would close first: then it
ends UNREACHED, as it does at once for a WRONG_NUMBER.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from router.domain.agent import Agent
from router.domain.channel import Channel, RoutingPolicy
from router.domain.closed_channels import closed_seconds
from router.domain.contact import Callback, Contact, ContactState, DialOutcome
from router.domain.events import ContactEvent, ContactEventKind, Event
from router.domain.placement import Placement
from router.domain.state import RoutingState
from router.domain.timers import Timer
from router.domain.wait_reason import WaitExplanation, WaitReason
from router.errors import InvalidArgument, WrongState


def callback_offered(contact: Contact, estimated_wait: float | None, policy: RoutingPolicy) -> bool:
    """Whether a gateway should offer this waiting contact a callback: its channel
    offers them (callback_offer_after) and its estimated wait is over that."""
    threshold = policy.of(contact.channel).callback_offer_after
    return (
        threshold is not None
        and contact.callback is None
        and contact.state.is_waiting
        and estimated_wait is not None
        and estimated_wait > threshold
    )


def being_dialled(contact: Contact) -> bool:
    """A callback whose offer an agent accepted, and whose dial is not yet reported."""
    return (
        contact.callback is not None
        and contact.callback.reached_at is None
        and contact.state is ContactState.CONNECTED
    )


Window = tuple[datetime | None, datetime | None]
"""When a callback may be offered: (not before, not after), each optional."""


def scheduled_callback(contact: Contact | None, now: datetime) -> WaitExplanation | None:
    """Why a callback waits out of the queue (before its window opens or its retry is
    due), for GetContact; None for any other contact that is not in the queue."""
    if contact is None or contact.callback is None or contact.state is not ContactState.QUEUED:
        return None
    due = contact.callback.due_at
    if due is None or due <= now:
        return None
    stamp = due.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    retry = contact.callback.retry_at == due
    what = (
        f"dialled again from {stamp} (attempt {contact.callback.attempts + 1})"
        if retry
        else (f"not called before {stamp}, as the customer asked")
    )
    return WaitExplanation(WaitReason.CALLBACK_SCHEDULED, f"callback {what}; it keeps its place")


class Callbacks:
    def __init__(
        self,
        state: RoutingState,
        placement: Placement,
    ) -> None:
        self._state = state
        self._placement = placement

    # -------------------------------------------------------------- requests

    def request(
        self,
        contact: Contact,
        number: str,
        window: Window,
        now: datetime,
    ) -> tuple[Contact, list[Event]]:
        """Turn the waiting `contact` into a callback to `number` (see the module)."""
        not_before, not_after = window
        if not_before is not None and not_after is not None and not_after <= not_before:
            raise InvalidArgument("not_after", "the window must end after it starts")
        if not_after is not None and not_after <= now:
            raise InvalidArgument("not_after", "the window has already ended")
        if contact.callback is not None:
            same = (
                contact.callback.number,
                contact.callback.not_before,
                contact.callback.not_after,
            )
            if same == (number, not_before, not_after):
                return contact, []  # a retried request
            raise WrongState(f"contact {contact.id} is already a callback")
        if not contact.state.is_waiting:
            raise WrongState(
                f"contact {contact.id} is {contact.state.value}: "
                "only a waiting contact can become a callback"
            )
        state = self._state
        events: list[Event] = []
        agent = self._placement.take_out(contact, "became_callback", now, events)
        # Its answer-rate sample was taken on its first channel; it no longer teaches it.
        state.answer_rate.forget(contact.id)
        callback = Callback(number, contact.channel, now, not_before, not_after)
        contact = replace(
            contact,
            channel=Channel.PHONE,
            state=ContactState.QUEUED,
            agent_id=None,
            offer_id=None,
            callback=callback,
        )
        state.activate(contact)
        events.append(
            ContactEvent(
                ContactEventKind.CALLBACK_REQUESTED,
                contact,
                now,
                reason=f"from {callback.requested_from.value}",
            )
        )
        if not_after is not None:
            state.timers.set(Timer.CALLBACK_WINDOW_ENDS, contact.id, not_after)
        self._enter(contact, now, events)
        if agent is not None:
            self._placement.fill(agent, now, events)
        return state.contacts[contact.id], events

    # -------------------------------------------------------------- dialling

    def dialling(
        self, accepted: Contact, answered_before: datetime | None, now: datetime
    ) -> Contact:
        """The callback `accepted` (its offer just accepted) is being dialled: it is not
        answered until the customer is reached (unless it was answered before it became
        a callback: its wait ended then)."""
        callback = accepted.callback
        assert callback is not None
        return replace(
            accepted,
            answered_at=answered_before,
            callback=replace(callback, placed_at=callback.placed_at or now, retry_at=None),
        )

    def outcome(
        self, agent: Agent, contact: Contact, outcome: DialOutcome, now: datetime
    ) -> tuple[Contact, list[Event]]:
        """What the dial of `contact` by `agent` (which holds it) gave."""
        callback = contact.callback
        if callback is None:
            raise WrongState(f"contact {contact.id} is not a callback: there is nothing to dial")
        if not being_dialled(contact):
            if outcome is DialOutcome.CONNECTED and callback.last_outcome is outcome:
                return contact, []  # a retried report
            raise WrongState(
                f"contact {contact.id} is not being dialled: its customer was reached "
                "or the dial was already reported"
            )
        state = self._state
        callback = replace(callback, attempts=callback.attempts + 1, last_outcome=outcome)
        if outcome is DialOutcome.CONNECTED:
            # The customer's wait ends now (unless it was answered before it became a
            # callback): its closed seconds are counted to now.
            if contact.answered_at is None:
                closed = closed_seconds(state.calendar, contact, now)
                contact = replace(contact, answered_at=now, closed_wait=closed)
            contact = replace(contact, callback=replace(callback, reached_at=now))
            state.contacts[contact.id] = contact
            return contact, [ContactEvent(ContactEventKind.REACHED, contact, now, agent.id)]
        events: list[Event] = []
        del agent.assigned[contact.id]
        agent.since = now
        state.caps.update(agent, Channel.PHONE, now)
        state.index(agent)
        retry_at = now + timedelta(seconds=state.policy.callback_retry_delay)
        contact = replace(
            contact, state=ContactState.QUEUED, agent_id=None, offer_id=None, callback=callback
        )
        failed = ContactEvent(ContactEventKind.DIAL_FAILED, contact, now, agent.id, reason=outcome)
        if outcome is DialOutcome.WRONG_NUMBER:
            contact = self._unreached(contact, "wrong_number", now, [failed], events)
        elif callback.attempts >= state.policy.callback_attempts:
            contact = self._unreached(contact, "attempts", now, [failed], events)
        elif callback.not_after is not None and retry_at >= callback.not_after:
            contact = self._unreached(contact, "window_ended", now, [failed], events)
        else:
            contact = replace(contact, callback=replace(callback, retry_at=retry_at))
            state.activate(contact)
            events.append(replace(failed, contact=contact))
            self._enter(contact, now, events)
        self._placement.fill(agent, now, events)
        return state.contacts.get(contact.id, contact), events

    # ---------------------------------------------------------------- timers

    def on_due(self, contact_id: str, now: datetime, events: list[Event]) -> None:
        """A callback's window opened or its retry delay ended: into the queue."""
        contact = self._state.contacts.get(contact_id)
        if contact is None or contact.state is not ContactState.QUEUED:
            return
        if contact_id not in self._state.queue:
            self._enter(contact, now, events)

    def on_window_ends(self, contact_id: str, now: datetime, events: list[Event]) -> None:
        """A callback still waiting when its window closes ends UNREACHED. One being
        offered or dialled goes on (the agent is already on it): it is looked at again
        an offer timeout later, until it waits again (declined, its agent lost: then it
        ends), is reached or ends otherwise."""
        state = self._state
        contact = state.contacts.get(contact_id)
        if contact is None or contact.callback is None or contact.callback.reached_at is not None:
            return
        if contact.state is not ContactState.QUEUED:
            later = now + timedelta(seconds=state.policy.offer_timeout)
            state.timers.set(Timer.CALLBACK_WINDOW_ENDS, contact_id, later)
            return
        if contact_id in state.queue:
            state.dequeue(contact_id)
        state.timers.cancel(Timer.CALLBACK_DUE, contact_id)
        self._unreached(contact, "window_ended", now, [], events)

    # ---------------------------------------------------------------- restart

    def restore(self, contacts: Iterable[Contact], now: datetime) -> None:
        """After a restart: the open callbacks' window timers, and those waiting for
        their window or a retry kept out of the queue until then (the restart skips
        what is active already)."""
        state = self._state
        for contact in contacts:
            callback = contact.callback
            if callback is None or contact.state.is_final or contact.id in state.contacts:
                continue
            if callback.not_after is not None:
                state.timers.set(Timer.CALLBACK_WINDOW_ENDS, contact.id, callback.not_after)
            due = callback.due_at
            if contact.state is ContactState.QUEUED and due is not None and due > now:
                state.activate(contact)
                state.timers.set(Timer.CALLBACK_DUE, contact.id, due)

    def scheduled(self) -> list[Contact]:
        """Callbacks waiting for their window or a retry (QUEUED, not in the queue)."""
        state = self._state
        return [
            c
            for c in state.contacts.values()
            if c.callback is not None and c.state is ContactState.QUEUED and c.id not in state.queue
        ]

    # -------------------------------------------------------------- internals

    def _enter(self, contact: Contact, now: datetime, events: list[Event]) -> None:
        """Into the queue at its place now, or at its due instant."""
        assert contact.callback is not None
        due = contact.callback.due_at
        if due is not None and due > now:
            self._state.timers.set(Timer.CALLBACK_DUE, contact.id, due)
            return
        self._state.enqueue(contact, now)
        self._placement.place(contact.id, now, events)

    def _unreached(
        self,
        contact: Contact,
        reason: str,
        now: datetime,
        before: list[ContactEvent],
        events: list[Event],
    ) -> Contact:
        assert contact.callback is not None
        contact = replace(
            contact,
            state=ContactState.UNREACHED,
            callback=replace(contact.callback, unreached_at=now, retry_at=None),
        )
        self._state.timers.cancel(Timer.CALLBACK_WINDOW_ENDS, contact.id)
        self._state.retire(contact)
        events.extend(replace(event, contact=contact) for event in before)
        events.append(ContactEvent(ContactEventKind.UNREACHED, contact, now, reason=reason))
        return contact
