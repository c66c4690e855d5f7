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
import contextlib
import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import grpc
from contactrouter.client import connect
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc

from bench import prefill
from bench.common import (
    REPO,
    ServerProcess,
    cpu_seconds,
    free_port,
    load_average,
    scratch_database,
    wait_serving,
)
from bench.lifecycle import wait_until
from router import logs

_SPAWN = multiprocessing.get_context("spawn")
_OFFER_CLOSERS = {"answered", "declined", "offer_timed_out", "requeued", "abandoned"}

_BACKLOG_SKILL = "email-desk"

TAKEOVER_TARGET = (
    "first offer on a new stream within 5 s of the SIGKILL, at 100,000 queued and 5,000 "
    "agents (issue 18, item 3)"
)
COLD_TARGET = "SERVING under 5 s after the start at 500,000 queued (issue 18, item 4)"


def start_router(
    db_url: str, tree: Path = REPO, *, log_to: Path | None = None, level: str = "warning"
) -> ServerProcess:
    """`contact-router serve` from `tree` (this checkout, or an earlier revision's),
    its log lines (JSON, from `level` up) written to `log_to`."""
    port = free_port()
    env = {
        **os.environ,
        "ROUTER_DATABASE_URL": db_url,
        "ROUTER_HOST": "127.0.0.1",
        "ROUTER_PORT": str(port),
        "ROUTER_METRICS_PORT": str(free_port()),
        "ROUTER_LOG_FORMAT": "json",
        "ROUTER_LOG_LEVEL": level,
        "ROUTER_OFFER_TIMEOUT_SECONDS": "600",
        "ROUTER_PHONE_RESERVE": "0",
        "PYTHONPATH": str(tree),
    }
    env.pop("ROUTER_CONFIG_FILE", None)
    command = [sys.executable, "-m", "router.cli", "serve"]
    output = subprocess.DEVNULL if log_to is None else log_to.open("w")
    process = subprocess.Popen(command, env=env, cwd=tree, stdout=output, stderr=subprocess.STDOUT)
    return ServerProcess(process, port)


def _logged(server: ServerProcess, log: Path, event: str) -> bool:
    """Whether `server` has logged `event` (a RuntimeError if it has exited)."""
    if server.process.poll() is not None:
        raise RuntimeError(f"server exited with {server.process.returncode}")
    return any(f'"event": "{event}"' in line for line in log.read_text().splitlines())


# ------------------------------------------------------------------ the agents' desks


def run_desks(
    targets: str,
    agent_ids: Sequence[str],
    slot: int,
    first_offers: Any,
    new_offers: Any,
    earliest_new: Any,
    killed_at: Any,
    stop: Any,
) -> None:
    """Process entry: each agent signs in and keeps its offer stream open (holding the
    offers, never answering), opening it again after backoff when it breaks, on the
    other router of `targets` ("active,standby"). Counts the agents with an offer on a
    first stream and on a stream opened after `killed_at`, and the earliest such offer
    (time.time())."""
    asyncio.run(
        _desks(targets, agent_ids, slot, first_offers, new_offers, earliest_new, killed_at, stop)
    )


async def _desks(
    targets: str,
    agent_ids: Sequence[str],
    slot: int,
    first_offers: Any,
    new_offers: Any,
    earliest_new: Any,
    killed_at: Any,
    stop: Any,
) -> None:
    # A desk tries one router, and the other when that fails (as behind a service that
    # sends new connections to the router that is ready): the round robin of
    # `connect("a,b")` sent some desks' streams to the standby over and over.
    channels = [connect(target, retry=False) for target in targets.split(",")]
    stubs = [pb_grpc.AgentServiceStub(channel) for channel in channels]
    gate = asyncio.Semaphore(200)

    async def desk(agent_id: str) -> None:
        request = pb.SignInRequest(
            agent_id=agent_id,
            skills=[_BACKLOG_SKILL],
            capacities=[pb.ChannelCapacity(channel=pb.CHANNEL_EMAIL, capacity=1)],
        )
        delay, most = 0.1, 5.0  # contactrouter.client.RECONNECT_BACKOFF
        offered_first = offered_new = False
        target = 0
        while not stop.is_set():
            stub = stubs[target]
            try:
                async with gate:
                    await stub.SignIn(request, timeout=30)
                opened = time.time()
                call = stub.StreamOffers(pb.StreamOffersRequest(agent_id=agent_id))
                async for message in call:
                    if message.WhichOneof("event") != "offer":
                        continue
                    now = time.time()
                    delay = 0.1
                    after_kill = 0 < killed_at.value < opened
                    if not offered_first and not after_kill:
                        offered_first = True
                        first_offers[slot] += 1
                    if after_kill and not offered_new:
                        offered_new = True
                        new_offers[slot] += 1
                        if not earliest_new[slot] or now < earliest_new[slot]:
                            earliest_new[slot] = now
            except grpc.aio.AioRpcError:
                target = 1 - target
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, most)

    tasks = [asyncio.create_task(desk(agent_id)) for agent_id in agent_ids]
    await asyncio.to_thread(stop.wait)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for channel in channels:
        await channel.close()


