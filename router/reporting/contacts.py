"""Contact figures as reports: each row's service level and abandonment rate, and the
goals to read them against. Pure: values in, values out.

Service level is computed in one place. One SQL statement counts (report_contacts in
router/store/queries.sql, for GetServiceLevel and GetContactReport alike) and
`contact_rows` divides with router.domain.service_level's formula. The SQL view
interval_service_level, for reporting jobs that read PostgreSQL, counts by the same
definitions; tests/integration/test_reports.py checks that they agree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from router.domain import Channel, RoutingPolicy
from router.domain.service_level import service_level
from router.reporting.report import ratio
from router.store.reports import ContactFigures


@dataclass(frozen=True, slots=True)
class ServiceLevelGoal:
    """A channel's promise as the router is configured: answered within
    `threshold_seconds` for at least `goal` of the contacts that count; a rolling
    service level below `alarm_below` is an alarm."""

    channel: Channel
    threshold_seconds: float
    goal: float
    alarm_below: float


def goals(
    policy: RoutingPolicy, channels: Iterable[Channel] = tuple(Channel)
) -> list[ServiceLevelGoal]:
    """The goal of each of `channels`, in routing order."""
    return [
        ServiceLevelGoal(
            channel,
            policy.of(channel).answer_target,
            policy.of(channel).service_level_goal,
            policy.of(channel).service_level_alarm,
        )
        for channel in sorted(set(channels), key=lambda c: c.rank)
    ]


@dataclass(frozen=True, slots=True)
class ContactRow:
    """One channel (and skill) in one interval: the counted figures and the ratios."""

    figures: ContactFigures
    service_level: float | None
    """answered within threshold / (answered + abandoned - short abandoned); None when
    no contact counts."""
    abandonment_rate: float | None
    """abandoned / (offered - cancelled): a contact a supervisor cancelled (not a
    customer) is no chance to abandon; None when that is 0."""


@dataclass(frozen=True, slots=True)
class ContactReport:
    rows: list[ContactRow]
    formula: str
    short_abandon_seconds: float
    goals: list[ServiceLevelGoal]
    as_of: datetime
    time_zone: str
    """The IANA time zone the intervals are in."""


def contact_rows(figures: Iterable[ContactFigures]) -> list[ContactRow]:
    """Rows in report order (interval, channel in routing order, skill, team), with the
    ratios."""
    return [
        ContactRow(
            f,
            service_level(f.answered_within_threshold, f.answered, f.abandoned, f.short_abandoned),
            ratio(f.abandoned, f.offered - f.cancelled),
        )
        for f in sorted(figures, key=lambda f: (f.interval_start, f.channel.rank, f.skill, f.team))
    ]
