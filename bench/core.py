"""Core microbenchmark: the pure routing core (router.domain.Router), no gRPC, no
Postgres, in a process of its own.

A mixed center: agents speak one language (en, es, fr) and know one to three topics;
contacts arrive on phone, chat and email and need a language and sometimes a topic.
For N agents and M queued contacts it measures

- memory per agent and per queued contact (tracemalloc, Python allocations only),
- routing decision time in a busy center: an agent completes a contact and the core
  picks the most urgent one it can serve out of the M waiting (`complete`, which
  makes the next offer), and a new contact that finds no free agent (`submit`),
- routing decision time in an idle center: a contact submitted while N agents are
  free goes to the longest idle eligible one (`submit` that makes an offer).
"""

from __future__ import annotations

import gc
import random
import time
import tracemalloc
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bench.common import percentile
from router.domain import (
    AgentStatus,
    Channel,
    Contact,
    ContactEvent,
    ContactEventKind,
    Router,
    RoutingPolicy,
)

_LANGUAGES = (("lang:en", 0.7), ("lang:es", 0.2), ("lang:fr", 0.1))
_TOPICS = ("billing", "returns", "orders")
_CHANNELS = ((Channel.PHONE, 0.5), (Channel.CHAT, 0.3), (Channel.EMAIL, 0.2))


@dataclass
class CorePoint:
    agents: int
    queued: int
    bytes_per_agent: float
    bytes_per_queued_contact: float
    busy_complete_us: dict[str, float]
    busy_submit_us: dict[str, float]
    idle_submit_us: dict[str, float]
    build_seconds: float


class _Clock:
    """Time passed into the core: starts at a fixed instant, one microsecond per read."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(microseconds=1)
        return self.now


def _pick(rng: random.Random, weighted: tuple[tuple[object, float], ...]) -> object:
    return rng.choices([v for v, _ in weighted], [w for _, w in weighted])[0]


def _contact(rng: random.Random, now: datetime) -> Contact:
    skills = {str(_pick(rng, _LANGUAGES))}
    if rng.random() < 0.5:
        skills.add(rng.choice(_TOPICS))
    channel = _pick(rng, _CHANNELS)
    assert isinstance(channel, Channel)
    return Contact(
        id=str(uuid.uuid4()),
        idempotency_key=uuid.uuid4().hex[:24],
        channel=channel,
        customer_id=f"customer-{rng.randrange(10**9)}",
        queued_at=now,
        required_skills=frozenset(skills),
    )


def _sign_in(router: Router, rng: random.Random, count: int, clock: _Clock) -> list[str]:
    ids = []
    for n in range(count):
        agent_id = f"agent-{n}"
        skills = {str(_pick(rng, _LANGUAGES)), *rng.sample(_TOPICS, rng.randint(1, 3))}
        router.sign_in(agent_id, frozenset(skills), {}, AgentStatus.READY, clock())
        router.connect(agent_id, clock())
        ids.append(agent_id)
    return ids


def _offers(events: list[object]) -> list[ContactEvent]:
    return [
        e
        for e in events
        if isinstance(e, ContactEvent) and e.kind is ContactEventKind.OFFERED and e.offer
    ]


def _accept_all(router: Router, offers: list[ContactEvent], clock: _Clock) -> None:
    for event in offers:
        assert event.offer is not None
        assert event.agent_id is not None
        router.accept(event.agent_id, event.offer.id, clock())


def _micros(samples: list[int]) -> dict[str, float]:
    micros = [s / 1000 for s in samples]
    return {
        "p50": percentile(micros, 0.5),
        "p99": percentile(micros, 0.99),
        "p99.9": percentile(micros, 0.999),
    }


def run_point(agents: int, queued: int, decisions: int = 5000, seed: int = 6) -> CorePoint:
    """One (agents, queued) point; meant to run in a fresh process."""
    rng = random.Random(seed)
    clock = _Clock()
    router = Router(RoutingPolicy())
    started = time.perf_counter()
    gc.collect()
    tracemalloc.start()
    before_agents = tracemalloc.get_traced_memory()[0]
    agent_ids = _sign_in(router, rng, agents, clock)
    after_agents = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    # Fill every agent first (accepted: connected), so what follows only queues.
    offered: list[ContactEvent] = []
    while True:
        events = router.submit(_contact(rng, clock()), clock())
        new = _offers(list(events))
        if not new:
            break
        offered += new
    _accept_all(router, offered, clock)
    gc.collect()
    # Memory per contact is the same for the first 50,000 as for the rest, and tracing
    # every allocation of half a million would take minutes.
    traced = min(queued - 1, 50_000)
    tracemalloc.start()
    before_queue = tracemalloc.get_traced_memory()[0]
    for _ in range(traced):
        router.submit(_contact(rng, clock()), clock())
    after_queue = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    for _ in range(queued - 1 - traced):
        router.submit(_contact(rng, clock()), clock())
    build_seconds = time.perf_counter() - started

    held = {e.agent_id: e.contact.id for e in offered if e.agent_id is not None}
    busy = [a for a in agent_ids if a in held]
    complete_ns: list[int] = []
    submit_ns: list[int] = []
    gc.disable()
    try:
        for _ in range(decisions):
            agent_id = rng.choice(busy)
            contact_id = held[agent_id]
            router.end(agent_id, contact_id, clock())
            now = clock()
            tick = time.perf_counter_ns()
            _, events = router.complete(agent_id, contact_id, "done", now)
            complete_ns.append(time.perf_counter_ns() - tick)
            new = _offers(list(events))
            _accept_all(router, new, clock)
            for event in new:
                assert event.agent_id is not None
                held[event.agent_id] = event.contact.id
            if not new:
                del held[agent_id]
                busy.remove(agent_id)
            contact, now = _contact(rng, clock()), clock()
            tick = time.perf_counter_ns()
            router.submit(contact, now)
            submit_ns.append(time.perf_counter_ns() - tick)
    finally:
        gc.enable()
    del router, held, busy
    gc.collect()

    idle_ns = _idle_submits(agents, decisions, rng)
    return CorePoint(
        agents=agents,
        queued=queued,
        bytes_per_agent=(after_agents - before_agents) / agents,
        bytes_per_queued_contact=(after_queue - before_queue) / max(traced, 1),
        busy_complete_us=_micros(complete_ns),
        busy_submit_us=_micros(submit_ns),
        idle_submit_us=_micros(idle_ns),
        build_seconds=build_seconds,
    )


def _idle_submits(agents: int, decisions: int, rng: random.Random) -> list[int]:
    """Submit into a center whose agents are all free; each offer is taken through
    the lifecycle at once so the agents stay free."""
    clock = _Clock()
    router = Router(RoutingPolicy())
    _sign_in(router, rng, agents, clock)
    samples: list[int] = []
    gc.disable()
    try:
        for _ in range(decisions):
            contact, now = _contact(rng, clock()), clock()
            tick = time.perf_counter_ns()
            events = router.submit(contact, now)
            samples.append(time.perf_counter_ns() - tick)
            for event in _offers(list(events)):
                assert event.offer is not None
                assert event.agent_id is not None
                router.accept(event.agent_id, event.offer.id, clock())
                router.end(event.agent_id, event.contact.id, clock())
                router.complete(event.agent_id, event.contact.id, "done", clock())
            if not events:
                router.abandon(contact.id, clock())
    finally:
        gc.enable()
    return samples
