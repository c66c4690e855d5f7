"""Reporting reads (and the feedback write): named queries from the reporting section
of queries.sql turned into plain values. Shaping them into reports is router/reporting's
job."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from router.domain import Channel, RoutingPolicy
from router.errors import StoreUnavailable
from router.reporting.intervals import Interval
from router.store.fetch import fetch
from router.store.outage import OUTAGE

# A month's report sorts a million rows: in memory, not in temporary files (work_mem is
# per sort, and only these read-only transactions get it). JIT compiles for longer than
# these queries run. Each report is planned for its own arguments (a few milliseconds)
# rather than by a generic plan: report_contacts leaves out its costliest reads when
# `detail` is false only where PostgreSQL sees that false as a constant.
REPORT_SETTINGS = (
    "SET LOCAL work_mem = '128MB'; SET LOCAL jit = off; "
    "SET LOCAL plan_cache_mode = force_custom_plan"
)


REPLICA_SETTING = "ROUTER_REPORTING_DATABASE_URL"

REPLICA_REFUSALS = (
    *OUTAGE,
    # A URL naming a database, a user or a server that is not (or not yet) there.
    asyncpg.InvalidCatalogNameError,
    asyncpg.InvalidAuthorizationSpecificationError,
    asyncpg.UndefinedTableError,
    # A standby cancels a read whose rows its replay must remove ("conflict with
    # recovery", SQLSTATE 40001): the same report asked again usually passes.
    asyncpg.SerializationError,
)
"""What a report read on the replica may fail with that says the replica cannot serve
it now: UNAVAILABLE, naming the setting, rather than INTERNAL."""


@dataclass(frozen=True, slots=True)
class Replica:
    """The read replica reports read from (ROUTER_REPORTING_DATABASE_URL)."""

    pool: asyncpg.Pool
    server: str
    """host:port (never the password), for the messages."""


@dataclass(frozen=True, slots=True)
class ContactFigures:
    """Contacts of one channel (and skill) queued in one interval."""

    interval_start: datetime
    channel: Channel
    skill: str
    """The required skill the row is for; "" when not split by skill, or for contacts
    that need no skill."""
    threshold_seconds: float
    offered: int
    answered: int
    abandoned: int
    short_abandoned: int
    answered_within_threshold: int
    still_waiting: int
    """Neither answered, abandoned nor cancelled yet."""
    asa_seconds: float | None
    longest_wait_seconds: float | None
    aht_seconds: float | None
    mean_talk_seconds: float | None
    mean_acw_seconds: float | None
    total_wait_seconds: float
    """Sum of the waits of answered and abandoned contacts (patience estimates)."""
    detail: ContactDetail | None
    """None when read without detail (service level and staffing need none of it)."""
    team: str = ""
    """The team of the agents who handled these contacts; "" when not split by team, and
    for contacts nobody answered."""
    cancelled: int = 0
    """Cancelled by a supervisor (not customers): neither answered nor abandoned."""


@dataclass(frozen=True, slots=True)
class CallbackFigures:
    """Queued callbacks queued in one interval that came from one channel."""

    interval_start: datetime
    requested_from: Channel
    requested: int
    placed: int
    """First dialled (at least once)."""
    placed_within_target: int
    """First dialled within the callback target of queued_at (or of not_before)."""
    reached: int
    unreached: int
    unreached_before_dial: int
    """Of the unreached, those never dialled (their window closed first)."""
    cancelled: int
    """Abandoned before being reached: the customer no longer wanted the call."""
    cancelled_by_supervisor: int
    """Cancelled by a supervisor before being reached (CancelContact: not a customer)."""
    waiting: int
    """Not reached and not ended yet: scheduled, queued, offered or being dialled."""
    dials: int
    mean_seconds_to_placed: float | None
    """From queued_at to the first dial."""
    mean_seconds_to_reached: float | None
    """From queued_at to reaching the customer."""

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> CallbackFigures:
        return cls(**{**dict(row), "requested_from": Channel(row["requested_from"])})


@dataclass(frozen=True, slots=True)
class CallbackWork:
    """Phone agents' time on queued callbacks begun in one interval (staffing's
    workload beside the inbound calls)."""

    interval_start: datetime
    dials: int
    dial_seconds: float
    """From each dial's start (the offer accepted) to its outcome."""
    reached: int
    handle_seconds: float
    """From reaching each customer to the end of its wrap-up (talk and ACW)."""

    @property
    def agent_seconds(self) -> float:
        return self.dial_seconds + self.handle_seconds


