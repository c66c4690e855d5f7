"""The estimated wait against the routing core in virtual time: no server, no database.

    .venv/bin/python scenarios/estimate_core.py scenarios/phone_first.toml \\
        [--phone-reserve K] [--seeds 10] [--ring 1.0]

A discrete-event simulation drives `router.domain.router.Router` directly with `now`
passed in, as scenarios/erlang_c_core.py does, for a scenario file's arrivals (Poisson
per channel, plus the backlog waiting at the start), talk, wrap-up and patience, and its
agents (groups, capacities, shift starts; skill mixes, returning customers and shift
ends are left out). Agents accept each offer `--ring` seconds after it is made. Like
`contact-router simulate`, it asks for the estimated wait right after each submission
that had to queue (the backlog's aside) and compares it with the wait that followed,
for the contacts that were answered; per channel, pooled over `--seeds` runs:

  bias = (mean estimate - mean actual) / mean actual; MAE = mean absolute error;
  MAE share = MAE / mean actual; floor = the MAE share of the best estimate from the
  place alone, in hindsight (the median wait of the contacts that queued at the same
  place: no estimator that knows only the place does better on these contacts)

In virtual time the router's own milliseconds, which a time-scaled run multiplies, cost
nothing, and many seeds take seconds: it shows what the estimator does, and how much a
run's luck moves it; `contact-router simulate` shows it with the server, in real time.
The same script runs against an older core (it uses only Router's public methods), to
compare estimators on the same draws.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import math
import random
import sys
from collections import defaultdict
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from statistics import median

from contact_router_tools.scenario import AgentGroup, ChannelLoad, Scenario, load
from contact_router_tools.tables import Figure, percent, render_table, seconds

from router.domain import Channel, Contact, Router
from router.domain.agent import AgentStatus
from router.domain.events import ContactEvent, ContactEventKind, Event
from router.errors import DomainError

T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
FLOOR_GROUP = 10  # contacts that queued at one place, for the floor
READY = AgentStatus.READY


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@dataclass
class Pairs:
    """(estimate, actual wait, place) of the contacts of one channel that queued; the
    place counts the contacts of the channel waiting ahead at submission, + 1."""

    pairs: list[tuple[float, float, int]] = field(default_factory=list)

    def floor(self) -> float | None:
        """The mean absolute error of the best estimate from the place alone, in
        hindsight: the median wait of the contacts that queued at the same place,
        over the places where at least FLOOR_GROUP did (None if under half the
        contacts are in such places: an email's place is seldom shared)."""
        by_place: dict[int, list[float]] = defaultdict(list)
        for _, wait, place in self.pairs:
            by_place[place].append(wait)
        errors = [
            abs(wait - median(waits))
            for waits in by_place.values()
            if len(waits) >= FLOOR_GROUP
            for wait in waits
        ]
        if 2 * len(errors) < len(self.pairs):
            return None
        return sum(errors) / len(errors)

    def row(self, channel: str) -> list[object]:
        n = len(self.pairs)
        estimate = sum(e for e, _, _ in self.pairs) / n
        actual = sum(w for _, w, _ in self.pairs) / n
        error = sum(abs(e - w) for e, w, _ in self.pairs) / n
        floor = self.floor()
        return [
            channel,
            n,
            seconds(estimate),
            seconds(actual),
            percent((estimate - actual) / actual if actual > 0 else None, signed=True),
            seconds(error),
            percent(error / actual if actual > 0 else None),
            percent(floor / actual if floor is not None and actual > 0 else None),
        ]


def run(scenario: Scenario, seed: int, ring: float) -> dict[str, Pairs]:
    """One run of `scenario` with random streams named after `seed`."""
    ids = itertools.count(1)
    router = Router(scenario.policy, new_id=lambda: f"offer-{next(ids)}")
    events: list[tuple[float, int, Callable[[float], None]]] = []
    order = itertools.count()
    draws = random.Random(f"{seed}:draws")
    # id -> (channel, queued at, estimate, place)
    queued: dict[str, tuple[str, float, float, int]] = {}
    waiting: dict[str, set[str]] = defaultdict(set)  # per channel, ids not yet offered
    answered: dict[str, float] = {}

    def push(t: float, happen: Callable[[float], None]) -> None:
        heapq.heappush(events, (t, next(order), happen))

    def take(now: float, produced: list[Event]) -> None:
        """Every offer made is answered `ring` seconds later."""
        for event in produced:
            if isinstance(event, ContactEvent) and event.kind is ContactEventKind.OFFERED:
                assert event.offer is not None
                waiting[event.contact.channel.value].discard(event.contact.id)
                push(now + ring, partial(accept, event.offer.agent_id, event.offer.id))

    def sign_in(agent_id: str, group: AgentGroup, now: float) -> None:
        capacities = {Channel(c): n for c, n in group.capacities.items()}
        take(now, router.sign_in(agent_id, group.skills, capacities, READY, _at(now)))
        take(now, router.connect(agent_id, _at(now)))

    def arrive(contact_id: str, name: str, backlog: bool, now: float) -> None:
        load = scenario.channels[name]
        moment = _at(now)
        contact = Contact(contact_id, contact_id, Channel(name), contact_id, moment)
        produced = router.submit(contact, moment)
        if router.position(contact_id, moment) and not backlog:
            estimate = router.estimated_wait(contact_id, moment)
            if estimate is not None:
                queued[contact_id] = (name, now, estimate, len(waiting[name]) + 1)
        waiting[name].add(contact_id)
        take(now, produced)
        if load.patience is not None and not backlog:
            push(now + load.patience.sample(draws), partial(leave, contact_id))

    def accept(agent_id: str, offer_id: str, now: float) -> None:
        if router.offer(offer_id) is None:
            return  # the customer left meanwhile
        contact, produced = router.accept(agent_id, offer_id, _at(now))
        answered[contact.id] = now
        load = scenario.channels[contact.channel.value]
        push(now + load.talk.sample(draws), partial(end, agent_id, contact.id, load))
        take(now, produced)

    def end(agent_id: str, contact_id: str, load: ChannelLoad, now: float) -> None:
        router.end(agent_id, contact_id, _at(now))
        push(now + load.wrap_up.sample(draws), partial(complete, agent_id, contact_id))

    def complete(agent_id: str, contact_id: str, now: float) -> None:
        take(now, router.complete(agent_id, contact_id, "done", _at(now))[1])

    def leave(contact_id: str, now: float) -> None:
        if contact_id not in answered:
            with suppress(DomainError):  # offered meanwhile, or over
                take(now, router.abandon(contact_id, _at(now)))
                waiting[contact_id.rpartition("-")[0]].discard(contact_id)

    for group in scenario.agents:
        for i in range(group.count):
            push(group.shift_of(i)[0], partial(sign_in, f"{group.name}-{i}", group))
    for name, channel in scenario.channels.items():
        for n in range(channel.backlog):
            push(0.0, partial(arrive, f"{name}-b{n}", name, True))
        arrivals = random.Random(f"{seed}:arrivals:{name}")
        t, peak = 0.0, channel.peak_rate
        while peak > 0:
            t += arrivals.expovariate(peak)
            if t >= scenario.duration:
                break
            if arrivals.random() * peak <= channel.rate_at(t):
                push(t, partial(arrive, f"{name}-{t:.6f}", name, False))
    last = scenario.duration + scenario.drain
    while events:
        due = router.next_deadline()
        deadline = math.inf if due is None else (due - T0).total_seconds()
        if deadline < events[0][0]:
            if deadline > last:
                break
            take(deadline, router.expire(_at(deadline)))
            continue
        now, _, happen = heapq.heappop(events)
        if now > last:
            break
        happen(now)
    by_channel: dict[str, Pairs] = defaultdict(Pairs)
    for contact_id, (name, queued_at, estimate, place) in queued.items():
        if contact_id in answered:
            wait = answered[contact_id] - queued_at
            by_channel[name].pairs.append((estimate, wait, place))
    return by_channel


def table(scenario: Scenario, seeds: Sequence[int], ring: float) -> str:
    pooled: dict[str, Pairs] = defaultdict(Pairs)
    for seed in seeds:
        for name, pairs in run(scenario, seed, ring).items():
            pooled[name].pairs.extend(pairs.pairs)
    header = [
        "channel",
        "contacts",
        "mean estimate",
        "mean actual",
        "bias",
        "MAE",
        "MAE share",
        "floor",
    ]
    rows = [pooled[name].row(name) for name in scenario.channels if pooled[name].pairs]
    reserve = Figure(scenario.policy.phone_reserve, digits=0)
    return "\n".join(
        [
            f"{scenario.name}: phone reserve {reserve}, seeds {seeds[0]}..{seeds[-1]}, "
            f"offers answered after {seconds(ring)}",
            render_table((header, rows)),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", type=Path)
    parser.add_argument("--phone-reserve", type=int, help="override the scenario's")
    parser.add_argument("--seeds", type=int, default=10, help="runs, seeds 1..N (default 10)")
    parser.add_argument(
        "--ring", type=float, default=1.0, help="seconds from offer to answer (default 1)"
    )
    args = parser.parse_args(argv)
    scenario = load(args.scenario)
    if args.phone_reserve is not None:
        scenario = scenario.with_router(phone_reserve=args.phone_reserve)
    print(table(scenario, range(1, args.seeds + 1), args.ring))
    return 0


if __name__ == "__main__":
    sys.exit(main())
