"""The one command: the router and its baselines back to back, figures as ratios.

    python -m bench                   # everything, about 15 minutes on 2 cores
    python -m bench --scale quick     # every part at toy size, well under a minute
    python -m bench --parts lifecycle --profile /tmp/router.prof
    python -m bench --parts latency --rounds 3 --baseline /tmp/base   # before and after

`--baseline DIR` runs, in each latency round, the router of another source tree too
(`git archive <rev> | tar -x -C DIR`), its latency phase at the rate of this tree's
(half this tree's maximum), so a change and its baseline meet the same load, the same
floor and the same machine; the two take turns going first.

Parts: `lifecycle` (router and bare gRPC, alternating for --rounds), `latency` (each
RPC's round trip at half the maximum, against the bare gRPC server's at the same rate
and the commit of its rows by bare asyncpg, alternating for --rounds), `pg` (bare
asyncpg writes), `core` (routing core microbenchmark), `scale` (15,000 agents and
500,000 queued contacts in one router), `growth` (agents and recorded contacts).
The report is printed as Markdown; --json and --markdown also write it to files and
--plot draws the growth figures.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import multiprocessing
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from bench import core, lifecycle, pg_baseline, prefill, report, scale
from bench.common import (
    REPO,
    load_average,
    scratch_database,
    start_bare_process,
    start_router_process,
    wait_serving,
)
from bench.lifecycle import LoadShape
from router import logs
from router.store.database_url import database_of

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PARTS = ("lifecycle", "latency", "pg", "core", "scale", "growth")


@dataclass(frozen=True)
class Scale:
    """How big each part of the run is."""

    shape: LoadShape
    pg_seconds: float
    floor_seconds: float
    core_points: tuple[tuple[int, int], ...]
    core_decisions: int
    scale_agents: int
    scale_queued: int
    scale_processes: int
    scale_rate: float
    scale_seconds: float
    growth_shape: LoadShape
    growth_agents: tuple[int, ...]
    growth_recorded: tuple[int, ...]


QUICK = Scale(
    shape=LoadShape(20, 1, 1, 40, 1.0, 2.0, 2.0),
    pg_seconds=1.0,
    floor_seconds=0.3,
    core_points=((100, 1000),),
    core_decisions=500,
    scale_agents=200,
    scale_queued=2000,
    scale_processes=2,
    scale_rate=20,
    scale_seconds=2.0,
    growth_shape=LoadShape(20, 1, 1, 40, 0.5, 1.0, 1.0),
    growth_agents=(20, 40),
    growth_recorded=(1000, 2000),
)

FULL = Scale(
    shape=LoadShape(),
    pg_seconds=5.0,
    floor_seconds=2.0,
    core_points=((100, 10_000), (1000, 10_000), (10_000, 10_000), (15_000, 500_000)),
    core_decisions=5000,
    scale_agents=15_000,
    scale_queued=500_000,
    scale_processes=4,
    scale_rate=100,
    scale_seconds=10.0,
    growth_shape=LoadShape(warmup=2.0, measure=5.0, latency_seconds=5.0),
    growth_agents=(100, 1000, 10_000),
    growth_recorded=(1000, 100_000, 1_000_000),
)


def git_revision() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, check=False
        ).stdout.strip()

    dirty = git("status", "--porcelain", "--", "router")
    revision = git("rev-parse", "--short", "HEAD")
    return f"{revision} with uncommitted changes in router/" if dirty else revision


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


async def run_router(
    admin_url: str,
    shape: LoadShape,
    profile_to: Path | None = None,
    *,
    synchronous_commit: bool = True,
    event_loop: str = "uvloop",
    tree: Path | None = None,
    latency_rate: float | None = None,
) -> dict[str, Any]:
    async with scratch_database(admin_url, "router") as db_url:
        if not synchronous_commit:
            # Diagnosis only: how much of the router's time is its commits' fsync.
            connection = await asyncpg.connect(db_url)
            try:
                name = database_of(db_url)
                await connection.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
            finally:
                await connection.close()
        server = start_router_process(
            db_url, profile_to=profile_to, event_loop=event_loop, tree=tree
        )
        try:
            await wait_serving(server)
            result = await lifecycle.measure(server, shape, "router", db_url, latency_rate)
        finally:
            server.stop()
        connection = await asyncpg.connect(db_url)
        try:
            recorded = await connection.fetchval(
                "SELECT count(*) FROM contacts WHERE completed_at IS NOT NULL"
            )
        finally:
            await connection.close()
    figures = result.as_dict()
    figures["db"]["completed_acknowledged"] = result.completed_total
    figures["db"]["completed_recorded"] = recorded
    return figures


async def run_bare(
    shape: LoadShape, event_loop: str = "uvloop", latency_rate: float | None = None
) -> dict[str, Any]:
    server = start_bare_process(event_loop)
    try:
        await wait_serving(server)
        result = await lifecycle.measure(server, shape, "bare", latency_rate=latency_rate)
    finally:
        server.stop()
    return result.as_dict()


async def run_lifecycle(args: argparse.Namespace, size: Scale) -> list[dict[str, Any]]:
    """Router and bare baseline back to back, `rounds` times, alternating."""
    rounds = []
    profile_to = Path(args.profile) if args.profile else None
    for number in range(args.rounds):
        _log(f"lifecycle round {number + 1}: router")
        router = await run_router(
            args.database,
            size.shape,
            profile_to if number == 0 else None,
            synchronous_commit=args.synchronous_commit == "on",
            event_loop=args.event_loop,
        )
        _log(f"lifecycle round {number + 1}: bare gRPC")
        bare = await run_bare(size.shape, args.event_loop)
        rounds.append({"router": router, "bare": bare})
    return rounds


async def run_latency(args: argparse.Namespace, size: Scale) -> list[dict[str, Any]]:
    """Each RPC's round trip through the router at half its maximum (the lifecycle
    run's latency phase), then through the bare gRPC server at the same rate (the least
    a round trip takes at that load), then the commit of the same rows by bare asyncpg
    (the floor), `rounds` times, alternating; with --baseline, the baseline tree's
    router too in each round, at the same rate (before and after a change, judged
    against the same floor).

    With --baseline the two routers take turns going first, so that neither always
    meets the machine as the other left it: the first round's router sets the rate
    (half its maximum), and in every second round the baseline goes first at the
    previous round's rate, with this tree's router following at that rate."""
    rounds = []
    baseline = Path(args.baseline) if args.baseline else None
    rate: float | None = None

    async def latency_of(tree: Path | None, at: float | None) -> dict[str, Any]:
        figures = await run_router(
            args.database, size.shape, event_loop=args.event_loop, tree=tree, latency_rate=at
        )
        return {
            "router": figures["rpc_ms"],
            "rate": figures["latency_rate"],
            "writer": figures.get("latency_writer", {}),
        }

    for number in range(args.rounds):
        before = load_average()
        baseline_first = baseline is not None and rate is not None and number % 2 == 1
        other: dict[str, Any] | None = None
        if baseline_first:
            _log(f"latency round {number + 1}: baseline router ({baseline}), first")
            other = await latency_of(baseline, rate)
        _log(f"latency round {number + 1}: router")
        entry = await latency_of(None, rate if baseline_first else None)
        rate = entry["rate"]
        if baseline is not None and other is None:
            _log(f"latency round {number + 1}: baseline router ({baseline})")
            other = await latency_of(baseline, rate)
        if other is not None:
            entry["baseline"] = {**other, "first": baseline_first}
        _log(f"latency round {number + 1}: bare gRPC at the router's rate")
        bare = await run_bare(size.shape, args.event_loop, latency_rate=rate)
        entry["bare"] = {"rpc_ms": bare["rpc_ms"], "rate": bare["latency_rate"]}
        _log(f"latency round {number + 1}: bare asyncpg commits")
        async with scratch_database(args.database, "floor") as db_url:
            entry["floor"] = await pg_baseline.rpc_floor(db_url, seconds=size.floor_seconds)
        entry["load_before"] = before
        entry["load_after"] = load_average()
        rounds.append(entry)
    return rounds


async def run_pg(args: argparse.Namespace, size: Scale) -> dict[str, float]:
    _log("bare asyncpg writes")
    async with scratch_database(args.database, "pg") as db_url:
        return await pg_baseline.measure(db_url, seconds=size.pg_seconds)


async def run_core(size: Scale) -> list[dict[str, Any]]:
    """Each point in a fresh process, so that one point's memory cannot skew the next."""
    points = []
    spawn = multiprocessing.get_context("spawn")
    for agents, queued in size.core_points:
        _log(f"core microbenchmark: {agents} agents, {queued} queued")
        with ProcessPoolExecutor(1, mp_context=spawn) as pool:
            future = pool.submit(core.run_point, agents, queued, size.core_decisions)
            point = await asyncio.wrap_future(future)
        points.append(dataclasses.asdict(point))
    return points


