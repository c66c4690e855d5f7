"""A supervisor's hands on the live operation: the transitions SupervisorService calls.

Each action carries an Intervention (who, why), recorded with the first event it
causes; what follows from it (an offer withdrawn, the contact offered to someone
else) is the router's own doing, recorded as usual. Each validates before changing
anything, so a refused action changes nothing.

Agents:
- status: READY or AWAY as SetStatus sets it (offers already made stand). Recorded
  even when the agent already had that status: the action is on the record.
- sign-out: refused while the agent holds answered contacts (connected or in
  wrap-up), unless forced: then a conversation goes back to the queue at its
  original place, keeping its first answer (the customer may still be there, as when
  an agent does not come back after a restart), and a wrap-up is completed without a
  disposition. Unanswered offers go back to the queue, as at any sign-out.
- skills and capacities: offers the agent can no longer take (it lacks the contact's
  required skills, or holds more of a channel than its new capacity: the newest offers
  go) are withdrawn and their contacts queued again; then the agent is filled, so work
  it now qualifies for is offered at once. Answered contacts stay with it.

Waiting contacts (queued or offered; an answered contact is not the supervisor's to move):
- priority: the boost, within SubmitContact's limits; the contact keeps queued_at and
  takes its new place in line (its urgency is its wait times the boost). An open offer
  stands.
- required skills: the contact waits for the new ones; an open offer to an agent who
  lacks them is withdrawn.
- assignment to a named, signed-in agent who could serve it: the contact is held for
  that agent as for a transfer by name (firm: the phone reserve does not apply; for
  skill_relax seconds, then anyone with its required skills), the agent's decline
  exclusion no longer applies, and an open offer to another agent is withdrawn.
- cancellation: the contact ends CANCELLED (not a customer: spam). It is neither an
  abandon nor an answer, so service level counts it in neither (docs/routing.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from router.domain.agent import Agent, AgentStatus, AgentView, full_capacities
from router.domain.channel import Channel
from router.domain.contact import Contact, ContactState, PreferenceSource
from router.domain.events import (
    AgentEvent,
    AgentEventKind,
    ContactEvent,
    ContactEventKind,
    Event,
    Intervention,
    OfferWithdrawn,
    agent_event,
)
from router.domain.placement import Placement
from router.domain.state import RoutingState
from router.domain.timers import Timer
from router.domain.validation import MAX_BOOST, MIN_BOOST
from router.errors import InvalidArgument, NotFound, WrongState

if TYPE_CHECKING:
    from router.domain.router import Router

SIGNED_OUT_BY_SUPERVISOR = "signed_out_by_supervisor"
"""The reason of the events of a forced sign-out's answered contacts."""


