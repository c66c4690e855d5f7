"""What WatchQueue's watchers cost the router: its CPU per update with 0, 1 and 500
watchers under the same stream of changes, and the pictures it built per update.

    python -m bench.watchers [--watchers 500] [--rounds 3] [--seconds 10] [--rate 100]

A router runs in its own process on a scratch database (ROUTER_TEST_DATABASE_URL's
server, else 127.0.0.1:5432). In each round, for each number of watchers in turn
(alternating, so that the machine's load falls on all alike), this process opens the
watchers (spread over ten connections), waits for each one's first picture, then
submits `--rate` calls a second for `--seconds` (nobody answers them: every submission
changes the queue) while reading the pictures; the router's CPU time (user + system,
/proc) is read before and after. The load's own cost is the 0-watcher row's; a row's
"watch CPU per update" is its CPU beyond that, divided by its updates.

Updates are counted from the pictures' `sequence`, the router's count of pictures
built: "built per update" is how far it moved in the window divided by the pictures
the first watcher received, 1.0 when every watcher is served from one picture (it
would be the number of watchers if each built its own). A watcher too slow to read
every picture skips to the newest; "skipped" counts those over all watchers.

After each window, while its watchers are still open, PROBES calls are submitted one at
a time on a quiet queue: each is timed from its answer (the call committed and queued)
to the first watcher's picture showing it and to the last watcher's (what a wallboard
waits for before it can redraw).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import time
import uuid
from dataclasses import dataclass, field

import grpc
from contact_router_tools.tables import number, render_table
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc

from bench.common import (
    REPO,
    cpu_seconds,
    load_average,
    percentile,
    scratch_database,
    start_router_process,
    wait_serving,
)
from bench.harness import DEFAULT_ADMIN_URL

ADMIN_URL = os.environ.get("ROUTER_TEST_DATABASE_URL", DEFAULT_ADMIN_URL)
CONNECTIONS = 10
PROBES = 10


@dataclass
class Watcher:
    """One watcher's pictures: every sequence it read while measuring."""

    first: asyncio.Event = field(default_factory=asyncio.Event)
    sequences: list[int] = field(default_factory=list)
    measuring: bool = False
    want: int = 0
    """Phone contacts waiting that a probe waits for this watcher to see."""
    saw: asyncio.Future[float] | None = None
    """When it first saw them (perf_counter)."""

    async def follow(self, stub: pb_grpc.ReportingServiceAsyncStub) -> None:
        async for picture in stub.WatchQueue(pb.WatchQueueRequest()):
            self.first.set()
            if self.measuring:
                self.sequences.append(picture.sequence)
            seen = self.saw
            if (
                seen is not None
                and not seen.done()
                and picture.channels[0].queue.waiting >= self.want
            ):
                seen.set_result(time.perf_counter())

    def expect(self, waiting: int) -> asyncio.Future[float]:
        self.want = waiting
        self.saw = asyncio.get_running_loop().create_future()
        return self.saw


@dataclass(frozen=True)
class Round:
    watchers: int
    cpu: float
    """Router CPU seconds over the window."""
    updates: int
    """Pictures the first watcher received in the window."""
    built: int
    """How far the pictures' sequence moved in the window."""
    skipped: int
    """Pictures replaced before some watcher read them, over all watchers."""
    first_seen: list[float]
    """Per probe: seconds from a submission's answer to the first watcher seeing it."""
    all_seen: list[float]
    """Per probe: seconds until the last watcher saw it."""


async def measure(
    target: str, pid: int, watchers: int, seconds: float, rate: float, tag: str
) -> Round:
    channels = [grpc.aio.insecure_channel(target) for _ in range(CONNECTIONS)]
    try:
        stubs = [pb_grpc.ReportingServiceStub(c) for c in channels]
        followers = [Watcher() for _ in range(watchers)]
        tasks = [
            asyncio.create_task(w.follow(stubs[i % CONNECTIONS])) for i, w in enumerate(followers)
        ]
        await asyncio.wait_for(asyncio.gather(*(w.first.wait() for w in followers)), 120)
        contacts = pb_grpc.ContactServiceStub(channels[0])
        for follower in followers:
            follower.measuring = True
        before = cpu_seconds(pid)
        started = time.perf_counter()
        sent: list[asyncio.Future[pb.SubmitContactResponse]] = []
        for n in range(int(seconds * rate)):
            # Paced from the start, so a slow submission does not thin out the rest.
            await asyncio.sleep(max(0.0, started + n / rate - time.perf_counter()))
            request = pb.SubmitContactRequest(
                idempotency_key=f"{tag}-{n}",
                channel=pb.CHANNEL_PHONE,
                customer_id=f"customer-{tag}-{n}",
            )
            sent.append(asyncio.ensure_future(contacts.SubmitContact(request)))
        await asyncio.gather(*sent)
        for follower in followers:
            follower.measuring = False
        cpu = cpu_seconds(pid) - before
        first_seen, all_seen = await probe(channels[0], followers, tag)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        for channel in channels:
            await channel.close()
    if not followers:
        return Round(0, cpu, 0, 0, 0, [], [])
    seen = followers[0].sequences
    built = seen[-1] - seen[0] if len(seen) > 1 else 0
    skipped = sum(
        (w.sequences[-1] - w.sequences[0] + 1) - len(w.sequences) for w in followers if w.sequences
    )
    return Round(watchers, cpu, max(0, len(seen) - 1), built, skipped, first_seen, all_seen)


