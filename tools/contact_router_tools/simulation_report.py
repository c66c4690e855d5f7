"""What a simulation run records about its own contacts, and the report printed at its end.

Two views are kept apart on purpose:

* client side: this run's contacts only, timed by the simulator with its own monotonic
  clock (wait = SubmitContact acknowledged -> AcceptOffer acknowledged), in simulated
  seconds (real seconds x the scenario's time scale);
* server side: ReportingService.GetServiceLevel for the run's time window, which covers
  every contact queued in that window, not only this run's.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from contactrouter.v1 import contact_router_pb2 as pb

from router.domain.wait_reason import WaitReason

CHANNEL_NAMES = ("phone", "chat", "email")
CHANNEL_ENUMS: dict[str, pb.Channel.ValueType] = {
    "phone": pb.CHANNEL_PHONE,
    "chat": pb.CHANNEL_CHAT,
    "email": pb.CHANNEL_EMAIL,
}


# Short names of the proto's PreferenceSource and WaitReason values ("previous_agent").
PREFERENCE_SOURCES: dict[int, str] = {
    value: name.removeprefix("PREFERENCE_SOURCE_").lower()
    for name, value in pb.PreferenceSource.items()
    if value
}
WAIT_REASONS: dict[int, str] = {
    value: name.removeprefix("WAIT_REASON_").lower()
    for name, value in pb.WaitReason.items()
    if value
}
UNSERVED_REASONS = frozenset(reason.value for reason in WaitReason if reason.unserved)

CLIENT_HEADER = ["channel", "submitted", "answered", "abandoned", "left", "completed", "SL %"]
CLIENT_HEADER += ["ASA", "p90 wait", "max wait", "talk", "ACW", "AHT"]


def channel_name(value: int) -> str:
    """The short name ("phone") of a proto Channel value; "unknown" for others."""
    for name, enum in CHANNEL_ENUMS.items():
        if enum == value:
            return name
    return "unknown"


@dataclass
class ContactRecord:
    """One contact this run submitted, with client-side monotonic timestamps."""

    key: str
    channel: str
    required_skills: frozenset[str] = frozenset()
    preferred_skills: frozenset[str] = frozenset()
    matched: bool = False  # answered by an agent with every preferred skill
    contact_id: str = ""
    agent_id: str = ""  # who answered it
    queue_position: int = 0  # GetContact right after a submission that had to queue
    estimated_wait: float | None = None  # what that GetContact estimated
    handle_drawn: float | None = None  # the talk time drawn for it (its agent may add overhead)
    submitted: float | None = None  # SubmitContact acknowledged
    answered: float | None = None  # AcceptOffer acknowledged
    ended: float | None = None  # EndContact acknowledged
    completed: float | None = None  # CompleteContact acknowledged
    abandoned: float | None = None  # AbandonContact acknowledged
    abandon_reason: str = ""  # "patience" or "end-of-run"
    failed: bool = False  # never got a SubmitContact acknowledgement
    cut_short: bool = False  # talk or wrap-up ended early because the run was closing
    customer_id: str = ""
    previous_agent: str = ""  # who completed the customer's previous contact; "" if none
    named_agent: str = ""  # the agent its gateway named (SubmitContactRequest)
    router_preferred: str = ""  # the preferred agent the router gave it at submission
    router_preference: str = ""  # where that came from: "gateway", "previous_agent"
    backlog: bool = False  # waiting when the run started
    sampled_at: float | None = None  # when the GetContact after a queued submission answered
    routing_position: int = 0  # that GetContact's place in routing order among all
    wait_reason: str = ""  # that GetContact's wait reason ("agents_busy", ...)
    listed_unserved: bool = False  # GetQueueStatus listed it as unserved at least once
    last_skills: frozenset[str] | None = None  # required skills as last seen from the router
    returned_to_pool: bool = False  # its customer may come back (simulator bookkeeping)

    @property
    def kind(self) -> str:
        """ "named" (the gateway named an agent), "returning" (a customer whose previous
        contact was completed) or "new"."""
        if self.named_agent:
            return "named"
        return "returning" if self.previous_agent else "new"

    @property
    def rerouted(self) -> bool:
        """Its required skills changed while it waited: a fallback rule moved it."""
        return self.last_skills is not None and self.last_skills != self.required_skills

    @property
    def unserved(self) -> bool:
        """It waited with no signed-in agent able to serve it (seen at its arrival, or
        listed so by the live queue)."""
        return self.wait_reason in UNSERVED_REASONS or self.listed_unserved

    @property
    def final(self) -> bool:
        return self.failed or self.completed is not None or self.abandoned is not None

    @property
    def wait(self) -> float | None:
        if self.submitted is None or self.answered is None:
            return None
        return max(0.0, self.answered - self.submitted)


@dataclass
class AgentRecord:
    """One synthetic agent: its shift and the contacts it handled (simulated seconds)."""

    agent_id: str
    group: str
    handled: int = 0
    on_shift_from: float | None = None
    on_shift_until: float | None = None
    busy: list[tuple[float, float]] = field(default_factory=list)  # answered -> completed

    @property
    def occupancy(self) -> float | None:
        """Time holding at least one answered contact / time on shift (ready)."""
        if self.on_shift_from is None or self.on_shift_until is None:
            return None
        shift = self.on_shift_until - self.on_shift_from
        if shift <= 0:
            return None
        busy, reach = 0.0, -math.inf
        for start, end in sorted(self.busy):
            start, end = max(start, reach), min(end, self.on_shift_until)
            if end > start:
                busy += end - start
                reach = end
        return min(1.0, busy / shift)


@dataclass
class Spread:
    """How evenly equally skilled agents (one scenario group) shared the work."""

    group: str
    agents: int
    mean: float
    minimum: int
    maximum: int
    stdev: float

    @property
    def cv(self) -> float | None:
        """Coefficient of variation: stdev / mean."""
        return self.stdev / self.mean if self.mean else None


@dataclass
class WaitEstimates:
    """GetContact's estimated wait against the wait that followed, for contacts that
    queued and were answered."""

    contacts: int
    mean_estimate: float
    mean_actual: float
    mean_absolute_error: float

    @property
    def bias(self) -> float:
        """(mean estimate - mean actual) / mean actual."""
        return (self.mean_estimate - self.mean_actual) / self.mean_actual

    @property
    def relative_error(self) -> float:
        """Mean absolute error / mean actual wait."""
        return self.mean_absolute_error / self.mean_actual


def spreads(agents: list[AgentRecord]) -> list[Spread]:
    by_group: dict[str, list[int]] = {}
    for agent in agents:
        by_group.setdefault(agent.group, []).append(agent.handled)
    result = []
    for group, counts in by_group.items():
        mean = sum(counts) / len(counts)
        stdev = _stdev(counts, mean)
        result.append(Spread(group, len(counts), mean, min(counts), max(counts), stdev))
    return result


def _stdev(values: list[int], mean: float) -> float:
    """Population standard deviation of values around their mean."""
    return math.sqrt(sum((n - mean) ** 2 for n in values) / len(values))


def wait_estimates(records: list[ContactRecord]) -> WaitEstimates | None:
    pairs = [
        (r.estimated_wait, wait)
        for r in records
        if r.estimated_wait is not None and (wait := r.wait) is not None
    ]
    if not pairs:
        return None
    actual = sum(w for _, w in pairs) / len(pairs)
    if actual <= 0:
        return None
    return WaitEstimates(
        contacts=len(pairs),
        mean_estimate=sum(e for e, _ in pairs) / len(pairs),
        mean_actual=actual,
        mean_absolute_error=sum(abs(e - w) for e, w in pairs) / len(pairs),
    )


@dataclass
class RunCounters:
    """Events of the run other than contact timings."""

    errors: Counter[str] = field(default_factory=Counter)  # "Method CODE" -> count
    refused: Counter[str] = field(default_factory=Counter)  # expected refusals, same keys
    withdrawn: Counter[str] = field(default_factory=Counter)  # reason -> count
    offers: int = 0
    declined: int = 0
    foreign: int = 0  # contacts not from this run handled by this run's agents
    retries: int = 0  # RPCs repeated after UNAVAILABLE or DEADLINE_EXCEEDED
    queue_polls: int = 0  # GetQueueStatus answers read (scenario queue_status_every)
    unserved_peak: int = 0  # the most unserved contacts one of them reported


@dataclass
class ChannelSummary:
    """Client-side figures of one channel (or all channels)."""

    channel: str
    submitted: int
    answered: int
    abandoned: int
    left_at_end: int
    completed: int
    cut_short: int  # completed early because the run closed; left out of talk, ACW, AHT
    service_level: float | None
    asa: float | None
    p90_wait: float | None
    max_wait: float | None
    talk: float | None
    acw: float | None
    aht: float | None


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _p90(values: list[float]) -> float | None:
    """Nearest-rank 90th percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def summarize(
    channel: str, records: list[ContactRecord], threshold: float | None, short_abandon: float
) -> ChannelSummary:
    """Client-side figures for records; threshold None (all channels) gives no service level."""
    submitted = [r for r in records if r.submitted is not None]
    waits = [w for r in submitted if (w := r.wait) is not None]
    abandons = [r for r in submitted if r.abandoned is not None]  # by patience or run end
    long_abandons = [
        r for r in abandons if (r.abandoned or 0.0) - (r.submitted or 0.0) > short_abandon
    ]
    done = [r for r in submitted if r.completed is not None and r.ended is not None]
    timed = [r for r in done if not r.cut_short]  # talk and wrap-up ran their full course
    talks = [(r.ended or 0.0) - (r.answered or 0.0) for r in timed]
    acws = [(r.completed or 0.0) - (r.ended or 0.0) for r in timed]
    level = None
    if threshold is not None and (waits or long_abandons):
        within = sum(1 for w in waits if w <= threshold)
        level = within / (len(waits) + len(long_abandons))
    return ChannelSummary(
        channel=channel,
        submitted=len(submitted),
        answered=len(waits),
        abandoned=sum(1 for r in abandons if r.abandon_reason == "patience"),
        left_at_end=sum(1 for r in submitted if r.abandon_reason == "end-of-run"),
        completed=len(done),
        cut_short=len(done) - len(timed),
        service_level=level,
        asa=_mean(waits),
        p90_wait=_p90(waits),
        max_wait=max(waits) if waits else None,
        talk=_mean(talks),
        acw=_mean(acws),
        aht=_mean([t + a for t, a in zip(talks, acws, strict=True)]),
    )