class Supervision:
    def __init__(self, state: RoutingState, placement: Placement, router: Router) -> None:
        self._state = state
        self._placement = placement
        self._router = router

    # ---------------------------------------------------------------- agents

    def set_status(
        self, agent_id: str, status: AgentStatus, away_reason: str, by: Intervention, now: datetime
    ) -> tuple[AgentView, list[Event]]:
        """Set READY or AWAY (with `away_reason`, "supervisor" when empty)."""
        agent = self._agent(agent_id)
        if status is AgentStatus.AWAY and not away_reason:
            away_reason = "supervisor"
        events = self._router.set_status(agent_id, status, away_reason, now)
        if events:
            events[0] = _by(events[0], by)
        else:
            events = [agent_event(agent, AgentEventKind.STATUS_CHANGED, now, by)]
        return agent.view(), events

    def sign_out(
        self, agent_id: str, force: bool, by: Intervention, now: datetime
    ) -> tuple[AgentView, list[Event]]:
        """Sign the agent out; with `force`, even while it holds answered contacts."""
        state = self._state
        agent = self._agent(agent_id)
        answered = sorted(c for c in agent.assigned if c not in agent.offers.values())
        if answered and not force:
            raise WrongState(
                f"agent {agent_id} holds {len(answered)} answered contact(s) (connected or "
                "in wrap-up): sign it out with force to queue its conversations again and "
                "complete its wrap-ups"
            )
        events: list[Event] = []
        requeued = []
        for contact_id in answered:
            contact = state.contacts[contact_id]
            del agent.assigned[contact_id]
            if contact.state is ContactState.CONNECTED:
                # (A callback being dialled, not yet reached, goes back the same way.)
                queued = replace(contact, state=ContactState.QUEUED, agent_id=None, offer_id=None)
                state.enqueue(queued, now)
                requeued.append(contact_id)
                kind = ContactEventKind.REQUEUED
                contact = queued
            else:
                contact = replace(contact, state=ContactState.COMPLETED, completed_at=now)
                state.retire(contact)
                state.previous.remember(contact.customer_id, agent_id)
                kind = ContactEventKind.COMPLETED
            events.append(
                ContactEvent(kind, contact, now, agent_id, reason=SIGNED_OUT_BY_SUPERVISOR)
            )
        view = AgentView(agent_id, AgentStatus.OFFLINE, "", agent.skills, {}, False, (), None)
        signed_out = self._router.sign_out(agent_id, now)
        events.extend(_by(e, by) if _is(e, AgentEventKind.SIGNED_OUT) else e for e in signed_out)
        for contact_id in requeued:
            if contact_id in state.queue:
                self._placement.place(contact_id, now, events)
        return view, events

    def change_agent(
        self,
        agent_id: str,
        skills: frozenset[str],
        capacities: Mapping[Channel, int],
        by: Intervention,
        now: datetime,
    ) -> tuple[AgentView, list[Event]]:
        """New skills and capacities (channels not given take their default)."""
        state = self._state
        agent = self._agent(agent_id)
        full = full_capacities(state.policy, capacities)
        events: list[Event] = []
        cannot_keep = self._offers_it_cannot_keep(agent, skills, full)
        requeued = self._placement.return_offers(agent, cannot_keep, "agent_changed", now, events)
        changed = self._router.sign_in(agent_id, skills, full, agent.status, now, agent.team)
        events.extend(_by(e, by) if _is(e, AgentEventKind.SIGNED_IN) else e for e in changed)
        for contact_id in requeued:
            if contact_id in state.queue:
                self._placement.place(contact_id, now, events)
        return agent.view(), events

    def _offers_it_cannot_keep(
        self, agent: Agent, skills: frozenset[str], capacities: Mapping[Channel, int]
    ) -> list[str]:
        """Open offers of contacts needing skills the agent will not have, and its newest
        offers of a channel beyond the channel's new capacity."""
        state = self._state
        dropped = []
        offered = set(agent.offers.values())
        kept = dict.fromkeys(Channel, 0)  # answered contacts of each channel, then offers kept
        for contact_id, channel in agent.assigned.items():
            if contact_id not in offered:
                kept[channel] += 1
        for offer_id, contact_id in agent.offers.items():  # oldest first
            contact = state.contacts[contact_id]
            channel = contact.channel
            if contact.required_skills <= skills and kept[channel] < capacities[channel]:
                kept[channel] += 1
            else:
                dropped.append(offer_id)
        return dropped

    # ------------------------------------------------------------- contacts

    def set_priority(
        self, contact_id: str, boost: float, by: Intervention, now: datetime
    ) -> tuple[Contact, list[Event]]:
        """A waiting contact's priority boost, from MIN_BOOST to MAX_BOOST."""
        contact = self._waiting(contact_id, "change its priority")
        if not MIN_BOOST <= boost <= MAX_BOOST:
            raise InvalidArgument("priority_boost", f"must be between {MIN_BOOST} and {MAX_BOOST}")
        reason = f"priority {contact.priority_boost:g} -> {boost:g}"
        return self._change(
            replace(contact, priority_boost=boost),
            ContactEventKind.PRIORITY_CHANGED,
            reason,
            by,
            now,
            keeps_offer=True,
        )

    def set_skills(
        self, contact_id: str, skills: frozenset[str], by: Intervention, now: datetime
    ) -> tuple[Contact, list[Event]]:
        """A waiting contact's required skills; an offer to an agent without them goes."""
        contact = self._waiting(contact_id, "change its skills")
        reason = f"skills {_listed(contact.required_skills)} -> {_listed(skills)}"
        agent = self._state.agents.get(contact.agent_id or "")
        keeps_offer = agent is not None and skills <= agent.skills
        return self._change(
            replace(contact, required_skills=skills),
            ContactEventKind.SKILLS_CHANGED,
            reason,
            by,
            now,
            keeps_offer=keeps_offer,
        )

    def assign(
        self, contact_id: str, agent_id: str, by: Intervention, now: datetime
    ) -> tuple[Contact, list[Event]]:
        """Hold a waiting contact for `agent_id` as a transfer by name does."""
        state = self._state
        contact = self._waiting(contact_id, "assign it")
        agent = self._agent(agent_id)
        if not agent.could_serve(contact.channel, contact.required_skills):
            missing = contact.required_skills - agent.skills
            raise WrongState(
                f"agent {agent_id} cannot serve contact {contact_id}: "
                + (
                    f"it lacks {_listed(missing)}"
                    if missing
                    else f"it takes no {contact.channel.value}"
                )
            )
        # The hold starts now (and lasts skill_relax), whatever the agent did before.
        state.transferred_at[contact_id] = now
        state.passed_by_preferred.discard(contact_id)
        if state.exclusions.excludes(contact_id, agent_id, now):
            state.exclusions.end(contact_id, agent_id)
            state.timers.cancel(Timer.EXCLUSION_ENDS, (contact_id, agent_id))
        moved = replace(
            contact,
            preferred_agent_id=agent_id,
            preferred_agent_source=PreferenceSource.SUPERVISOR,
            preferred_skills=(),
        )
        return self._change(
            moved,
            ContactEventKind.ASSIGNED,
            f"to agent {agent_id}",
            by,
            now,
            keeps_offer=contact.agent_id == agent_id,
            agent_id=agent_id,
        )

    def cancel(
        self, contact_id: str, by: Intervention, now: datetime
    ) -> tuple[Contact, list[Event]]:
        """End a waiting contact that is not a customer's (spam)."""
        state = self._state
        contact = self._waiting(contact_id, "cancel it")
        events: list[Event] = []
        agent = self._placement.take_out(contact, "cancelled", now, events)
        state.timers.cancel(Timer.CALLBACK_DUE, contact_id)
        state.timers.cancel(Timer.CALLBACK_WINDOW_ENDS, contact_id)
        cancelled = replace(contact, state=ContactState.CANCELLED, cancelled_at=now)
        state.retire(cancelled)
        events.append(ContactEvent(ContactEventKind.CANCELLED, cancelled, now, intervention=by))
        if agent is not None:
            self._placement.fill(agent, now, events)
        return cancelled, events

    def _change(
        self,
        changed: Contact,
        kind: ContactEventKind,
        reason: str,
        by: Intervention,
        now: datetime,
        *,
        keeps_offer: bool,
        agent_id: str | None = None,
    ) -> tuple[Contact, list[Event]]:
        """Record `kind` and put `changed` (a waiting contact, changed) in place: back in
        the queue to be placed again, or still offered when `keeps_offer`; an offer it
        may not keep is withdrawn and its agent filled again."""
        state = self._state
        contact_id = changed.id
        event = ContactEvent(
            kind, changed, now, agent_id or changed.agent_id, reason=reason, intervention=by
        )
        events: list[Event] = [event]
        if changed.state is ContactState.QUEUED and contact_id not in state.queue:
            state.activate(changed)  # a callback waiting for its window: it enters then
        elif changed.state is ContactState.QUEUED:
            state.dequeue(contact_id)
            state.enqueue(changed, now)
            self._placement.place(contact_id, now, events)
        elif keeps_offer:
            state.contacts[contact_id] = changed
        else:
            assert changed.offer_id is not None
            offer = state.offers[changed.offer_id]
            agent = state.agents[offer.agent_id]
            state.contacts[contact_id] = changed
            self._placement.drop_offer(offer, agent, now)
            events.append(OfferWithdrawn(offer, kind.value))
            self._placement.requeue(offer, None, kind.value, now, events)
            self._placement.place(contact_id, now, events)
            self._placement.fill(agent, now, events)
        return state.contacts.get(contact_id, changed), events

    # ------------------------------------------------------------- helpers

    def _agent(self, agent_id: str) -> Agent:
        agent = self._state.agents.get(agent_id)
        if agent is None:
            raise NotFound(f"agent {agent_id} is not signed in")
        return agent

    def _waiting(self, contact_id: str, action: str) -> Contact:
        contact = self._state.contacts.get(contact_id)
        if contact is None:
            raise NotFound(f"no active contact {contact_id}")
        if not contact.state.is_waiting:
            raise WrongState(
                f"contact {contact_id} is {contact.state.value}: only a waiting (queued or "
                f"offered) contact is the supervisor's to {action}"
            )
        return contact


def _by(event: Event, by: Intervention) -> Event:
    assert isinstance(event, AgentEvent)
    return replace(event, intervention=by)


def _is(event: Event, kind: AgentEventKind) -> bool:
    return isinstance(event, AgentEvent) and event.kind is kind


def _listed(skills: frozenset[str]) -> str:
    return ",".join(sorted(skills)) or "(none)"
