"""Hourly caps: the most contacts of a channel an agent answers in any rolling hour.

ChannelPolicy.max_per_hour (0: no cap) keeps one agent from taking a whole backlog.
An agent's count is its answers of the channel in the last hour plus its open offers
of it; at the cap the agent is offered no more of the channel (Agent.capped) until its
oldest answer in the window is an hour old, when a timer (Timer.CAP_LIFTS, keyed by
agent and channel) looks again. Only channels with a cap are counted.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta

from router.domain.agent import Agent
from router.domain.channel import Channel, RoutingPolicy
from router.domain.timers import Timer, Timers

WINDOW = timedelta(hours=1)


class AnswersPerHour:
    """Answers per agent and channel over the last hour."""

    def __init__(self) -> None:
        self._answers: dict[tuple[str, Channel], deque[datetime]] = {}

    def note(self, agent_id: str, channel: Channel, at: datetime) -> None:
        self._answers.setdefault((agent_id, channel), deque()).append(at)

    def count(self, agent_id: str, channel: Channel, now: datetime) -> int:
        """Answers in (now - 1 h, now]."""
        answers = self._answers.get((agent_id, channel))
        if answers is None:
            return 0
        while answers and answers[0] <= now - WINDOW:
            answers.popleft()
        if not answers:
            del self._answers[(agent_id, channel)]
            return 0
        return len(answers)

    def frees_at(self, agent_id: str, channel: Channel) -> datetime | None:
        """When the oldest answer counted leaves the window."""
        answers = self._answers.get((agent_id, channel))
        return answers[0] + WINDOW if answers else None


class HourlyCaps:
    """Keeps each agent's `capped` channels and the timers that lift them."""

    def __init__(self, policy: RoutingPolicy, timers: Timers) -> None:
        self._policy = policy
        self._timers = timers
        self._answers = AnswersPerHour()

    def note_answer(self, agent_id: str, channel: Channel, at: datetime) -> None:
        if self._policy.of(channel).max_per_hour:
            self._answers.note(agent_id, channel, at)

    def update(self, agent: Agent, channel: Channel, now: datetime) -> tuple[bool, bool]:
        """Set whether the agent is at its cap for `channel`: (changed, lifted)."""
        cap = self._policy.of(channel).max_per_hour
        if not cap:
            return False, False
        taken = self._answers.count(agent.id, channel, now) + agent.offered(channel)
        was_capped = channel in agent.capped
        if taken >= cap:
            agent.capped.add(channel)
            # Look again when the oldest answer leaves the hour (open offers settle by
            # themselves: an answer or a drop comes back here).
            frees_at = self._answers.frees_at(agent.id, channel)
            if frees_at is not None:
                self._timers.set(Timer.CAP_LIFTS, (agent.id, channel), frees_at)
        else:
            agent.capped.discard(channel)
        capped = channel in agent.capped
        return was_capped != capped, was_capped and not capped

    def forget(self, agent_id: str) -> None:
        """The agent signed out: its timers stop (its answers still count if it returns)."""
        for channel in Channel:
            self._timers.cancel(Timer.CAP_LIFTS, (agent_id, channel))