@dataclass
class CustomerFigures:
    """Contacts of one channel by kind of customer: did they reach their agent?"""

    channel: str
    kind: str  # "returning", "named" or "new"
    contacts: int
    answered: int
    reached: int | None  # answered by the previous agent (returning) or the named one
    router_agreed: int | None  # returning: the router preferred the same previous agent
    service_level: float | None
    asa: float | None
    p90_wait: float | None

    @property
    def reached_share(self) -> float | None:
        return None if self.reached is None or not self.answered else self.reached / self.answered


def customer_figures(
    records: list[ContactRecord], thresholds: dict[str, float], short_abandon: float
) -> list[CustomerFigures]:
    """Per channel with returning or named customers: each kind's figures. Reached is
    measured client side: who completed the customer's previous contact (or whom the
    gateway named) against who accepted this one."""
    rows = []
    for channel, threshold in thresholds.items():
        mine = [r for r in records if r.channel == channel and r.submitted is not None]
        if all(r.kind == "new" for r in mine):
            continue
        for kind in ("returning", "named", "new"):
            group = [r for r in mine if r.kind == kind]
            if not group:
                continue
            summary = summarize(channel, group, threshold, short_abandon)
            answered = [r for r in group if r.wait is not None]
            wanted = {"returning": "previous_agent", "named": "named_agent"}.get(kind)
            reached = None
            if wanted is not None:
                reached = sum(r.agent_id == getattr(r, wanted) for r in answered)
            agreed = None
            if kind == "returning":
                agreed = sum(r.router_preferred == r.previous_agent for r in group)
            rows.append(
                CustomerFigures(
                    channel,
                    kind,
                    len(group),
                    len(answered),
                    reached,
                    agreed,
                    summary.service_level,
                    summary.asa,
                    summary.p90_wait,
                )
            )
    return rows


