"""Staffing plans: the agents each interval needs, from a forecast or from recorded
history, for contacts handled several at a time and for the share of paid time agents
are away. Pure: values in, values out (the worker process runs `staff_many`).

Concurrency: an agent who holds `c` contacts at once (3 chats) counts as `c` servers of
the queue model, and the agents needed are the servers needed / c, rounded up. This is
an approximation: it takes each contact's handle time as measured while its agent held
others, and it treats an agent's contacts as independent servers, although they leave
together when the agent goes on a break.

Shrinkage: agents to schedule = agents needed / (1 - shrinkage), rounded up.

Inputs are bounded to what a contact center can mean, so that every computation a
request starts is bounded too: see the MAX_ and MIN_ constants.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from router.reporting import erlang_a, staffing

MAX_INTERVALS = 10_000
"""Intervals in one request: four months of 15-minute intervals."""
MAX_CALLS = 1_000_000.0
"""Calls in one interval (more than a large center takes in a day)."""
MAX_AHT_SECONDS = 86_400.0
"""A day: a 10-hour call is legitimate; an average handle time of more is not."""
MAX_THRESHOLD_SECONDS = 31_622_400.0
"""A year, the bound of the channels' answer targets (ROUTER_<CHANNEL>_TARGET_SECONDS)."""
MIN_PATIENCE_SECONDS = 0.001
MAX_PATIENCE_SECONDS = 7 * 86_400.0
"""Callers' mean patience for Erlang A, a millisecond (a history of hang-ups at once
shows tens of them) to a week. Below, 1 / patience stops being a rate (5e-324 s made it
infinite)."""
MAX_AGENTS = staffing.MAX_AGENTS
"""Agents needed, and agents scheduled, in one interval."""

ERLANG_C_MODEL = (
    "Erlang C (callers wait, none abandon): traffic A = calls x AHT / interval; "
    "P(wait) = C(n, A); service level = 1 - C(n, A) e^(-(n - A) threshold / AHT); "
    "ASA = C(n, A) AHT / (n - A); servers n = the fewest that reach the target"
)
ERLANG_A_MODEL = (
    "Erlang A (M/M/n+M: callers wait with exponential patience and may abandon), "
    "computed exactly from the birth-death chain; service level = answered within "
    "threshold / (calls - abandoned within the short-abandon limit); servers n = the "
    "fewest that reach the target"
)
CONCURRENCY_AND_SHRINKAGE = (
    "agents = servers / concurrency, rounded up (an agent holding c contacts at once "
    "counts as c servers, an approximation: each contact keeps the handle time measured "
    "while its agent held others); agents_scheduled = agents / (1 - shrinkage), rounded up"
)

BLENDED = (
    "blended: one pool of agents serves every channel asked, each agent counted once; "
    "contacts = the channels' contacts summed, each taking AHT / its channel's "
    "concurrency of an agent's time; agents = the fewest servers of that one queue that "
    "reach the strictest goal within the shortest answer target (an approximation: "
    "every contact waits in one line at phone's promise, so it staffs at or above what "
    "blended agents need); separate_agents = the sum of each channel staffed alone"
)

CALLBACK_WORK = (
    "phone from history: agents += callback Erlangs / max occupancy, rounded up with "
    "the calls' agents (queued callbacks are outbound work, not arrivals of the queue: "
    "each dial's time and each reached callback's talk and wrap-up, in the interval it "
    "began, / interval length); occupancy = (traffic + callback Erlangs) / agents"
)


@dataclass(frozen=True, slots=True)
class StaffingQuestion:
    """What a plan is asked to reach, for every interval alike."""

    interval_seconds: float
    target: float
    threshold: float
    max_occupancy: float
    concurrency: float
    """Contacts one agent handles at once, at least 1."""
    shrinkage: float
    """Share of paid time agents are not available, in [0, 1)."""
    patience: float | None
    """Callers' mean patience in seconds for Erlang A; None for Erlang C."""
    short_abandon: float
    blended: bool = False
    """The channels' summed workload staffed as one pool (concurrency already applied)."""
    callbacks: bool = False
    """Queued callbacks' work is added to the agents (phone from history)."""

    @property
    def model(self) -> str:
        model = ERLANG_C_MODEL if self.patience is None else ERLANG_A_MODEL
        if self.callbacks:
            model = f"{model}; {CALLBACK_WORK}"
        if self.blended:
            return f"{model}; {BLENDED}; agents_scheduled = agents / (1 - shrinkage), rounded up"
        return f"{model}; {CONCURRENCY_AND_SHRINKAGE}"


