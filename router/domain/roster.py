"""The agents free to take work, per channel and skill set, longest idle first.

An agent appears under every channel it could take a contact of right now, in the
pool of its exact skill set, keyed by (load, since, seq): an agent holding nothing
comes before one holding a chat, and among equals the one free the longest comes
first. Finding the agent for a contact looks at the head of each pool whose skills
cover the contact's; pools are as many as distinct skill sets among agents, which
depends on the center's configuration, not on how many agents sign in.

Phone reserve: under a non-phone channel, agents who could also take a call right
now sit in a separate `reserve` list. They are used only while more than K agents
could take a call, so the last K stay free for the next call that rings, or for a
contact past its answer deadline (the caller says which, see Router).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sortedcontainers import SortedList

from router.domain.agent import Agent
from router.domain.channel import Channel, RoutingPolicy

AgentKey = tuple[int, float, int, str]  # (load, since as epoch seconds, seq, agent id)


@dataclass(slots=True)
class _Pool:
    skills: frozenset[str]
    others: SortedList = field(default_factory=SortedList)
    reserve: SortedList = field(default_factory=SortedList)


@dataclass(frozen=True, slots=True)
class _Placement:
    channel: Channel
    skills: frozenset[str]
    in_reserve: bool
    key: AgentKey


class Roster:
    def __init__(self, policy: RoutingPolicy) -> None:
        self._policy = policy
        self._pools: dict[Channel, dict[frozenset[str], _Pool]] = {c: {} for c in Channel}
        self._placed: dict[str, list[_Placement]] = {}
        self._phone_ready = 0

    @property
    def phone_ready(self) -> int:
        """How many agents could take a call right now."""
        return self._phone_ready

    def reserve_allows_other_work(self) -> bool:
        """Whether one more phone-capable idle agent may be given chat or email."""
        return self._phone_ready > self._policy.phone_reserve

    def place(self, agent: Agent) -> None:
        """Re-index an agent after any change to its state; O(log n)."""
        self.remove(agent.id)
        channels = agent.takes(self._policy)
        takes_phone = Channel.PHONE in channels
        key: AgentKey = (agent.load(), agent.since.timestamp(), agent.seq, agent.id)
        placements = []
        for channel in channels:
            pool = self._pools[channel].get(agent.skills)
            if pool is None:
                pool = self._pools[channel][agent.skills] = _Pool(agent.skills)
            in_reserve = takes_phone and channel is not Channel.PHONE
            (pool.reserve if in_reserve else pool.others).add(key)
            placements.append(_Placement(channel, agent.skills, in_reserve, key))
        if placements:
            self._placed[agent.id] = placements
        if takes_phone:
            self._phone_ready += 1

    def remove(self, agent_id: str) -> None:
        for placement in self._placed.pop(agent_id, ()):
            pools = self._pools[placement.channel]
            pool = pools[placement.skills]
            (pool.reserve if placement.in_reserve else pool.others).remove(placement.key)
            if placement.channel is Channel.PHONE:
                self._phone_ready -= 1
            if not pool.reserve and not pool.others:
                del pools[placement.skills]

    def best_for(
        self,
        channel: Channel,
        required: frozenset[str],
        excluded: Callable[[str], bool] = lambda _: False,
        past_deadline: bool = False,
    ) -> str | None:
        """The agent who should be offered a contact of `channel` needing `required`;
        the reserve is open to a contact `past_deadline` however few agents are free."""
        use_reserve = channel is not Channel.PHONE and (
            past_deadline or self.reserve_allows_other_work()
        )
        best: AgentKey | None = None
        for pool in self._pools[channel].values():
            if not required <= pool.skills:
                continue
            lists = (pool.others, pool.reserve) if use_reserve else (pool.others,)
            for keys in lists:
                for key in keys:
                    if excluded(key[3]):
                        continue
                    if best is None or key < best:
                        best = key
                    break
        return None if best is None else best[3]

    def phone_ready_agents(self) -> list[str]:
        """Agents who could take a call now, longest idle first."""
        keys = [k for pool in self._pools[Channel.PHONE].values() for k in pool.others]
        return [key[3] for key in sorted(keys)]
