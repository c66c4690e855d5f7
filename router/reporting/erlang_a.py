"""Erlang A: staffing when callers abandon (the M/M/n+M queue, Palm's model).

Like Erlang C, calls arrive at random (rate lambda) and handle times are exponential
(rate mu = 1 / AHT); unlike it, each waiting caller gives up after an exponential
patience (rate theta = 1 / mean patience). Abandonment shortens the queue, so Erlang A
needs fewer agents than Erlang C for the same target, and it can staff an interval
whose traffic exceeds the agents (the queue stays finite).

Computed exactly rather than by approximation:

* the stationary distribution of the birth-death chain: p(k) ~ A^k / k! up to n busy
  agents, then p(n + j) = p(n) prod_{i=1..j} lambda / (n mu + i theta), summed until
  the terms vanish;
* a caller who arrives to find j waiting (PASTA) passes stages j, j-1, ..., 0; at
  stage i it leaves the stage at rate q_i = n mu + i theta + theta: forward (the one
  ahead is served or gives up, or at stage 0 a server frees) with rate n mu + i theta,
  or gives up itself with rate theta. Time in a stage does not depend on how it ends,
  so the chance of being answered within t is found by uniformization of that chain,
  for every j at once.

Service level is reported the way the router counts it: answered within the threshold
/ (all calls - those abandoned within the short-abandon limit).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

_TAIL = 1e-13


@dataclass(frozen=True, slots=True)
class ErlangA:
    """What `agents` achieve with abandonment."""

    agents: int
    traffic_erlangs: float
    service_level: float
    probability_of_waiting: float
    abandonment: float
    """Share of all calls that abandon (short abandons included)."""
    asa_seconds: float
    """Mean wait of the answered calls."""
    occupancy: float


def _arrival_distribution(
    agents: int, arrival: float, service: float, patience: float
) -> tuple[float, list[float]]:
    """(P(arrive to a free agent), [P(arrive to find j waiting) for j = 0, 1, ...])."""
    traffic = arrival / service
    # Unnormalised, in logs to stay finite for large centres.
    log_terms = (
        [k * math.log(traffic) - math.lgamma(k + 1) for k in range(agents + 1)]
        if traffic > 0
        else [0.0] + [-math.inf] * agents
    )
    top = max(log_terms)
    free = [math.exp(x - top) for x in log_terms]
    queue = [free[-1]]
    j = 0
    while True:
        j += 1
        nxt = queue[-1] * arrival / (agents * service + j * patience)
        queue.append(nxt)
        if nxt < _TAIL * (sum(free) + sum(queue)) or j > 100_000:
            break
    total = sum(free) + sum(queue[1:])
    # An arrival sees state k; states 0..n-1 are free agents, state n + j means j wait.
    free_share = sum(free[:-1]) / total
    waiting = [q / total for q in queue]
    return free_share, waiting


def _absorbed_by(
    waiting: list[float], forward: list[float], rates: list[float], horizon: float
) -> tuple[float, float]:
    """(P(answered by `horizon`), P(abandoned by `horizon`)) for callers who find j
    waiting with probability waiting[j]: uniformization over the stages."""
    if horizon <= 0:
        return 0.0, 0.0
    fastest = max(rates)
    mean = fastest * horizon
    steps = int(mean + 12 * math.sqrt(mean) + 20)
    mass = list(waiting)
    answered = abandoned = 0.0
    answered_by = abandoned_by = 0.0
    poisson = math.exp(-mean)
    cumulative = poisson
    for step in range(1, steps + 1):
        next_mass = [0.0] * len(mass)
        for i, m in enumerate(mass):
            if m == 0.0:
                continue
            move = forward[i] / fastest
            give_up = (rates[i] - forward[i]) / fastest
            if i == 0:
                answered += m * move
            else:
                next_mass[i - 1] += m * move
            abandoned += m * give_up
            next_mass[i] += m * (1 - move - give_up)
        mass = next_mass
        poisson *= mean / step
        cumulative += poisson
        # P(k jumps by horizon) weights the state after k jumps.
        answered_by += poisson * answered
        abandoned_by += poisson * abandoned
        if 1 - cumulative < 1e-12:
            break
    return answered_by, abandoned_by


def erlang_a(
    agents: int,
    calls: float,
    aht_seconds: float,
    interval_seconds: float,
    *,
    patience_seconds: float,
    threshold: float,
    short_abandon: float = 0.0,
) -> ErlangA:
    """Service level and the rest for `agents` answering `calls` in an interval."""
    if agents < 1 or calls <= 0 or aht_seconds <= 0 or patience_seconds <= 0:
        raise ValueError("agents, calls, AHT and patience must be positive")
    arrival = calls / interval_seconds
    service = 1 / aht_seconds
    patience = 1 / patience_seconds
    free, waiting = _arrival_distribution(agents, arrival, service, patience)
    forward = [agents * service + i * patience for i in range(len(waiting))]
    rates = [f + patience for f in forward]
    answered_in_time, _ = _absorbed_by(waiting, forward, rates, threshold)
    _, abandoned_short = _absorbed_by(waiting, forward, rates, short_abandon)
    # Eventually: answered with prob prod forward/rates over the stages passed.
    answered_after_wait = 0.0
    waited_if_answered = 0.0
    survive = 1.0
    mean_time = 0.0
    for j, p in enumerate(waiting):
        survive *= forward[j] / rates[j]
        mean_time += 1 / rates[j]
        answered_after_wait += p * survive
        waited_if_answered += p * survive * mean_time
    answered = free + answered_after_wait
    abandonment = 1 - answered
    counted = 1 - abandoned_short
    traffic = calls * aht_seconds / interval_seconds
    return ErlangA(
        agents=agents,
        traffic_erlangs=traffic,
        service_level=(free + answered_in_time) / counted if counted > 0 else 0.0,
        probability_of_waiting=1 - free,
        abandonment=abandonment,
        asa_seconds=waited_if_answered / answered if answered > 0 else math.inf,
        occupancy=min(1.0, traffic * answered / agents),
    )


def agents_needed_a(
    calls: float,
    aht_seconds: float,
    interval_seconds: float,
    *,
    patience_seconds: float,
    target: float,
    threshold: float,
    short_abandon: float = 0.0,
    max_agents: int = 100_000,
) -> ErlangA:
    """The fewest agents whose Erlang A service level reaches `target`; 0 agents when
    there is no work (no calls, or calls that take no time), as with Erlang C."""
    if calls < 0 or aht_seconds < 0:
        raise ValueError("calls and AHT must not be negative")
    if not 0 < target < 1:
        raise ValueError("the target service level must be between 0 and 1, exclusive")
    if calls == 0 or aht_seconds == 0:
        return ErlangA(
            agents=0,
            traffic_erlangs=0.0,
            service_level=1.0,
            probability_of_waiting=0.0,
            abandonment=0.0,
            asa_seconds=0.0,
            occupancy=0.0,
        )

    def level(agents: int) -> ErlangA:
        return erlang_a(
            agents,
            calls,
            aht_seconds,
            interval_seconds,
            patience_seconds=patience_seconds,
            threshold=threshold,
            short_abandon=short_abandon,
        )

    # Service level grows with agents: double until the target is met, then bisect.
    low, high = 0, 1
    while (best := level(high)).service_level < target:
        low, high = high, high * 2
        if high > max_agents:
            raise ValueError(f"more than {max_agents} agents would be needed: check the forecast")
    while high - low > 1:
        middle = (low + high) // 2
        result = level(middle)
        if result.service_level >= target:
            high, best = middle, result
        else:
            low = middle
    return best
