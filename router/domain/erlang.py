"""Erlang C: the M/M/c queue that phone-only traffic with exponential handle times forms.

Pure functions of the offered load, used to check the router against queueing theory
(scenarios/erlang_c_check.py): with c agents, arrival rate lambda and mean handle time
1/mu, the offered load is a = lambda / mu erlangs, and for a < c

    P(wait > 0)  = C(c, a)
    P(wait <= t) = 1 - C(c, a) * exp(-(c * mu - lambda) * t)
    ASA          = C(c, a) / (c * mu - lambda)
"""

from __future__ import annotations

import math


def erlang_c(agents: int, load: float) -> float:
    """Probability that a contact waits at all: C(c, a), for a < c erlangs.

    Computed from the Erlang B recursion B(k) = a B(k-1) / (k + a B(k-1)), which stays
    stable for thousands of agents, then C = c B / (c - a (1 - B)).
    """
    if agents < 1:
        raise ValueError("agents must be at least 1")
    if not 0 <= load < agents:
        raise ValueError("the load must be at least 0 and below the number of agents")
    blocking = 1.0
    for k in range(1, agents + 1):
        blocking = load * blocking / (k + load * blocking)
    return agents * blocking / (agents - load * (1 - blocking))


def service_level(agents: int, arrival_rate: float, handle_time: float, within: float) -> float:
    """P(wait <= within) for `agents` agents, `arrival_rate` contacts per second and a
    mean handle time of `handle_time` seconds."""
    load = arrival_rate * handle_time
    waits = erlang_c(agents, load)
    return 1.0 - waits * math.exp(-(agents / handle_time - arrival_rate) * within)


def average_speed_of_answer(agents: int, arrival_rate: float, handle_time: float) -> float:
    """Mean wait over all contacts, in seconds."""
    load = arrival_rate * handle_time
    return erlang_c(agents, load) / (agents / handle_time - arrival_rate)
