"""Each customer's previous agent: who last completed a contact for them.

Kept for the most recent customers only (least recently completed forgotten first),
so memory stays bounded however many customers a center has; a router rebuilds it
from the latest completions when it starts.
"""

from __future__ import annotations

from collections import OrderedDict


class PreviousAgents:
    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._agents: OrderedDict[str, str] = OrderedDict()

    def remember(self, customer_id: str, agent_id: str) -> None:
        """`agent_id` just completed a contact for `customer_id`."""
        if self._capacity <= 0:
            return
        self._agents[customer_id] = agent_id
        self._agents.move_to_end(customer_id)
        if len(self._agents) > self._capacity:
            self._agents.popitem(last=False)

    def of(self, customer_id: str) -> str | None:
        return self._agents.get(customer_id)

    def forget(self, customer_id: str) -> None:
        """The customer's personal data was erased: no trace of them stays here."""
        self._agents.pop(customer_id, None)

    def __len__(self) -> int:
        """How many customers are remembered (at most the capacity)."""
        return len(self._agents)
