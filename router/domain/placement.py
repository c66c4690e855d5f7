"""Who gets what: offering queued contacts to free agents.

Two directions meet here. A contact that enters the queue (or whose wait changes) is
*placed*: offered to the longest-idle eligible agent who is free for it. An agent who
frees up is *filled*: given the most urgent contact it can take, until it is full or
nothing it can take waits. Both keep the core's invariant: no waiting contact has an
eligible agent free to take it (with the phone reserve, the decline exclusions and the
holds for preferred agents as the only, timed, exceptions).

The phone reserve: the last K idle phone-capable agents (RoutingPolicy.phone_reserve)
are not given chat or email, so a call that rings is answered at once, until that chat
or email has used its whole answer target (its answer deadline): then it is more urgent
than a call that has not rung yet, and the reserve gives way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial

from router.domain.agent import Agent
from router.domain.channel import Channel
from router.domain.contact import Contact, ContactState, changed
from router.domain.events import ContactEvent, ContactEventKind, Event, OfferWithdrawn
from router.domain.fallback import fallback_reason, fallback_time, unserved_reason
from router.domain.offer import Offer
from router.domain.queue import Hold, answer_deadline
from router.domain.state import OTHER_WORK, RoutingState
from router.domain.timers import Timer


class Placement:
    def __init__(self, state: RoutingState, new_id: Callable[[], str]) -> None:
        self._state = state
        self._new_id = new_id

    def place(self, contact_id: str, now: datetime, events: list[Event]) -> bool:
        """Offer a queued contact to the longest-idle eligible agent, if one is free."""
        state = self._state
        contact = state.contacts[contact_id]
        skills = state.queue.skills_of(contact_id)
        hold = state.queue.hold_of(contact_id)
        past_deadline = answer_deadline(contact, state.policy) <= now.timestamp()
        if hold is not None:
            agent_id = self._holder_if_free(contact, skills, hold, past_deadline, now)
        else:
            agent_id = state.roster.best_for(
                contact.channel,
                skills,
                state.exclusions.of(contact_id, now),
                past_deadline=past_deadline,
            )
        if agent_id is None:
            return False
        agent = state.agents[agent_id]
        from_reserve = contact.channel is not Channel.PHONE and agent.can_take(
            Channel.PHONE, state.policy
        )
        self._offer(contact, agent, now, events)
        if from_reserve:
            # The agent left the phone reserve for this contact and is out of it while it
            # holds work: give it the rest of what the reserve was keeping it from.
            self.fill(agent, now, events)
        return True

    def back_to_queue(
        self,
        contact: Contact,
        kind: ContactEventKind,
        agent_id: str | None,
        reason: str,
        now: datetime,
        events: list[Event],
    ) -> None:
        """A contact leaves its agent (or its place) for the queue, keeping queued_at:
        record why (`kind`, from `agent_id`, `reason`) and place it."""
        contact = replace(contact, state=ContactState.QUEUED, agent_id=None, offer_id=None)
        self._state.enqueue(contact, now)
        events.append(ContactEvent(kind, contact, now, agent_id, reason=reason))
        self.place(contact.id, now, events)

    def requeue(
        self,
        offer: Offer,
        cause: ContactEventKind | None,
        reason: str,
        now: datetime,
        events: list[Event],
    ) -> Contact:
        """An offer's contact goes back to the queue (the caller places it: after a
        decline, only once the decliner is excluded)."""
        contact = replace(
            self._state.contacts[offer.contact_id],
            state=ContactState.QUEUED,
            agent_id=None,
            offer_id=None,
        )
        self._state.enqueue(contact, now)
        if cause is not None:
            events.append(ContactEvent(cause, contact, now, offer.agent_id, offer))
        events.append(
            ContactEvent(ContactEventKind.REQUEUED, contact, now, offer.agent_id, reason=reason)
        )
        return contact

    def rewait(self, contact_id: str, now: datetime, events: list[Event]) -> None:
        """Queue a contact again if what it waits for changed (see waiting), and place it."""
        state = self._state
        if contact_id not in state.queue:
            return
        contact = state.contacts[contact_id]
        wait = state.waiting_for(contact, now)
        if (wait.skills, wait.hold) == (
            state.queue.skills_of(contact_id),
            state.queue.hold_of(contact_id),
        ):
            return
        state.dequeue(contact_id)
        state.enqueue(contact, now)
        self.place(contact_id, now, events)

    def recheck_holds(self, agent_id: str, now: datetime, events: list[Event]) -> None:
        """The agent signed out or changed: contacts held for it may be held no more."""
        for contact_id in self._state.queue.held_for(agent_id):
            self.rewait(contact_id, now, events)

    def fall_back(self, contact_id: str, now: datetime, events: list[Event]) -> None:
        """Move a waiting contact that no signed-in agent could serve to its channel's
        fallback skills, if it has waited the channel's fallback_after."""
        state = self._state
        contact = state.contacts[contact_id]
        at = fallback_time(contact, state.policy, state.quiet_until)
        if at is None or at > now or unserved_reason(contact, state.coverage) is None:
            return
        rule = state.policy.of(contact.channel)
        reason = fallback_reason(contact, state.policy, now)
        state.dequeue(contact_id)
        self.back_to_queue(
            replace(contact, required_skills=rule.fallback_skills, preferred_skills=()),
            ContactEventKind.REROUTED,
            None,
            reason,
            now,
            events,
        )

    def fall_back_unserved(self, now: datetime, events: list[Event]) -> None:
        """After agents left or changed skills: contacts now unserved that waited past
        their channel's fallback_after move at once (the timer covers the others)."""
        state = self._state
        if now < state.quiet_until:
            return
        due = []
        for channel, required, entries in state.queue.open_classes():
            after = state.policy.of(channel).fallback_after
            if after is None or state.coverage.could_serve(channel, required):
                continue
            for queued_at, _, contact_id in entries:
                if queued_at + after > now.timestamp():
                    break
                due.append(contact_id)
        for contact_id in due:
            self.fall_back(contact_id, now, events)

    def fill(self, agent: Agent, now: datetime, events: list[Event]) -> None:
        """Give an agent who may have free capacity the most urgent work it can take.

        Each contact found goes to the longest-idle agent eligible for it, which may
        be another agent (one the phone reserve was keeping from other work), so the
        loop goes on until this agent is full or nothing it can take is waiting.
        """
        state = self._state
        state.index(agent)
        while True:
            channels = agent.takes(state.policy)
            if not channels:
                break
            due_only: frozenset[Channel] = frozenset()
            if Channel.PHONE in channels and not state.roster.reserve_allows_other_work():
                due_only = OTHER_WORK  # in the reserve: other work only past its deadline
            contact_id = state.queue.best_for(
                agent.skills,
                channels,
                now,
                partial(self._excluded, agent_id=agent.id, now=now),
                due_only,
                agent.id,
            )
            if contact_id is None or not self.place(contact_id, now, events):
                break
        self._release_reserve(now, events)

    def _release_reserve(self, now: datetime, events: list[Event]) -> None:
        """When exactly K+1 agents could take a call, one of them may take other work:
        try each (there are K+1) so that no chat or email waits for nothing."""
        state = self._state
        if state.roster.phone_ready != state.policy.phone_reserve + 1 or not len(state.queue):
            return
        for agent_id in state.roster.phone_ready_agents():
            if not state.roster.reserve_allows_other_work():
                return
            agent = state.agents[agent_id]
            others = [c for c in agent.takes(state.policy) if c is not Channel.PHONE]
            contact_id = state.queue.best_for(
                agent.skills,
                others,
                now,
                partial(self._excluded, agent_id=agent_id, now=now),
                agent_id=agent_id,
            )
            if contact_id is not None:
                self.place(contact_id, now, events)

    def _holder_if_free(
        self,
        contact: Contact,
        skills: frozenset[str],
        hold: Hold,
        past_deadline: bool,
        now: datetime,
    ) -> str | None:
        """The agent a contact is held for, when it is free for it. The phone reserve
        applies unless an agent chose the holder (a firm hold: a transfer by name)."""
        state = self._state
        agent = state.agents.get(hold.agent_id)
        if agent is None or state.exclusions.excludes(contact.id, agent.id, now):
            return None
        if not agent.can_take(contact.channel, state.policy) or not skills <= agent.skills:
            return None
        in_reserve = (
            contact.channel is not Channel.PHONE
            and agent.can_take(Channel.PHONE, state.policy)
            and not state.roster.reserve_allows_other_work()
        )
        if in_reserve and not hold.firm and not past_deadline:
            return None
        return agent.id

    def _offer(self, contact: Contact, agent: Agent, now: datetime, events: list[Event]) -> None:
        state = self._state
        offer = Offer(
            self._new_id(),
            contact.id,
            agent.id,
            now,
            now + timedelta(seconds=state.policy.offer_timeout),
        )
        state.dequeue(contact.id)
        contact = changed(
            contact,
            state=ContactState.OFFERED,
            offered_at=now,
            agent_id=agent.id,
            offer_id=offer.id,
            offer_count=contact.offer_count + 1,
        )
        state.contacts[contact.id] = contact
        state.offers[offer.id] = offer
        agent.offers[offer.id] = contact.id
        agent.assigned[contact.id] = contact.channel
        state.caps.update(agent, contact.channel, now)
        state.index(agent)
        state.timers.set(Timer.OFFER_EXPIRES, offer.id, offer.expires_at)
        events.append(ContactEvent(ContactEventKind.OFFERED, contact, now, agent.id, offer))

    def take_out(
        self, contact: Contact, reason: str, now: datetime, events: list[Event]
    ) -> Agent | None:
        """A waiting contact leaves the line (abandoned, cancelled, become a callback): out
        of the queue, or its open offer withdrawn for `reason`. Returns the agent that
        offer freed, for the caller to fill once the contact's own event is recorded."""
        state = self._state
        if contact.state is ContactState.OFFERED:
            assert contact.offer_id is not None
            offer = state.offers[contact.offer_id]
            agent = state.agents[offer.agent_id]
            self.drop_offer(offer, agent, now)
            events.append(OfferWithdrawn(offer, reason))
            return agent
        if contact.id in state.queue:  # not a callback waiting for its window
            state.dequeue(contact.id)
        return None

    def return_offers(
        self, agent: Agent, offer_ids: list[str], reason: str, now: datetime, events: list[Event]
    ) -> list[str]:
        """Take back the agent's offers `offer_ids` for `reason` and queue their contacts
        again (the caller places them); their ids."""
        requeued = []
        for offer_id in offer_ids:
            offer = self._state.offers[offer_id]
            self.drop_offer(offer, agent, now)
            events.append(OfferWithdrawn(offer, reason))
            requeued.append(self.requeue(offer, None, reason, now, events).id)
        return requeued

    def drop_offer(self, offer: Offer, agent: Agent, now: datetime) -> None:
        """Take back an open offer: the agent is free of it (its caller says why, and
        queues the contact again or ends it)."""
        state = self._state
        del state.offers[offer.id]
        del agent.offers[offer.id]
        state.timers.cancel(Timer.OFFER_EXPIRES, offer.id)
        channel = agent.assigned.pop(offer.contact_id)
        state.caps.update(agent, channel, now)
        state.index(agent)

    def _excluded(self, contact_id: str, *, agent_id: str, now: datetime) -> bool:
        return self._state.exclusions.excludes(contact_id, agent_id, now)
