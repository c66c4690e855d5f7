"""How long a waiting contact will still wait, learned from the contacts that waited.

The estimate is the contact's place in line x the seconds each place took lately. Per
channel, over the last SAMPLES contacts of it that had to queue at submission and were
answered: (sum of their waits, queued to answered) / (sum of their places when they
entered the queue). A place counts the contacts of the same channel that the agents
who could serve the contact will serve first (Explanations.wait_place), both when a
contact enters and when its estimate is asked, so the seconds per place take in what a
model would have to guess: how fast the agents who could take the channel free up
(agents finishing an email free up for a call faster than calls end), agents the
phone reserve keeps back, calls and chats overtaking a waiting email, customers ahead
who leave, the time an offer rings.

When the channel's queue has not emptied for a while (a backlog), the rate at which
its queued contacts were answered over the last half of that while gives the seconds
per place instead: the learned waits began long ago there, and would carry an earlier
rate (recent_seconds_per_place). Either way the seconds per place are the same for
every contact of the channel at one instant, so a later place is never told less.

The time between a channel's answers (what the estimate used to be) measures this
badly where the channel seldom queues: most answers come as the contact arrives, so
their gaps measure arrivals; gaps only count after an answer that left contacts
waiting, which leaves out the wait of a lone queued call, the commonest kind there.
It remains the stand-in until MIN_SAMPLES contacts of the channel have waited and been
answered (a start, a channel that never queued); before two answers of it, the
center's answer rate over its last answers; None without any.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from datetime import datetime

from router.domain.channel import Channel

WINDOW = 50  # recent answers kept for the stand-in
SAMPLES = 200  # recent waits kept per channel
MIN_SAMPLES = 5  # waits of a channel needed before they are used
RECENT = 5_000  # answer times of queued contacts kept per channel, for the recent rate
RECENT_MIN = 50  # answers needed in the recent rate's horizon
TRACKED = 200_000  # the most queued contacts whose place at entry is remembered at once


class AnswerRate:
    def __init__(self) -> None:
        self._answers: deque[datetime] = deque(maxlen=WINDOW)
        self._gaps = {c: deque[float](maxlen=WINDOW) for c in Channel}
        # The last answer of each channel, and whether contacts of it still waited then.
        self._last: dict[Channel, tuple[datetime, bool]] = {}
        # Contacts that queued at submission and wait still: when, and their place then.
        self._entered: dict[str, tuple[datetime, int]] = {}
        # Per channel: (wait, place at entry) of the last answered contacts that queued,
        # and the sums of both over them.
        self._waits = {c: deque[tuple[float, int]]() for c in Channel}
        self._sums = dict.fromkeys(Channel, (0.0, 0))
        # Per channel: when its last contacts that queued were answered (epoch seconds).
        self._departed = {c: deque[float](maxlen=RECENT) for c in Channel}

    def entered(self, contact_id: str, place: int, now: datetime) -> None:
        """A submitted contact had to queue, at `place` (see the module docstring).
        Beyond TRACKED contacts waiting at once, later ones teach nothing: the estimate
        needs a sample, not every contact of a huge backlog."""
        if len(self._entered) < TRACKED:
            self._entered[contact_id] = (now, place)

    def forget(self, contact_id: str) -> None:
        """The contact is over without an answer noted here (abandoned, or final)."""
        self._entered.pop(contact_id, None)

    def note(
        self, contact_id: str, channel: Channel, now: datetime, *, still_waiting: bool
    ) -> None:
        """A contact of `channel` was answered; `still_waiting`: others of it wait."""
        self._answers.append(now)
        last = self._last.get(channel)
        if last is not None and last[1]:
            self._gaps[channel].append((now - last[0]).total_seconds())
        self._last[channel] = (now, still_waiting)
        entry = self._entered.pop(contact_id, None)
        if entry is None:
            return
        self._departed[channel].append(now.timestamp())
        wait, place = max(0.0, (now - entry[0]).total_seconds()), entry[1]
        waits = self._waits[channel]
        total, places = self._sums[channel]
        if len(waits) == SAMPLES:
            old_wait, old_place = waits.popleft()
            total, places = total - old_wait, places - old_place
        waits.append((wait, place))
        self._sums[channel] = (total + wait, places + place)

    def seconds_per_place(self, channel: Channel) -> float | None:
        """What each place in `channel`'s line took lately; None before MIN_SAMPLES."""
        total, places = self._sums[channel]
        if len(self._waits[channel]) < MIN_SAMPLES or places <= 0:
            return None
        return max(0.0, total) / places

    def estimate(
        self, position: int, channel: Channel, now: datetime, busy_since: float | None = None
    ) -> float | None:
        """Seconds until the contact at `position` of `channel`'s line is answered:
        position x seconds per place (or a stand-in, see above); None without data.
        `busy_since`: when the oldest contact of the channel still waiting was queued
        (epoch seconds), to prefer the recent rate (see recent_seconds_per_place)."""
        per_place = self.seconds_per_place(channel)
        if per_place is not None:
            if busy_since is not None:
                horizon = (now.timestamp() - busy_since) / 2
                recent = self.recent_seconds_per_place(channel, now, horizon)
                if recent is not None:
                    return position * recent
            return position * per_place
        gaps = self._gaps[channel]
        if len(gaps) >= 2:
            return position * sum(gaps) / len(gaps)
        if len(self._answers) < 2:
            return None
        span = (now - self._answers[0]).total_seconds()
        if span <= 0:
            return None
        return position * span / len(self._answers)

    def recent_seconds_per_place(
        self, channel: Channel, now: datetime, horizon: float
    ) -> float | None:
        """Seconds per place over the last `horizon` seconds, in which the channel's
        queue never emptied (the caller's promise): `horizon` / the queued contacts of
        the channel answered in it; None with fewer than RECENT_MIN of them.

        Each learned wait is the mean over that contact's own wait, which in a long
        queue began long ago: at the start of a day with a backlog, when every agent
        takes the backlog until calls come in and take their share, the early waits
        are short and the learned seconds per place too low for an hour. Over the last
        half of the time the queue has not emptied, the rate the agents clear it at
        now stands in."""
        departed = self._departed[channel]
        count = len(departed) - bisect_left(departed, now.timestamp() - horizon)
        if count < RECENT_MIN:
            return None
        return horizon / count
