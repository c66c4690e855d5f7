"""Measured service level against Erlang C, for phone-only traffic through a real router.

    .venv/bin/python scenarios/erlang_c_check.py --database-url postgresql://.../sim_{n}

For each (agents c, occupancy rho) pair the script starts a router (a child process, its
policy at the pair's time scale), offers Poisson phone arrivals at lambda = c rho / AHT
with exponential handle times and no wrap-up, nobody abandons, and compares the share
answered within t = 20 s with Erlang C's P(wait <= t) = 1 - C(c, a) exp(-(c mu - lambda) t).

Two comparisons, because a run of minutes cannot settle the first one alone:

* raw: the measured share against Erlang C, with a 95% confidence interval by batch
  means. Near saturation the share answered in time swings over busy periods that
  last many handle times, so this interval is wide: a perfect router would show the
  same swings (the `textbook` column shows them).
* paired: the same customers (the run's own arrival instants and drawn handle times)
  go through a textbook first-come first-served M/M/c queue, in this process, with no
  router: `textbook` is what Erlang C's model gives for exactly these draws. Over many
  runs its share averages Erlang C, so `router` = measured - textbook, contact by
  contact, is the router's own effect (overheads, latencies, any routing mistake), and
  Erlang C + that effect is the share the router would reach over the long run. The
  sampling noise cancels out: its interval is narrow after a few hundred contacts.
  `overhd` is the part of the router's effect due to agents held longer than their
  handle time (the textbook queue run again with the hold times agents lived).
  `--spread RUNS` starts no router and prints what a perfect router measures over
  runs of that length: how far luck alone moves the raw figures.

A pair agrees when the 95% interval of the router's effect lies within +-3 points; it
is OFF when the interval lies outside; otherwise the run was too short to tell.

Why the time scales differ per pair: every contact holds its agent some milliseconds of
real time beyond the handle time (the end and complete round trips, each a commit to
PostgreSQL), and near 95% occupancy Erlang C is steep: 0.3% more handle time costs
about 2 points at c = 150. Ten milliseconds are nothing against a real 180 s call, but
a time scale multiplies them: at 60x, 10 ms is 0.6 simulated seconds. So the busier
pairs run slower (180 s is 15 s of real time at 12x), the light ones, where Erlang C is
flat, faster to gather contacts. The overhead column shows what it cost.

A queue near saturation forgets its past slowly (its relaxation time is about
AHT / (c (1 - sqrt(rho))^2)), so the first two relaxation times (at least ten handle
times) are left out; `relax` says how many relaxation times the measured part covers.
The seeds are fixed per pair (`--seed` shifts them): a rerun replays the same arrivals
(handle times are drawn by the agent who answers, so only partly the same), and so
much of the same luck. See docs/erlang-c.md for runs and what they show.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if not __package__:  # run as a script: make the scenarios package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from contact_router_tools.scenario import parse
from contact_router_tools.simulate import simulate
from contact_router_tools.simulation.records import ContactRecord
from contact_router_tools.simulation.report import SimulationReport
from contact_router_tools.tables import Figure, number, percent, points, render_table, seconds

from router.reporting.staffing import erlang_c
from scenarios.erlang_c_core import (
    HANDLE,
    TARGET,
    TOLERANCE,
    BatchMeans,
    Load,
    average_speed_of_answer,
    batch_means,
    fcfs_waits,
    service_level,
)

BATCHES = 20


@dataclass(frozen=True)
class Pair(Load):
    time_scale: float


PAIRS = (
    Pair(5, 0.50, 60.0),
    Pair(10, 0.70, 45.0),
    Pair(20, 0.80, 30.0),
    Pair(50, 0.90, 18.0),
    Pair(150, 0.95, 12.0),
)


@dataclass
class Result:
    pair: Pair
    contacts: int  # measured: submitted after the warm-up, and answered
    unanswered: int  # submitted after the warm-up, never answered (should be 0)
    relaxations: float  # relaxation times the measured arrivals span
    predicted: float  # Erlang C for the nominal lambda and AHT
    realized_load: float  # erlangs: arrivals per second measured x mean drawn handle time
    measured: BatchMeans  # share answered within TARGET, client side
    textbook: float  # share of the textbook M/M/c queue on the same customers
    effect: BatchMeans  # measured - textbook, contact by contact
    overhead_effect: float  # textbook with the lived hold times - textbook
    asa: float
    textbook_asa: float
    predicted_asa: float  # Erlang C for the nominal lambda and AHT
    aht: float  # answered -> completed, as the agents lived it
    overhead_ms: float  # real milliseconds per contact beyond the drawn handle time
    errors: int

    @property
    def difference(self) -> float:
        """Raw: measured - Erlang C."""
        return self.measured.mean - self.predicted

    @property
    def effect_bound(self) -> float:
        """Half-width of the router effect's 95% interval; when (almost) no contact
        differs, at least the rule of three's 3 / n (no difference in n contacts)."""
        return max(self.effect.half_width, 3 / self.contacts if self.contacts else math.inf)

    @property
    def estimate(self) -> float:
        """The long-run share: Erlang C plus the router's own effect."""
        return self.predicted + self.effect.mean

    @property
    def verdict(self) -> str:
        if self.unanswered or self.contacts == 0:
            return "INCOMPLETE"
        low, high = self.effect.mean - self.effect_bound, self.effect.mean + self.effect_bound
        if low >= -TOLERANCE and high <= TOLERANCE:
            return "agrees"
        if high < -TOLERANCE or low > TOLERANCE:
            return "OFF"
        return "too short"


