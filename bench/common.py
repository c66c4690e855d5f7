"""What every part of the harness shares: scratch databases, server processes, and the
server's own CPU time and memory read from /proc."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from router.store.database_url import database_of, with_database

REPO = Path(__file__).resolve().parent.parent
_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    """A port nobody listens on now (the server is told it; it binds it itself)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (its own threads only)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # Fields 14 and 15 of proc(5) (utime, stime) are at 11 and 12 after the ")".
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_SECOND


def machine_busy_seconds() -> float:
    """CPU seconds every CPU of the machine has spent busy so far (/proc/stat: all but
    idle and iowait), whoever ran."""
    fields = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / _TICKS_PER_SECOND


def rss_bytes(pid: int) -> int:
    """Resident set size of the process now."""
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE_BYTES


def load_average() -> tuple[float, float, float]:
    one, five, fifteen = os.getloadavg()
    return round(one, 2), round(five, 2), round(fifteen, 2)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of unsorted `values` (nan when empty)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def routing_latencies(
    acknowledged: Mapping[str, float], offered: Mapping[str, float]
) -> tuple[list[float], float]:
    """Milliseconds from a submit's acknowledgement (at the gateway) to its offer (at
    the agent), per contact seen by both, and the share of offers that arrived first.

    The router pushes an offer as soon as it decides it, in the same instant as the
    submit's answer leaves; the agent's process often has it before the gateway's
    process has its answer. Such an offer waited for nothing and counts as 0 ms.
    """
    gaps = [1000 * (offered[cid] - at) for cid, at in acknowledged.items() if cid in offered]
    first = sum(1 for gap in gaps if gap < 0) / len(gaps) if gaps else math.nan
    return [max(0.0, gap) for gap in gaps], first


async def backend_pids(db_url: str) -> list[int]:
    """The PostgreSQL server processes serving connections to this database now."""
    name = database_of(db_url)
    connection = await asyncpg.connect(db_url)
    try:
        rows = await connection.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
    finally:
        await connection.close()
    return [int(r["pid"]) for r in rows]


def backends_cpu_seconds(pids: Sequence[int]) -> float:
    """CPU time of these PostgreSQL backends (one that has exited counts as zero)."""
    used = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            used += cpu_seconds(pid)
    return used


@contextlib.asynccontextmanager
async def scratch_database(admin_url: str, label: str) -> AsyncIterator[str]:
    """A fresh, empty database for one measurement, dropped afterwards."""
    name = f"bench_{label}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield with_database(admin_url, name)
    finally:
        admin = await asyncpg.connect(admin_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@dataclass
class ServerProcess:
    """A gRPC server running as its own process, on a port chosen for it."""

    process: subprocess.Popen[bytes]
    port: int
    metrics_port: int | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (the router flushes its writes and exits), SIGKILL if it hangs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_router_process(
    db_url: str,
    *,
    log_level: str = "warning",
    profile_to: Path | None = None,
    event_loop: str = "uvloop",
    tree: Path | None = None,
) -> ServerProcess:
    """`contact-router serve` on a scratch database, as a separate process.

    With `profile_to` it runs under cProfile, which writes its statistics there when
    the server exits on SIGTERM. With `tree`, the router package of that source tree
    (another revision, `git archive <rev> | tar -x -C <tree>`) runs instead of this
    one's, in this interpreter: its `router` and stubs come first on the path."""
    port, metrics_port = free_port(), free_port()
    env = {
        **os.environ,
        "ROUTER_DATABASE_URL": db_url,
        "ROUTER_HOST": "127.0.0.1",
        "ROUTER_PORT": str(port),
        "ROUTER_METRICS_PORT": str(metrics_port),
        "ROUTER_LOG_FORMAT": "json",
        "ROUTER_LOG_LEVEL": log_level,
        "ROUTER_EVENT_LOOP": event_loop,
        # An offer the load generator has not answered yet must not time out under load.
        "ROUTER_OFFER_TIMEOUT_SECONDS": "120",
    }
    env.pop("ROUTER_CONFIG_FILE", None)
    if tree is not None:
        # Its generated stubs and tools too, which may differ from this tree's.
        paths = [str(tree), str(tree / "clients" / "python"), str(tree / "tools")]
        paths.append(env.get("PYTHONPATH", ""))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, paths))
    profiler = ["-m", "cProfile", "-o", str(profile_to)] if profile_to else []
    command = [sys.executable, *profiler, "-m", "router.cli", "serve"]
    process = subprocess.Popen(command, env=env, cwd=tree or REPO, stdout=subprocess.DEVNULL)
    return ServerProcess(process, port, metrics_port)


def start_bare_process(event_loop: str = "uvloop") -> ServerProcess:
    """The bare grpc.aio baseline server (bench/bare_server.py), as a separate process,
    on the same event loop as the router it is compared with."""
    port = free_port()
    command = [sys.executable, "-m", "bench.bare_server", str(port), event_loop]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL)
    return ServerProcess(process, port)


async def wait_serving(server: ServerProcess, within: float = 60.0) -> None:
    """Poll the standard health service until the server says SERVING."""
    deadline = time.monotonic() + within
    async with grpc.aio.insecure_channel(server.target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            if server.process.poll() is not None:
                raise RuntimeError(f"server exited with {server.process.returncode}")
            with contextlib.suppress(grpc.aio.AioRpcError):
                answer = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"server on {server.target} not serving after {within} s")
            await asyncio.sleep(0.1)