@dataclass(frozen=True, slots=True)
class StaffedInterval:
    """The agents one interval needs, and what they achieve."""

    calls: float
    aht_seconds: float
    traffic_erlangs: float
    agents: int
    agents_scheduled: int
    service_level: float
    asa_seconds: float
    occupancy: float
    probability_of_waiting: float
    abandonment: float | None
    """Erlang A: the share of calls that abandon; None for Erlang C."""
    callback_erlangs: float = 0.0
    """Phone from history: agent time on queued callbacks (dials and reached customers'
    handle time) / interval length, counted in `agents` beside the calls' queue."""


@dataclass(frozen=True, slots=True)
class Actual:
    """What a recorded interval had: the agents ready and the service level measured."""

    staffed_agents: float
    """Time-weighted mean number of agents signed in and ready."""
    service_level: float | None
    """As the router measures it; None when no contact counts."""
    missed: bool
    """The measured service level was below the target."""


@dataclass(frozen=True, slots=True)
class StaffingRow:
    interval_start: datetime
    staffed: StaffedInterval
    actual: Actual | None = None
    """From history only: what the interval actually had."""
    separate_agents: int | None = None
    """Blended: the agents the channels need if each is staffed on its own."""


@dataclass(frozen=True, slots=True)
class StaffingPlan:
    """What GetStaffing answers: one row per interval, in order."""

    rows: list[StaffingRow]
    question: StaffingQuestion


@dataclass(frozen=True, slots=True)
class StaffedChunk:
    """What one bounded piece of work in the worker process returns: the intervals
    staffed, in order, and if one could not be, why (it is the next one)."""

    staffed: list[StaffedInterval]
    problem: str | None = None


def interval_problem(calls: float, aht_seconds: float, interval_seconds: float) -> str | None:
    """Why an interval's forecast cannot be staffed, or None."""
    if not 0 <= calls <= MAX_CALLS:
        return f"calls must be between 0 and {MAX_CALLS:.0f}"
    if not 0 <= aht_seconds <= MAX_AHT_SECONDS:
        return f"aht_seconds must be between 0 and {MAX_AHT_SECONDS:.0f} (a day)"
    traffic = calls * aht_seconds / interval_seconds
    if traffic >= MAX_AGENTS:
        return (
            f"calls x aht_seconds / interval is {traffic:.0f} Erlangs: more than "
            f"{MAX_AGENTS} agents would be needed"
        )
    return None


def staff(question: StaffingQuestion, calls: float, aht_seconds: float) -> StaffedInterval:
    """Staff one interval; ValueError when it cannot be (the message says why)."""
    problem = interval_problem(calls, aht_seconds, question.interval_seconds)
    if problem is not None:
        raise ValueError(problem)
    if question.patience is None:
        need = staffing.agents_needed(
            calls,
            aht_seconds,
            question.interval_seconds,
            target=question.target,
            threshold=question.threshold,
            max_occupancy=question.max_occupancy,
        )
        servers, abandonment = need.agents, None
        figures: staffing.Staffing | erlang_a.ErlangA = need
    else:
        need_a = erlang_a.agents_needed_a(
            calls,
            aht_seconds,
            question.interval_seconds,
            patience_seconds=question.patience,
            target=question.target,
            threshold=question.threshold,
            short_abandon=question.short_abandon,
            max_agents=MAX_AGENTS,
        )
        servers, abandonment, figures = need_a.agents, need_a.abandonment, need_a
    agents = whole(servers / question.concurrency)
    scheduled = whole(agents / (1 - question.shrinkage))
    if scheduled > MAX_AGENTS:
        raise ValueError(
            f"{agents} agents at a shrinkage of {question.shrinkage} means scheduling "
            f"{scheduled}, more than {MAX_AGENTS}"
        )
    return StaffedInterval(
        calls=calls,
        aht_seconds=aht_seconds,
        traffic_erlangs=figures.traffic_erlangs,
        agents=agents,
        agents_scheduled=scheduled,
        service_level=figures.service_level,
        asa_seconds=figures.asa_seconds,
        occupancy=figures.occupancy,
        probability_of_waiting=figures.probability_of_waiting,
        abandonment=abandonment,
    )