# Erlang C's agents are interchangeable: no call may wait for the agent who served its
# customer before while another is free. The simulator gives every contact its own
# customer id; the setting is off as well, so that the check never depends on that.
NO_PREFERENCE = {"phone_prefer_previous_agent": 0.0}


def scenario_for(pair: Pair, real_seconds: float, seed: int = 0) -> dict[str, Any]:
    duration = real_seconds * pair.time_scale
    return {
        "name": f"erlang-c-{pair.agents}-{pair.occupancy:g}",
        "duration": duration,
        "drain": 10 * HANDLE,
        "time_scale": pair.time_scale,
        "seed": pair.agents + seed,
        # An empty center answers everyone at first: leave out two relaxation times, at
        # least ten handle times, while the queue finds its steady state.
        "warm_up": min(duration / 2, max(10 * HANDLE, 2 * pair.relaxation)),
        "router": {"phone_target_seconds": TARGET, "phone_reserve": 0, **NO_PREFERENCE},
        "channels": {
            "phone": {
                "rate_per_hour": pair.arrival_rate * 3600,
                "talk": {"distribution": "exponential", "mean": HANDLE},
            }
        },
        "agents": [{"group": "phone", "count": pair.agents}],
    }


def _lived(r: ContactRecord) -> float | None:
    """Answer to completion as the agent lived it (drawn handle time + overhead)."""
    if r.completed is None or r.answered is None or r.cut_short:
        return None
    return r.completed - r.answered


def evaluate(pair: Pair, report: SimulationReport, batches: int = BATCHES) -> Result:
    # Every contact of the run, warm-up included, in the order it was submitted: the
    # textbook queue needs the whole history to give the measured ones their waits.
    everyone = sorted(
        (r for r in report.records if r.channel == "phone" and r.submitted is not None),
        key=lambda r: r.submitted or 0.0,
    )
    arrivals = [r.submitted or 0.0 for r in everyone]
    # A contact never answered (still waiting when the run closed) drew no handle time;
    # under first come, first served it delays nobody measured before it.
    drawn = [HANDLE if r.talk_drawn is None else r.talk_drawn for r in everyone]
    lived = [d if (x := _lived(r)) is None else x for r, d in zip(everyone, drawn, strict=True)]
    textbook = fcfs_waits(arrivals, drawn, pair.agents)
    textbook_lived = fcfs_waits(arrivals, lived, pair.agents)
    measured = [
        (r, t, tl)
        for r, t, tl in zip(everyone, textbook, textbook_lived, strict=True)
        if (r.submitted or 0.0) >= report.warm_up
    ]
    answered = [(r, t, tl) for r, t, tl in measured if r.wait is not None]
    waits = [r.wait or 0.0 for r, _, _ in answered]
    within = [1.0 if w <= TARGET else 0.0 for w in waits]
    within_textbook = [1.0 if t <= TARGET else 0.0 for _, t, _ in answered]
    within_lived = [1.0 if tl <= TARGET else 0.0 for _, _, tl in answered]
    effect = [m - t for m, t in zip(within, within_textbook, strict=True)]
    held = [x for r, _, _ in answered if (x := _lived(r)) is not None]
    overheads = [
        x - r.talk_drawn
        for r, _, _ in answered
        if (x := _lived(r)) is not None and r.talk_drawn is not None
    ]
    handles = [r.talk_drawn for r, _, _ in answered if r.talk_drawn is not None]
    # The load the run drew is shown, not compared with: over a few relaxation times
    # the share answered in time follows the recent load, not the run's mean, and
    # Erlang C at a drawn load a few percent high swings by tens of points near
    # saturation, far more than the share. The textbook queue is the control for luck.
    window = report.arrivals_seconds - report.warm_up
    realized_rate = len(measured) / window if window > 0 else math.nan
    realized_load = realized_rate * (statistics.fmean(handles) if handles else math.nan)
    mean = statistics.fmean
    return Result(
        pair=pair,
        contacts=len(answered),
        unanswered=len(measured) - len(answered),
        relaxations=window / pair.relaxation,
        predicted=service_level(pair.agents, pair.arrival_rate, HANDLE, TARGET),
        realized_load=realized_load,
        measured=batch_means(within, batches),
        textbook=mean(within_textbook) if answered else math.nan,
        effect=batch_means(effect, batches),
        overhead_effect=(mean(within_lived) - mean(within_textbook) if answered else math.nan),
        asa=mean(waits) if waits else math.nan,
        textbook_asa=mean(t for _, t, _ in answered) if answered else math.nan,
        predicted_asa=average_speed_of_answer(pair.agents, pair.arrival_rate, HANDLE),
        aht=mean(held) if held else math.nan,
        overhead_ms=1000 * mean(overheads) / pair.time_scale if overheads else 0.0,
        errors=sum(report.counters.errors.values()),
    )


