"""Personal routing (issue 8) in simulations: one table per rule, each rule run with
and without its setting.

    .venv/bin/python scenarios/personal.py \\
        --database-url 'postgresql://postgres@127.0.0.1:5432/contact_router_personal_{n}'

Rules and their runs (scenario files in scenarios/):

* previous: previous_agent.toml with the previous-agent preference on and off. Returning
  customers (40% of calls and chats) and named agents (10% of chats): how often they
  reached that agent (client side: who completed the customer's previous contact
  against who answered this one; the server's GetContactReport count beside it), and
  at what wait.
* load: email_backlog.toml without a cap and with `email_max_per_hour = 30`. The
  backlog share the first agent to sign in took, and the spread across agents.
* unserved: unserved_fallback.toml without and with the fallback rule (chats needing
  French move to skill `general` after 120 s). Contacts that waited with nobody to
  serve them: how many GetContact and the live queue reported, how many the rule moved,
  how long they waited.
* line: in_line.toml. Mean queue_position against routing_position per agent group,
  and whether the place in line counted down.

The runs of one rule go at once when the URL holds {n} (their own routers and
databases, 1 and 2; create them first), rules one after another. Each run takes one to
four real minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contact_router_tools.scenario import Scenario, load
from contact_router_tools.simulate import simulate
from contact_router_tools.simulation.report import SimulationReport
from contact_router_tools.tables import number, percent, render_table, seconds

HERE = Path(__file__).parent


@dataclass(frozen=True)
class Variant:
    label: str
    router: Mapping[str, float | None]  # router settings changed from the file's


@dataclass(frozen=True)
class Rule:
    title: str
    scenario: str
    variants: tuple[Variant, ...]


OFF = 0.0
RULES: dict[str, Rule] = {
    "previous": Rule(
        "1. Preferred agent: returning customers reach their previous agent",
        "previous_agent.toml",
        (
            Variant("prefer previous on", {}),
            Variant(
                "prefer previous off",
                {"phone_prefer_previous_agent": OFF, "chat_prefer_previous_agent": OFF},
            ),
        ),
    ),
    "load": Rule(
        "2. Fair load: the first agent in does not take the email backlog",
        "email_backlog.toml",
        (Variant("no cap", {}), Variant("cap 30 an hour", {"email_max_per_hour": 30})),
    ),
    "unserved": Rule(
        "3. Nobody there: contacts no signed-in agent could serve",
        "unserved_fallback.toml",
        (
            Variant("no fallback", {"chat_fallback_after_seconds": None}),
            Variant("fallback 120 s", {}),
        ),
    ),
    "line": Rule(
        "4. Queue position: place in line vs routing order",
        "in_line.toml",
        (Variant("two groups", {}),),
    ),
}


# ----------------------------------------------------------------- figures per rule


def previous_rows(label: str, report: SimulationReport) -> list[dict[str, Any]]:
    server = report.server_returning
    rows = []
    for c in report.customers:
        answered, previous = server.get(c.channel, (0, 0)) if c.kind == "returning" else (0, 0)
        rows.append(
            {
                "variant": label,
                "channel": c.channel,
                "customer": c.kind,
                "contacts": c.contacts,
                "answered": c.answered,
                "reached": c.reached,
                "reached_share": c.reached_share,
                "service_level": c.service_level,
                "asa": c.asa,
                "p90_wait": c.p90_wait,
                "server_returning_answered": answered if c.kind == "returning" else None,
                "server_to_previous_share": previous / answered if answered else None,
            }
        )
    return rows


def load_rows(label: str, report: SimulationReport) -> list[dict[str, Any]]:
    b = report.backlog
    if b is None:
        return []
    others = [n for agent, _, n, _ in b.per_agent if agent != b.first_agent]
    email = next(s for s in report.client if s.channel == "email")
    return [
        {
            "variant": label,
            "backlog": b.contacts,
            "answered": b.answered,
            "first_took": b.first_took,
            "first_share": b.first_share,
            "equal_share": 1 / len(b.per_agent),
            "others_min": min(others, default=0),
            "others_max": max(others, default=0),
            "cv": b.cv,
            "backlog_asa": b.asa,
            "backlog_max_wait": b.max_wait,
            "cleared_at": b.cleared_at,
            "email_answered": email.answered,
            "email_left": email.left_at_end,
            "note": report.notes[0] if report.notes else "",
        }
    ]


def unserved_rows(label: str, report: SimulationReport) -> list[dict[str, Any]]:
    rows = []
    channels = {s.channel: s for s in report.client}
    for u in report.unserved:
        s = channels[u.channel]
        rows.append(
            vars(u)
            | {
                "variant": label,
                "channel_service_level": s.service_level,
                "channel_asa": s.asa,
                "peak_listed": report.counters.unserved_peak,
            }
        )
    return rows


def line_rows(label: str, report: SimulationReport) -> list[dict[str, Any]]:
    waits: dict[frozenset[str], list[float]] = {}
    for r in report.measured:
        if r.wait is not None:
            waits.setdefault(r.required_skills, []).append(r.wait)
    return [
        {
            "variant": label,
            "channel": p.channel,
            "skills": ",".join(sorted(p.skills)) or "-",
            "samples": p.samples,
            "mean_queue_position": p.mean_queue_position,
            "mean_routing_position": p.mean_routing_position,
            "checked": p.checked,
            "exact_share": p.exact_share,
            "within_one_share": p.within_one_share,
            "asa": sum(w) / len(w) if (w := waits.get(p.skills)) else None,
        }
        for p in report.positions
    ]


FIGURES = {
    "previous": previous_rows,
    "load": load_rows,
    "unserved": unserved_rows,
    "line": line_rows,
}


# ---------------------------------------------------------------------- printing


def text(name: str, rule: Rule, rows: list[dict[str, Any]], runs: list[dict[str, Any]]) -> str:
    out = [rule.title, ""]
    if name == "previous":
        header = ["variant", "channel", "customer", "contacts", "answered", "reached agent"]
        header += ["SL", "ASA", "p90 wait", "server: returning", "server: to previous"]
        body = [
            [
                r["variant"],
                r["channel"],
                r["customer"],
                r["contacts"],
                r["answered"],
                percent(r["reached_share"]),
                percent(r["service_level"]),
                seconds(r["asa"]),
                seconds(r["p90_wait"]),
                r["server_returning_answered"],
                percent(r["server_to_previous_share"]),
            ]
            for r in rows
        ]
        notes = [
            "reached agent = answered by the agent who completed the customer's previous "
            "contact (returning) or by the agent the gateway named (named); client side",
            "server = GetContactReport: returning contacts answered, share first answered "
            "by the previous agent",
        ]
    elif name == "load":
        header = ["variant", "backlog", "answered", "first agent took", "equal share"]
        header += ["others per agent", "cv", "backlog ASA", "max wait", "last answered at"]
        body = [
            [
                r["variant"],
                r["backlog"],
                r["answered"],
                f"{r['first_took']} ({percent(r['first_share'])})",
                percent(r["equal_share"]),
                f"{r['others_min']}-{r['others_max']}",
                number(r["cv"], 3),
                seconds(r["backlog_asa"]),
                seconds(r["backlog_max_wait"]),
                seconds(r["cleared_at"], digits=0),
            ]
            for r in rows
        ]
        notes = [
            "first agent = signed in 15 min before the others; others per agent = backlog "
            "emails each of the other 11 answered; cv = across all 12",
            *(f"{r['variant']}: {r['note']}" for r in rows if r["note"]),
        ]
    elif name == "unserved":
        header = ["variant", "channel", "why (at arrival)", "contacts", "listed", "rerouted"]
        header += ["answered", "abandoned", "left", "ASA", "max wait", "waited (gone)"]
        header += ["channel SL"]
        body = [
            [
                r["variant"],
                r["channel"],
                r["reason"],
                r["contacts"],
                r["listed"],
                r["rerouted"],
                r["answered"],
                r["abandoned"],
                r["left"],
                seconds(r["asa"]),
                seconds(r["max_wait"]),
                seconds(r["mean_wait_unanswered"]),
                percent(r["channel_service_level"]),
            ]
            for r in rows
        ]
        notes = [
            "contacts that waited with no signed-in agent able to serve them, by GetContact's "
            "wait_reason right after submission; listed = GetQueueStatus.unserved named it",
            "rerouted = its required skills changed while waiting (the fallback rule); "
            "waited (gone) = mean wait of those who abandoned or were left at the end",
        ]
    else:
        header = ["variant", "line", "samples", "mean queue_position"]
        header += ["mean routing_position", "countdown exact", "within 1", "ASA"]
        body = [
            [
                r["variant"],
                f"{r['channel']} {r['skills']}",
                r["samples"],
                number(r["mean_queue_position"], 2),
                number(r["mean_routing_position"], 2),
                percent(r["exact_share"]),
                percent(r["within_one_share"]),
                seconds(r["asa"]),
            ]
            for r in rows
        ]
        notes = [
            "sampled by GetContact right after each submission that queued; countdown: "
            "of the same line's calls waiting then, queue_position - 1 were answered first",
        ]
    out.append(render_table((header, body)))
    out += [f"  {n}" for n in notes]
    for run in runs:
        out.append(
            f"  {run['variant']}: run {run['run_id']}, seed {run['seed']}, "
            f"{run['time_scale']:g}x, gRPC errors {run['errors']}"
        )
    out.append(
        "  simulated seconds; SL = answered within target / (answered + abandoned "
        "after the short-abandon limit)"
    )
    return "\n".join(out)


# ---------------------------------------------------------------------- running


async def run_rule(
    name: str, rule: Rule, url: str, time_scale: float | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    base = load(HERE / rule.scenario)
    if time_scale is not None:
        base = base.with_overrides(time_scale=time_scale)

    async def one(n: int, variant: Variant) -> tuple[Variant, Scenario, SimulationReport]:
        scenario = base.with_router(**variant.router)
        report = await simulate(scenario, database_url=url.replace("{n}", str(n)))
        return variant, scenario, report

    jobs = [one(n, v) for n, v in enumerate(rule.variants, 1)]
    together = "{n}" in url  # each variant its own router and database
    done = list(await asyncio.gather(*jobs)) if together else [await job for job in jobs]
    rows: list[dict[str, Any]] = []
    runs = []
    for variant, scenario, report in done:
        rows += FIGURES[name](variant.label, report)
        runs.append(
            {
                "variant": variant.label,
                "run_id": report.run_id,
                "seed": report.seed,
                "time_scale": scenario.time_scale,
                "errors": sum(report.counters.errors.values()),
            }
        )
    return rows, runs


async def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--database-url", required=True, help="with {n}: variants at once")
    parser.add_argument(
        "--rules", default=",".join(RULES), help=f"comma-separated, of {','.join(RULES)}"
    )
    parser.add_argument("--time-scale", type=float, help="override every scenario's scale")
    parser.add_argument(
        "--format", choices=("table", "json"), default="table", help="default: table"
    )
    args = parser.parse_args()
    names = [n.strip() for n in args.rules.split(",") if n.strip()]
    unknown = [n for n in names if n not in RULES]
    if unknown:
        parser.error(f"unknown rule(s) {', '.join(unknown)}; known: {', '.join(RULES)}")
    results: dict[str, Any] = {}
    errors = 0
    for name in names:
        rows, runs = await run_rule(name, RULES[name], args.database_url, args.time_scale)
        errors += sum(r["errors"] for r in runs)
        results[name] = {"rows": rows, "runs": runs}
        if args.format != "json":
            print(text(name, RULES[name], rows, runs), end="\n\n", flush=True)
    if args.format == "json":
        print(json.dumps(results, indent=2, default=str))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
