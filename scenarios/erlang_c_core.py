"""Erlang C against the pure routing core, in virtual time: no server, no database.

    .venv/bin/python scenarios/erlang_c_core.py [--contacts N] [--pairs 0,2] [--seed S] [--jobs J]

A discrete-event simulation drives `router.domain.router.Router` directly, with `now`
passed in as virtual time: Poisson phone arrivals at lambda = c rho / AHT, exponential
handle times (180 s mean, drawn per contact at arrival from their own random stream),
phone reserve 0, agents who accept every offer the instant it is made, no wrap-up
(end and complete at the same instant), nobody abandons. The router's own deadlines
(`next_deadline()` / `expire(now)`) are honoured, though with instant accepts and no
reserve they never fire. This is the M/M/c queue with first-come first-served order,
so the share answered within t = 20 s must be Erlang C's
P(wait <= t) = 1 - C(c, a) exp(-(c mu - lambda) t), and the ASA C(c, a) AHT / (c - a),
to within sampling error.

Besides the figures the run checks, for every event, the two properties of the core
that Erlang C rests on: work conservation (no contact waits while an agent is free)
and first-come first-served (contacts are answered in the order they arrived). A
violation of either is a core bug and makes the run fail whatever the figures say.

Statistics: the system starts empty, so arrivals of the first max(20 AHT, 10
relaxation times) are left out (relaxation ~ AHT / (c (1 - sqrt rho)^2)); the measured
contacts, in arrival order, are cut into contiguous batches (40 by default) whose
means give a 95% confidence interval (Student t). The lag-1 autocorrelation of the
batch means is printed: near 0 says the batches are long enough to be independent.
After the last measured arrival no more customers arrive (under FCFS later arrivals
cannot change an earlier contact's wait) and the queue drains.

The verdict compares with Erlang C for the load the run drew (measured arrival rate x
mean drawn handle time); Erlang C for the nominal load is printed too. A pair fails
when they differ by more than 3 points; the exit status is then 1.
"""

from __future__ import annotations

import argparse
import heapq
import math
import os
import random
import statistics
import sys
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from contact_router_tools.tables import Figure, number, percent, points, render_table, seconds

from router.domain import Channel, Contact, Router, RoutingPolicy
from router.domain.agent import AgentStatus
from router.domain.events import ContactEvent, ContactEventKind, Event
from router.reporting.staffing import achieved, erlang_c

TARGET = 20.0  # seconds: the phone answer target, t in P(wait <= t)
HANDLE = 180.0  # mean handle time, seconds
TOLERANCE = 0.03
BATCHES = 40
T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Load:
    """`agents` agents at `occupancy` of HANDLE-second calls: what both Erlang C checks
    (this one and scenarios/erlang_c_check.py) derive their pairs from."""

    agents: int
    occupancy: float

    @property
    def arrival_rate(self) -> float:
        """Contacts per (simulated) second."""
        return self.agents * self.occupancy / HANDLE

    @property
    def relaxation(self) -> float:
        """(Simulated) seconds in which the queue forgets its start, roughly."""
        return HANDLE / (self.agents * (1 - math.sqrt(self.occupancy)) ** 2)


@dataclass(frozen=True)
class Pair(Load):
    contacts: int  # measured contacts of a default run (busier pairs need more)

    @property
    def warm_up(self) -> float:
        """Seconds of arrivals left out: the empty start answers everyone at once."""
        return max(20 * HANDLE, 10 * self.relaxation)


# Default run lengths: about +-0.5 points for the light pairs; near saturation the
# share answered in time swings over long busy periods, and +-0.5 would take some 5
# (c = 50) and 20 (c = 150) million contacts, so those get what fits in two minutes.
PAIRS = (
    Pair(5, 0.50, 200_000),
    Pair(10, 0.70, 300_000),
    Pair(20, 0.80, 500_000),
    Pair(50, 0.90, 1_000_000),
    Pair(150, 0.95, 1_000_000),
)


def service_level(agents: int, arrival_rate: float, handle_time: float, within: float) -> float:
    """Erlang C's P(wait <= within) for `arrival_rate` per second of `handle_time` s."""
    return achieved(agents, arrival_rate, handle_time, 1.0, within).service_level


def average_speed_of_answer(agents: int, arrival_rate: float, handle_time: float) -> float:
    return achieved(agents, arrival_rate, handle_time, 1.0, 0.0).asa_seconds