def with_callbacks(
    staffed: StaffedInterval, question: StaffingQuestion, callback_erlangs: float
) -> StaffedInterval:
    """`staffed` (the inbound calls' agents) with the agents a history's queued callbacks
    kept busy: their workload in agent-Erlangs at the occupancy allowed, added, not
    queued. Callbacks are outbound work the center schedules itself (the first dial
    has its own target, not a caller's answer within seconds), so they are no arrivals of
    the Erlang queue: the calls' service level, ASA and P(wait) stay those of the
    inbound agents, and occupancy becomes all work / all agents (within the cap: the
    added agents work at it). ValueError past MAX_AGENTS."""
    if callback_erlangs <= 0:
        return staffed
    agents = whole(staffed.agents + callback_erlangs / question.max_occupancy)
    scheduled = whole(agents / (1 - question.shrinkage))
    if scheduled > MAX_AGENTS:
        raise ValueError(
            f"{agents} agents with the callbacks' {callback_erlangs:.0f} Erlangs at a "
            f"shrinkage of {question.shrinkage} means scheduling {scheduled}, more than "
            f"{MAX_AGENTS}"
        )
    busy = staffed.traffic_erlangs / question.concurrency + callback_erlangs
    return replace(
        staffed,
        agents=agents,
        agents_scheduled=scheduled,
        occupancy=busy / agents,
        callback_erlangs=callback_erlangs,
    )


def whole(value: float) -> int:
    """`value` rounded up, forgiving the float noise of a division (14 / 0.7 is
    20.000000000000004, which is 20 agents, not 21)."""
    return math.ceil(value - 1e-9)


def staff_many(
    question: StaffingQuestion, work: Sequence[tuple[float, float]], seconds: float
) -> StaffedChunk:
    """Staff (calls, AHT) intervals in order until `seconds` have passed (at least one):
    a bounded piece of a request, so that the worker process moves on to the next
    request's piece and a cancelled request stops after the piece it is in."""
    deadline = time.monotonic() + seconds
    staffed: list[StaffedInterval] = []
    for calls, aht in work:
        try:
            staffed.append(staff(question, calls, aht))
        except (ValueError, OverflowError) as error:
            return StaffedChunk(staffed, str(error))
        if time.monotonic() >= deadline:
            break
    return StaffedChunk(staffed)


def history_forecast(
    intervals: Sequence[tuple[datetime, int, int, float | None]],
) -> list[tuple[datetime, float, float]]:
    """(start, calls, AHT) per interval from recorded (start, offered, short abandoned,
    AHT) rows: calls are the offered contacts less short abandons (they put no work on
    anyone); an interval without a completed contact takes the mean AHT of the range,
    weighted by calls."""
    known = [(o - s, aht) for _, o, s, aht in intervals if aht is not None and o - s > 0]
    weight = sum(calls for calls, _ in known)
    overall = sum(calls * aht for calls, aht in known) / weight if weight else 0.0
    return [
        (start, float(offered - short), overall if aht is None else aht)
        for start, offered, short, aht in intervals
    ]


def estimated_patience(abandoned: int, total_wait_seconds: float) -> float | None:
    """Callers' mean patience from history: the time all callers spent waiting (the
    answered ones waited without giving up) per abandon, the estimate of an exponential
    patience's mean; None without an abandon."""
    return None if abandoned == 0 else total_wait_seconds / abandoned