@dataclass
class BacklogFigures:
    """Who took the contacts waiting at the start, by order of sign-in."""

    contacts: int
    answered: int
    first_agent: str  # the first to sign in (the first listed among equals)
    first_took: int  # backlog contacts it answered
    per_agent: list[tuple[str, float | None, int, int]]  # agent, signed in at, backlog, all
    cleared_at: float | None  # when the last backlog contact was answered; None if not all
    asa: float | None
    max_wait: float | None

    @property
    def first_share(self) -> float | None:
        return self.first_took / self.answered if self.answered else None

    @property
    def cv(self) -> float | None:
        """Coefficient of variation of backlog contacts answered per agent."""
        counts = [n for _, _, n, _ in self.per_agent]
        mean = sum(counts) / len(counts) if counts else 0.0
        return _stdev(counts, mean) / mean if mean else None


def backlog_figures(
    records: list[ContactRecord], agents: list[AgentRecord]
) -> BacklogFigures | None:
    """None without a backlog. Agents in order of sign-in (never signed in: last)."""
    backlog = [r for r in records if r.backlog and r.submitted is not None]
    if not backlog or not agents:
        return None
    answered = [r for r in backlog if r.wait is not None]
    taken = Counter(r.agent_id for r in answered)
    order = sorted(
        agents,
        key=lambda a: math.inf if a.on_shift_from is None else a.on_shift_from,
    )
    waits = [r.wait or 0.0 for r in answered]
    return BacklogFigures(
        contacts=len(backlog),
        answered=len(answered),
        first_agent=order[0].agent_id,
        first_took=taken[order[0].agent_id],
        per_agent=[(a.agent_id, a.on_shift_from, taken[a.agent_id], a.handled) for a in order],
        cleared_at=(
            max(r.answered or 0.0 for r in answered) if len(answered) == len(backlog) else None
        ),
        asa=_mean(waits),
        max_wait=max(waits) if waits else None,
    )


@dataclass
class UnservedFigures:
    """Contacts of one channel that waited with no signed-in agent able to serve them,
    for one reason: GetContact's at their arrival, or "later" (listed by the live queue
    only, after agents left)."""

    channel: str
    reason: str  # "no_agent_signed_in", "no_agent_with_skills" or "later"
    contacts: int
    at_arrival: int  # GetContact right after submission gave a no-agent wait reason
    listed: int  # GetQueueStatus listed it among the unserved
    rerouted: int  # moved by the fallback rule (its required skills changed)
    answered: int
    abandoned: int  # the customer's patience ran out
    left: int  # still unanswered when the run closed
    asa: float | None  # mean wait of those answered
    max_wait: float | None
    mean_wait_unanswered: float | None  # until they left


