"""The group commit alone: paced callers, each an RPC's rows, and their wait.

    python -m bench.commit_alone --baseline /tmp/base --rate 800 --rounds 3

No gRPC, no load generators: one process enqueues, at `rate` per second (open loop),
what an RPC writes (one in four a new contact and its 'submitted' event, the others an
event and the update of a contact inserted beforehand) and times each caller from
enqueueing to its commit. With --baseline, the group commit of another source tree
(`git archive <rev> | tar -x -C DIR`) runs the same load in each round, alternating,
each on a fresh database migrated by its own tree: on a shared machine, compare the two
in the same round, not with figures of another hour.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from router import logs

HELD = 2000
"""Contacts inserted before the measured interval, for the callers that update one."""


async def child(url: str, seconds: float, rate: float) -> dict[str, float]:
    """Runs in the measured tree's interpreter path: imports only `router`."""
    import asyncpg

    from router.domain import Channel, Contact, ContactEventKind, ContactState
    from router.store.active_lock import ActiveLock
    from router.store.group_commit import GroupCommit, Write
    from router.store.migrations import migrate
    from router.store.store import contact_insert, contact_update, event_insert

    connection = await asyncpg.connect(url)
    try:
        await migrate(connection)
    finally:
        await connection.close()
    lock = ActiveLock(url)
    await lock.acquire()
    writer = GroupCommit(lock)
    sizes: list[int] = []
    writer.on_commit_start = sizes.append
    writer.start()
    now = datetime.now(UTC)

    def new_contact() -> Contact:
        return Contact(str(uuid.uuid4()), os.urandom(8).hex(), Channel.PHONE, "bench", now)

    held = [new_contact() for _ in range(HELD)]
    for start in range(0, HELD, 200):
        await writer.write([contact_insert(c) for c in held[start : start + 200]])
    sizes.clear()
    waits: list[float] = []

    async def call(number: int) -> None:
        writes: list[Write]
        if number % 4 == 0:
            contact = new_contact()
            writes = [
                contact_insert(contact),
                event_insert(ContactEventKind.SUBMITTED, contact.id, contact.queued_at),
            ]
        else:
            at = datetime.now(UTC)
            contact = replace(
                held[number % HELD],
                state=ContactState.CONNECTED,
                agent_id="agent",
                offered_at=at,
                answered_at=at,
            )
            writes = [
                event_insert(ContactEventKind.ANSWERED, contact.id, at, "agent"),
                contact_update(contact, at),
            ]
        started = time.perf_counter()
        await writer.write(writes)
        waits.append(1000 * (time.perf_counter() - started))

    calls: set[asyncio.Task[None]] = set()
    started = time.perf_counter()
    made = 0
    while (elapsed := time.perf_counter() - started) < seconds:
        while made < int(elapsed * rate):
            task = asyncio.create_task(call(made))
            calls.add(task)
            task.add_done_callback(calls.discard)
            made += 1
        await asyncio.sleep(0.0005)
    await asyncio.gather(*calls)
    await writer.close()
    await lock.release()
    waits.sort()

    def percentile(fraction: float) -> float:
        return waits[min(len(waits) - 1, int(fraction * len(waits)))]

    return {
        "callers": len(waits),
        "p50": percentile(0.5),
        "p90": percentile(0.9),
        "p99": percentile(0.99),
        "commits": len(sizes),
        "rows_per_commit": sum(sizes) / max(1, len(sizes)),
    }


async def _measure(admin_url: str, tree: Path, seconds: float, rate: float) -> dict[str, Any]:
    from bench.common import REPO, load_average, scratch_database

    async with scratch_database(admin_url, "commit") as url:
        env = {**os.environ, "PYTHONPATH": str(tree), "ROUTER_LOG_LEVEL": "warning"}
        command = [sys.executable, str(Path(__file__)), "--child", url, str(seconds), str(rate)]
        before = load_average()
        done = await asyncio.to_thread(
            subprocess.run, command, env=env, cwd=REPO, capture_output=True, text=True
        )
        if done.returncode != 0:
            raise RuntimeError(f"{tree}: {done.stderr[-2000:]}")
        figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        figures["load"] = [before, load_average()]
        return figures


async def _main(args: argparse.Namespace) -> None:
    from bench.common import REPO

    trees = [("this", REPO)]
    if args.baseline:
        trees.append(("baseline", Path(args.baseline)))
    print(
        "| round | tree | callers/s | p50 ms | p90 ms | p99 ms | commits | rows per commit | load |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for number in range(1, args.rounds + 1):
        for label, tree in trees:
            f = await _measure(args.database, tree, args.seconds, args.rate)
            print(
                f"| {number} | {label} | {args.rate:.0f} | {f['p50']:.2f} | {f['p90']:.2f} | "
                f"{f['p99']:.2f} | {f['commits']} | {f['rows_per_commit']:.1f} | "
                f"{f['load'][0][0]} to {f['load'][1][0]} |",
                flush=True,
            )


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        # Run as a script: its folder (bench/) must not shadow anything the router imports.
        sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]
        url, seconds, rate = sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
        print(json.dumps(asyncio.run(child(url, seconds, rate))))
        return
    parser = argparse.ArgumentParser(prog="python -m bench.commit_alone", description=__doc__)
    parser.add_argument("--baseline", help="another source tree's group commit, alternating")
    parser.add_argument("--rate", type=float, default=800.0, help="callers per second")
    parser.add_argument("--seconds", type=float, default=6.0, help="per tree and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--database",
        default=os.environ.get(
            "ROUTER_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="admin URL; a scratch database is created per tree and round",
    )
    args = parser.parse_args()
    logs.configure(level="warning")  # the report is the output, not migration lines
    if args.baseline:
        args.baseline = str(Path(args.baseline).resolve())
    asyncio.run(_main(args))


if __name__ == "__main__":
    main()