def t_975(df: int) -> float:
    """Student's t 97.5% quantile (Cornish-Fisher expansion; within 1e-3 for df >= 5)."""
    z = 1.959964
    return (
        z
        + (z**3 + z) / (4 * df)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3)
    )


@dataclass(frozen=True)
class BatchMeans:
    mean: float
    half_width: float  # of the 95% confidence interval
    batches: int
    lag1: float  # autocorrelation of consecutive batch means


def batch_means(values: list[float], batches: int) -> BatchMeans:
    """Mean of `values` (in time order) and a 95% interval from `batches` contiguous
    batches of equal size (a remainder at the end is left out of the interval only)."""
    mean = statistics.fmean(values) if values else math.nan
    size = len(values) // batches
    if size == 0 or batches < 2:
        return BatchMeans(mean, math.inf, 0, math.nan)
    means = [statistics.fmean(values[i * size : (i + 1) * size]) for i in range(batches)]
    spread = statistics.stdev(means)
    centre = statistics.fmean(means)
    deviations = [m - centre for m in means]
    square = sum(d * d for d in deviations)
    lag1 = sum(a * b for a, b in pairwise(deviations)) / square if square else 0.0
    return BatchMeans(mean, t_975(batches - 1) * spread / math.sqrt(batches), batches, lag1)


@dataclass
class CoreRun:
    """What one pair's run measured, and the invariants it checked. Lists are per
    contact in arrival order, warm-up included; `first` is the first measured one."""

    pair: Pair
    arrivals: list[float]  # arrival instants, seconds
    handles: list[float]  # drawn handle times
    waits: list[float]  # answered_at - queued_at as the core stamped them
    first: int  # index of the first contact that arrived after the warm-up
    max_busy: int  # most agents holding a contact at once
    idle_while_waiting: int  # events after which a contact waited with an agent free
    out_of_order: int  # answers of a contact that arrived after a still-waiting one
    expiries: int  # expire() calls that returned events
    events: int  # arrival, completion and deadline events processed
    seconds: float  # real seconds the run took

    @property
    def measured(self) -> int:
        return len(self.waits) - self.first


def fcfs_waits(arrivals: list[float], handles: list[float], agents: int) -> list[float]:
    """The textbook M/M/c queue on the same customers: each contact, in arrival order,
    goes to the agent free soonest, and waits until then (no router involved)."""
    free = [0.0] * agents
    waits = []
    for arrival, handle in zip(arrivals, handles, strict=True):
        start = max(arrival, heapq.heappop(free))
        waits.append(start - arrival)
        heapq.heappush(free, start + handle)
    return waits


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def run_pair(pair: Pair, contacts: int, seed: int) -> CoreRun:
    """Simulate `pair` until `contacts` contacts have arrived after the warm-up, and
    until every contact is answered."""
    started = time.perf_counter()
    ids = iter(range(1, 1 << 62))
    router = Router(RoutingPolicy(phone_reserve=0), new_id=lambda: f"offer-{next(ids)}")
    c = pair.agents
    for i in range(c):
        agent_id = f"agent-{i:03d}"
        router.sign_in(agent_id, frozenset(), {Channel.PHONE: 1}, AgentStatus.READY, T0)
        router.connect(agent_id, T0)
    arrivals_rng = random.Random(f"{seed}:arrivals:{c}")
    handles_rng = random.Random(f"{seed}:handles:{c}")
    rate = pair.arrival_rate

    arrivals: list[float] = []
    handles: list[float] = []
    waits: list[float] = []
    waiting: deque[int] = deque()  # contacts not yet answered, in arrival order
    completions: list[tuple[float, int, str, str]] = []  # (time, n, agent, contact)
    busy = max_busy = idle_while_waiting = out_of_order = expiries = events = 0
    first = -1

    def take(now: float, produced: list[Event]) -> None:
        """Accept at once every offer among `produced`; schedule its completion."""
        nonlocal busy, max_busy, out_of_order
        moment = _at(now)
        for event in produced:
            if not (isinstance(event, ContactEvent) and event.kind is ContactEventKind.OFFERED):
                continue
            offer = event.offer
            assert offer is not None
            contact, _ = router.accept(offer.agent_id, offer.id, moment)
            assert contact.answered_at is not None
            n = int(contact.id)
            if waiting[0] == n:
                waiting.popleft()
            else:
                out_of_order += 1  # not first come, first served: an older one waits
                waiting.remove(n)
            waits[n] = (contact.answered_at - contact.queued_at).total_seconds()
            busy += 1
            max_busy = max(max_busy, busy)
            heapq.heappush(completions, (now + handles[n], n, offer.agent_id, contact.id))

    next_arrival = arrivals_rng.expovariate(rate)
    while True:
        arriving = first < 0 or len(arrivals) - first < contacts
        if not arriving and not waiting:
            break
        due = router.next_deadline()
        deadline = math.inf if due is None else (due - T0).total_seconds()
        done = completions[0][0] if completions else math.inf
        coming = next_arrival if arriving else math.inf
        now = min(coming, done, deadline)
        if now == math.inf:
            raise RuntimeError("nothing left to happen while contacts still wait")
        if deadline <= min(done, coming):
            produced = router.expire(_at(now))
            expiries += bool(produced)
            take(now, produced)
        elif done <= coming:
            _, _, agent_id, contact_id = heapq.heappop(completions)
            moment = _at(now)
            router.end(agent_id, contact_id, moment)
            _, produced = router.complete(agent_id, contact_id, "done", moment)
            busy -= 1
            take(now, produced)
        else:
            n = len(arrivals)
            if first < 0 and now >= pair.warm_up:
                first = n
            arrivals.append(now)
            handles.append(handles_rng.expovariate(1 / HANDLE))
            waits.append(math.nan)
            waiting.append(n)
            contact = Contact(
                id=str(n),
                idempotency_key=f"key-{n}",
                channel=Channel.PHONE,
                customer_id=f"customer-{n}",
                queued_at=_at(now),
            )
            take(now, router.submit(contact, _at(now)))
            next_arrival = now + arrivals_rng.expovariate(rate)
        events += 1
        if waiting and busy < c:
            idle_while_waiting += 1
    return CoreRun(
        pair=pair,
        arrivals=arrivals,
        handles=handles,
        waits=waits,
        first=first,
        max_busy=max_busy,
        idle_while_waiting=idle_while_waiting,
        out_of_order=out_of_order,
        expiries=expiries,
        events=events,
        seconds=time.perf_counter() - started,
    )


