"""Full-lifecycle throughput and routing latency of one server process, measured from
separate load-generator processes (bench/load.py).

Two phases against the same signed-in agents:

1. Throughput: gateways keep `window` contacts submitted and not yet completed, so the
   agents are never short of work; after a warm-up, lifecycles completed and the
   server's CPU time are read at both ends of the measured interval.
2. Latency: the backlog drains, then gateways submit at half the measured maximum,
   paced (open loop). Routing latency is the time from a gateway seeing its submit
   acknowledged to an agent receiving the offer, joined on contact id.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.context import SpawnProcess
from typing import Any

import grpc
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc

from bench import load
from bench.common import (
    ServerProcess,
    backend_pids,
    backends_cpu_seconds,
    cpu_seconds,
    machine_busy_seconds,
    percentile,
    routing_latencies,
    rss_bytes,
)

_SPAWN = multiprocessing.get_context("spawn")

SAMPLE_SECONDS = 1.0
"""How often the router's metrics are read during the measured interval. Each read
costs the router a collection (its rolling service level is summed per read), so
read about as often as a dashboard would, not as often as possible."""


@dataclass(frozen=True)
class LoadShape:
    agents: int = 100
    agent_processes: int = 2
    gateway_processes: int = 1
    window: int = 200
    warmup: float = 3.0
    measure: float = 10.0
    latency_seconds: float = 10.0


@dataclass
class LifecycleResult:
    lifecycles_per_second: float
    server_cpu_ms_per_lifecycle: float
    client_cpu_ms_per_lifecycle: float
    postgres_cpu_ms_per_lifecycle: float
    latency_ms: dict[str, float]
    latency_rate: float
    latency_samples: int
    offer_first_share: float
    rss_mb: float
    errors: dict[str, int]
    completed_total: int
    db: dict[str, float] = field(default_factory=dict)
    rpc_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    """Per method, p50 / p99 / count of its round trips seen by the load generators in
    the latency phase (at half the measured maximum)."""
    latency_writer: dict[str, float] = field(default_factory=dict)
    """The group commit during the latency phase (from the router's metrics): commits
    per second, their mean duration and rows, and the share of the phase a commit was
    in flight (an RPC arriving then waits for it, then for its own)."""

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


async def wait_until(
    condition: Callable[[], bool], within: float, what: str, step: float = 0.05
) -> None:
    """Poll `condition` until it holds; fail naming `what` after `within` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(step)


async def idle_agents(target: str) -> int:
    async with grpc.aio.insecure_channel(target) as channel:
        status = await pb_grpc.ReportingServiceStub(channel).GetQueueStatus(
            pb.GetQueueStatusRequest(), timeout=10
        )
        return int(status.agents.idle)


async def wait_idle_agents(target: str, count: int, within: float) -> None:
    """Until the server counts `count` idle agents with open streams."""
    deadline = time.monotonic() + within
    while (idle := await idle_agents(target)) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {idle} of {count} agents idle after {within} s")
        await asyncio.sleep(0.1)


async def read_metrics(port: int) -> dict[str, float]:
    """The router's Prometheus text, unlabelled samples only (name -> value)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
    body = (await reader.read()).decode()
    writer.close()
    samples = {}
    for match in re.finditer(r"^([a-z_]+) ([0-9.eE+-]+)$", body, re.MULTILINE):
        samples[match.group(1)] = float(match.group(2))
    return samples


class _Sampler:
    """Samples the router's pending writes (the in-memory state's lead over the
    Postgres record) while the throughput phase runs."""

    def __init__(self, metrics_port: int | None) -> None:
        self.metrics_port = metrics_port
        self.pending: list[float] = []
        self.first: dict[str, float] = {}
        self.last: dict[str, float] = {}

    async def run(self, stop: asyncio.Event) -> None:
        if self.metrics_port is None:
            return
        self.first = await read_metrics(self.metrics_port)
        while not stop.is_set():
            self.last = await read_metrics(self.metrics_port)
            self.pending.append(self.last.get("contactrouter_db_pending_writes", 0.0))
            await asyncio.sleep(SAMPLE_SECONDS)

    def summary(self) -> dict[str, float]:
        if not self.pending:
            return {}

        def delta(name: str) -> float:
            return self.last.get(name, 0.0) - self.first.get(name, 0.0)

        commits = delta("contactrouter_db_batch_duration_seconds_count") or 1.0
        return {
            "pending_writes_mean": sum(self.pending) / len(self.pending),
            "pending_writes_max": max(self.pending),
            "commits_per_second": 0.0,
            "commit_ms_mean": 1000 * delta("contactrouter_db_batch_duration_seconds_sum") / commits,
            "rows_per_commit_mean": delta("contactrouter_db_batch_writes_sum") / commits,
            "commits": delta("contactrouter_db_batch_duration_seconds_count"),
        }


async def measure(
    server: ServerProcess,
    shape: LoadShape,
    label: str,
    db_url: str | None = None,
    latency_rate: float | None = None,
) -> LifecycleResult:
    """Both phases against a started server; the agents sign in first. With `db_url`,
    the CPU time of the server's PostgreSQL backends is measured too. The latency phase
    runs at half the rate the throughput phase measured, or at `latency_rate` (another
    server's, to compare two at the same load)."""
    completed = _SPAWN.Array("q", shape.agent_processes, lock=False)
    submitted = _SPAWN.Array("q", shape.gateway_processes, lock=False)
    recording = _SPAWN.Value("b", 0, lock=False)
    stop = _SPAWN.Event()
    results = _SPAWN.Queue()
    per_process = -(-shape.agents // shape.agent_processes)
    agent_procs = []
    for slot in range(shape.agent_processes):
        ids = [
            f"{label}-agent-{n}"
            for n in range(slot * per_process, min(shape.agents, (slot + 1) * per_process))
        ]
        agent_procs.append(
            _SPAWN.Process(
                target=load.run_agents,
                args=(server.target, ids, completed, slot, recording, stop, results),
                name=f"bench-agents-{slot}",
            )
        )
    for process in agent_procs:
        process.start()
    try:
        await wait_idle_agents(server.target, shape.agents, 60.0 + shape.agents / 100)
        postgres_pids = await backend_pids(db_url) if db_url else []

        def gateways(**kwargs: Any) -> list[SpawnProcess]:
            procs = [
                _SPAWN.Process(
                    target=load.run_gateway,
                    args=(server.target, slot, submitted, completed),
                    kwargs={"results": results, **kwargs},
                    name=f"bench-gateway-{slot}",
                )
                for slot in range(shape.gateway_processes)
            ]
            for process in procs:
                process.start()
            return procs

        def drained() -> bool:
            return load.total(submitted) == load.total(completed)

        client_pids = [p.pid for p in agent_procs if p.pid is not None]

        # Phase 1: throughput with a bounded backlog.
        gateway_procs = gateways(
            duration=shape.warmup + shape.measure, window=shape.window, concurrency=32
        )
        await asyncio.sleep(shape.warmup)
        sampler = _Sampler(server.metrics_port)
        sampler_stop = asyncio.Event()
        sampling = asyncio.create_task(sampler.run(sampler_stop))
        pids = client_pids + [p.pid for p in gateway_procs if p.pid is not None]
        started, done_before = time.monotonic(), load.total(completed)
        server_cpu_before = cpu_seconds(server.pid)
        client_cpu_before = sum(cpu_seconds(pid) for pid in pids)
        postgres_cpu_before = backends_cpu_seconds(postgres_pids)
        await asyncio.sleep(shape.measure)
        seconds = time.monotonic() - started
        done = load.total(completed) - done_before
        server_cpu = cpu_seconds(server.pid) - server_cpu_before
        client_cpu = sum(cpu_seconds(pid) for pid in pids) - client_cpu_before
        postgres_cpu = backends_cpu_seconds(postgres_pids) - postgres_cpu_before
        rss = rss_bytes(server.pid)
        sampler_stop.set()
        await sampling
        gateway_results = await join_results(gateway_procs, results, len(gateway_procs))
        await wait_until(drained, 60.0, "the throughput backlog to drain")
        rate = done / seconds

        # Phase 2: routing latency at half the maximum rate, paced.
        recording.value = 1
        writer_before = await read_metrics(server.metrics_port) if server.metrics_port else {}
        phase_started = time.monotonic()
        cpu_before = _phase_cpu(server.pid, postgres_pids, client_pids)
        latency_rate = latency_rate or rate / 2
        gateway_procs = gateways(
            duration=shape.latency_seconds,
            rate=latency_rate / shape.gateway_processes,
            record=True,
        )
        gateway_results += await join_results(gateway_procs, results, len(gateway_procs))
        await wait_until(drained, 60.0, "the latency-phase contacts to complete")
        recording.value = 0
        phase_seconds = time.monotonic() - phase_started
        cpu_after = _phase_cpu(server.pid, postgres_pids, client_pids)
        latency_writer = (
            _writer_figures(writer_before, await read_metrics(server.metrics_port), phase_seconds)
            if server.metrics_port
            else {}
        )
        latency_writer.update(
            {
                f"{name}_cpu_share": (cpu_after[name] - cpu_before[name]) / phase_seconds
                for name in cpu_before
            }
        )
        stop.set()
        agent_results = await join_results(agent_procs, results, len(agent_procs))
    finally:
        stop.set()
        for process in agent_procs:
            process.join(10)
            if process.is_alive():
                process.kill()

    acknowledged: dict[str, float] = {}
    errors: dict[str, int] = {}
    round_trips: dict[str, list[float]] = {}
    for seen in [*gateway_results, *agent_results]:
        for method, samples in seen.rpc_ms.items():
            round_trips.setdefault(method, []).extend(samples)
    for result in gateway_results:
        acknowledged.update(result.acknowledged_at)
        for name, count in result.errors.items():
            errors[name] = errors.get(name, 0) + count
    offered: dict[str, float] = {}
    for agent_result in agent_results:
        offered.update(agent_result.offered_at)
        for name, count in agent_result.errors.items():
            errors[name] = errors.get(name, 0) + count
    latencies, offer_first = routing_latencies(acknowledged, offered)
    db = sampler.summary()
    if db:
        db["commits_per_second"] = db.pop("commits") / seconds
    return LifecycleResult(
        lifecycles_per_second=rate,
        server_cpu_ms_per_lifecycle=1000 * server_cpu / max(done, 1),
        client_cpu_ms_per_lifecycle=1000 * client_cpu / max(done, 1),
        postgres_cpu_ms_per_lifecycle=1000 * postgres_cpu / max(done, 1),
        latency_ms={
            "p50": percentile(latencies, 0.50),
            "p99": percentile(latencies, 0.99),
            "p99.9": percentile(latencies, 0.999),
            "max": max(latencies, default=float("nan")),
        },
        latency_rate=latency_rate,
        latency_samples=len(latencies),
        offer_first_share=offer_first,
        rss_mb=rss / 2**20,
        errors=errors,
        completed_total=load.total(completed),
        db=db,
        rpc_ms={
            method: {
                "p50": percentile(samples, 0.50),
                "p99": percentile(samples, 0.99),
                "count": len(samples),
            }
            for method, samples in round_trips.items()
        },
        latency_writer=latency_writer,
    )


def _phase_cpu(server: int, postgres: list[int], agents: list[int]) -> dict[str, float]:
    """CPU seconds so far of the server, its PostgreSQL backends, the agents' processes,
    and the whole machine (every process, every CPU: what else competed)."""
    return {
        "server": cpu_seconds(server),
        "postgres": backends_cpu_seconds(postgres),
        "agents": sum(cpu_seconds(pid) for pid in agents),
        "machine": machine_busy_seconds(),
    }


def _writer_figures(
    before: dict[str, float], after: dict[str, float], seconds: float
) -> dict[str, float]:
    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    commits = delta("contactrouter_db_batch_duration_seconds_count")
    busy = delta("contactrouter_db_batch_duration_seconds_sum")
    figures = {
        "commits_per_second": commits / seconds,
        "commit_ms_mean": 1000 * busy / max(commits, 1.0),
        "rows_per_commit_mean": delta("contactrouter_db_batch_writes_sum") / max(commits, 1.0),
        "busy_share": busy / seconds,
    }
    # Per caller (an RPC's writes, mostly): waiting for the commit in flight, and from
    # handing the writes over to the end of their own commit. Left out for a router too
    # old to count them (a --baseline tree), where they would read as 0 ms.
    if "contactrouter_db_commit_callers_total" in after:
        callers = max(delta("contactrouter_db_commit_callers_total"), 1.0)
        figures["queued_ms_per_caller"] = (
            1000 * delta("contactrouter_db_commit_queued_seconds_total") / callers
        )
        figures["wait_ms_per_caller"] = (
            1000 * delta("contactrouter_db_commit_wait_seconds_total") / callers
        )
    return figures


async def join_results(procs: list[SpawnProcess], results: Any, count: int) -> list[Any]:
    """Collect `count` results from the queue (without blocking the loop), then join."""
    collected: list[Any] = []
    while len(collected) < count:
        _kind, _slot, result = await asyncio.to_thread(results.get, True, 120)
        collected.append(result)
    for process in procs:
        await asyncio.to_thread(process.join, 30)
    return collected
