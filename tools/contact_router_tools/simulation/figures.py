"""The figures a simulation report derives from what a run recorded: per channel
(service level, waits, handle times), fairness across equally skilled agents, the
estimated wait's error, preferred skills, returning and named customers, the backlog,
contacts nobody could serve, and whether the place in line counted down. Pure: records
in, dataclasses out."""

from __future__ import annotations

import bisect
import math
from collections import Counter
from dataclasses import dataclass

from contact_router_tools.simulation.records import UNSERVED_REASONS, AgentRecord, ContactRecord


def mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def p90(values: list[float]) -> float | None:
    """Nearest-rank 90th percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def stdev(values: list[int], center: float) -> float:
    """Population standard deviation of values around their mean (`center`)."""
    return math.sqrt(sum((n - center) ** 2 for n in values) / len(values))


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
        center = sum(counts) / len(counts)
        spread = stdev(counts, center)
        result.append(Spread(group, len(counts), center, min(counts), max(counts), spread))
    return result


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
    # Completed inbound contacts (a callback's talk runs from its reach, not its answer).
    done = [r for r in submitted if None not in (r.completed, r.ended, r.answered)]
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
        asa=mean(waits),
        p90_wait=p90(waits),
        max_wait=max(waits) if waits else None,
        talk=mean(talks),
        acw=mean(acws),
        aht=mean([t + a for t, a in zip(talks, acws, strict=True)]),
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
        center = sum(counts) / len(counts) if counts else 0.0
        return stdev(counts, center) / center if center else None


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
        asa=mean(waits),
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
                asa=mean(waits),
                max_wait=max(waits) if waits else None,
                mean_wait_unanswered=mean(gone),
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
class PreferenceFigures:
    """Contacts of one channel that preferred one set of skills: how often an agent
    with all of them answered, and at what wait (the bullseye trade-off)."""

    channel: str
    preferred_skills: list[str]
    contacts: int
    answered: int
    matched: int  # answered by an agent with every preferred skill
    service_level: float | None
    asa: float | None
    p90_wait: float | None

    @property
    def matched_share(self) -> float | None:
        return self.matched / self.answered if self.answered else None


def preference_figures(
    records: list[ContactRecord], thresholds: dict[str, float], short_abandon: float
) -> list[PreferenceFigures]:
    """Per channel and preferred skill set of the contacts that preferred skills."""
    groups: dict[tuple[str, frozenset[str]], list[ContactRecord]] = {}
    for r in records:
        if r.preferred_skills and r.submitted is not None:
            groups.setdefault((r.channel, r.preferred_skills), []).append(r)
    rows = []
    for (channel, skills), mine in sorted(groups.items(), key=lambda g: sorted(g[0][1])):
        summary = summarize(channel, mine, thresholds[channel], short_abandon)
        answered = [r for r in mine if r.wait is not None]
        rows.append(
            PreferenceFigures(
                channel=channel,
                preferred_skills=sorted(skills),
                contacts=len(mine),
                answered=len(answered),
                matched=sum(r.matched for r in answered),
                service_level=summary.service_level,
                asa=summary.asa,
                p90_wait=summary.p90_wait,
            )
        )
    return rows