def unserved_figures(records: list[ContactRecord]) -> list[UnservedFigures]:
    groups: dict[tuple[str, str], list[ContactRecord]] = {}
    for r in records:
        if r.unserved:
            reason = r.wait_reason if r.wait_reason in UNSERVED_REASONS else "later"
            groups.setdefault((r.channel, reason), []).append(r)
    rows = []
    for (channel, reason), mine in sorted(groups.items()):
        waits = [w for r in mine if (w := r.wait) is not None]
        gone = [
            (r.abandoned or 0.0) - (r.submitted or 0.0)
            for r in mine
            if r.abandoned is not None and r.submitted is not None
        ]
        rows.append(
            UnservedFigures(
                channel=channel,
                reason=reason,
                contacts=len(mine),
                at_arrival=sum(r.wait_reason in UNSERVED_REASONS for r in mine),
                listed=sum(r.listed_unserved for r in mine),
                rerouted=sum(r.rerouted for r in mine),
                answered=len(waits),
                abandoned=sum(r.abandon_reason == "patience" for r in mine),
                left=sum(r.abandon_reason == "end-of-run" for r in mine),
                asa=_mean(waits),
                max_wait=max(waits) if waits else None,
                mean_wait_unanswered=_mean(gone),
            )
        )
    return rows


@dataclass
class PositionFigures:
    """GetContact's place in line against the routing order, for one line of contacts
    (one channel and set of required skills), sampled right after queued submissions."""

    channel: str
    skills: frozenset[str]
    samples: int
    mean_queue_position: float
    mean_routing_position: float
    checked: int  # samples answered later: their countdown can be checked
    exact: int  # contacts answered ahead of it == queue_position - 1
    within_one: int  # ... give or take one

    @property
    def exact_share(self) -> float | None:
        return self.exact / self.checked if self.checked else None

    @property
    def within_one_share(self) -> float | None:
        return self.within_one / self.checked if self.checked else None


def answered_ahead(sample: ContactRecord, line: list[tuple[float, float, str]]) -> int:
    """How many contacts of the sample's line were waiting when it was sampled and were
    answered before it. `line` holds (answered, submitted, key) of the line's answered
    contacts, sorted. Contacts that were ahead and abandoned are not counted."""
    at, answered = sample.sampled_at, sample.answered
    if at is None or answered is None:
        return 0
    start = bisect.bisect_right(line, (at, math.inf, ""))
    end = bisect.bisect_left(line, (answered, -math.inf, ""))
    return sum(1 for _, submitted, key in line[start:end] if submitted <= at and key != sample.key)


def position_figures(records: list[ContactRecord]) -> list[PositionFigures]:
    """Per line (channel and required skills) of contacts sampled at arrival: mean place
    in line and in routing order, and whether the place in line counted down: of the
    contacts of the same line waiting at the sample, queue_position - 1 were answered
    before it. A line is what agents could serve only when agent groups do not overlap
    in skills (as in scenarios/in_line.toml)."""
    lines: dict[tuple[str, frozenset[str]], list[ContactRecord]] = {}
    for r in records:
        if r.submitted is not None:
            lines.setdefault((r.channel, r.required_skills), []).append(r)
    rows = []
    for (channel, skills), mine in sorted(lines.items(), key=lambda x: (x[0][0], sorted(x[0][1]))):
        samples = [r for r in mine if r.queue_position and r.sampled_at is not None]
        if not samples:
            continue
        line = sorted(
            (r.answered, r.submitted or 0.0, r.key) for r in mine if r.answered is not None
        )
        checked = exact = within = 0
        for r in samples:
            if r.answered is None:
                continue
            checked += 1
            gap = abs(answered_ahead(r, line) - (r.queue_position - 1))
            exact += gap == 0
            within += gap <= 1
        rows.append(
            PositionFigures(
                channel,
                skills,
                len(samples),
                sum(r.queue_position for r in samples) / len(samples),
                sum(r.routing_position for r in samples) / len(samples),
                checked,
                exact,
                within,
            )
        )
    return rows