async def run_scale(args: argparse.Namespace, size: Scale) -> dict[str, Any]:
    _log(f"scale: {size.scale_agents} agents, {size.scale_queued} queued contacts")
    return await scale.measure(
        args.database,
        agents=size.scale_agents,
        queued=size.scale_queued,
        agent_processes=size.scale_processes,
        rate=size.scale_rate,
        seconds=size.scale_seconds,
    )


async def run_growth(args: argparse.Namespace, size: Scale) -> dict[str, list[dict[str, Any]]]:
    by_agents = []
    for agents in size.growth_agents:
        _log(f"growth: {agents} agents")
        shape = dataclasses.replace(size.growth_shape, agents=agents)
        by_agents.append({"agents": agents, **await run_router(args.database, shape)})
    by_recorded = []
    async with scratch_database(args.database, "growth") as db_url:
        await prefill.migrated(db_url)
        for target in size.growth_recorded:
            recorded = await prefill.recorded_contacts(db_url)
            if target > recorded:
                _log(f"growth: recording {target - recorded} more contacts")
                await prefill.add_history(db_url, target - recorded, f"h{target}")
            recorded = await prefill.recorded_contacts(db_url)
            _log(f"growth: {recorded} recorded contacts")
            server = start_router_process(db_url)
            try:
                await wait_serving(server)
                result = await lifecycle.measure(
                    server, size.growth_shape, f"recorded{target}", db_url
                )
            finally:
                server.stop()
            by_recorded.append({"recorded": recorded, **result.as_dict()})
    return {"agents": by_agents, "recorded": by_recorded}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    size = QUICK if args.scale == "quick" else FULL
    if args.agents or args.window:
        shape = dataclasses.replace(
            size.shape,
            agents=args.agents or size.shape.agents,
            window=args.window or size.shape.window,
        )
        size = dataclasses.replace(size, shape=shape)
    parts = args.parts.split(",")
    results: dict[str, Any] = {
        "command": " ".join(["python -m bench", *args.argv]),
        "revision": git_revision(),
        "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_before": load_average(),
        "cpus": os.cpu_count(),
        "shape": dataclasses.asdict(size.shape),
    }
    started = time.monotonic()
    steps: dict[str, Callable[[], Awaitable[Any]]] = {
        "lifecycle": lambda: run_lifecycle(args, size),
        "latency": lambda: run_latency(args, size),
        "pg": lambda: run_pg(args, size),
        "core": lambda: run_core(size),
        "scale": lambda: run_scale(args, size),
        "growth": lambda: run_growth(args, size),
    }
    for part in PARTS:
        if part in parts:
            results[part] = await steps[part]()
            if args.json:
                # A long run that fails late still leaves what it measured.
                text = json.dumps(results, indent=2) + "\n"
                await asyncio.to_thread(Path(args.json).write_text, text)
    results["load_after"] = load_average()
    results["seconds"] = round(time.monotonic() - started)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--scale", choices=("quick", "full"), default="full")
    parser.add_argument("--parts", default=",".join(PARTS), help="comma-separated subset")
    parser.add_argument("--rounds", type=int, default=2, help="router/bare alternations")
    parser.add_argument(
        "--database",
        default=os.environ.get("ROUTER_TEST_DATABASE_URL", DEFAULT_ADMIN_URL),
        help="admin URL of the PostgreSQL server; scratch databases are created there",
    )
    parser.add_argument("--agents", type=int, help="agents in the lifecycle part")
    parser.add_argument("--window", type=int, help="contacts in flight in the lifecycle part")
    parser.add_argument(
        "--synchronous-commit",
        choices=("on", "off"),
        default="on",
        help="off: diagnosis only, the router's database skips the commit's fsync",
    )
    parser.add_argument(
        "--event-loop",
        choices=("uvloop", "asyncio"),
        default="uvloop",
        help="event loop of the router (ROUTER_EVENT_LOOP) and of the bare gRPC server alike",
    )
    parser.add_argument(
        "--baseline",
        help="latency part: also run the router of this source tree (another revision, "
        "`git archive <rev> | tar -x -C DIR`) in each round",
    )
    parser.add_argument("--profile", help="run the router under cProfile, stats to this file")
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument("--markdown", help="write the report to this file")
    parser.add_argument("--plot", help="draw the growth figures to this PNG")
    args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else argv
    unknown = set(args.parts.split(",")) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")
    if args.baseline:
        if "latency" not in args.parts.split(","):
            parser.error("--baseline runs another tree's router in the latency part only")
        args.baseline = str(Path(args.baseline).resolve())
    # The router's modules this process runs (migrations of the scratch databases) say
    # only what goes wrong: the report is the output.
    logs.configure(level="warning")
    results = asyncio.run(run(args))
    text = report.markdown(results)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    if args.markdown:
        Path(args.markdown).write_text(text)
    if args.plot and "growth" in results:
        report.plot(results, Path(args.plot))
    return 0
