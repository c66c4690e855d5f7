"""An agent: skills, capacities, status, presence and the contacts it holds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from router.domain.channel import CHANNELS, Channel, RoutingPolicy
from router.errors import InvalidArgument


class AgentStatus(StrEnum):
    OFFLINE = "offline"
    READY = "ready"
    AWAY = "away"


@dataclass(slots=True)
class Agent:
    """Mutable state the core keeps for a signed-in agent.

    since: when the agent last became free for work (signed in, set ready, finished a
        contact). Longest idle first means smallest `since` first; declined or
        withdrawn offers do not move it, so an agent keeps its place in line.
    assigned: contact id -> channel, for the contacts assigned to this agent: offered
        to it, connected to it, or in its wrap-up.
    capped: channels on which the agent reached its hourly cap (ChannelPolicy.
        max_per_hour); the router keeps it (see hourly_cap).
    """

    id: str
    skills: frozenset[str]
    capacities: dict[Channel, int]
    signed_in_at: datetime
    since: datetime
    seq: int
    status: AgentStatus = AgentStatus.READY
    away_reason: str = ""
    connected: bool = False
    assigned: dict[str, Channel] = field(default_factory=dict)
    offers: dict[str, str] = field(default_factory=dict)
    capped: set[Channel] = field(default_factory=set)
    team: str = ""

    @property
    def routable(self) -> bool:
        """Ready and present (its offer stream is open)."""
        return self.status is AgentStatus.READY and self.connected

    def load(self, channel: Channel | None = None) -> int:
        if channel is None:
            return len(self.assigned)
        return sum(1 for held in self.assigned.values() if held is channel)

    def can_take(self, channel: Channel, policy: RoutingPolicy) -> bool:
        """Whether a contact of `channel` could be offered to this agent now (`takes`
        holds the rule)."""
        return channel in self.takes(policy)

    def takes(self, policy: RoutingPolicy) -> list[Channel]:
        """The channels of which a contact could be offered to this agent now, in
        routing order, in one pass (the core asks after every change of an agent): it
        must be routable, have capacity left on the channel and not be capped on it,
        and hold nothing exclusive, nor anything at all for an exclusive channel."""
        if not self.routable:
            return []
        held = self.assigned.values()
        if any(policy.of(channel).exclusive for channel in held):
            return []
        return [
            channel
            for channel in CHANNELS
            if (capacity := self.capacities.get(channel, 0)) > 0
            and channel not in self.capped
            and not (held and policy.of(channel).exclusive)
            and self.load(channel) < capacity
        ]

    def could_serve(self, channel: Channel, skills: frozenset[str]) -> bool:
        """Whether the agent could ever take such a contact (free or not)."""
        return self.capacities.get(channel, 0) > 0 and skills <= self.skills

    def offered(self, channel: Channel) -> int:
        """Open offers of `channel`."""
        return sum(1 for contact_id in self.offers.values() if self.assigned[contact_id] is channel)

    def view(self) -> AgentView:
        return AgentView(
            id=self.id,
            status=self.status,
            away_reason=self.away_reason,
            skills=self.skills,
            capacities=dict(self.capacities),
            connected=self.connected,
            contact_ids=tuple(self.assigned),
            signed_in_at=self.signed_in_at,
            team=self.team,
        )


@dataclass(frozen=True, slots=True)
class AgentView:
    """A read-only snapshot of an agent for callers outside the core."""

    id: str
    status: AgentStatus
    away_reason: str
    skills: frozenset[str]
    capacities: dict[Channel, int]
    connected: bool
    contact_ids: tuple[str, ...]
    signed_in_at: datetime | None
    team: str = ""


def full_capacities(policy: RoutingPolicy, capacities: Mapping[Channel, int]) -> dict[Channel, int]:
    """Every channel's capacity: those given (each checked against its channel's
    maximum), the channel's default for the others."""
    full = {c: policy.of(c).default_capacity for c in Channel}
    for channel, capacity in capacities.items():
        limit = policy.of(channel).max_capacity
        if not 0 <= capacity <= limit:
            raise InvalidArgument(
                "capacities", f"{channel.value} capacity must be between 0 and {limit}"
            )
        full[channel] = capacity
    return full