@dataclass
class SimulationReport:
    """Everything printed at the end of a run. Times are simulated seconds."""

    run_id: str
    scenario: str
    seed: int
    target: str
    agents: int
    time_scale: float
    arrivals_seconds: float
    drain_seconds: float
    warm_up: float  # contacts submitted earlier are left out of the figures
    thresholds: dict[str, float]  # each channel's answer target
    short_abandon_limit: float
    phone_reserve: int
    window: tuple[str, str]  # the server report's [start, end), ISO 8601 UTC
    records: list[ContactRecord]
    agent_records: list[AgentRecord]
    counters: RunCounters
    server: pb.GetServiceLevelResponse | None  # None when GetServiceLevel failed
    # GetContactReport for the window, read when customers return (the server's count of
    # returning customers who reached their previous agent); None otherwise or on failure.
    contact_report: pb.GetContactReportResponse | None = None
    notes: list[str] = field(default_factory=list)  # what a setting means in this run

    @property
    def measured(self) -> list[ContactRecord]:
        """This run's contacts submitted after the warm-up."""
        return [r for r in self.records if r.submitted is None or r.submitted >= self.warm_up]

    @property
    def client(self) -> list[ChannelSummary]:
        """Client-side figures per channel, then for all channels together."""
        limit, rows, measured = self.short_abandon_limit, [], self.measured
        for ch, threshold in self.thresholds.items():
            mine = [r for r in measured if r.channel == ch]
            rows.append(summarize(ch, mine, threshold, limit))
        return [*rows, summarize("all", measured, None, limit)]

    @property
    def preferences(self) -> list[dict[str, Any]]:
        """Per channel and preferred skill set: how often the preference was met, and
        at what wait (the bullseye trade-off)."""
        groups: dict[tuple[str, frozenset[str]], list[ContactRecord]] = {}
        for r in self.measured:
            if r.preferred_skills and r.submitted is not None:
                groups.setdefault((r.channel, r.preferred_skills), []).append(r)
        rows = []
        for (channel, skills), records in sorted(groups.items(), key=lambda g: sorted(g[0][1])):
            summary = summarize(
                channel, records, self.thresholds[channel], self.short_abandon_limit
            )
            answered = [r for r in records if r.wait is not None]
            rows.append(
                {
                    "channel": channel,
                    "preferred_skills": sorted(skills),
                    "contacts": len(records),
                    "answered": len(answered),
                    "matched": sum(r.matched for r in answered),
                    "matched_share": (
                        sum(r.matched for r in answered) / len(answered) if answered else None
                    ),
                    "service_level": summary.service_level,
                    "asa": summary.asa,
                    "p90_wait": summary.p90_wait,
                }
            )
        return rows

    @property
    def spreads(self) -> list[Spread]:
        return spreads(self.agent_records)

    @property
    def customers(self) -> list[CustomerFigures]:
        return customer_figures(self.measured, self.thresholds, self.short_abandon_limit)

    @property
    def server_returning(self) -> dict[str, tuple[int, int]]:
        """Per channel from GetContactReport: (returning answered, of those first
        answered by the previous agent); empty when not read."""
        if self.contact_report is None:
            return {}
        totals: dict[str, tuple[int, int]] = {}
        for row in self.contact_report.rows:
            name = channel_name(row.channel)
            answered, previous = totals.get(name, (0, 0))
            totals[name] = (
                answered + row.returning_answered,
                previous + row.returning_to_previous_agent,
            )
        return {ch: t for ch, t in totals.items() if t[0]}

    @property
    def backlog(self) -> BacklogFigures | None:
        return backlog_figures(self.records, self.agent_records)

    @property
    def unserved(self) -> list[UnservedFigures]:
        return unserved_figures(self.measured)

    @property
    def positions(self) -> list[PositionFigures]:
        return position_figures(self.measured)

    @property
    def wait_estimates(self) -> dict[str, WaitEstimates | None]:
        """Per channel: GetContact's estimates against the waits that followed."""
        measured = self.measured
        return {
            ch: wait_estimates([r for r in measured if r.channel == ch]) for ch in self.thresholds
        }

    def to_json(self) -> dict[str, Any]:
        server: dict[str, Any] | None = None
        if self.server is not None:
            server = {
                "formula": self.server.formula,
                "short_abandon_seconds": self.server.short_abandon_seconds * self.time_scale,
                "rows": [_row_json(row, self.time_scale) for row in self.server.rows],
            }
        return {
            "run_id": self.run_id,
            "scenario": self.scenario,
            "seed": self.seed,
            "target": self.target,
            "agents": self.agents,
            "time_scale": self.time_scale,
            "phone_reserve": self.phone_reserve,
            "arrivals_seconds": round(self.arrivals_seconds, 3),
            "drain_seconds": round(self.drain_seconds, 3),
            "warm_up_seconds": self.warm_up,
            "client": {
                "note": "this run's contacts only, simulated seconds; "
                "wait = submit acknowledged -> offer accepted",
                "thresholds_seconds": self.thresholds,
                "short_abandon_seconds": self.short_abandon_limit,
                "channels": [_rounded(vars(summary)) for summary in self.client],
            },
            "agents_detail": [
                {
                    "agent_id": a.agent_id,
                    "group": a.group,
                    "handled": a.handled,
                    "occupancy": None if a.occupancy is None else round(a.occupancy, 4),
                }
                for a in self.agent_records
            ],
            "fairness": [_rounded(vars(s)) | {"cv": s.cv} for s in self.spreads],
            "preferred_skills": [_rounded(row) for row in self.preferences],
            "estimated_wait": {
                ch: None
                if e is None
                else _rounded(vars(e)) | {"bias": e.bias, "relative_error": e.relative_error}
                for ch, e in self.wait_estimates.items()
            },
            "customers": [
                _rounded(vars(c)) | {"reached_share": c.reached_share} for c in self.customers
            ],
            "server_returning": {
                ch: {"returning_answered": a, "returning_to_previous_agent": p}
                for ch, (a, p) in self.server_returning.items()
            },
            "backlog": _backlog_json(self.backlog),
            "unserved": [_rounded(vars(u)) for u in self.unserved],
            "unserved_peak_listed": self.counters.unserved_peak,
            "queue_polls": self.counters.queue_polls,
            "queue_position": [
                _rounded(vars(p))
                | {
                    "skills": sorted(p.skills),
                    "exact_share": p.exact_share,
                    "within_one_share": p.within_one_share,
                }
                for p in self.positions
            ],
            "notes": self.notes,
            "server": {"window": list(self.window), "report": server},
            "offers": self.counters.offers,
            "declined": self.counters.declined,
            "withdrawn": dict(self.counters.withdrawn),
            "foreign_contacts_handled": self.counters.foreign,
            "retries": self.counters.retries,
            "refused_as_expected": dict(self.counters.refused),
            "errors": dict(self.counters.errors),
            "error_count": sum(self.counters.errors.values()),
        }

    def to_text(self) -> str:
        c = self.counters
        lines = [
            f"simulation {self.run_id}  scenario {self.scenario}  seed {self.seed}  "
            f"target {self.target}  {self.agents} agents  time scale {_num(self.time_scale)}x  "
            f"phone reserve {self.phone_reserve}",
            f"arrivals {self.arrivals_seconds:.0f} s  drain {self.drain_seconds:.0f} s  "
            f"(simulated; {self.arrivals_seconds / self.time_scale:.1f} s of real time "
            "for the arrivals)",
            "",
            "THIS RUN'S CONTACTS (measured client side, simulated seconds; wait = submit "
            "acknowledged -> offer accepted"
            + (f"; arrivals of the first {_num(self.warm_up)} s left out" if self.warm_up else "")
            + ")",
            text_table(CLIENT_HEADER, [_client_row(s) for s in self.client], text_columns=1),
            f"  SL % = answered within threshold / (answered + abandoned or left after "
            f"{_num(self.short_abandon_limit)} s); thresholds "
            + ", ".join(f"{ch} {_num(t)} s" for ch, t in self.thresholds.items()),
            "  abandoned = customer patience ran out; left = still unanswered when the run "
            "closed, abandoned by the simulator (the server counts both as abandoned)",
            f"  talk, ACW, AHT leave out the {self.client[-1].cut_short} contact(s) ended early "
            "because the run closed (the server report includes them)",
            "",
            "AGENTS (handled = contacts completed; occupancy = time holding an answered "
            "contact / time on shift)",
            text_table(
                ["agent", "group", "handled", "occupancy %"],
                [
                    [a.agent_id, a.group, str(a.handled), _pct(a.occupancy)]
                    for a in self.agent_records
                ],
                text_columns=2,
            ),
            "",
            "FAIRNESS (contacts handled per agent within each group of equally skilled agents)",
            text_table(
                ["group", "agents", "mean", "min", "max", "stdev", "cv"],
                [
                    [
                        s.group,
                        str(s.agents),
                        f"{s.mean:.1f}",
                        str(s.minimum),
                        str(s.maximum),
                        f"{s.stdev:.2f}",
                        "-" if s.cv is None else f"{s.cv:.3f}",
                    ]
                    for s in self.spreads
                ],
                text_columns=1,
            ),
            "",
            _estimates_text(self.wait_estimates),
            "",
            _preferences_text(self.preferences),
            *(
                section
                for section in (
                    _customers_text(self.customers, self.server_returning),
                    _backlog_text(self.backlog),
                    _unserved_text(self.unserved, self.counters),
                    _positions_text(self.positions),
                    *(f"NOTE: {note}\n" for note in self.notes),
                )
                if section
            ),
            f"SERVER REPORT (GetServiceLevel, ALL contacts queued in [{self.window[0]}, "
            f"{self.window[1]}), not only this run's; times x {_num(self.time_scale)} "
            "to simulated seconds)",
        ]
        if self.server is None:
            lines.append("  unavailable (GetServiceLevel failed, see errors)")
        else:
            header = ["interval", "channel", "offered", "answered", "abandoned", "short"]
            header += ["within", "threshold", "SL %", "ASA", "AHT", "mean ACW"]
            rows = [_server_row(row, self.time_scale) for row in self.server.rows]
            lines.append(text_table(header, rows, text_columns=2))
            lines.append(f"  formula: {self.server.formula}")
            limit = self.server.short_abandon_seconds * self.time_scale
            lines.append(f"  short abandon limit: {limit:.3g} s")
        withdrawn = ", ".join(f"{k} {v}" for k, v in sorted(c.withdrawn.items())) or "none"
        lines += [
            "",
            f"offers {c.offers}, declined {c.declined}, withdrawn: {withdrawn}, "
            f"other runs' contacts handled {c.foreign}, RPC retries {c.retries}",
        ]
        if c.refused:
            lines.append("refused as expected (state changed meanwhile): " + _counts(c.refused))
        lines.append(f"gRPC errors: {sum(c.errors.values())}")
        if c.errors:
            lines.append("  " + _counts(c.errors))
        return "\n".join(lines)


