"""Watches each channel's rolling service level and raises or clears its alarm.

The decision is router.reporting.alarm's (pure); this module reads a channel's rolling
value after every batch of events that can move it (a contact of the channel answered
or abandoned) and on each queue-status read (phone's), and logs each transition as a warning event
(`service_level_alarm_raised`) or an info event (`service_level_alarm_cleared`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

import structlog

from router.clock import utc_now
from router.domain import Channel, ContactEvent, ContactEventKind, Event, RoutingPolicy
from router.domain.rolling import RollingServiceLevel
from router.reporting.alarm import AlarmChange, AlarmStatus, ServiceLevelAlarm

log = structlog.get_logger(__name__)

_OUTCOMES = frozenset({ContactEventKind.ANSWERED, ContactEventKind.ABANDONED})


class ServiceLevelWatch:
    """One alarm per channel, each at its configured line
    (ChannelPolicy.service_level_alarm)."""

    def __init__(
        self,
        rolling: RollingServiceLevel,
        policy: RoutingPolicy,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.rolling = rolling
        self._alarms = {c: ServiceLevelAlarm(policy.of(c).service_level_alarm) for c in Channel}
        self._clock = clock

    def observe(self, events: Sequence[Event]) -> None:
        """A switchboard observer: check each channel an outcome was delivered for."""
        moved = {
            e.contact.channel for e in events if isinstance(e, ContactEvent) and e.kind in _OUTCOMES
        }
        for channel in sorted(moved, key=lambda c: c.rank):
            self.check(channel)

    def check(self, channel: Channel = Channel.PHONE) -> float | None:
        """Read the channel's rolling service level, log a transition; the value."""
        now = self._clock()
        value = self.rolling.value(channel, now)
        transition = self._alarms[channel].observe(value, now)
        if transition is not None:
            fields = {
                "channel": channel.value,
                "service_level": round(transition.service_level, 4),
                "threshold": transition.threshold,
            }
            if transition.change is AlarmChange.RAISED:
                log.warning(transition.change.value, **fields)
            else:
                log.info(transition.change.value, **fields)
        return value

    def status(self, channel: Channel = Channel.PHONE) -> AlarmStatus:
        """Check now, and the channel's alarm as a report shows it (the live queue
        shows phone's)."""
        value = self.check(channel)
        alarm = self._alarms[channel]
        return AlarmStatus(alarm.raised, value, alarm.threshold, alarm.raised_at)
