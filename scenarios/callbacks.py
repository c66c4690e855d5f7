"""Queued callbacks before and after (issue 15): one scenario run twice with the same
seed, "before" with no <channel>_callback_offer_after_seconds (the router offers no
callback), "after" as the file says.

    .venv/bin/python scenarios/callbacks.py scenarios/callbacks_95.toml \\
        --database-url 'postgresql://postgres@127.0.0.1:5432/contact_router_sim_{n}'

Each run gets its own router; with {n} in the URL its own database too (1 before, 2
after; create them first), and then the two runs go at once (they share the machine's
load) unless --one-at-a-time. Prints three tables:

* the center, client side (this run's contacts after the warm-up): abandons, inbound
  SL (callbacks apart), SL with every callback counted as a call, callbacks taken,
  reached and unreached, the callbacks' SL (the router's formula), mean wait to answer
  and to reach, and the agents' measured occupancy;
* the router's GetServiceLevel for the run's window (inbound rows and callback rows)
  beside the same figures from every contact the run recorded, warm-up included;
* the run's fidelity: the load average when it started and ended, how late arrivals
  were submitted and how long agents held contacts beyond their drawn times, in real
  milliseconds (x the time scale / 1000 in simulated seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from contact_router_tools.proto_values import CHANNELS, channel_name
from contact_router_tools.scenario import Scenario, load
from contact_router_tools.simulate import simulate
from contact_router_tools.simulation.callback_figures import call_levels, callback_figures
from contact_router_tools.simulation.report import SimulationReport
from contact_router_tools.tables import number, percent, render_table, seconds

CHANNEL = "phone"


def without_offers(scenario: Scenario) -> Scenario:
    """The scenario with no channel offering callbacks."""
    offers = {f"{ch}_callback_offer_after_seconds": None for ch in CHANNELS}
    return scenario.with_router(**offers)


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def figures(run: str, report: SimulationReport, load: tuple[float, float]) -> dict[str, Any]:
    """What the tables print of one run; shares in [0, 1], times in simulated seconds."""
    threshold, limit = report.thresholds[CHANNEL], report.short_abandon_limit
    measured = call_levels(report.measured, CHANNEL, threshold, limit)
    everyone = call_levels(report.records, CHANNEL, threshold, limit)
    (client,) = callback_figures(report.measured, report.callback_target) or (None,)
    (client_all,) = callback_figures(report.records, report.callback_target) or (None,)
    summary = next(s for s in report.client if s.channel == CHANNEL)
    fidelity = report.fidelity
    server_calls: dict[str, Any] = {}
    server_callbacks: dict[str, Any] = {}
    if report.server is not None:
        rows = [r for r in report.server.rows if channel_name(r.channel) == CHANNEL]
        within = sum(r.answered_within_threshold for r in rows)
        answered = sum(r.answered for r in rows)
        abandoned = sum(r.abandoned for r in rows)
        short = sum(r.short_abandoned for r in rows)
        server_calls = {
            "offered": sum(r.offered for r in rows),
            "answered": answered,
            "abandoned": abandoned,
            "service_level": _ratio(within, answered + abandoned - short),
        }
        cbs = [r for r in report.server.callbacks if channel_name(r.requested_from) == CHANNEL]
        placed = sum(r.placed for r in cbs)
        server_callbacks = {
            "requested": sum(r.requested for r in cbs),
            "placed": placed,
            "reached": sum(r.reached for r in cbs),
            "unreached": sum(r.unreached for r in cbs),
            "service_level": _ratio(
                sum(r.placed_within_target for r in cbs),
                placed + sum(r.unreached_before_dial for r in cbs),
            ),
        }
    return {
        "run": run,
        "load_average": load,
        "calls": measured.inbound + measured.callbacks,
        "abandoned": measured.abandoned,
        "abandon_share": measured.abandon_share,
        "inbound_service_level": measured.inbound_level,
        "every_call_service_level": measured.every_call_level,
        "asa": summary.asa,
        "callbacks": None if client is None else vars(client),
        "occupancy": fidelity.occupancy,
        "client_all": {
            "offered": everyone.inbound,
            "answered": everyone.answered,
            "abandoned": everyone.abandoned,
            "service_level": everyone.inbound_level,
            "callbacks": None if client_all is None else vars(client_all),
        },
        "server_calls": server_calls,
        "server_callbacks": server_callbacks,
        "submit_lag_ms": fidelity.real_ms(fidelity.submit_lag),
        "p90_submit_lag_ms": fidelity.real_ms(fidelity.p90_submit_lag),
        "handle_overhead_ms": fidelity.real_ms(fidelity.handle_overhead),
        "errors": sum(report.counters.errors.values()),
        "callback_target": report.callback_target,
        "threshold": threshold,
        "time_scale": report.time_scale,
    }


def _cb(row: dict[str, Any], key: str) -> object:
    callbacks = row["callbacks"]
    return 0 if callbacks is None else callbacks[key]


def text(rows: list[dict[str, Any]]) -> str:
    header = ["run", "calls", "abandoned", "SL inbound", "SL every call", "callbacks taken"]
    header += ["reached", "unreached", "dials per reached", "SL callbacks", "ASA inbound"]
    header += ["mean to reach", "occupancy"]
    center: list[list[object]] = [
        [
            row["run"],
            row["calls"],
            f"{row['abandoned']} ({percent(row['abandon_share'])})",
            percent(row["inbound_service_level"]),
            percent(row["every_call_service_level"]),
            _cb(row, "taken"),
            _cb(row, "reached"),
            _cb(row, "unreached"),
            number(row["callbacks"] and row["callbacks"]["attempts_per_reached"], 2),
            percent(row["callbacks"] and row["callbacks"]["service_level"]),
            seconds(row["asa"]),
            seconds(row["callbacks"] and row["callbacks"]["time_to_reach"]),
            percent(row["occupancy"]),
        ]
        for row in rows
    ]
    first = rows[0]
    lines = [
        render_table((header, center)),
        f"client side, this run's calls after the warm-up, simulated seconds; SL inbound = "
        f"answered within {first['threshold']:g} s / (answered + abandoned after the "
        "short-abandon limit), callbacks apart; SL every call = the same with each callback "
        f"in (within when reached within {first['threshold']:g} s of its first moment); SL "
        f"callbacks = first dialled within {first['callback_target']:g} s of the first moment "
        "/ (dialled + unreached before a dial); abandoned: share of calls and callbacks",
        "",
    ]
    header = ["run", "figures of", "calls", "answered", "abandoned", "SL inbound"]
    header += ["callbacks", "placed", "reached", "unreached", "SL callbacks"]
    both: list[list[object]] = []
    for row in rows:
        server, calls = row["server_callbacks"], row["server_calls"]
        both.append(
            [
                row["run"],
                "router",
                calls.get("offered", "-"),
                calls.get("answered", "-"),
                calls.get("abandoned", "-"),
                percent(calls.get("service_level")),
                server.get("requested", "-"),
                server.get("placed", "-"),
                server.get("reached", "-"),
                server.get("unreached", "-"),
                percent(server.get("service_level")),
            ]
        )
        mine = row["client_all"]
        callbacks = mine["callbacks"] or {}
        both.append(
            [
                "",
                "simulator",
                mine["offered"],
                mine["answered"],
                mine["abandoned"],
                percent(mine["service_level"]),
                callbacks.get("taken", 0),
                callbacks.get("placed", 0),
                callbacks.get("reached", 0),
                callbacks.get("unreached", 0),
                percent(callbacks.get("service_level")),
            ]
        )
    lines += [
        render_table((header, both)),
        "router = GetServiceLevel for the run's window (rows: inbound contacts, callbacks "
        "apart; callback rows from phone); simulator = every contact the run recorded, "
        "warm-up included (abandoned: patience ran out; the router also counts those the "
        "simulator abandoned at the close)",
        "",
    ]
    header = ["run", "load average at start", "at end", "submit lag mean", "p90"]
    header += ["handle overhead", "gRPC errors"]
    lag: list[list[object]] = [
        [
            row["run"],
            f"{row['load_average'][0]:.2f}",
            f"{row['load_average'][1]:.2f}",
            f"{row['submit_lag_ms']:.0f} ms" if row["submit_lag_ms"] is not None else "-",
            f"{row['p90_submit_lag_ms']:.0f} ms" if row["p90_submit_lag_ms"] is not None else "-",
            f"{row['handle_overhead_ms']:.0f} ms" if row["handle_overhead_ms"] is not None else "-",
            row["errors"],
        ]
        for row in rows
    ]
    lines += [
        render_table((header, lag)),
        f"real milliseconds; at {first['time_scale']:g}x each is "
        f"{first['time_scale'] / 1000:g} simulated s: submit lag = arrival due -> "
        "SubmitContact acknowledged; handle overhead = time an agent held a contact beyond "
        "its drawn talk and wrap-up",
    ]
    return "\n".join(lines)


async def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("scenario", type=Path)
    parser.add_argument("--database-url", required=True, help="{n}: 1 before, 2 after")
    parser.add_argument("--one-at-a-time", action="store_true", help="run before, then after")
    parser.add_argument("--seed", type=int, help="both runs' seed (default: the scenario's)")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    args = parser.parse_args()
    after = load(args.scenario)
    if args.seed is not None:
        after = after.with_overrides(seed=args.seed)
    runs = {"before": (1, without_offers(after)), "after": (2, after)}

    async def one(name: str) -> dict[str, Any]:
        n, scenario = runs[name]
        url = args.database_url.replace("{n}", str(n))
        start = os.getloadavg()[0]
        report = await simulate(scenario, database_url=url)
        return figures(name, report, (start, os.getloadavg()[0]))

    if "{n}" in args.database_url and not args.one_at_a_time:
        rows = list(await asyncio.gather(*map(one, runs)))
    else:
        rows = [await one(name) for name in runs]
    print(json.dumps(rows, indent=2, default=str) if args.format == "json" else text(rows))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