def _backlog_json(b: BacklogFigures | None) -> dict[str, Any] | None:
    if b is None:
        return None
    return _rounded(
        {k: v for k, v in vars(b).items() if k != "per_agent"}
        | {"first_share": b.first_share, "cv": b.cv}
    ) | {
        "per_agent": [
            {"agent_id": a, "signed_in_at": t, "backlog_answered": n, "handled": h}
            for a, t, n, h in b.per_agent
        ]
    }


def _customers_text(rows: list[CustomerFigures], server: dict[str, tuple[int, int]]) -> str:
    if not rows:
        return ""
    header = ["channel", "customer", "contacts", "answered", "reached %", "router's pick %"]
    header += ["SL %", "ASA", "p90 wait"]
    table = [
        [
            c.channel,
            c.kind,
            str(c.contacts),
            str(c.answered),
            _pct(c.reached_share),
            "-" if c.router_agreed is None else _pct(c.router_agreed / c.contacts),
            _pct(c.service_level),
            seconds_text(c.asa),
            seconds_text(c.p90_wait),
        ]
        for c in rows
    ]
    lines = [
        "RETURNING AND NAMED CUSTOMERS (client side: reached = answered by the agent who "
        "completed the customer's previous contact, or by the agent the gateway named)",
        text_table(header, table, text_columns=2),
        "  router's pick = the router gave the contact that same previous agent at submission",
    ]
    for ch, (answered, previous) in server.items():
        lines.append(
            f"  server (GetContactReport): {ch} returning answered {answered}, "
            f"{_pct(previous / answered)}% first answered by the previous agent"
        )
    return "\n".join([*lines, ""])


