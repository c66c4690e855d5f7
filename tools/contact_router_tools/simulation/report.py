"""The report of a simulation run: what it recorded, the figures derived from it, and
the server's own figures for the run's window; as a document for scripts (to_json).
simulation/text.py renders it for people.

Two views are kept apart on purpose:

* client side: this run's contacts only, timed by the simulator with its own monotonic
  clock (wait = SubmitContact acknowledged -> AcceptOffer acknowledged), in simulated
  seconds (real seconds x the scenario's time scale);
* server side: ReportingService.GetServiceLevel for the run's time window, which covers
  every contact queued in that window, not only this run's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from contactrouter.v1 import contact_router_pb2 as pb

from contact_router_tools.proto_values import channel_name, optional
from contact_router_tools.simulation.callback_figures import (
    CallbackFigures,
    CallLevels,
    Fidelity,
    call_levels,
    callback_figures,
    fidelity,
)
from contact_router_tools.simulation.figures import (
    BacklogFigures,
    ChannelSummary,
    CustomerFigures,
    PositionFigures,
    PreferenceFigures,
    Spread,
    UnservedFigures,
    WaitEstimates,
    backlog_figures,
    customer_figures,
    position_figures,
    preference_figures,
    spreads,
    summarize,
    unserved_figures,
    wait_estimates,
)
from contact_router_tools.simulation.records import AgentRecord, ContactRecord, RunCounters
from router.domain import RoutingPolicy


def scaled(value: float | None, scale: float) -> float | None:
    """A router time (real seconds) in simulated seconds."""
    return None if value is None else value * scale


@dataclass
class SimulationReport:
    """Everything printed at the end of a run. Times are simulated seconds."""

    run_id: str
    scenario: str
    seed: int
    router: str  # the router's address
    agents: int
    time_scale: float
    arrivals_seconds: float
    drain_seconds: float
    warm_up: float  # contacts submitted earlier are left out of the figures
    thresholds: dict[str, float]  # each channel's answer target
    short_abandon_limit: float
    phone_reserve: int | None  # None: a router at --router, whose reserve is not known
    window: tuple[str, str]  # the server report's [start, end), ISO 8601 UTC
    records: list[ContactRecord]
    agent_records: list[AgentRecord]
    counters: RunCounters
    server: pb.GetServiceLevelResponse | None  # None when GetServiceLevel failed
    # GetContactReport for the window, read when customers return (the server's count of
    # returning customers who reached their previous agent); None otherwise or on failure.
    contact_report: pb.GetContactReportResponse | None = None
    notes: list[str] = field(default_factory=list)  # what a setting means in this run
    callback_target: float = RoutingPolicy().callback_target  # the callbacks' SL target

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
    def preferences(self) -> list[PreferenceFigures]:
        return preference_figures(self.measured, self.thresholds, self.short_abandon_limit)

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

    @property
    def callbacks(self) -> list[CallbackFigures]:
        return callback_figures(self.measured, self.callback_target)

    @property
    def call_levels(self) -> list[CallLevels]:
        """Per channel whose customers took callbacks: its service level and abandons
        with the callbacks apart and in (client side)."""
        limit = self.short_abandon_limit
        return [
            call_levels(self.measured, c.channel, self.thresholds[c.channel], limit)
            for c in self.callbacks
            if c.channel in self.thresholds
        ]

    @property
    def fidelity(self) -> Fidelity:
        window = (self.warm_up, self.arrivals_seconds)
        return fidelity(self.records, self.agent_records, self.time_scale, window)

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
            "router": self.router,
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
            "preferred_skills": [
                _rounded(vars(p)) | {"matched_share": p.matched_share} for p in self.preferences
            ],
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
            "callbacks": [_rounded(vars(c)) | {"take_share": c.take_share} for c in self.callbacks],
            "call_levels": [
                _rounded(vars(c)) | {"abandon_share": c.abandon_share} for c in self.call_levels
            ],
            "fidelity": _rounded(vars(self.fidelity))
            | {
                "submit_lag_real_ms": self.fidelity.real_ms(self.fidelity.submit_lag),
                "handle_overhead_real_ms": self.fidelity.real_ms(self.fidelity.handle_overhead),
            },
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


def _rounded(values: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in values.items()}


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
        "service_level": optional(row, "service_level"),
        "asa_seconds": scaled(optional(row, "asa_seconds"), scale),
        "aht_seconds": scaled(optional(row, "aht_seconds"), scale),
        "mean_acw_seconds": scaled(optional(row, "mean_acw_seconds"), scale),
    }
