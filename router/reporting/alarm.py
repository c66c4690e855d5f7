"""The service-level alarm: a channel's rolling service level below its configured alarm
line (ROUTER_<CHANNEL>_SERVICE_LEVEL_ALARM, 70% by default) is an alarm.

Pure: the caller feeds the rolling value with the time it was read and acts on the
transitions returned (log a warning, show it in the live queue status). A reading of
None (nothing counted in the window) changes nothing: an empty window is neither a
failure nor a recovery.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum


class AlarmChange(Enum):
    RAISED = "service_level_alarm_raised"
    CLEARED = "service_level_alarm_cleared"


@dataclass(frozen=True, slots=True)
class AlarmTransition:
    change: AlarmChange
    at: datetime
    service_level: float
    threshold: float


@dataclass(frozen=True, slots=True)
class AlarmStatus:
    """The alarm as a report shows it."""

    raised: bool
    rolling_service_level: float | None
    """None when nothing counted in the window."""
    threshold: float
    raised_at: datetime | None


class ServiceLevelAlarm:
    """Raised when a reading falls below `threshold`; cleared when one reaches it again."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.raised_at: datetime | None = None

    @property
    def raised(self) -> bool:
        return self.raised_at is not None

    def observe(self, value: float | None, at: datetime) -> AlarmTransition | None:
        """Take one reading; return the transition it causes, if any."""
        if value is None:
            return None
        if not self.raised and value < self.threshold:
            self.raised_at = at
            return AlarmTransition(AlarmChange.RAISED, at, value, self.threshold)
        if self.raised and value >= self.threshold:
            self.raised_at = None
            return AlarmTransition(AlarmChange.CLEARED, at, value, self.threshold)
        return None
