"""Rolling service level: the share of recent contacts answered within threshold.

Pure: callers pass every time in. Contacts count when their outcome is known (answered,
or abandoned after the short-abandon limit), over the last `window` seconds.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta

from router.domain.channel import Channel, RoutingPolicy


class RollingServiceLevel:
    """Read after every batch of events (the alarm) and on every scrape: it keeps a
    running count of the within-threshold outcomes, so a read costs only the outcomes
    that left the window since the last one."""

    def __init__(self, policy: RoutingPolicy, window: float = 900.0) -> None:
        self._policy = policy
        self._window = timedelta(seconds=window)
        self._outcomes: dict[Channel, deque[tuple[datetime, bool]]] = {c: deque() for c in Channel}
        self._within: dict[Channel, int] = dict.fromkeys(Channel, 0)

    @property
    def policy(self) -> RoutingPolicy:
        """The policy whose thresholds (and goals) the level is read against."""
        return self._policy

    def answered(self, channel: Channel, at: datetime, wait: float) -> None:
        self._add(channel, at, within=wait <= self._policy.of(channel).answer_target)

    def abandoned(self, channel: Channel, at: datetime, wait: float) -> None:
        if wait > self._policy.short_abandon:
            self._add(channel, at, within=False)

    def value(self, channel: Channel, now: datetime) -> float | None:
        """Within threshold / counted, over the window; None when nothing counted."""
        outcomes = self._outcomes[channel]
        while outcomes and outcomes[0][0] <= now - self._window:
            _, within = outcomes.popleft()
            self._within[channel] -= within
        if not outcomes:
            return None
        return self._within[channel] / len(outcomes)

    def _add(self, channel: Channel, at: datetime, *, within: bool) -> None:
        self._outcomes[channel].append((at, within))
        self._within[channel] += within
