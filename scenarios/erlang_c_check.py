"""Measured service level against Erlang C, for phone-only traffic through a real router.

    .venv/bin/python scenarios/erlang_c_check.py --database-url postgresql://.../sim_{n}

For each (agents c, occupancy rho) pair the script starts a router (a child process, its
policy at the pair's time scale), offers Poisson phone arrivals at lambda = c rho / AHT
with exponential handle times and no wrap-up, nobody abandons, and compares the share
answered within t = 20 s with Erlang C's P(wait <= t) = 1 - C(c, a) exp(-(c mu - lambda) t).

Why the time scales differ per pair: every contact holds its agent some milliseconds of
real time beyond the handle time (the end and complete round trips, each a commit to
PostgreSQL), and near 95% occupancy Erlang C is steep: 0.3% more handle time costs
about 2 points at c = 150. Ten to forty milliseconds are nothing against a real 180 s
call, but a time scale multiplies them: at 60x, 20 ms is 1.2 simulated seconds. So the
busier pairs run slower (180 s is 15 s of real time at 12x), the light ones, where
Erlang C is flat, faster to gather contacts. The overhead column shows what it was.

A queue near saturation forgets its past slowly (its relaxation time is about
AHT / (c (1 - sqrt(rho))^2)), so the first two relaxation times (at least ten handle
times) are left out, and the measured share carries a confidence interval (batch
means: the measured contacts, in arrival order, in 10 batches). A pair agrees when
|measured - Erlang C| <= 3 points; when it does not and the interval is wider than 3
points the run was too short to tell, and the script says so.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import sys
from dataclasses import dataclass
from typing import Any

from router.reporting.staffing import achieved, erlang_c
from router.scenario import parse
from router.simulate import simulate
from router.simulation_report import SimulationReport


def service_level(agents: int, arrival_rate: float, handle_time: float, within: float) -> float:
    """Erlang C's P(wait <= within): `arrival_rate` contacts per second, `handle_time`
    seconds each (the staffing module's formulas, with a one-second interval)."""
    return achieved(agents, arrival_rate, handle_time, 1.0, within).service_level


def average_speed_of_answer(agents: int, arrival_rate: float, handle_time: float) -> float:
    return achieved(agents, arrival_rate, handle_time, 1.0, 0.0).asa_seconds


TARGET = 20.0  # seconds: the phone answer target, t in P(wait <= t)
HANDLE = 180.0  # mean handle time, simulated seconds
TOLERANCE = 0.03
BATCHES = 10
T_975 = 2.262  # Student's t, 9 degrees of freedom


@dataclass(frozen=True)
class Pair:
    agents: int
    occupancy: float
    time_scale: float

    @property
    def arrival_rate(self) -> float:
        """Contacts per simulated second."""
        return self.agents * self.occupancy / HANDLE

    @property
    def relaxation(self) -> float:
        """Simulated seconds in which the queue forgets its start, roughly."""
        return HANDLE / (self.agents * (1 - math.sqrt(self.occupancy)) ** 2)


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
    contacts: int
    measured: float
    predicted: float  # Erlang C for the nominal lambda and AHT
    realized_load: float  # erlangs: arrivals per second measured x mean drawn handle time
    realized: float  # Erlang C for the arrivals and handle times that were drawn
    lived: float  # Erlang C for those arrivals and the handle time agents lived (+ overhead)
    half_width: float  # of the 95% confidence interval of `measured`
    asa: float
    predicted_asa: float
    aht: float  # answered -> completed, as the agents lived it
    overhead_ms: float  # real milliseconds per contact beyond the drawn handle time
    errors: int

    @property
    def difference(self) -> float:
        return self.measured - self.realized

    @property
    def verdict(self) -> str:
        if abs(self.difference) <= TOLERANCE:
            return "agrees"
        if self.half_width > TOLERANCE:
            return "too noisy"
        return "OFF"


def scenario_for(pair: Pair, real_seconds: float) -> dict[str, Any]:
    duration = real_seconds * pair.time_scale
    return {
        "name": f"erlang-c-{pair.agents}-{pair.occupancy:g}",
        "duration": duration,
        "drain": 10 * HANDLE,
        "time_scale": pair.time_scale,
        "seed": pair.agents,
        # An empty center answers everyone at first: leave out two relaxation times, at
        # least ten handle times, while the queue finds its steady state.
        "warm_up": min(duration / 2, max(10 * HANDLE, 2 * pair.relaxation)),
        "router": {"phone_target": TARGET, "phone_reserve": 0},
        "channels": {
            "phone": {
                "rate_per_hour": pair.arrival_rate * 3600,
                "handle": {"distribution": "exponential", "mean": HANDLE},
            }
        },
        "agents": [{"group": "phone", "count": pair.agents}],
    }


def evaluate(pair: Pair, report: SimulationReport) -> Result:
    answered = sorted(
        (r for r in report.measured if r.channel == "phone" and r.wait is not None),
        key=lambda r: r.submitted or 0.0,
    )
    waits = [r.wait or 0.0 for r in answered]
    within = [1.0 if w <= TARGET else 0.0 for w in waits]
    size = max(1, len(within) // BATCHES)
    batches = [
        statistics.fmean(within[i * size : (i + 1) * size])
        for i in range(BATCHES)
        if within[i * size : (i + 1) * size]
    ]
    spread = statistics.stdev(batches) if len(batches) > 1 else math.inf
    held = [
        (r.completed or 0.0) - (r.answered or 0.0)
        for r in answered
        if r.completed is not None and not r.cut_short
    ]
    aht = statistics.fmean(held) if held else math.nan
    drawn = [r.handle_drawn for r in answered if r.handle_drawn is not None]
    overheads = [
        (r.completed or 0.0) - (r.answered or 0.0) - (r.handle_drawn or 0.0)
        for r in answered
        if r.completed is not None and not r.cut_short and r.handle_drawn is not None
    ]
    lam = pair.arrival_rate
    # The run draws its own arrivals and handle times: over a few hundred contacts they
    # stray a few percent from the nominal rates, which near saturation moves Erlang C
    # by more than the tolerance. The verdict compares with Erlang C at the load that
    # was drawn (the router's own overhead is not part of it: it counts against it).
    window = report.arrivals_seconds - report.warm_up
    realized_rate = len(answered) / window if window > 0 else math.nan
    realized_handle = statistics.fmean(drawn) if drawn else math.nan
    realized_load = realized_rate * realized_handle
    realized = (
        service_level(pair.agents, realized_rate, realized_handle, TARGET)
        if realized_load < pair.agents
        else 0.0
    )
    lived = (
        service_level(pair.agents, realized_rate, aht, TARGET)
        if realized_rate * aht < pair.agents
        else 0.0
    )
    return Result(
        pair=pair,
        contacts=len(waits),
        measured=statistics.fmean(within) if within else math.nan,
        predicted=service_level(pair.agents, lam, HANDLE, TARGET),
        realized_load=realized_load,
        realized=realized,
        lived=lived,
        half_width=T_975 * spread / math.sqrt(len(batches)) if batches else math.inf,
        asa=statistics.fmean(waits) if waits else math.nan,
        predicted_asa=average_speed_of_answer(pair.agents, lam, HANDLE),
        aht=aht,
        overhead_ms=1000 * statistics.fmean(overheads) / pair.time_scale if overheads else 0,
        errors=sum(report.counters.errors.values()),
    )


def table(results: list[Result]) -> str:
    header = (
        f"{'c':>3} {'occ':>5} {'a (erl)':>7} {'C(c,a)':>6} {'scale':>5} {'contacts':>8}  "
        f"{'Erlang C':>8} {'drawn a':>7} {'Erlang C':>8} {'measured':>8} {'diff':>6} "
        f"{'lived':>6} "
        f"{'95% CI':>7}  "
        f"{'ASA':>6} {'Erlang':>6}  {'AHT':>6} {'overhead':>8}  verdict"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        p = r.pair
        a = p.agents * p.occupancy
        lines.append(
            f"{p.agents:>3} {p.occupancy:>5.0%} {a:>7.2f} {erlang_c(p.agents, a):>6.3f} "
            f"{p.time_scale:>4g}x {r.contacts:>8}  {r.predicted:>8.1%} {r.realized_load:>7.2f} "
            f"{r.realized:>8.1%} {r.measured:>8.1%} {100 * r.difference:>+6.1f} "
            f"{r.lived:>6.1%} "
            f"{'±' + format(100 * r.half_width, '.1f'):>7}  "
            f"{r.asa:>5.1f}s {r.predicted_asa:>5.1f}s  {r.aht:>5.1f}s {r.overhead_ms:>6.1f}ms  "
            f"{r.verdict}" + (f" ({r.errors} gRPC errors)" if r.errors else "")
        )
    lines += [
        "",
        f"share answered within t = {TARGET:g} s of {HANDLE:g} s mean exponential handle time; "
        "Erlang C: P(wait <= t) = 1 - C(c, a) exp(-(c mu - lambda) t)",
        "first Erlang C: nominal lambda and AHT; drawn a and second Erlang C: the arrival "
        "rate and mean handle time this run drew (the verdict's reference)",
        "diff = measured - drawn Erlang C, in points; 95% CI of the measured share by batch "
        "means; ASA (Erlang: nominal) and AHT measured client side (answer to completion)",
        "overhead = real milliseconds an agent is held per contact beyond its handle time "
        "(end and complete round trips, and the simulator's own scheduling)",
        "lived = Erlang C for the drawn arrivals and the handle time agents lived (drawn + "
        "overhead): the share the overhead alone leaves",
    ]
    return "\n".join(lines)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        required=True,
        help="database for the routers this starts; with {n} in it, the pairs run at "
        "once, pair n in its own database (create them first)",
    )
    parser.add_argument(
        "--minutes", type=float, default=20.0, help="real minutes of arrivals per pair"
    )
    parser.add_argument(
        "--pairs", help="comma-separated indexes into the pairs (default all)", default=""
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    pairs = [PAIRS[int(i)] for i in args.pairs.split(",")] if args.pairs else list(PAIRS)

    async def one(n: int, pair: Pair) -> Result:
        scenario = parse(scenario_for(pair, args.minutes * 60))
        url = args.database_url.replace("{n}", str(n))
        report = await simulate(scenario, database_url=url)
        return evaluate(pair, report)

    if "{n}" in args.database_url:
        results = list(await asyncio.gather(*(one(n, p) for n, p in enumerate(pairs, 1))))
    else:
        results = [await one(1, pair) for pair in pairs]
    if args.json:
        print(json.dumps([vars(r) | {"pair": vars(r.pair), "verdict": r.verdict} for r in results]))
    else:
        print(table(results))
    return 0 if all(r.verdict == "agrees" for r in results) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