SAME_WAIT = 1e-5  # seconds: the core stamps datetimes to the microsecond


@dataclass(frozen=True)
class Result:
    run: CoreRun
    share: BatchMeans  # answered within TARGET
    asa: BatchMeans
    nominal: float  # Erlang C, nominal lambda and AHT
    drawn_load: float  # erlangs: measured arrival rate x mean drawn handle time
    drawn: float  # Erlang C for the drawn load (the verdict's reference)
    drawn_asa: float
    batch_relaxations: float  # relaxation times per batch
    textbook: float  # share within TARGET of the textbook queue on the same customers
    differing: int  # measured contacts whose wait differs from the textbook queue's
    largest_difference: float  # seconds, over all contacts

    @property
    def difference(self) -> float:
        return self.share.mean - self.drawn

    @property
    def core_ok(self) -> bool:
        r = self.run
        return (
            r.idle_while_waiting == 0
            and r.out_of_order == 0
            and r.max_busy <= r.pair.agents
            and self.differing == 0
            and not any(math.isnan(w) for w in r.waits)
        )

    @property
    def verdict(self) -> str:
        if not self.core_ok:
            return "CORE BUG"
        if abs(self.difference) > TOLERANCE:
            return "OFF"
        return "agrees"


def evaluate(run: CoreRun, batches: int = BATCHES) -> Result:
    pair = run.pair
    waits = run.waits[run.first :]
    within = [1.0 if w <= TARGET else 0.0 for w in waits]
    span = run.arrivals[-1] - pair.warm_up
    drawn_rate = len(waits) / span if span > 0 else math.nan
    drawn_handle = statistics.fmean(run.handles[run.first :])
    drawn_load = drawn_rate * drawn_handle
    stable = drawn_load < pair.agents
    textbook = fcfs_waits(run.arrivals, run.handles, pair.agents)
    gaps = [abs(a - b) for a, b in zip(run.waits, textbook, strict=True)]
    return Result(
        run=run,
        share=batch_means(within, batches),
        asa=batch_means(waits, batches),
        nominal=service_level(pair.agents, pair.arrival_rate, HANDLE, TARGET),
        drawn_load=drawn_load,
        drawn=service_level(pair.agents, drawn_rate, drawn_handle, TARGET) if stable else 0.0,
        drawn_asa=(
            average_speed_of_answer(pair.agents, drawn_rate, drawn_handle) if stable else math.inf
        ),
        batch_relaxations=span / batches / pair.relaxation,
        textbook=statistics.fmean(1.0 if w <= TARGET else 0.0 for w in textbook[run.first :]),
        differing=sum(1 for g in gaps[run.first :] if g > SAME_WAIT),
        largest_difference=max(gaps) if gaps else 0.0,
    )


