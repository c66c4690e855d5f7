"""End-to-end scale: many signed-in agents with open offer streams and a large queue in
one router process, memory measured as RSS deltas of the server process.

1. A router on the empty (migrated) database: its RSS is the base.
2. The backlog is written to the database (queued emails needing a skill no agent
   has, so they stay queued), and a router started on it restores them into memory:
   RSS delta / backlog = memory per queued contact.
3. Agents sign in and open their offer streams from several processes, thousands of
   streams per channel: RSS delta / agents = memory per agent (core state plus the
   gRPC stream).
4. Gateways submit phone contacts at a paced rate; the agents take each through the
   lifecycle: routing latency (submit acknowledged -> offer received) among all those
   agents and over that queue.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from typing import Any

from bench import load, prefill
from bench.common import (
    ServerProcess,
    cpu_seconds,
    percentile,
    routing_latencies,
    rss_bytes,
    scratch_database,
    start_router_process,
    wait_serving,
)
from bench.lifecycle import join_results, wait_idle_agents, wait_until

_SPAWN = multiprocessing.get_context("spawn")
_BACKLOG_SKILL = "backlog-only"


async def _started(db_url: str, within: float) -> tuple[ServerProcess, float]:
    started = time.monotonic()
    server = start_router_process(db_url)
    try:
        await wait_serving(server, within)
    except BaseException:
        server.stop()
        raise
    return server, time.monotonic() - started


async def measure(
    admin_url: str,
    *,
    agents: int,
    queued: int,
    agent_processes: int,
    rate: float,
    seconds: float,
) -> dict[str, Any]:
    async with scratch_database(admin_url, "scale") as db_url:
        await prefill.migrated(db_url)
        server, _ = await _started(db_url, 60)
        try:
            rss_empty = rss_bytes(server.pid)
        finally:
            server.stop()
        await prefill.add_backlog(db_url, queued, _BACKLOG_SKILL, "scale")
        server, restore_seconds = await _started(db_url, 600)
        try:
            rss_queued = rss_bytes(server.pid)
            figures = await _agents_and_latency(server, agents, agent_processes, rate, seconds)
        finally:
            server.stop()
    per_agent = (figures.pop("rss_agents") - rss_queued) / agents
    return {
        "agents": agents,
        "queued": queued,
        "rss_empty_mb": rss_empty / 2**20,
        "rss_queued_mb": rss_queued / 2**20,
        "bytes_per_queued_contact": (rss_queued - rss_empty) / queued,
        "bytes_per_agent": per_agent,
        "start_with_backlog_seconds": restore_seconds,
        **figures,
    }


async def _agents_and_latency(
    server: ServerProcess, agents: int, agent_processes: int, rate: float, seconds: float
) -> dict[str, Any]:
    completed = _SPAWN.Array("q", agent_processes, lock=False)
    submitted = _SPAWN.Array("q", 1, lock=False)
    recording = _SPAWN.Value("b", 1, lock=False)
    stop = _SPAWN.Event()
    results = _SPAWN.Queue()
    per_process = -(-agents // agent_processes)
    procs = [
        _SPAWN.Process(
            target=load.run_agents,
            args=(
                server.target,
                [f"scale-agent-{n}" for n in range(s * per_process, (s + 1) * per_process)][
                    : max(0, agents - s * per_process)
                ],
                completed,
                s,
                recording,
                stop,
                results,
            ),
            name=f"bench-scale-agents-{s}",
        )
        for s in range(agent_processes)
    ]
    signing_in = time.monotonic()
    for process in procs:
        process.start()
    try:
        await wait_idle_agents(server.target, agents, 120 + agents / 50)
        sign_in_seconds = time.monotonic() - signing_in
        rss_agents = rss_bytes(server.pid)
        cpu_before = cpu_seconds(server.pid)
        gateway = _SPAWN.Process(
            target=load.run_gateway,
            args=(server.target, 0, submitted, completed),
            kwargs={"duration": seconds, "rate": rate, "record": True, "results": results},
            name="bench-scale-gateway",
        )
        gateway.start()
        (gateway_result,) = await join_results([gateway], results, 1)
        await wait_until(
            lambda: load.total(submitted) == load.total(completed), 60, "scale run to finish"
        )
        server_cpu = cpu_seconds(server.pid) - cpu_before
        stop.set()
        agent_results = await join_results(procs, results, agent_processes)
    finally:
        stop.set()
        for process in procs:
            process.join(10)
            if process.is_alive():
                process.kill()
    offered: dict[str, float] = {}
    errors: dict[str, int] = dict(gateway_result.errors)
    for result in agent_results:
        offered.update(result.offered_at)
        for name, count in result.errors.items():
            errors[name] = errors.get(name, 0) + count
    latencies, _ = routing_latencies(gateway_result.acknowledged_at, offered)
    return {
        "rss_agents": rss_agents,
        "rss_agents_mb": rss_agents / 2**20,
        "sign_in_seconds": sign_in_seconds,
        "latency_rate": rate,
        "latency_samples": len(latencies),
        "latency_ms": {
            "p50": percentile(latencies, 0.5),
            "p99": percentile(latencies, 0.99),
            "p99.9": percentile(latencies, 0.999),
        },
        "server_cpu_ms_per_lifecycle": 1000 * server_cpu / max(load.total(completed), 1),
        "errors": errors,
    }


if __name__ == "__main__":
    import json
    import sys

    print(
        json.dumps(
            asyncio.run(
                measure(
                    sys.argv[1],
                    agents=int(sys.argv[2]),
                    queued=int(sys.argv[3]),
                    agent_processes=2,
                    rate=50,
                    seconds=3,
                )
            ),
            indent=2,
        )
    )
