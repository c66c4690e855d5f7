"""A restart: the core rebuilt from the durable record, and agents coming back.

Waiting contacts go back in the queue at their original place (an offer made before
the restart is void: its contact is queued again). Answered contacts wait for their
agent to sign in again, for RoutingPolicy.reconnect_grace seconds (Timer.RECLAIM_ENDS,
keyed by agent); then a conversation its agent left goes back to the queue, keeping its
first answer, and a wrap-up is completed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta
from operator import attrgetter

from router.domain.agent import Agent
from router.domain.channel import Channel
from router.domain.contact import FINAL_STATES, Contact, ContactState
from router.domain.events import ContactEvent, ContactEventKind, Event
from router.domain.placement import Placement
from router.domain.state import RoutingState
from router.domain.timers import Timer

_ID = attrgetter("id")


class Restart:
    def __init__(self, state: RoutingState, placement: Placement) -> None:
        self._state = state
        self._placement = placement

    def restore(
        self,
        contacts: Iterable[Contact],
        now: datetime,
        previous_agents: Iterable[tuple[str, str]] = (),
        recent_answers: Iterable[tuple[str, Channel, datetime]] = (),
    ) -> list[Event]:
        """Rebuild the state from `contacts` (the open ones count), `previous_agents`
        ((customer, agent) completions, oldest first) and `recent_answers` ((agent,
        channel, when) of the last hour, for the hourly caps).

        With open contacts restored, agents were at work: no fallback rule moves a
        contact within the reconnect grace, while they sign back in. An empty queue
        (a first start) has nobody to wait for."""
        state = self._state
        contacts = sorted(contacts, key=attrgetter("queued_at", "id"))
        grace = now + timedelta(seconds=state.policy.reconnect_grace)
        for customer_id, agent_id in previous_agents:
            state.previous.remember(customer_id, agent_id)
        for agent_id, channel, at in recent_answers:
            state.caps.note_answer(agent_id, channel, at)
        events: list[Event] = []
        waiting: list[Contact] = []
        # A contact given twice is restored once (the first): looked for only if some
        # id comes twice, which the store's reads never give (one set, built in C).
        ids = list(map(_ID, contacts))
        twice = len(set(ids)) < len(ids)
        seen: set[str] = set()
        known = state.contacts
        # The states looked up directly, not through ContactState's properties: a
        # restart asks of 500,000 contacts.
        queued, offered = ContactState.QUEUED, ContactState.OFFERED
        for contact in contacts:
            contact_state = contact.state
            if contact_state in FINAL_STATES:
                continue
            state.quiet_until = grace
            if contact.id in known or (twice and contact.id in seen):
                continue
            if contact_state is offered:
                contact = replace(contact, state=queued, agent_id=None, offer_id=None)
                events.append(
                    ContactEvent(ContactEventKind.REQUEUED, contact, now, reason="restart")
                )
            elif contact_state is not queued:
                state.activate(contact)
                assert contact.agent_id is not None
                if contact.agent_id not in state.unclaimed:
                    state.timers.set(Timer.RECLAIM_ENDS, contact.agent_id, grace)
                state.unclaimed.setdefault(contact.agent_id, set()).add(contact.id)
                continue
            waiting.append(contact)
            if twice:
                seen.add(contact.id)
        state.enqueue_all(waiting, now)
        # Placing offers a contact to a signed-in agent; at a start nobody is signed in
        # yet, and half a million contacts need not each be told so.
        if state.agents:
            for contact in waiting:
                if contact.id in state.queue:
                    self._placement.place(contact.id, now, events)
        return events

    def reclaim(self, agent: Agent) -> None:
        """An agent signed in again: it takes back its answered contacts."""
        state = self._state
        state.timers.cancel(Timer.RECLAIM_ENDS, agent.id)
        for contact_id in state.unclaimed.pop(agent.id, set()):
            contact = state.contacts.get(contact_id)
            if contact is not None and contact.agent_id == agent.id:
                agent.assigned[contact_id] = contact.channel

    def release(self, agent_id: str, now: datetime, events: list[Event]) -> None:
        """The agent did not sign in again within the grace: its conversations go back
        to the queue at their original place, its wrap-ups are completed."""
        state = self._state
        for contact_id in sorted(state.unclaimed.pop(agent_id, set())):
            contact = state.contacts.get(contact_id)
            if contact is None or contact.agent_id != agent_id:
                continue
            if contact.state is ContactState.CONNECTED:
                # The customer may still be there: back to the queue.
                self._placement.back_to_queue(
                    contact, ContactEventKind.REQUEUED, agent_id, "agent_not_back", now, events
                )
            elif contact.state is ContactState.WRAP_UP:
                contact = replace(contact, state=ContactState.COMPLETED, completed_at=now)
                state.retire(contact)
                events.append(
                    ContactEvent(
                        ContactEventKind.COMPLETED, contact, now, agent_id, reason="agent_not_back"
                    )
                )
