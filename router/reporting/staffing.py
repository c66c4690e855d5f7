"""Staffing with Erlang C: how many agents an interval needs to meet a service level.

Erlang C models a queue where nobody leaves (M/M/n): calls arrive at random (Poisson),
handle times are exponential, and every caller waits until answered. With traffic
A = calls x AHT / interval length (in Erlangs) and n > A agents:

    P(wait > 0)  = C(n, A) = n B / (n - A (1 - B)),  B = Erlang B(n, A)
    P(wait <= t) = 1 - C(n, A) e^{-(n - A) t / AHT}
    ASA          = C(n, A) AHT / (n - A)
    occupancy    = A / n

Erlang B is computed with its recurrence B(0) = 1, B(k) = A B / (k + A B), which stays
exact in floating point for thousands of agents where the factorial form overflows.
Because real callers do abandon, Erlang C errs on the side of more agents.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# No contact center staffs one interval with more; a bound keeps a bad input finite.
MAX_AGENTS = 100_000


@dataclass(frozen=True, slots=True)
class Staffing:
    """The agents one interval needs, and what they achieve."""

    traffic_erlangs: float
    agents: int
    probability_of_waiting: float
    service_level: float
    asa_seconds: float
    occupancy: float


def erlang_b(agents: int, traffic: float) -> float:
    """Blocking probability of `agents` servers offered `traffic` Erlangs."""
    blocking = 1.0
    for k in range(1, agents + 1):
        blocking = traffic * blocking / (k + traffic * blocking)
    return blocking


def erlang_c(agents: int, traffic: float) -> float:
    """Probability that a call waits; 1 when the agents cannot keep up (agents <= traffic)."""
    if traffic <= 0:
        return 0.0
    if agents <= traffic:
        return 1.0
    blocking = erlang_b(agents, traffic)
    return agents * blocking / (agents - traffic * (1 - blocking))


def achieved(
    agents: int, calls: float, aht_seconds: float, interval_seconds: float, threshold: float
) -> Staffing:
    """What `agents` achieve for `calls` of `aht_seconds` in an interval."""
    traffic = calls * aht_seconds / interval_seconds
    if traffic <= 0:
        return Staffing(0.0, agents, 0.0, 1.0, 0.0, 0.0)
    if agents <= traffic:
        return Staffing(traffic, agents, 1.0, 0.0, math.inf, 1.0)
    waiting = erlang_c(agents, traffic)
    return Staffing(
        traffic_erlangs=traffic,
        agents=agents,
        probability_of_waiting=waiting,
        service_level=1 - waiting * math.exp(-(agents - traffic) * threshold / aht_seconds),
        asa_seconds=waiting * aht_seconds / (agents - traffic),
        occupancy=traffic / agents,
    )


def agents_needed(
    calls: float,
    aht_seconds: float,
    interval_seconds: float,
    *,
    target: float,
    threshold: float,
    max_occupancy: float = 1.0,
) -> Staffing:
    """The fewest agents whose service level reaches `target` within `threshold` seconds
    (and whose occupancy is at most `max_occupancy`); 0 agents for no calls."""
    if calls < 0 or aht_seconds < 0:
        raise ValueError("calls and AHT must not be negative")
    if not 0 < target < 1:
        raise ValueError("the target service level must be between 0 and 1, exclusive")
    if interval_seconds <= 0 or threshold < 0:
        raise ValueError("the interval must be positive and the threshold not negative")
    if not 0 < max_occupancy <= 1:
        raise ValueError("the maximum occupancy must be in (0, 1]")
    traffic = calls * aht_seconds / interval_seconds
    if traffic == 0:
        return achieved(0, calls, aht_seconds, interval_seconds, threshold)
    if not math.isfinite(traffic) or traffic >= MAX_AGENTS:
        raise ValueError(f"more than {MAX_AGENTS} agents would be needed: check the forecast")
    # Erlang B is carried from n to n + 1 in O(1), so the search costs O(agents) in all,
    # not O(agents) per count tried.
    agents = math.floor(traffic) + 1
    blocking = erlang_b(agents, traffic)
    while agents <= MAX_AGENTS:
        waiting = agents * blocking / (agents - traffic * (1 - blocking))
        level = 1 - waiting * math.exp(-(agents - traffic) * threshold / aht_seconds)
        if level >= target and traffic / agents <= max_occupancy:
            return achieved(agents, calls, aht_seconds, interval_seconds, threshold)
        agents += 1
        blocking = traffic * blocking / (agents + traffic * blocking)
    raise ValueError(f"more than {MAX_AGENTS} agents would be needed: check the forecast")
