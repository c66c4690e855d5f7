"""Watches the rolling phone service level and raises or clears the alarm.

The decision is router.reporting.alarm's (pure); this module reads the rolling value
after every batch of events that can move it (a call answered or abandoned) and on
each queue-status read, and logs each transition as a warning event
(`service_level_alarm_raised`) or an info event (`service_level_alarm_cleared`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import structlog

from router.domain import Channel, ContactEvent, ContactEventKind, Event
from router.domain.rolling import RollingServiceLevel
from router.reporting.alarm import AlarmChange, AlarmStatus, ServiceLevelAlarm

log = structlog.get_logger(__name__)

_OUTCOMES = frozenset({ContactEventKind.ANSWERED, ContactEventKind.ABANDONED})


def _utc_now() -> datetime:
    return datetime.now(UTC)


class ServiceLevelWatch:
    def __init__(
        self,
        rolling: RollingServiceLevel,
        alarm_below: float,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        """`alarm_below`: the phone channel's configured alarm line
        (ChannelPolicy.service_level_alarm)."""
        self.rolling = rolling
        self.alarm = ServiceLevelAlarm(alarm_below)
        self._clock = clock

    def observe(self, events: Sequence[Event]) -> None:
        """A switchboard observer: check when a phone outcome was delivered."""
        if any(
            isinstance(e, ContactEvent)
            and e.contact.channel is Channel.PHONE
            and e.kind in _OUTCOMES
            for e in events
        ):
            self.check()

    def check(self) -> float | None:
        """Read the rolling phone service level, log a transition; return the value."""
        now = self._clock()
        value = self.rolling.value(Channel.PHONE, now)
        transition = self.alarm.observe(value, now)
        if transition is not None:
            fields = {
                "channel": Channel.PHONE.value,
                "service_level": round(transition.service_level, 4),
                "threshold": transition.threshold,
            }
            if transition.change is AlarmChange.RAISED:
                log.warning(transition.change.value, **fields)
            else:
                log.info(transition.change.value, **fields)
        return value

    def status(self) -> AlarmStatus:
        """Check now, and the alarm as a report shows it."""
        value = self.check()
        return AlarmStatus(self.alarm.raised, value, self.alarm.threshold, self.alarm.raised_at)