def _backlog_text(b: BacklogFigures | None) -> str:
    if b is None:
        return ""
    rows = [
        [agent, "-" if at is None else f"{at:.0f}s", str(n), str(handled)]
        for agent, at, n, handled in b.per_agent
    ]
    cleared = "not all answered" if b.cleared_at is None else f"{b.cleared_at:.0f} s"
    return "\n".join(
        [
            "BACKLOG (contacts waiting at the start: who answered them, agents in order of "
            "sign-in)",
            text_table(["agent", "signed in", "backlog answered", "handled"], rows, text_columns=1),
            f"  {b.answered} of {b.contacts} answered; the first agent to sign in took "
            f"{b.first_took} ({_pct(b.first_share)}%, {_pct(1 / len(b.per_agent))}% would be "
            f"an equal share); cv across agents "
            f"{'-' if b.cv is None else f'{b.cv:.3f}'}; ASA {seconds_text(b.asa)}, max wait "
            f"{seconds_text(b.max_wait)}; last answered at {cleared}",
            "",
        ]
    )


def _unserved_text(rows: list[UnservedFigures], counters: RunCounters) -> str:
    if not rows:
        return ""
    header = ["channel", "why", "contacts", "listed", "rerouted", "answered"]
    header += ["abandoned", "left", "ASA", "max wait", "waited (unanswered)"]
    table = [
        [
            u.channel,
            u.reason,
            *(str(n) for n in (u.contacts, u.listed, u.rerouted, u.answered)),
            str(u.abandoned),
            str(u.left),
            seconds_text(u.asa),
            seconds_text(u.max_wait),
            seconds_text(u.mean_wait_unanswered),
        ]
        for u in rows
    ]
    polls = (
        f"; {counters.queue_polls} GetQueueStatus polls, at most "
        f"{counters.unserved_peak} unserved at once"
        if counters.queue_polls
        else ""
    )
    return "\n".join(
        [
            "UNSERVED (contacts that waited with no signed-in agent able to serve them: "
            "GetContact's wait reason at arrival, or listed by GetQueueStatus)",
            text_table(header, table, text_columns=2),
            "  why = GetContact's wait reason right after submission (later: only the live "
            "queue listed it); listed = GetQueueStatus listed it among the unserved",
            "  rerouted = moved by the fallback rule (its required skills changed); waited "
            f"(unanswered) = mean time until the customer left{polls}",
            "",
        ]
    )