def _row(r: Result) -> list[object]:
    p = r.pair
    verdict = r.verdict + (f" ({r.errors} gRPC errors)" if r.errors else "")
    verdict += f" ({r.unanswered} unanswered)" if r.unanswered else ""
    waiting = erlang_c(p.agents, p.agents * p.occupancy)
    pair = [p.agents, percent(p.occupancy, 0), number(waiting, 3)]
    pair += [Figure(p.time_scale, digits=0, unit="x"), r.contacts, number(r.relaxations, 1)]
    raw = [percent(r.predicted), percent(r.measured.mean), points(r.difference)]
    raw += [points(r.measured.half_width, signed=False), Figure(r.measured.lag1, 2, signed=True)]
    raw += [number(r.realized_load, 2)]
    paired = [percent(r.textbook), points(r.effect.mean), points(r.effect_bound, signed=False)]
    paired += [points(r.overhead_effect), percent(r.estimate)]
    times = [seconds(r.asa), seconds(r.textbook_asa), seconds(r.predicted_asa), seconds(r.aht)]
    times += [Figure(r.overhead_ms, digits=1, unit="ms")]
    return [*pair, *raw, *paired, *times, verdict]


def table(results: list[Result]) -> str:
    header = ["c", "occ", "C(c,a)", "scale", "contacts", "relax"]
    header += ["Erl C", "measured", "diff", "±95% CI", "lag1", "drawn a"]
    header += ["textbook", "router", "±95% CI", "overhd", "estimate"]
    header += ["ASA", "txtbk", "Erlang", "AHT", "overhead", "verdict"]
    lines = [render_table((header, [_row(r) for r in results]))]
    lines += [
        "",
        f"share answered within t = {TARGET:g} s of {HANDLE:g} s mean exponential handle time; "
        "Erlang C: P(wait <= t) = 1 - C(c, a) exp(-(c mu - lambda) t), a = c x occ",
        "contacts: measured (arrived after the warm-up); relax: relaxation times "
        "AHT / (c (1 - sqrt rho)^2) their arrivals span",
        "raw: diff = measured - Erlang C, in points; 95% CI by batch means "
        f"({BATCHES} batches, Student t); lag1 = autocorrelation of consecutive batch means "
        "(near 0: batches long enough); drawn a = arrival rate x mean handle time drawn",
        "paired: textbook = the share a first-come first-served M/M/c queue gives the same "
        "customers (arrival instants and drawn handle times), no router; router = measured - "
        "textbook, contact by contact, 95% CI by batch means (at least 3/contacts); overhd = "
        "its part due to agents held beyond their handle time; estimate = Erlang C + router",
        "ASA measured, textbook, Erlang C; AHT measured client side (answer to completion); "
        "overhead = real milliseconds an agent is held per contact beyond its handle time "
        "(end and complete round trips, the simulator's scheduling)",
        "verdict: agrees when the router effect's 95% CI lies within ±3 points, OFF when it "
        "lies outside, too short otherwise",
    ]
    return "\n".join(lines)


QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def spread(pair: Pair, real_seconds: float, runs: int) -> list[object]:
    """What a perfect router would measure over runs of this length: the textbook queue
    (no router, no overhead) on `runs` fresh draws, with the run's warm-up; one row of
    percentiles of the share answered in time and of the ASA."""
    scenario = scenario_for(pair, real_seconds)
    duration, warm_up = scenario["duration"], scenario["warm_up"]
    shares, asas, counts = [], [], []
    for k in range(runs):
        rng = random.Random(f"spread:{pair.agents}:{k}")
        arrivals, at = [], rng.expovariate(pair.arrival_rate)
        while at < duration:
            arrivals.append(at)
            at += rng.expovariate(pair.arrival_rate)
        handles = [rng.expovariate(1 / HANDLE) for _ in arrivals]
        waits = fcfs_waits(arrivals, handles, pair.agents)
        kept = [w for a, w in zip(arrivals, waits, strict=True) if a >= warm_up]
        if kept:
            shares.append(statistics.fmean(1.0 if w <= TARGET else 0.0 for w in kept))
            asas.append(statistics.fmean(kept))
            counts.append(len(kept))

    def pct(values: list[float], q: float) -> float:
        return sorted(values)[min(len(values) - 1, int(q * len(values)))]

    return [
        *(pair.agents, percent(pair.occupancy, 0), Figure(pair.time_scale, digits=0, unit="x")),
        number(statistics.fmean(counts), 0),
        percent(service_level(pair.agents, pair.arrival_rate, HANDLE, TARGET)),
        *(percent(pct(shares, q)) for q in QUANTILES),
        seconds(average_speed_of_answer(pair.agents, pair.arrival_rate, HANDLE)),
        *(seconds(pct(asas, q)) for q in QUANTILES),
    ]


def spread_table(pairs: list[Pair], real_seconds: float, runs: int) -> str:
    percentiles = [f"p{q * 100:g}" for q in QUANTILES]
    header = ["c", "occ", "scale", "contacts", "Erl C", *(f"SL {p}" for p in percentiles)]
    header += ["Erlang", *(f"ASA {p}" for p in percentiles)]
    lines = [render_table((header, [spread(p, real_seconds, runs) for p in pairs]))]
    lines += [
        "",
        f"a perfect router over {runs} runs of {real_seconds / 60:g} real minutes each "
        "(the textbook M/M/c queue on fresh draws, the check's warm-up left out): mean "
        "measured contacts, Erlang C and percentiles of the share answered within "
        f"{TARGET:g} s (SL), then Erlang C's ASA and percentiles of the ASA",
    ]
    return "\n".join(lines)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        default="",
        help="database for the routers this starts (required unless --spread); with {n} in "
        "it, the pairs run at once, pair n in its own database (create them first)",
    )
    parser.add_argument(
        "--minutes", type=float, default=10.0, help="real minutes of arrivals per pair"
    )
    parser.add_argument(
        "--pairs", help="comma-separated indexes into the pairs (default all)", default=""
    )
    parser.add_argument("--seed", type=int, default=0, help="added to each pair's seed (default 0)")
    parser.add_argument(
        "--spread",
        type=int,
        metavar="RUNS",
        help="start no router: print what a perfect router would measure over RUNS runs "
        "of --minutes (percentiles of the share and the ASA), and exit",
    )
    parser.add_argument(
        "--format", choices=("table", "json"), default="table", help="default: table"
    )
    args = parser.parse_args()
    pairs = [PAIRS[int(i)] for i in args.pairs.split(",")] if args.pairs else list(PAIRS)
    if args.spread:
        print(spread_table(pairs, args.minutes * 60, args.spread))
        return 0
    if not args.database_url:
        parser.error("--database-url is required (unless --spread)")

    async def one(n: int, pair: Pair) -> Result:
        scenario = parse(scenario_for(pair, args.minutes * 60, args.seed))
        url = args.database_url.replace("{n}", str(n))
        report = await simulate(scenario, database_url=url)
        return evaluate(pair, report)

    if "{n}" in args.database_url:
        results = list(await asyncio.gather(*(one(n, p) for n, p in enumerate(pairs, 1))))
    else:
        results = [await one(1, pair) for pair in pairs]
    if args.format == "json":
        print(
            json.dumps(
                [
                    vars(r)
                    | {
                        "pair": vars(r.pair),
                        "measured": vars(r.measured),
                        "effect": vars(r.effect),
                        "effect_bound": r.effect_bound,
                        "verdict": r.verdict,
                    }
                    for r in results
                ]
            )
        )
    else:
        print(table(results))
    return 0 if all(r.verdict == "agrees" for r in results) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