# ------------------------------------------------------------------------- takeover


async def takeover(
    admin_url: str, queued: int, agents: int, processes: int, work: Path
) -> dict[str, Any]:
    """Kill the active router under `agents` agents holding offers from `queued`
    waiting contacts; seconds to the standby serving and to the first offer on a new
    stream, and the never-lose checks on the record afterwards."""
    async with scratch_database(admin_url, "takeover") as db_url:
        await prefill.migrated(db_url)
        await prefill.add_backlog(db_url, queued, _BACKLOG_SKILL, "takeover")
        active = start_router(db_url, log_to=work / f"active-{queued}.log")
        standby: ServerProcess | None = None
        first_offers = _SPAWN.Array("q", processes, lock=False)
        new_offers = _SPAWN.Array("q", processes, lock=False)
        earliest_new = _SPAWN.Array("d", processes, lock=False)
        killed_at = _SPAWN.Value("d", 0.0, lock=False)
        stop = _SPAWN.Event()
        procs = []
        try:
            await wait_serving(active, 600)
            standby_log = work / f"standby-{queued}.log"
            standby = start_router(db_url, log_to=standby_log, level="info")
            await wait_until(
                lambda: _logged(standby, standby_log, "standby_waiting_for_active_lock"),
                600,
                "the standby loaded",
            )
            targets = f"{active.target},{standby.target}"
            per = -(-agents // processes)
            ids = [f"agent-{n}" for n in range(agents)]
            procs = [
                _SPAWN.Process(
                    target=run_desks,
                    args=(
                        targets,
                        ids[s * per : (s + 1) * per],
                        s,
                        first_offers,
                        new_offers,
                        earliest_new,
                        killed_at,
                        stop,
                    ),
                    name=f"bench-takeover-desks-{s}",
                )
                for s in range(processes)
            ]
            signing_in = time.monotonic()
            for process in procs:
                process.start()
            await wait_until(
                lambda: sum(first_offers) >= agents, 120 + agents / 20, "every agent offered"
            )
            sign_in_seconds = time.monotonic() - signing_in
            load_before = load_average()
            killed_at.value = time.time()
            active.process.send_signal(signal.SIGKILL)
            active.process.wait()
            await wait_until(lambda: any(earliest_new), 120, "an offer on a new stream")
            first_offer = min(t for t in earliest_new if t) - killed_at.value
            await wait_until(
                lambda: sum(new_offers) >= agents, 120 + agents / 20, "every agent offered again"
            )
            all_offered = time.time() - killed_at.value
            load_after = load_average()
        finally:
            stop.set()
            for process in procs:
                process.join(30)
                if process.is_alive():
                    process.kill()
            for server in (active, standby):
                if server is not None:
                    server.stop()
        checks = await never_lost(db_url, queued)
    return {
        "queued": queued,
        "agents": agents,
        "sign_in_seconds": round(sign_in_seconds, 2),
        "kill_to_first_offer_seconds": round(first_offer, 3),
        "kill_to_every_agent_offered_seconds": round(all_offered, 2),
        "standby": _standby_figures(work / f"standby-{queued}.log", killed_at.value),
        "never_lost": checks,
        "load_average": [load_before, load_after],
        "target": TAKEOVER_TARGET,
    }


def _standby_figures(log: Path, killed_at: float) -> dict[str, Any]:
    """From the standby's log: what it loaded and caught up, and when (seconds after
    the kill) it held the lock, had caught up, had restored the queue and served. Read
    from the log, not by asking its health service: that answer waits behind the
    thousands of desks' calls the standby is refusing at the same moment."""
    figures: dict[str, Any] = {}
    moments = {
        "active_lock_acquired": "lock",
        "standby_caught_up": "caught_up",
        "queue_restored": "restored",
        "router_active": "serving",
    }
    for line in log.read_text().splitlines():
        with contextlib.suppress(ValueError):
            event = json.loads(line)
            name = event.get("event")
            if name == "standby_loaded":
                figures["loaded"] = event["open_contacts"]
            elif name == "standby_caught_up":
                figures["caught_up_events"] = event["events"]
            elif name == "queue_restored":
                figures["warm"] = event.get("warm")
                figures["offers_voided"] = event.get("offers_voided")
            if name in moments:
                at = datetime.fromisoformat(event["timestamp"]).timestamp()
                figures[f"kill_to_{moments[name]}_seconds"] = round(at - killed_at, 3)
    return figures


async def never_lost(db_url: str, queued: int) -> dict[str, Any]:
    """The crash tests' checks on the record: every contact is still there, once per
    key, still waiting (nobody answered); never two offers of one contact open at once;
    each offer the killed router had made was closed (requeued by the restart)."""
    connection = await asyncpg.connect(db_url)
    try:
        contacts = await connection.fetch("SELECT id, idempotency_key, state FROM contacts")
        events = await connection.fetch(
            "SELECT contact_id, kind, reason FROM contact_events ORDER BY contact_id, seq"
        )
    finally:
        await connection.close()
    keys = {r["idempotency_key"] for r in contacts}
    states = {r["id"]: r["state"] for r in contacts}
    by_contact: dict[Any, list[str]] = {}
    for event in events:
        by_contact.setdefault(event["contact_id"], []).append(event["kind"])
    double_offers = 0
    state_mismatch = 0
    for contact_id, kinds in by_contact.items():
        open_offer = False
        for kind in kinds:
            if kind == "offered":
                double_offers += open_offer
                open_offer = True
            elif kind in _OFFER_CLOSERS:
                open_offer = False
        expected = "offered" if open_offer else "queued"
        state_mismatch += states.get(contact_id) != expected
    restarts = sum(1 for e in events if e["reason"] == "restart")
    result = {
        "contacts": len(contacts),
        "one_per_key": len(keys) == len(contacts),
        "still_waiting": all(s in ("queued", "offered") for s in states.values()),
        "two_offers_open_at_once": double_offers,
        "state_differs_from_events": state_mismatch,
        "offers_requeued_by_restart": restarts,
    }
    result["ok"] = (
        len(contacts) == queued
        and result["one_per_key"]
        and result["still_waiting"]
        and not double_offers
        and not state_mismatch
        and restarts > 0
    )
    return result


async def cold(admin_url: str, queued: int, rounds: int, baseline: Path | None) -> dict[str, Any]:
    """Seconds from start to SERVING with `queued` contacts, per round and tree, and
    the CPU seconds the router's process spent by then (user and system, all its
    threads): on a loaded machine the wall clock says more about the other processes
    than about the start, its CPU seconds less."""
    trees = {"this": REPO} if baseline is None else {"this": REPO, "baseline": baseline}
    seconds: dict[str, list[float]] = {name: [] for name in trees}
    cpu: dict[str, list[float]] = {name: [] for name in trees}
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
                    cpu[name].append(round(cpu_seconds(server.process.pid), 2))
                finally:
                    server.stop()
            loads.append(load_average())
    result: dict[str, Any] = {
        "queued": queued,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "load_average": loads,
        "target": COLD_TARGET,
    }
    if baseline is not None:
        ratio = _median(seconds["this"]) / _median(seconds["baseline"])
        result["ratio_of_medians"] = round(ratio, 3)
        result["cpu_ratio_of_medians"] = round(_median(cpu["this"]) / _median(cpu["baseline"]), 3)
    return result


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def plot(results: list[dict[str, Any]], path: Path) -> None:
    """Takeover time against queue size: to the standby serving, to the first offer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = sorted(results, key=lambda r: r["queued"])
    sizes = [r["queued"] for r in results]
    figure, axes = plt.subplots(figsize=(6.4, 4.0))
    axes.plot(
        sizes,
        [r["kill_to_first_offer_seconds"] for r in results],
        "o-",
        label="SIGKILL to the first offer on a new stream",
    )
    axes.plot(
        sizes,
        [r["standby"]["kill_to_serving_seconds"] for r in results],
        "s--",
        label="SIGKILL to the standby serving (its log)",
    )
    axes.plot(
        sizes,
        [r["standby"]["kill_to_lock_seconds"] for r in results],
        "^:",
        label="SIGKILL to the standby holding the lock",
    )
    axes.axhline(5.0, color="grey", linewidth=0.8, linestyle=":")
    axes.set_xscale("log")
    axes.set_xlabel("queued contacts")
    axes.set_ylabel("seconds")
    axes.set_ylim(bottom=0)
    agents = results[0]["agents"] if results else 0
    axes.set_title(f"Hot standby takeover, {agents} signed-in agents")
    axes.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.takeover")
    parser.add_argument("what", choices=("cold", "takeover"))
    parser.add_argument("admin_url")
    parser.add_argument("queued", help="queue sizes, comma-separated")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", type=Path)
    parser.add_argument("--agents", type=int, default=5000)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-takeover"))
    args = parser.parse_args()
    logs.configure(level="warning")  # the report is the output, not migration lines
    sizes = [int(n) for n in args.queued.split(",")]
    results = []
    args.work.mkdir(parents=True, exist_ok=True)
    for size in sizes:
        if args.what == "cold":
            result = asyncio.run(cold(args.admin_url, size, args.rounds, args.baseline))
        else:
            result = asyncio.run(
                takeover(args.admin_url, size, args.agents, args.processes, args.work)
            )
        results.append(result)
        print(json.dumps(result), flush=True)
    if args.plot is not None and args.what == "takeover":
        plot(results, args.plot)


if __name__ == "__main__":
    main()