def _positions_text(rows: list[PositionFigures]) -> str:
    if not rows:
        return ""
    header = ["channel", "skills", "samples", "mean queue_position", "mean routing_position"]
    header += ["checked", "countdown exact %", "within 1 %"]
    table = [
        [
            p.channel,
            ",".join(sorted(p.skills)) or "-",
            str(p.samples),
            f"{p.mean_queue_position:.2f}",
            f"{p.mean_routing_position:.2f}",
            str(p.checked),
            _pct(p.exact_share),
            _pct(p.within_one_share),
        ]
        for p in rows
    ]
    return "\n".join(
        [
            "QUEUE POSITION (GetContact right after a submission that queued; per line of "
            "contacts with the same channel and required skills)",
            text_table(header, table, text_columns=2),
            "  countdown: of that line's contacts waiting at the sample, queue_position - 1 "
            "were answered before it (abandons ahead of it make it fewer)",
            "",
        ]
    )


def _preferences_text(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    header = ["channel", "preferred", "contacts", "answered", "by preferred agent"]
    header += ["SL %", "ASA", "p90 wait"]
    table = [
        [
            row["channel"],
            ",".join(row["preferred_skills"]),
            str(row["contacts"]),
            str(row["answered"]),
            _pct(row["matched_share"]),
            _pct(row["service_level"]),
            seconds_text(row["asa"]),
            seconds_text(row["p90_wait"]),
        ]
        for row in rows
    ]
    return "\n".join(
        [
            "PREFERRED SKILLS (contacts that preferred skills: share answered by an agent with "
            "all of them, and their waits)",
            text_table(header, table, text_columns=2),
            "",
        ]
    )


def _estimates_text(estimates: dict[str, WaitEstimates | None]) -> str:
    head = (
        "ESTIMATED WAIT (GetContact right after a submission that queued, "
        "vs the wait that followed)"
    )
    rows = [
        [
            ch,
            str(e.contacts),
            seconds_text(e.mean_estimate),
            seconds_text(e.mean_actual),
            f"{100 * e.bias:+.1f}",
            seconds_text(e.mean_absolute_error),
            f"{100 * e.relative_error:.1f}",
        ]
        for ch, e in estimates.items()
        if e is not None
    ]
    header = ["channel", "contacts", "mean estimate", "mean actual", "bias %", "MAE", "MAE %"]
    return "\n".join(
        [
            head,
            text_table(header, rows, text_columns=1),
            "  bias = (mean estimate - mean actual) / mean actual; MAE = mean absolute error; "
            "MAE % = MAE / mean actual",
        ]
    )


def _rounded(values: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in values.items()}


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{key} x{n}" for key, n in counter.most_common())


def _num(value: float) -> str:
    return f"{value:g}"


def seconds_text(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _client_row(s: ChannelSummary) -> list[str]:
    counts = [s.submitted, s.answered, s.abandoned, s.left_at_end, s.completed]
    return [s.channel, *(str(n) for n in counts), _pct(s.service_level)] + [
        seconds_text(v) for v in (s.asa, s.p90_wait, s.max_wait, s.talk, s.acw, s.aht)
    ]


_Optional = Literal["service_level", "asa_seconds", "aht_seconds", "mean_acw_seconds"]


def _opt(row: pb.ServiceLevelRow, name: _Optional) -> float | None:
    value: float = getattr(row, name)
    return value if row.HasField(name) else None


def _server_row(row: pb.ServiceLevelRow, scale: float) -> list[str]:
    counts = [row.offered, row.answered, row.abandoned, row.short_abandoned]
    return [
        row.interval_start.ToDatetime().strftime("%Y-%m-%d %H:%M"),
        channel_name(row.channel),
        *(str(n) for n in counts),
        str(row.answered_within_threshold),
        f"{row.threshold_seconds * scale:.3g}s",
        _pct(_opt(row, "service_level")),
        seconds_text(_scaled(_opt(row, "asa_seconds"), scale)),
        seconds_text(_scaled(_opt(row, "aht_seconds"), scale)),
        seconds_text(_scaled(_opt(row, "mean_acw_seconds"), scale)),
    ]


def _scaled(value: float | None, scale: float) -> float | None:
    return None if value is None else value * scale


def _row_json(row: pb.ServiceLevelRow, scale: float) -> dict[str, Any]:
    return {
        "interval_start": row.interval_start.ToJsonString(),
        "channel": channel_name(row.channel),
        "offered": row.offered,
        "answered": row.answered,
        "abandoned": row.abandoned,
        "short_abandoned": row.short_abandoned,
        "answered_within_threshold": row.answered_within_threshold,
        "threshold_seconds": row.threshold_seconds * scale,
        "service_level": _opt(row, "service_level"),
        "asa_seconds": _scaled(_opt(row, "asa_seconds"), scale),
        "aht_seconds": _scaled(_opt(row, "aht_seconds"), scale),
        "mean_acw_seconds": _scaled(_opt(row, "mean_acw_seconds"), scale),
    }


def text_table(
    header: list[str], rows: list[list[str]], text_columns: int, indent: str = "  "
) -> str:
    """A plain aligned table: the first text_columns left-aligned, the others right-aligned."""
    if not rows:
        return f"{indent}(no rows)"
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return indent + "  ".join(
            cell.ljust(width) if i < text_columns else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        )

    rule = indent + "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in rows)])
