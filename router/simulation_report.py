"""What a simulation run records about its own contacts, and the report printed at its end.

Two views are kept apart on purpose:

* client side: this run's contacts only, timed by the simulator with its own monotonic
  clock (wait = SubmitContact acknowledged -> AcceptOffer acknowledged), in simulated
  seconds (real seconds x the scenario's time scale);
* server side: ReportingService.GetServiceLevel for the run's time window, which covers
  every contact queued in that window, not only this run's.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from router._proto.contactrouter.v1 import contact_router_pb2 as pb

CHANNEL_NAMES = ("phone", "chat", "email")
CHANNEL_ENUMS: dict[str, pb.Channel.ValueType] = {
    "phone": pb.CHANNEL_PHONE,
    "chat": pb.CHANNEL_CHAT,
    "email": pb.CHANNEL_EMAIL,
}


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
        stdev = math.sqrt(sum((n - mean) ** 2 for n in counts) / len(counts))
        result.append(Spread(group, len(counts), mean, min(counts), max(counts), stdev))
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
class RunCounters:
    """Events of the run other than contact timings."""

    errors: Counter[str] = field(default_factory=Counter)  # "Method CODE" -> count
    refused: Counter[str] = field(default_factory=Counter)  # expected refusals, same keys
    withdrawn: Counter[str] = field(default_factory=Counter)  # reason -> count
    offers: int = 0
    declined: int = 0
    foreign: int = 0  # contacts not from this run handled by this run's agents
    retries: int = 0  # RPCs repeated after UNAVAILABLE or DEADLINE_EXCEEDED


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
            _table(CLIENT_HEADER, [_client_row(s) for s in self.client], text_columns=1),
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
            _table(
                ["agent", "group", "handled", "occupancy %"],
                [
                    [a.agent_id, a.group, str(a.handled), _pct(a.occupancy)]
                    for a in self.agent_records
                ],
                text_columns=2,
            ),
            "",
            "FAIRNESS (contacts handled per agent within each group of equally skilled agents)",
            _table(
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
            lines.append(_table(header, rows, text_columns=2))
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
            _sec(row["asa"]),
            _sec(row["p90_wait"]),
        ]
        for row in rows
    ]
    return "\n".join(
        [
            "PREFERRED SKILLS (contacts that preferred skills: share answered by an agent with "
            "all of them, and their waits)",
            _table(header, table, text_columns=2),
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
            _sec(e.mean_estimate),
            _sec(e.mean_actual),
            f"{100 * e.bias:+.1f}",
            _sec(e.mean_absolute_error),
            f"{100 * e.relative_error:.1f}",
        ]
        for ch, e in estimates.items()
        if e is not None
    ]
    header = ["channel", "contacts", "mean estimate", "mean actual", "bias %", "MAE", "MAE %"]
    return "\n".join(
        [
            head,
            _table(header, rows, text_columns=1),
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


def _sec(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _client_row(s: ChannelSummary) -> list[str]:
    counts = [s.submitted, s.answered, s.abandoned, s.left_at_end, s.completed]
    return [s.channel, *(str(n) for n in counts), _pct(s.service_level)] + [
        _sec(v) for v in (s.asa, s.p90_wait, s.max_wait, s.talk, s.acw, s.aht)
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
        _sec(_scaled(_opt(row, "asa_seconds"), scale)),
        _sec(_scaled(_opt(row, "aht_seconds"), scale)),
        _sec(_scaled(_opt(row, "mean_acw_seconds"), scale)),
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


def _table(header: list[str], rows: list[list[str]], text_columns: int) -> str:
    """A plain aligned table: the first text_columns left-aligned, the others right-aligned."""
    if not rows:
        return "  (no rows)"
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  " + "  ".join(
            cell.ljust(width) if i < text_columns else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        )

    rule = "  " + "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in rows)])