def _row(r: Result) -> list[object]:
    p, run = r.run.pair, r.run
    waiting = erlang_c(p.agents, p.agents * p.occupancy)
    load = [p.agents, percent(p.occupancy, 0), number(waiting, 3), run.measured]
    load += [percent(r.nominal), number(r.drawn_load, 2), percent(r.drawn)]
    share = [percent(r.share.mean, 2), points(r.difference, 2)]
    share += [points(r.share.half_width, 2, signed=False), Figure(r.share.lag1, 2, signed=True)]
    share += [number(r.batch_relaxations, 1)]
    asa = [seconds(r.asa.mean), number(r.asa.half_width, 1), seconds(r.drawn_asa)]
    core = [percent(r.textbook, 2), r.differing, run.max_busy, run.idle_while_waiting]
    core += [run.out_of_order, r.verdict]
    return [*load, *share, *asa, *core]


def table(results: list[Result]) -> str:
    header = ["c", "occ", "C(c,a)", "contacts", "Erl C", "drawn a", "drawn Erl C"]
    header += ["measured", "diff", "±95% CI", "lag1", "b/relax", "ASA", "±", "Erlang"]
    header += ["textbook", "differ", "busy", "idle/w", "FCFS", "verdict"]
    lines = [render_table((header, [_row(r) for r in results]))]
    lines += [
        "",
        f"share answered within t = {TARGET:g} s; Poisson arrivals, exponential handle time "
        f"of {HANDLE:g} s mean, phone reserve 0, instant accepts, no wrap-up, no abandonment",
        "C(c,a) and Erl C: nominal load a = c x occupancy; drawn a and drawn Erl C: "
        "the arrival rate and mean handle time the run drew (the verdict's reference)",
        "diff = measured - drawn Erlang C, in points; 95% CI by batch means "
        f"({BATCHES} batches, Student t); lag1 = autocorrelation of consecutive batch means; "
        "b/relax = relaxation times per batch",
        "ASA measured ± its 95% CI, against Erlang C's C(c,a) AHT / (c - a) for the drawn load",
        "textbook = the share of a 10-line FCFS M/M/c queue fed the same arrivals and handle "
        "times; differ = measured contacts whose wait differs from it by more than "
        f"{SAME_WAIT:g} s (must be 0)",
        "busy = most agents holding a contact at once (must be <= c); idle/w = events after "
        "which a contact waited with an agent free; FCFS = contacts answered before an older "
        "waiting one (both must be 0)",
    ]
    return "\n".join(lines)


def _one(pair: Pair, contacts: int, seed: int) -> Result:
    result = evaluate(run_pair(pair, contacts, seed))
    run = result.run
    print(
        f"{pair.agents} agents at {pair.occupancy:.0%}: {len(run.arrivals)} contacts "
        f"({run.measured} measured), {run.events} events in {run.seconds:.0f} s",
        file=sys.stderr,
        flush=True,
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--contacts",
        type=int,
        help="measured contacts per pair, after the warm-up (default per pair: "
        # argparse formats help with %: the percent sign is doubled.
        + ", ".join(f"{p.agents}@{p.occupancy * 100:.0f}%% {p.contacts}" for p in PAIRS)
        + ")",
    )
    parser.add_argument(
        "--pairs", default="", help="comma-separated indexes into the pairs (default all)"
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument(
        "--jobs",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="pairs simulated at once, one process each (default: 2, or 1 on one core)",
    )
    args = parser.parse_args(argv)
    if args.contacts is not None and args.contacts < 2 * BATCHES:
        parser.error(f"--contacts must be at least {2 * BATCHES}")
    pairs = [PAIRS[int(i)] for i in args.pairs.split(",")] if args.pairs else list(PAIRS)
    jobs = [(p, args.contacts or p.contacts, args.seed) for p in pairs]
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            results = list(pool.map(_one, *zip(*jobs, strict=True)))
    else:
        results = [_one(*job) for job in jobs]
    print(table(results))
    return 0 if all(r.verdict == "agrees" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
