"""Exclusions: agents a contact is kept from for a while.

An agent who declines a contact, or transfers it away, is not offered that contact
again for RoutingPolicy.decline_exclusion seconds: the customer goes to someone else
first. Afterwards the agent may get it again, so that nothing waits forever when that
agent is the only one who can serve it. Each exclusion ends by a timer
(Timer.EXCLUSION_ENDS, keyed by contact and agent).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from router.domain.timers import Timer, Timers


class Exclusions:
    def __init__(self, timers: Timers, seconds: float) -> None:
        self._timers = timers
        self._seconds = seconds
        self._until: dict[str, dict[str, datetime]] = {}  # contact -> agent -> until

    def add(self, contact_id: str, agent_id: str, now: datetime) -> None:
        """Keep the contact from this agent for the policy's exclusion seconds."""
        if self._seconds <= 0:
            return
        until = now + timedelta(seconds=self._seconds)
        self._until.setdefault(contact_id, {})[agent_id] = until
        self._timers.set(Timer.EXCLUSION_ENDS, (contact_id, agent_id), until)

    def excludes(self, contact_id: str, agent_id: str, now: datetime) -> bool:
        agents = self._until.get(contact_id)
        return agents is not None and agents.get(agent_id, now) > now

    def of(self, contact_id: str, now: datetime) -> Callable[[str], bool]:
        """Whether an agent is kept from the contact now: for the roster's search."""
        agents = self._until.get(contact_id)
        if not agents:
            return _nobody
        return lambda agent_id: agents.get(agent_id, now) > now

    def end(self, contact_id: str, agent_id: str) -> None:
        """The exclusion's timer fired."""
        agents = self._until.get(contact_id)
        if agents is not None:
            agents.pop(agent_id, None)
            if not agents:
                del self._until[contact_id]

    def clear(self, contact_id: str) -> None:
        """The contact was answered or left: no agent is kept from it any more."""
        for agent_id in self._until.pop(contact_id, {}):
            self._timers.cancel(Timer.EXCLUSION_ENDS, (contact_id, agent_id))


def _nobody(agent_id: str) -> bool:
    return False
