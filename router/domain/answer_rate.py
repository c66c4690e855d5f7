"""How fast each channel's queue is answered, for the estimated wait.

Per channel, the seconds between answers while its queue stayed non-empty: they measure
how fast agents free up for the queue. Gaps that start once the queue emptied measure
how often customers arrive instead, and would make an estimate too long by about
1 / occupancy, so they are left out. Without such gaps yet (a start, a quiet channel),
the center's answer rate over its last answers stands in.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime

from router.domain.channel import Channel

WINDOW = 50  # recent answers kept


class AnswerRate:
    def __init__(self) -> None:
        self._answers: deque[datetime] = deque(maxlen=WINDOW)
        self._gaps = {c: deque[float](maxlen=WINDOW) for c in Channel}
        # The last answer of each channel, and whether contacts of it still waited then.
        self._last: dict[Channel, tuple[datetime, bool]] = {}

    def note(self, channel: Channel, now: datetime, *, still_waiting: bool) -> None:
        """A contact of `channel` was answered; `still_waiting`: others of it wait."""
        self._answers.append(now)
        last = self._last.get(channel)
        if last is not None and last[1]:
            self._gaps[channel].append((now - last[0]).total_seconds())
        self._last[channel] = (now, still_waiting)

    def estimate(self, position: int, channel: Channel, now: datetime) -> float | None:
        """Seconds until the contact at `position` of `channel`'s queue is answered:
        position x the mean time between answers; None without data."""
        gaps = self._gaps[channel]
        if len(gaps) >= 2:
            return position * sum(gaps) / len(gaps)
        if len(self._answers) < 2:
            return None
        span = (now - self._answers[0]).total_seconds()
        if span <= 0:
            return None
        return position * span / len(self._answers)
