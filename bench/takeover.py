"""Restore and takeover at scale: how long a center waits with no routing.

`cold`: a router started on a database holding `queued` waiting contacts (no standby):
seconds from the process start to health SERVING (Python's start, the lock, the
restore). With `--baseline TREE` (a checkout of an earlier revision, for instance
`git archive <rev> | tar -x -C TREE`) the same start of that tree's router alternates
with this one's on the same database, round by round.

`takeover`: an active router and a hot standby on one database holding `queued`
waiting contacts, `agents` agents signed in (from several processes) with their offer
streams open. The active router is SIGKILLed; every agent's desk, as a real one does,
opens its stream again on whichever router answers (the standby's address). Measured:
seconds from the kill to the first offer on a new stream, and to the standby's health
SERVING.

    python -m bench.takeover cold POSTGRES_URL 500000 [--baseline TREE] [--rounds 3]
    python -m bench.takeover takeover POSTGRES_URL 10000,100000,500000 [--agents 5000]
        [--plot docs/bench/takeover.png]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import prefill
from bench.common import (
    REPO,
    ServerProcess,
    free_port,
    load_average,
    scratch_database,
    wait_serving,
)

_BACKLOG_SKILL = "email-desk"


def start_router(db_url: str, tree: Path = REPO, port: int | None = None) -> ServerProcess:
    """`contact-router serve` from `tree` (this checkout, or an earlier revision's)."""
    port = free_port() if port is None else port
    env = {
        **os.environ,
        "ROUTER_DATABASE_URL": db_url,
        "ROUTER_HOST": "127.0.0.1",
        "ROUTER_PORT": str(port),
        "ROUTER_LOG_FORMAT": "json",
        "ROUTER_LOG_LEVEL": "warning",
        "ROUTER_OFFER_TIMEOUT_SECONDS": "600",
        "ROUTER_PHONE_RESERVE": "0",
        "PYTHONPATH": str(tree),
    }
    env.pop("ROUTER_CONFIG_FILE", None)
    command = [sys.executable, "-m", "router.cli", "serve"]
    process = subprocess.Popen(command, env=env, cwd=tree, stdout=subprocess.DEVNULL)
    return ServerProcess(process, port)


async def cold(admin_url: str, queued: int, rounds: int, baseline: Path | None) -> dict[str, Any]:
    """Seconds from start to SERVING with `queued` contacts, per round and tree."""
    trees = {"this": REPO} if baseline is None else {"this": REPO, "baseline": baseline}
    seconds: dict[str, list[float]] = {name: [] for name in trees}
    async with scratch_database(admin_url, "restore") as db_url:
        await prefill.migrated(db_url)
        await prefill.add_backlog(db_url, queued, _BACKLOG_SKILL, "restore")
        loads = [load_average()]
        for _ in range(rounds):
            for name, tree in trees.items():
                started = time.monotonic()
                server = start_router(db_url, tree)
                try:
                    await wait_serving(server, 600)
                    seconds[name].append(round(time.monotonic() - started, 2))
                finally:
                    server.stop()
            loads.append(load_average())
    result: dict[str, Any] = {"queued": queued, "seconds": seconds, "load_average": loads}
    if baseline is not None:
        ratio = _median(seconds["this"]) / _median(seconds["baseline"])
        result["ratio_of_medians"] = round(ratio, 3)
    return result


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.takeover")
    parser.add_argument("what", choices=("cold",))
    parser.add_argument("admin_url")
    parser.add_argument("queued", help="queue sizes, comma-separated")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", type=Path)
    args = parser.parse_args()
    sizes = [int(n) for n in args.queued.split(",")]
    for size in sizes:
        print(json.dumps(asyncio.run(cold(args.admin_url, size, args.rounds, args.baseline))))


if __name__ == "__main__":
    main()
