"""Run one scenario for several values of one router setting and compare the figures.

    .venv/bin/python scenarios/compare.py scenarios/phone_first.toml phone_reserve 0 1 2 \\
        --database-url 'postgresql://postgres@127.0.0.1:5432/contact_router_sim_{n}'

Each value gets its own router (and, with {n} in the URL, its own database, so the runs
go at once; create the databases first). Prints per value and channel: service level,
ASA, 90th-percentile wait, abandoned, the largest email wait against its target, the
share of preferring contacts answered by a preferred agent, the estimated wait's bias
and mean absolute error, and the spread of contacts handled per agent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from contact_router_tools.scenario import NUMERIC_ROUTER_SETTINGS, load
from contact_router_tools.simulate import simulate
from contact_router_tools.simulation.report import SimulationReport
from contact_router_tools.tables import percent, render_table, seconds


def figures(setting: str, value: float, report: SimulationReport) -> dict[str, Any]:
    channels = {
        s.channel: {
            "submitted": s.submitted,
            "answered": s.answered,
            "abandoned": s.abandoned + s.left_at_end,
            "service_level": s.service_level,
            "asa": s.asa,
            "p90_wait": s.p90_wait,
            "max_wait": s.max_wait,
            "threshold": report.thresholds[s.channel],
        }
        for s in report.client
        if s.channel != "all" and s.submitted
    }
    estimates = {
        ch: {"bias": e.bias, "mae": e.mean_absolute_error, "mae_share": e.relative_error}
        for ch, e in report.wait_estimates.items()
        if e is not None
    }
    return {
        setting: value,
        "channels": channels,
        "preferred": [vars(p) | {"matched_share": p.matched_share} for p in report.preferences],
        "estimates": estimates,
        "fairness": [
            {"group": s.group, "cv": s.cv, "min": s.minimum, "max": s.maximum}
            for s in report.spreads
        ],
        "errors": sum(report.counters.errors.values()),
    }


def text(setting: str, rows: list[dict[str, Any]]) -> str:
    header = [setting, "channel", "offered", "answered", "abandoned", "SL", "target"]
    header += ["ASA", "p90 wait", "max wait"]
    table: list[list[object]] = [
        [
            f"{row[setting]:g}",
            ch,
            c["submitted"],
            c["answered"],
            c["abandoned"],
            percent(c["service_level"]),
            seconds(c["threshold"], digits=0),
            seconds(c["asa"]),
            seconds(c["p90_wait"]),
            seconds(c["max_wait"]),
        ]
        for row in rows
        for ch, c in row["channels"].items()
    ]
    lines = [render_table((header, table)), ""]
    for row in rows:
        for p in row["preferred"]:
            lines.append(
                f"{setting} {row[setting]:g}: {p['channel']} preferring "
                f"{','.join(p['preferred_skills'])}: {p['answered']} answered, "
                f"{percent(p['matched_share'])} by a preferred agent, "
                f"SL {percent(p['service_level'])}, ASA {seconds(p['asa'])}, "
                f"p90 {seconds(p['p90_wait'])}"
            )
        est = ", ".join(
            f"{ch} bias {100 * e['bias']:+.1f}% MAE {e['mae']:.1f}s ({100 * e['mae_share']:.0f}%)"
            for ch, e in row["estimates"].items()
        )
        fair = ", ".join(
            f"{f['group']} {f['min']}-{f['max']} (cv {f['cv']:.3f})" for f in row["fairness"]
        )
        lines.append(f"{setting} {row[setting]:g}: estimated wait {est or '-'}")
        lines.append(
            f"{setting} {row[setting]:g}: handled per agent {fair}; gRPC errors {row['errors']}"
        )
    lines += [
        "",
        "SL = answered within target / (answered + abandoned after the short-abandon limit); "
        "simulated seconds; client-side figures",
    ]
    return "\n".join(lines)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", type=Path)
    parser.add_argument("setting", choices=NUMERIC_ROUTER_SETTINGS)
    parser.add_argument("values", type=float, nargs="+")
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--duration", type=float, help="override the scenario's duration")
    parser.add_argument("--time-scale", type=float, help="override the scenario's time scale")
    parser.add_argument(
        "--format", choices=("table", "json"), default="table", help="default: table"
    )
    args = parser.parse_args()
    base = load(args.scenario)
    if args.duration is not None:
        base = base.with_overrides(duration=args.duration)
    if args.time_scale is not None:
        base = base.with_overrides(time_scale=args.time_scale)

    async def one(n: int, value: float) -> dict[str, Any]:
        scenario = base.with_router(**{args.setting: value})
        url = args.database_url.replace("{n}", str(n))
        return figures(args.setting, value, await simulate(scenario, database_url=url))

    if "{n}" in args.database_url:
        rows = list(await asyncio.gather(*(one(n, v) for n, v in enumerate(args.values, 1))))
    else:
        rows = [await one(1, value) for value in args.values]
    print(
        json.dumps(rows, indent=2, default=str)
        if args.format == "json"
        else text(args.setting, rows)
    )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
