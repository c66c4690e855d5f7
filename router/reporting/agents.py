"""The agent report from its four reads: each agent's contacts and time, time by status,
attendance and customer feedback, joined per agent. Pure: values in, values out.

Front-line agents are measured on few things (attendance, after-contact work,
utilization, feedback); handle time is reported, never used to rank.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass, field
from datetime import datetime

from router.domain import AgentStatus
from router.reporting.report import ratio
from router.store.reports import AgentFigures, FeedbackFigures, Session, StatusTime

OCCUPANCY_FORMULA = "occupancy = time handling contacts / time ready or handling"
UTILIZATION_FORMULA = "utilization = time handling contacts / time signed in (ready or away)"
HANDLING = (
    "handling = time holding at least one answered contact, from answer to the end of "
    "wrap-up (parallel chats count once)"
)
FORMULAS = f"{OCCUPANCY_FORMULA}; {UTILIZATION_FORMULA}; {HANDLING}"

_REPORTED = {AgentStatus.READY.value: AgentStatus.READY, AgentStatus.AWAY.value: AgentStatus.AWAY}
"""Offline time is not reported."""


@dataclass(frozen=True, slots=True)
class TimeInStatus:
    status: AgentStatus
    reason: str
    """The away reason ("lunch", "missed"); "" when ready."""
    seconds: float


@dataclass(slots=True)
class AgentRow:
    """One agent over the range; time cut at the range's edges and at the report's as_of."""

    agent_id: str
    contacts_handled: int
    contacts_completed: int
    aht_seconds: float | None
    mean_acw_seconds: float | None
    acw_seconds: float
    signed_in_seconds: float
    ready_seconds: float
    handling_seconds: float
    occupancy: float | None
    utilization: float | None
    status_times: list[TimeInStatus] = field(default_factory=list)
    sessions: list[Session] = field(default_factory=list)
    ratings: int = 0
    mean_rating: float | None = None
    team: str = ""
    """The team of the agent's latest sign-in before the range's end."""


@dataclass(frozen=True, slots=True)
class AgentReport:
    rows: list[AgentRow]
    """Ordered by agent id."""
    formulas: str
    as_of: datetime


def agent_rows(
    agents: Iterable[AgentFigures],
    status_times: Iterable[StatusTime],
    sessions: Iterable[Session],
    feedback: Iterable[FeedbackFigures],
    wanted: Set[str] = frozenset(),
    teams: Mapping[str, str] | None = None,
    team: str | None = None,
) -> list[AgentRow]:
    """One row per agent with contacts or time (only `wanted` ones, unless empty, and
    only `team`'s, unless None), with its team (of `teams`), time by status, sessions and
    ratings (over every channel) attached."""
    teams = teams or {}
    rows: dict[str, AgentRow] = {}
    for a in agents:
        if wanted and a.agent_id not in wanted:
            continue
        if team is not None and teams.get(a.agent_id, "") != team:
            continue
        rows[a.agent_id] = AgentRow(
            agent_id=a.agent_id,
            contacts_handled=a.contacts_handled,
            contacts_completed=a.completed,
            aht_seconds=a.aht_seconds,
            mean_acw_seconds=ratio(a.acw_seconds_total, a.completed),
            acw_seconds=a.acw_seconds_total,
            signed_in_seconds=a.signed_in_seconds,
            ready_seconds=a.ready_seconds,
            handling_seconds=a.handling_seconds,
            occupancy=ratio(a.handling_seconds, a.available_seconds),
            utilization=ratio(a.handling_seconds, a.signed_in_seconds),
            team=teams.get(a.agent_id, ""),
        )
    for t in status_times:
        if t.agent_id in rows and t.status in _REPORTED:
            rows[t.agent_id].status_times.append(
                TimeInStatus(_REPORTED[t.status], t.reason, t.seconds)
            )
    for s in sessions:
        if s.agent_id in rows:
            rows[s.agent_id].sessions.append(s)
    ratings: dict[str, tuple[int, float]] = {}
    for f in feedback:
        if f.agent_id is not None:
            count, total = ratings.get(f.agent_id, (0, 0.0))
            ratings[f.agent_id] = (count + f.ratings, total + f.ratings * f.mean_rating)
    for agent_id, (count, total) in ratings.items():
        if agent_id in rows:
            rows[agent_id].ratings = count
            rows[agent_id].mean_rating = total / count
    return [rows[k] for k in sorted(rows)]
