"""Instructions per lifecycle of a server process, counted by valgrind's callgrind.

    python -m bench.instructions router      # about 2 minutes
    python -m bench.instructions bare
    python -m bench.instructions router --lifecycles 300 --keep /tmp/router.callgrind

CPU time per lifecycle moves with the machine's load (other processes evict caches and
take the cores); the count of instructions the server executes for the same work does
not, so two revisions can be compared on a busy machine. The server runs under
callgrind with instrumentation off while it starts and its agents sign in; it is
switched on (callgrind_control) after a warm-up of lifecycles and off after the
measured ones. The count leaves out what the kernel does for the process (socket
sends and receives, its share of CPU time), so it is a figure for comparing revisions
of the same server, not a CPU ratio against another server.

One client process drives it: `agents` agents each take an offer through accept, end
and complete; gateways keep `window` contacts submitted and not yet completed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc

from bench.common import REPO, ServerProcess, free_port, scratch_database, wait_serving
from bench.harness import DEFAULT_ADMIN_URL

AGENTS = 20
WINDOW = 40
WARM_UP = 100
TIMEOUT = 600.0
"""Seconds any RPC may take: under callgrind the server runs some fifty times slower."""


def _toggle(pid: int, on: bool) -> None:
    subprocess.run(
        ["callgrind_control", "-i", "on" if on else "off", str(pid)],
        check=True,
        capture_output=True,
    )


async def drive(target: str, pid: int, lifecycles: int) -> float:
    """Run WARM_UP + `lifecycles` lifecycles, counting the last ones; their seconds."""
    done = 0
    submitted = 0
    finished = asyncio.Event()
    started = 0.0
    async with grpc.aio.insecure_channel(target) as channel:
        agents = pb_grpc.AgentServiceStub(channel)
        gateway = pb_grpc.ContactServiceStub(channel)

        async def agent(agent_id: str) -> None:
            nonlocal done, started
            await agents.SignIn(pb.SignInRequest(agent_id=agent_id), timeout=TIMEOUT)
            async for message in agents.StreamOffers(pb.StreamOffersRequest(agent_id=agent_id)):
                if not message.HasField("offer"):
                    continue
                offer = message.offer
                contact_id = offer.contact.contact_id
                await agents.AcceptOffer(
                    pb.AcceptOfferRequest(agent_id=agent_id, offer_id=offer.offer_id),
                    timeout=TIMEOUT,
                )
                await agents.EndContact(
                    pb.EndContactRequest(agent_id=agent_id, contact_id=contact_id),
                    timeout=TIMEOUT,
                )
                await agents.CompleteContact(
                    pb.CompleteContactRequest(
                        agent_id=agent_id, contact_id=contact_id, disposition="bench"
                    ),
                    timeout=TIMEOUT,
                )
                done += 1
                if done == WARM_UP:
                    await asyncio.to_thread(_toggle, pid, True)
                    started = time.monotonic()
                elif done == WARM_UP + lifecycles:
                    await asyncio.to_thread(_toggle, pid, False)
                    finished.set()

        async def submitter() -> None:
            nonlocal submitted
            while not finished.is_set():
                if submitted - done >= WINDOW or submitted >= WARM_UP + lifecycles + WINDOW:
                    # Pacing, not synchronisation: wait for the agents to catch up.
                    await asyncio.sleep(0.002)
                    continue
                submitted += 1
                key = os.urandom(12).hex()
                request = pb.SubmitContactRequest(
                    idempotency_key=key, channel=pb.CHANNEL_PHONE, customer_id=f"bench-{key}"
                )
                await gateway.SubmitContact(request, timeout=TIMEOUT)

        tasks = [asyncio.create_task(agent(f"agent-{n}")) for n in range(AGENTS)]
        tasks += [asyncio.create_task(submitter()) for _ in range(8)]
        await finished.wait()
        seconds = time.monotonic() - started
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return seconds


def _instructions(out: Path) -> int:
    text = subprocess.run(
        ["callgrind_annotate", str(out)], capture_output=True, text=True, check=True
    ).stdout
    match = re.search(r"([\d,]+) \([\d.]+%\)\s+PROGRAM TOTALS", text)
    if match is None:
        raise RuntimeError(f"no PROGRAM TOTALS in callgrind_annotate's output of {out}")
    return int(match.group(1).replace(",", ""))


def _start(out: Path, port: int, module: list[str], env: dict[str, str] | None) -> ServerProcess:
    """`python -m module...` under callgrind, instrumentation off until switched on."""
    command = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={out}",
        sys.executable,
        "-m",
        *module,
    ]
    process = subprocess.Popen(
        command, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return ServerProcess(process, port)


async def measure(server: str, admin_url: str, lifecycles: int, out: Path) -> tuple[int, float]:
    """(instructions, seconds) of `lifecycles` lifecycles in `server` (router | bare)."""
    port = free_port()
    async with contextlib.AsyncExitStack() as stack:
        if server == "bare":
            module, env = ["bench.bare_server", str(port)], None
        else:
            db_url = await stack.enter_async_context(scratch_database(admin_url, "instructions"))
            module, env = ["router.cli", "serve"], _router_env(db_url, port)
        process = _start(out, port, module, env)
        try:
            await wait_serving(process, TIMEOUT)
            seconds = await drive(process.target, process.pid, lifecycles)
        finally:
            process.stop(TIMEOUT)
    return _instructions(out), seconds


def _router_env(db_url: str, port: int) -> dict[str, str]:
    """The router's settings: its scratch database, quiet logs, offers that outlast
    callgrind's slowness, and no settings file of the user's."""
    env = {
        **os.environ,
        "ROUTER_DATABASE_URL": db_url,
        "ROUTER_HOST": "127.0.0.1",
        "ROUTER_PORT": str(port),
        "ROUTER_LOG_FORMAT": "json",
        "ROUTER_LOG_LEVEL": "warning",
        "ROUTER_OFFER_TIMEOUT_SECONDS": "600",
        # Served as in production, on a port of its own: the default (9464) is taken by
        # any router already running here, and the server then exits before serving.
        "ROUTER_METRICS_PORT": "0",
    }
    env.pop("ROUTER_CONFIG_FILE", None)
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.instructions",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("server", choices=("router", "bare"))
    parser.add_argument("--lifecycles", type=int, default=300)
    parser.add_argument(
        "--database",
        default=os.environ.get("ROUTER_TEST_DATABASE_URL", DEFAULT_ADMIN_URL),
        help="admin URL of the PostgreSQL server; a scratch database is created there",
    )
    parser.add_argument("--keep", help="keep callgrind's output in this file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(args.keep) if args.keep else Path(scratch) / "callgrind.out"
        instructions, seconds = asyncio.run(
            measure(args.server, args.database, args.lifecycles, out)
        )
    print(
        f"{args.server}: {instructions / args.lifecycles / 1e6:.2f} M instructions per "
        f"lifecycle ({args.lifecycles} lifecycles in {seconds:.0f} s under callgrind)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