async def probe(
    channel: grpc.aio.Channel, followers: list[Watcher], tag: str
) -> tuple[list[float], list[float]]:
    """How long a change takes to reach the watchers: PROBES calls submitted one at a
    time on a quiet queue, each timed from its answer (committed, queued) to the first
    and to the last watcher's picture showing it."""
    if not followers:
        return [], []
    reporting = pb_grpc.ReportingServiceStub(channel)
    contacts = pb_grpc.ContactServiceStub(channel)
    first_seen, all_seen = [], []
    for n in range(PROBES):
        status = await reporting.GetQueueStatus(pb.GetQueueStatusRequest())
        waiting = status.channels[0].waiting + 1
        seen = [follower.expect(waiting) for follower in followers]
        request = pb.SubmitContactRequest(
            idempotency_key=f"{tag}-probe-{n}",
            channel=pb.CHANNEL_PHONE,
            customer_id=f"customer-{tag}-probe-{n}",
        )
        await contacts.SubmitContact(request)
        answered = time.perf_counter()
        times = await asyncio.wait_for(asyncio.gather(*seen), 30)
        first_seen.append(min(times) - answered)
        all_seen.append(max(times) - answered)
        # Apart by more than the interval, so that each probe is a change on its own.
        await asyncio.sleep(0.5)
    return first_seen, all_seen


async def run(counts: tuple[int, ...], rounds: int, seconds: float, rate: float) -> None:
    async with scratch_database(ADMIN_URL, "watchers") as url:
        router = start_router_process(url)
        try:
            await wait_serving(router)
            results: list[Round] = []
            for index in range(rounds):
                for count in counts:
                    tag = f"r{index}-w{count}-{uuid.uuid4().hex[:6]}"
                    results.append(
                        await measure(router.target, router.pid, count, seconds, rate, tag)
                    )
        finally:
            router.stop()
    revision = subprocess.run(  # noqa: ASYNC221 (once, after the measurements)
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    print(
        f"revision {revision}, load average {load_average()}, {rounds} rounds of "
        f"{seconds:g} s at {rate:g} submissions/s, router CPU (user + system)"
    )
    print()
    base = [r.cpu for r in results if r.watchers == 0]
    load_cpu = sum(base) / len(base) if base else 0.0
    rows = []
    for count in counts:
        mine = [r for r in results if r.watchers == count]
        cpu = sum(r.cpu for r in mine) / len(mine)
        updates = sum(r.updates for r in mine)
        built = sum(r.built for r in mine)
        per_update = cpu * len(mine) / updates if updates else None
        extra = (cpu - load_cpu) * len(mine) / updates if updates and base else None
        rows.append(
            (
                count,
                number(cpu, 2),
                updates // len(mine),
                None if per_update is None else number(per_update * 1000, 1),
                None if extra is None else number(extra * 1000, 2),
                number(built / updates, 2) if updates else None,
                sum(r.skipped for r in mine),
            )
        )
    columns = (
        "watchers",
        "router CPU s per round",
        "updates per round",
        "CPU ms per update",
        "watch CPU ms per update",
        "built per update",
        "skipped",
    )
    print(render_table((columns, rows)))
    print()
    print("From a submission's answer to the pictures showing it (ms):")
    print()
    delays = []
    for count in counts[1:]:
        mine = [r for r in results if r.watchers == count]
        first = [t * 1000 for r in mine for t in r.first_seen]
        last = [t * 1000 for r in mine for t in r.all_seen]
        delays.append(
            (
                count,
                len(first),
                number(percentile(first, 0.5), 0),
                number(max(first), 0),
                number(percentile(last, 0.5), 0),
                number(max(last), 0),
            )
        )
    headings = ("watchers", "probes", "first p50", "first max", "last p50", "last max")
    print(render_table((headings, delays)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--watchers", type=int, default=500, help="the many (default 500)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0, help="each window")
    parser.add_argument("--rate", type=float, default=100.0, help="submissions per second")
    args = parser.parse_args()
    asyncio.run(run((0, 1, args.watchers), args.rounds, args.seconds, args.rate))


if __name__ == "__main__":
    main()
