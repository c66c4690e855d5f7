"""Erlang A: staffing when callers abandon (the M/M/n+M queue, Palm's model).

Like Erlang C, calls arrive at random (rate lambda) and handle times are exponential
(rate mu = 1 / AHT); unlike it, each waiting caller gives up after an exponential
patience (rate theta = 1 / mean patience). Abandonment shortens the queue, so Erlang A
needs fewer agents than Erlang C for the same target, and it can staff an interval
whose traffic exceeds the agents (the queue stays finite).

Computed exactly rather than by approximation, in time proportional to the agents plus
the waiting callers that matter, whatever the threshold:

* the stationary distribution of the birth-death chain: p(k) ~ A^k / k! up to n busy
  agents, then p(n + j) = p(n) prod_{i=1..j} lambda / (n mu + i theta), summed until
  the terms vanish;
* a caller who arrives to find j waiting (PASTA) reaches an agent after V, the sum of
  the times the j + 1 callers ahead of it (itself last) take to leave the head of the
  line: exponentials of rates n mu + k theta, k = 0..j. It is answered if its own
  patience outlasts V. With c = n mu / theta, e^(-theta V) is Beta(c, j + 1)
  distributed (a product of Beta(c + k, 1) variables), so with x = 1 - e^(-theta t):

      P(answered within t)  = c / (c + j + 1) * I_x(j + 1, c + 1)
      P(abandoned within s) = z - z I_z(j + 1, c) + (j + 1) / (j + 1 + c) I_z(j + 2, c)

  where I is the regularized incomplete beta function and z = 1 - e^(-theta s). For
  all j at once, I_x(a, b) follows from I_x(1, b) = 1 - (1 - x)^b by its recurrence in
  a, one term per waiting caller.

Service level is reported the way the router counts it: answered within the threshold
/ (all calls - those abandoned within the short-abandon limit).

The work is bounded: the waiting line is followed to at most MAX_WAITING callers (an
agent count whose line would grow longer cannot meet any target a center sets), and a
search for the agents needed stops with ValueError past `max_terms` terms in all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

_TAIL = 1e-13

MAX_WAITING = 200_000
"""The longest waiting line followed: the stationary distribution is cut where its
terms vanish, and a line that would be longer counts as not meeting the target."""

MAX_TERMS = 4_000_000
"""Terms (agents plus waiting callers, per count of agents tried) a search may compute:
about a second of arithmetic. Realistic centres need a few hundred thousand."""


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
) -> tuple[float, list[float]] | None:
    """(P(arrive to a free agent), [P(arrive to find j waiting) for j = 0, 1, ...]); None
    when the waiting line does not settle within MAX_WAITING callers."""
    served = agents * service
    if arrival > served + MAX_WAITING * patience:
        return None  # the terms still grow at MAX_WAITING waiting: no need to follow them
    traffic = arrival / service
    # Relative to p(n) = 1, the states 0..n sum to 1 / B(n, A) (Erlang B, by its
    # recurrence, which stays finite for large centres).
    blocking = 1.0
    for k in range(1, agents + 1):
        blocking = traffic * blocking / (k + traffic * blocking)
    if blocking < 1e-300:
        return 1.0, [0.0]  # no arrival finds every agent busy
    free_total = 1 / blocking
    queue = [1.0]
    queue_total = 0.0
    while True:
        j = len(queue)
        nxt = queue[-1] * arrival / (served + j * patience)
        queue.append(nxt)
        queue_total += nxt
        # The terms fall once j theta passes lambda - n mu: stop where they vanish.
        if nxt < _TAIL * (free_total + queue_total) and arrival < served + j * patience:
            break
        if j >= MAX_WAITING:
            return None
    total = free_total + queue_total
    # An arrival sees state k; states 0..n-1 are free agents, state n + j means j wait.
    free_share = (free_total - 1) / total
    waiting = [q / total for q in queue]
    return free_share, waiting


def _incomplete_beta(x: float, b: float, count: int) -> list[float]:
    """I_x(a, b) for a = 1..count (the regularized incomplete beta function), from
    I_x(1, b) = 1 - (1 - x)^b and I_x(a + 1, b) = I_x(a, b) - x^a (1 - x)^b / (a B(a, b)).
    The subtracted terms are carried in logs; each subtraction is exact to about 1e-16
    absolute, far below what a service level needs."""
    if x <= 0.0:
        return [0.0] * count
    if x >= 1.0:
        return [1.0] * count
    log_x, log_rest = math.log(x), math.log1p(-x)
    value = -math.expm1(b * log_rest)
    log_term = math.log(b) + log_x + b * log_rest
    values = []
    for a in range(1, count + 1):
        values.append(max(value, 0.0))
        value -= math.exp(log_term)
        log_term += math.log((a + b) / (a + 1)) + log_x
    return values


def _evaluate(
    agents: int,
    calls: float,
    aht_seconds: float,
    interval_seconds: float,
    patience_seconds: float,
    threshold: float,
    short_abandon: float,
) -> tuple[ErlangA | None, int]:
    """(the figures, or None when the waiting line would outgrow MAX_WAITING; the terms
    computed)."""
    arrival = calls / interval_seconds
    service = 1 / aht_seconds
    patience = 1 / patience_seconds
    distribution = _arrival_distribution(agents, arrival, service, patience)
    if distribution is None:
        return None, agents + MAX_WAITING
    free, waiting = distribution
    stages = len(waiting)
    served = agents * service
    ratio = served / patience  # c: the agents' service rate in units of patience
    within = _incomplete_beta(-math.expm1(-patience * threshold), ratio + 1, stages)
    short_share = -math.expm1(-patience * short_abandon) if short_abandon > 0 else 0.0
    short = _incomplete_beta(short_share, ratio, stages + 1)
    answered_after_wait = answered_in_time = abandoned_short = 0.0
    waited_if_answered = mean_time = 0.0
    for j, p in enumerate(waiting):
        leaving = served + (j + 1) * patience
        # Answered eventually: the product over the stages passed telescopes.
        survive = served / leaving
        mean_time += 1 / leaving
        answered_after_wait += p * survive
        answered_in_time += p * survive * within[j]
        waited_if_answered += p * survive * mean_time
        abandoned_short += p * (
            short_share - short_share * short[j] + (j + 1) / (j + 1 + ratio) * short[j + 1]
        )
    answered = free + answered_after_wait
    counted = 1 - abandoned_short
    traffic = calls * aht_seconds / interval_seconds
    figures = ErlangA(
        agents=agents,
        traffic_erlangs=traffic,
        service_level=min(1.0, (free + answered_in_time) / counted) if counted > 0 else 0.0,
        probability_of_waiting=1 - free,
        abandonment=max(0.0, 1 - answered),
        asa_seconds=waited_if_answered / answered if answered > 0 else math.inf,
        occupancy=min(1.0, traffic * answered / agents),
    )
    return figures, agents + 3 * stages


def _check(calls: float, aht_seconds: float, patience_seconds: float, threshold: float) -> None:
    if not (0 <= calls < math.inf and 0 <= aht_seconds < math.inf):
        raise ValueError("calls and AHT must be finite and not negative")
    # 1/patience must be finite: a patience of 5e-324 s would make it infinite (NaN).
    if not 1e-6 <= patience_seconds < math.inf:
        raise ValueError("the patience must be at least a microsecond and finite")
    if not 0 <= threshold < math.inf:
        raise ValueError("the threshold must be finite and not negative")


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
    _check(calls, aht_seconds, patience_seconds, threshold)
    figures, _ = _evaluate(
        agents, calls, aht_seconds, interval_seconds, patience_seconds, threshold, short_abandon
    )
    if figures is None:
        raise ValueError(f"more than {MAX_WAITING} callers would wait: add agents")
    return figures


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
    max_terms: int = MAX_TERMS,
) -> ErlangA:
    """The fewest agents whose Erlang A service level reaches `target`; 0 agents when
    there is no work (no calls, or calls that take no time), as with Erlang C."""
    if calls < 0 or aht_seconds < 0:
        raise ValueError("calls and AHT must not be negative")
    if not 0 < target < 1:
        raise ValueError("the target service level must be between 0 and 1, exclusive")
    _check(calls, aht_seconds, patience_seconds, threshold)
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
    traffic = calls * aht_seconds / interval_seconds
    spent = 0

    def meets(agents: int) -> ErlangA | None:
        """The figures of `agents` if they reach the target, else None."""
        nonlocal spent
        figures, terms = _evaluate(
            agents,
            calls,
            aht_seconds,
            interval_seconds,
            patience_seconds,
            threshold,
            short_abandon,
        )
        spent += terms
        if spent > max_terms:
            raise ValueError(
                f"more than {max_terms} terms of arithmetic for one interval: "
                "check the forecast and patience"
            )
        return figures if figures is not None and figures.service_level >= target else None

    # No count below target x traffic x P(patience outlasts the short-abandon limit) can
    # meet the target: at most n / traffic of the calls are answered (the agents serve at
    # most n mu calls a second), and short abandons take at most the rest of the share.
    # Starting there keeps the counts tried near the answer, where the line is short.
    bound = target * traffic * math.exp(-short_abandon / patience_seconds)
    low = max(0, math.ceil(bound) - 1)  # fails (or is 0, which answers nobody)
    step = 1
    while (best := meets(min(low + step, max_agents))) is None:
        if low + step >= max_agents:
            raise ValueError(f"more than {max_agents} agents would be needed: check the forecast")
        low += step
        step *= 2
    high = min(low + step, max_agents)
    # Service level grows with agents: bisect between a count that fails and one that meets.
    while high - low > 1:
        middle = (low + high) // 2
        result = meets(middle)
        if result is not None:
            high, best = middle, result
        else:
            low = middle
    return best