@dataclass(frozen=True, slots=True)
class ContactDetail:
    """The figures only the contact report shows; the costly part of the read (each
    contact's customer history, the transfer events, a sort of the answered waits)."""

    p90_wait_seconds: float | None
    transfers: int
    returning_answered: int
    """Answered contacts whose customer had a contact completed before they were queued."""
    returning_to_previous_agent: int
    """Of those, first answered by the agent who completed the customer's latest one."""


@dataclass(frozen=True, slots=True)
class StoredForecast:
    """A forecast as it is stored when made (its intervals apart)."""

    made_at: datetime
    channel: Channel
    interval_seconds: int
    time_zone: str
    history_start: datetime
    starts_at: datetime
    ends_at: datetime
    level: float
    model: str


@dataclass(frozen=True, slots=True)
class StoredInterval:
    """One interval of a stored forecast."""

    interval_start: datetime
    forecast_id: int
    contacts: float
    aht_seconds: float


@dataclass(frozen=True, slots=True)
class DispositionFigures:
    channel: Channel
    disposition: str
    contacts: int
    aht_seconds: float | None
    ratings: int
    mean_rating: float | None
    team: str = ""


@dataclass(frozen=True, slots=True)
class FeedbackFigures:
    """Ratings of one channel's (and team's) contacts; agent_id None for the total."""

    channel: Channel
    agent_id: str | None
    ratings: int
    mean_rating: float
    team: str = ""


@dataclass(frozen=True, slots=True)
class AgentFigures:
    agent_id: str
    contacts_handled: int
    completed: int
    aht_seconds: float | None
    acw_seconds_total: float
    signed_in_seconds: float
    ready_seconds: float
    handling_seconds: float
    available_seconds: float
    """Ready or handling: the time an agent could take or was taking contacts."""


@dataclass(frozen=True, slots=True)
class StatusTime:
    agent_id: str
    status: str
    reason: str
    seconds: float


@dataclass(frozen=True, slots=True)
class Session:
    agent_id: str
    signed_in_at: datetime
    signed_out_at: datetime | None
    signed_out_by: str | None = None
    """The supervisor (its token's name) who signed the agent out, if one did."""


