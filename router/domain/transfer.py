"""A transfer: a connected contact leaves its agent for an agent with other skills
(these become its required skills) or for an agent by name.

The customer's clock is not reset: queued_at keeps the contact's original place
(it is among the most urgent, as a transferred customer should be) and answered_at
stays the first answer, so its wait and service level count once. Each leg is in
the events: TRANSFERRED (from whom, to what), then the next OFFERED and ANSWERED.
A named agent is waited for skill_relax seconds (the bullseye again), then anyone
with the contact's required skills takes it, so nobody is forgotten when that
agent stays busy. The transferring agent is free at once (no wrap-up for its leg)
and, like a decliner, is excluded from the contact for decline_exclusion
seconds: a transfer to skills the agent has must not come straight back.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from router.domain.contact import Contact, ContactState, PreferenceSource
from router.domain.events import ContactEventKind, Event
from router.domain.placement import Placement
from router.domain.state import RoutingState
from router.errors import InvalidArgument, WrongState


class Transfer:
    def __init__(self, state: RoutingState, placement: Placement) -> None:
        self._state = state
        self._placement = placement

    def transfer(
        self,
        contact: Contact,
        agent_id: str,
        now: datetime,
        *,
        to_skills: frozenset[str] | None,
        to_agent: str | None,
    ) -> tuple[Contact, list[Event]]:
        """`contact`, held by `agent_id`, to `to_skills` or `to_agent` (exactly one)."""
        state = self._state
        contact_id = contact.id
        if contact.state is not ContactState.CONNECTED:
            raise WrongState(
                f"contact {contact_id} is {contact.state.value}: only a connected contact "
                "can be transferred"
            )
        if (to_skills is None) == (to_agent is None):
            raise InvalidArgument("target", "give either skills or an agent to transfer to")
        if to_agent is not None:
            if to_agent == agent_id:
                raise InvalidArgument("target.agent_id", "cannot transfer to oneself")
            if to_agent not in state.agents:
                raise WrongState(f"agent {to_agent} is not signed in")
            moved = replace(
                contact,
                preferred_agent_id=to_agent,
                preferred_agent_source=PreferenceSource.TRANSFER,
            )
            reason = f"to agent {to_agent}"
        else:
            assert to_skills is not None
            moved = replace(
                contact,
                required_skills=to_skills,
                preferred_agent_id=None,
                preferred_agent_source=None,
            )
            reason = "to skills " + ",".join(sorted(to_skills))
        agent = state.agents[agent_id]
        del agent.assigned[contact_id]
        agent.since = now
        # Re-index the agent now: a stale placement (from before the contact was
        # answered) could hand the contact straight back, even from the phone reserve.
        state.index(agent)
        state.exclusions.add(contact_id, agent_id, now)
        state.transferred_at[contact_id] = now
        state.passed_by_preferred.discard(contact_id)
        events: list[Event] = []
        self._placement.back_to_queue(
            replace(moved, preferred_skills=()),
            ContactEventKind.TRANSFERRED,
            agent_id,
            reason,
            now,
            events,
        )
        self._placement.fill(agent, now, events)
        return state.contacts[contact_id], events
