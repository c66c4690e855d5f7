"""The one command: router and baselines back to back, figures as ratios."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from bench import lifecycle
from bench.common import (
    REPO,
    load_average,
    scratch_database,
    start_bare_process,
    start_router_process,
    wait_serving,
)

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass(frozen=True)
class Scale:
    """How big each part of the run is; `quick` is the smoke test's few seconds."""

    shape: lifecycle.LoadShape

    @classmethod
    def named(cls, name: str) -> Scale:
        if name == "quick":
            return cls(lifecycle.LoadShape(20, 1, 1, 40, 1.0, 2.0, 2.0))
        return cls(lifecycle.LoadShape())


def git_revision() -> str:
    revision = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "router"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    return f"{revision} with uncommitted changes in router/" if dirty else revision


async def run_router(admin_url: str, scale: Scale, profile_to: Path | None) -> dict[str, Any]:
    async with scratch_database(admin_url, "router") as db_url:
        server = start_router_process(db_url, profile_to=profile_to)
        try:
            await wait_serving(server)
            result = await lifecycle.measure(server, scale.shape, "router", db_url)
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


async def run_bare(scale: Scale) -> dict[str, Any]:
    server = start_bare_process()
    try:
        await wait_serving(server)
        result = await lifecycle.measure(server, scale.shape, "bare")
    finally:
        server.stop()
    return result.as_dict()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    scale = Scale.named(args.scale)
    report: dict[str, Any] = {
        "command": "python -m bench " + " ".join(args.argv),
        "revision": git_revision(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "load_before": load_average(),
        "cpus": os.cpu_count(),
        "shape": scale.shape.__dict__,
    }
    profile_to = Path(args.profile) if args.profile else None
    report["router"] = await run_router(args.database, scale, profile_to)
    report["bare"] = await run_bare(scale)
    report["load_after"] = load_average()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--scale", choices=("quick", "full"), default="full")
    parser.add_argument(
        "--database",
        default=os.environ.get("ROUTER_TEST_DATABASE_URL", DEFAULT_ADMIN_URL),
        help="admin URL of the PostgreSQL server; scratch databases are created there",
    )
    parser.add_argument("--profile", help="run the router under cProfile, stats to this file")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    args.argv = argv if argv is not None else __import__("sys").argv[1:]
    report = asyncio.run(run(args))
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0