class Reports:
    """Reads for reports; writes customer feedback.

    With a `replica` every report reads there, so that a month-long report does not
    compete with the router's writes; the writes (feedback, channel targets) always go
    to the primary, `pool`."""

    def __init__(self, pool: asyncpg.Pool, replica: Replica | None = None) -> None:
        self._pool = pool
        self._replica = replica

    async def _read(self, name: str, *args: Any) -> list[asyncpg.Record]:
        if self._replica is None:
            return await fetch(self._pool, name, *args, settings=REPORT_SETTINGS)
        try:
            return await fetch(self._replica.pool, name, *args, settings=REPORT_SETTINGS)
        except REPLICA_REFUSALS as error:
            raise StoreUnavailable(
                f"the reporting database at {self._replica.server} ({REPLICA_SETTING}) "
                f"cannot serve reports now: {error}"
            ) from error

    async def contacts(
        self,
        start: datetime,
        end: datetime,
        interval: Interval,
        thresholds: Mapping[Channel, float],
        short_abandon: float,
        *,
        by_skill: bool = False,
        detail: bool = True,
        time_zone: str = "UTC",
        by_team: bool = False,
        team: str | None = None,
    ) -> list[ContactFigures]:
        """Contacts queued in [start, end) per interval (in `time_zone`, an IANA name) and
        channel (of `thresholds`: each channel's answer threshold), required skill with
        `by_skill`, and team with `by_team` (only `team`'s unless None); without
        `detail`, only what service level and staffing need, at a fraction of the cost."""
        channels = list(thresholds)
        rows = await self._read(
            "report_contacts",
            start,
            end,
            interval.fixed_length or timedelta(hours=1),
            interval.calendar_unit,
            [c.value for c in channels],
            [thresholds[c] for c in channels],
            short_abandon,
            by_skill,
            detail,
            time_zone,
            by_team,
            team,
        )
        return [
            ContactFigures(
                interval_start=r["interval_start"],
                channel=Channel(r["channel"]),
                skill=r["skill"],
                threshold_seconds=r["threshold"],
                offered=r["offered"],
                answered=r["answered"],
                abandoned=r["abandoned"],
                short_abandoned=r["short_abandoned"],
                answered_within_threshold=r["answered_within_threshold"],
                still_waiting=r["still_waiting"],
                cancelled=r["cancelled"],
                asa_seconds=r["asa_seconds"],
                longest_wait_seconds=r["longest_wait_seconds"],
                aht_seconds=r["aht_seconds"],
                mean_talk_seconds=r["mean_talk_seconds"],
                mean_acw_seconds=r["mean_acw_seconds"],
                total_wait_seconds=r["total_wait_seconds"],
                detail=ContactDetail(
                    p90_wait_seconds=r["p90_wait_seconds"],
                    transfers=r["transfers"],
                    returning_answered=r["returning_answered"],
                    returning_to_previous_agent=r["returning_to_previous_agent"],
                )
                if detail
                else None,
                team=r["team"],
            )
            for r in rows
        ]

    async def callbacks(
        self,
        start: datetime,
        end: datetime,
        interval: Interval,
        target: float,
        time_zone: str = "UTC",
    ) -> list[CallbackFigures]:
        """Queued callbacks queued in [start, end) per interval (as `contacts` bins
        them) and channel they came from; `target`: the callback target, seconds."""
        rows = await self._read(
            "report_callbacks",
            start,
            end,
            interval.fixed_length or timedelta(hours=1),
            interval.calendar_unit,
            time_zone,
            target,
        )
        return [CallbackFigures.from_row(r) for r in rows]

    async def callback_work(
        self, start: datetime, end: datetime, length: timedelta, time_zone: str = "UTC"
    ) -> list[CallbackWork]:
        """Agent time on callbacks per interval of `length` (binned as `contacts` bins
        them), in the interval each dial or conversation began; only finished ones."""
        rows = await self._read("report_callback_work", start, end, length, time_zone)
        return [CallbackWork(**dict(r)) for r in rows]

    async def dispositions(
        self, start: datetime, end: datetime, *, by_team: bool = False, team: str | None = None
    ) -> list[DispositionFigures]:
        """Per channel and disposition, and team with `by_team` (only `team`'s unless
        None)."""
        rows = await self._read("report_dispositions", start, end, by_team, team)
        return [
            DispositionFigures(
                Channel(r["channel"]),
                r["disposition"] or "",
                r["contacts"],
                r["aht_seconds"],
                r["ratings"],
                r["mean_rating"],
                r["team"],
            )
            for r in rows
        ]

    async def feedback(
        self, start: datetime, end: datetime, *, by_team: bool = False, team: str | None = None
    ) -> list[FeedbackFigures]:
        """Per channel and agent, and team with `by_team` (only `team`'s unless None)."""
        rows = await self._read("report_feedback", start, end, by_team, team)
        return [
            FeedbackFigures(
                Channel(r["channel"]), r["agent_id"], r["ratings"], r["mean_rating"], r["team"]
            )
            for r in rows
        ]

    async def agent_teams(self, before: datetime) -> dict[str, str]:
        """Each agent's team as of its latest sign-in before `before` ("" for none)."""
        rows = await self._read("report_agent_teams", before)
        return {r["agent_id"]: r["team"] for r in rows}

    async def team_known(self, team: str) -> bool:
        """Whether any agent ever signed in with `team`."""
        rows = await self._read("team_known", team)
        return bool(rows[0]["known"])

    async def agents(self, start: datetime, end: datetime, now: datetime) -> list[AgentFigures]:
        rows = await self._read("report_agents", start, end, now)
        return [
            AgentFigures(
                agent_id=r["agent_id"],
                contacts_handled=r["contacts_handled"],
                completed=r["completed"],
                aht_seconds=None if r["aht_seconds"] is None else float(r["aht_seconds"]),
                acw_seconds_total=r["acw_seconds_total"],
                signed_in_seconds=r["signed_in_seconds"],
                ready_seconds=r["ready_seconds"],
                handling_seconds=r["handling_seconds"],
                available_seconds=r["available_seconds"],
            )
            for r in rows
        ]

    async def agent_status_times(
        self, start: datetime, end: datetime, now: datetime
    ) -> list[StatusTime]:
        rows = await self._read("report_agent_status", start, end, now)
        return [StatusTime(r["agent_id"], r["status"], r["reason"], r["seconds"]) for r in rows]

    async def ready_agents(
        self, starts: Sequence[datetime], length: timedelta, now: datetime
    ) -> dict[datetime, float]:
        """The time-weighted mean number of agents signed in and ready in each interval
        of `length` beginning at `starts` (in order), up to `now`."""
        if not starts:
            return {}
        rows = await self._read(
            "report_ready_agents", list(starts), length, starts[0], starts[-1] + length, now
        )
        return {r["interval_start"]: r["ready_agents"] for r in rows}

    async def sessions(self, start: datetime, end: datetime) -> list[Session]:
        rows = await self._read("report_agent_sessions", start, end)
        return [
            Session(r["agent_id"], r["signed_in_at"], r["signed_out_at"], r["signed_out_by"])
            for r in rows
        ]

    async def record_feedback(
        self, contact_id: str, rating: int, comment: str, source: str, at: datetime
    ) -> None:
        """Durable when this returns; the contact must exist (checked by the caller).

        Written on its own, not through the group commit: feedback changes no routing
        state, so it needs no ordering with the router's writes, and a survey system
        retries it safely (it replaces)."""
        await fetch(self._pool, "record_feedback", UUID(contact_id), rating, comment, source, at)

    async def first_contact(
        self, channel: Channel, start: datetime, end: datetime
    ) -> datetime | None:
        """When the channel's first contact queued in [start, end) was queued."""
        rows = await self._read("first_contact", channel.value, start, end)
        first: datetime | None = rows[0]["first_queued_at"]
        return first

    async def save_forecast(
        self,
        forecast: StoredForecast,
        rows: Sequence[tuple[datetime, float, float, float, float]],
    ) -> int:
        """Store a forecast and its (start, contacts, lower, upper, AHT) intervals in
        one statement, on the primary; its id."""
        columns = list(zip(*rows, strict=True)) if rows else [(), (), (), (), ()]
        result = await fetch(
            self._pool,
            "save_forecast",
            forecast.made_at,
            forecast.channel.value,
            forecast.interval_seconds,
            forecast.time_zone,
            forecast.history_start,
            forecast.starts_at,
            forecast.ends_at,
            forecast.level,
            forecast.model,
            *(list(c) for c in columns),
        )
        forecast_id: int = result[0]["id"]
        return forecast_id

    async def forecast_intervals(
        self,
        channel: Channel,
        interval_seconds: int,
        start: datetime,
        end: datetime,
        forecast_id: int | None = None,
    ) -> list[StoredInterval]:
        """The stored forecast of each interval starting in [start, end): forecast
        `forecast_id`'s, or the one made from the latest history before the interval.
        Read on the primary, where forecasts are written (a replica may lag)."""
        rows = await fetch(
            self._pool,
            "forecast_intervals",
            channel.value,
            interval_seconds,
            start,
            end,
            forecast_id,
            settings=REPORT_SETTINGS,
        )
        return [
            StoredInterval(r["interval_start"], r["forecast_id"], r["contacts"], r["aht_seconds"])
            for r in rows
        ]

    async def save_channel_targets(self, policy: RoutingPolicy) -> None:
        """Write the policy's answer targets for the SQL views (channel_targets)."""
        channels: Sequence[Channel] = list(Channel)
        await fetch(
            self._pool,
            "save_channel_targets",
            [c.value for c in channels],
            [policy.of(c).answer_target for c in channels],
            [policy.short_abandon for _ in channels],
        )
