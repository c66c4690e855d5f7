"""What the signed-in agents could ever serve, whatever they are doing right now.

Agents are grouped by profile: their skill set and the channels they take (capacity
above 0). Profiles are as many as distinct skill sets among agents, which depends on
the center's configuration, not on how many agents sign in; so asking whether anyone
signed in could serve a contact costs O(profiles). A profile also knows which of its
agents are ready and present, to tell "everyone is away" from "everyone is busy".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from router.domain.agent import Agent
from router.domain.channel import Channel


@dataclass(frozen=True, slots=True)
class Profile:
    skills: frozenset[str]
    channels: frozenset[Channel]

    def serves(self, channel: Channel, skills: frozenset[str]) -> bool:
        return channel in self.channels and skills <= self.skills


@dataclass(slots=True)
class _Members:
    signed_in: set[str] = field(default_factory=set)
    routable: set[str] = field(default_factory=set)


class Coverage:
    def __init__(self) -> None:
        self._profiles: dict[Profile, _Members] = {}
        # agent -> (profile, routable, the capacities object the profile was made from)
        self._of: dict[str, tuple[Profile, bool, Mapping[Channel, int]]] = {}

    def update(self, agent: Agent) -> None:
        """Record a signed-in agent's profile and presence after any change; O(1).
        Called on every routing event of the agent, so the common case (nothing that
        matters here changed) only compares what it saw last time."""
        old = self._of.get(agent.id)
        routable = agent.routable
        if old is not None and (old[0].skills, old[1], old[2]) == (
            agent.skills,
            routable,
            agent.capacities,
        ):
            return
        channels = frozenset(c for c, n in agent.capacities.items() if n > 0)
        profile = Profile(agent.skills, channels)
        self.remove(agent.id)
        members = self._profiles.setdefault(profile, _Members())
        members.signed_in.add(agent.id)
        if routable:
            members.routable.add(agent.id)
        self._of[agent.id] = (profile, routable, agent.capacities)

    def remove(self, agent_id: str) -> None:
        """The agent signed out."""
        old = self._of.pop(agent_id, None)
        if old is None:
            return
        members = self._profiles[old[0]]
        members.signed_in.discard(agent_id)
        members.routable.discard(agent_id)
        if not members.signed_in:
            del self._profiles[old[0]]

    @property
    def signed_in(self) -> int:
        return len(self._of)

    def profile_of(self, agent_id: str) -> Profile | None:
        found = self._of.get(agent_id)
        return None if found is None else found[0]

    def serving(self, channel: Channel, skills: frozenset[str]) -> list[Profile]:
        """The profiles of signed-in agents who could serve a contact of `channel`
        needing `skills`."""
        return [p for p in self._profiles if p.serves(channel, skills)]

    def could_serve(self, channel: Channel, skills: frozenset[str]) -> bool:
        return any(p.serves(channel, skills) for p in self._profiles)

    def any_routable(self, profiles: list[Profile]) -> bool:
        """Whether an agent of these profiles is ready and present."""
        return any(self._profiles[p].routable for p in profiles)
