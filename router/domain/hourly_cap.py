"""Answers per agent and channel over the last hour, for ChannelPolicy.max_per_hour.

An agent at its cap for a channel is offered no more of it until its oldest answer in
the window is an hour old; `frees_at` says when that is, for the router's timer.
Only channels with a cap are counted.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta

from router.domain.channel import Channel

WINDOW = timedelta(hours=1)


class AnswersPerHour:
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
