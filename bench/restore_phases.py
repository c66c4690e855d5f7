"""CPU and wall seconds of each phase of a cold restore, in process: the read
(PostgreSQL's rows decoded by asyncpg) with the contacts built from them
(Store.open_contacts, whole or paged as the tree reads them), and the core's restore
(queue, indexes, timers). With `--baseline TREE` (an earlier revision unpacked there, as
for `bench.takeover cold`) the same phases of that tree's code alternate with this
one's, round by round, on the same database: CPU seconds of one process, so the ratio
between trees holds on a loaded machine better than wall-clock seconds do (the paged
read's gain is in the wall seconds: PostgreSQL's work overlaps the router's).

    python -m bench.restore_phases POSTGRES_URL 500000 [--baseline TREE] [--rounds 3]

Each measurement runs this file as a script in a fresh process whose PYTHONPATH is
the tree measured (so `router` is that tree's), with the cyclic collector off as the
router has it during a restore.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from router import logs

TARGET = "a cold start restores 500,000 queued contacts in under 5 s (issue 18, item 4)"


async def _phases(db_url: str) -> dict[str, Any]:
    """In the measured tree's process: each phase's CPU and wall seconds."""
    import asyncpg

    from router.domain import Router, RoutingPolicy
    from router.store.store import Store

    # As the router opens it (Store.open): a pool whose connections speak UTC.
    pool = await asyncpg.create_pool(
        db_url, min_size=2, max_size=10, init=lambda c: c.execute("SET TIME ZONE 'UTC'")
    )
    store = Store(pool, db_url)
    gc.disable()
    figures: dict[str, Any] = {}

    def timed(name: str, started: tuple[float, float]) -> None:
        cpu, wall = started
        figures[name] = {
            "cpu": round(time.process_time() - cpu, 3),
            "wall": round(time.perf_counter() - wall, 3),
        }

    # The read (PostgreSQL's rows, asyncpg's decoding) and the contacts built from
    # them, as the tree's store does them: whole then built, or in pages that overlap.
    started = time.process_time(), time.perf_counter()
    contacts = await store.open_contacts()
    timed("read_build", started)
    started = time.process_time(), time.perf_counter()
    Router(RoutingPolicy()).restore(contacts, datetime.now(UTC), [], [])
    timed("restore", started)
    figures["contacts"] = len(contacts)
    await pool.close()
    return figures


def _measure(tree: Path, db_url: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    output = subprocess.run(
        [sys.executable, __file__, "--child", db_url],
        env=env,
        cwd=tree,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    figures: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return figures


async def _run(admin_url: str, queued: int, rounds: int, baseline: Path | None) -> dict[str, Any]:
    from bench import prefill
    from bench.common import REPO, load_average, scratch_database

    trees = {"this": REPO} if baseline is None else {"this": REPO, "baseline": baseline}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
    async with scratch_database(admin_url, "phases") as db_url:
        await prefill.migrated(db_url)
        await prefill.add_backlog(db_url, queued, "email-desk", "phases")
        loads = [load_average()]
        for _ in range(rounds):
            for name, tree in trees.items():
                runs[name].append(await asyncio.to_thread(_measure, tree, db_url))
            loads.append(load_average())
    medians = {
        measure: {
            name: {
                phase: sorted(run[phase][measure] for run in measured)[len(measured) // 2]
                for phase in ("read_build", "restore")
            }
            for name, measured in runs.items()
        }
        for measure in ("cpu", "wall")
    }
    return {
        "queued": queued,
        "median_cpu_seconds": medians["cpu"],
        "median_wall_seconds": medians["wall"],
        "runs": runs,
        "load_average": loads,
        "target": TARGET,
    }


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(asyncio.run(_phases(sys.argv[2]))))
        return
    parser = argparse.ArgumentParser(prog="python -m bench.restore_phases")
    parser.add_argument("admin_url")
    parser.add_argument("queued", type=int)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", type=Path)
    args = parser.parse_args()
    logs.configure(level="warning")  # the report is the output, not migration lines
    result = asyncio.run(_run(args.admin_url, args.queued, args.rounds, args.baseline))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
