"""How group commit batches concurrent SubmitContact calls.

Starts a router in this process on the given database and sends N submissions at
several concurrency levels over real gRPC, printing submissions per second and how
many submissions shared each commit. The client shares the server's event loop, so
the rates are a lower bound for the router, not a throughput claim (issue 6 builds
the real harness with separate load-generator processes).

    .venv/bin/python bench/submit_batching.py postgresql://postgres@127.0.0.1:5432/DB
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid

import grpc
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc

from router.domain import RoutingPolicy
from router.server import start_router

SUBMISSIONS = 600


async def main(database_url: str) -> None:
    running = await start_router(database_url, RoutingPolicy())
    stats = running.store.writer.stats
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            contacts = pb_grpc.ContactServiceStub(channel)
            for concurrency in (1, 50, 200):
                gate = asyncio.Semaphore(concurrency)

                async def submit(gate: asyncio.Semaphore = gate) -> None:
                    async with gate:
                        await contacts.SubmitContact(
                            pb.SubmitContactRequest(
                                idempotency_key=str(uuid.uuid4()),
                                channel=pb.CHANNEL_EMAIL,
                                customer_id=f"bench-{uuid.uuid4()}",
                            )
                        )

                before = stats.transactions
                started = time.perf_counter()
                await asyncio.gather(*(submit() for _ in range(SUBMISSIONS)))
                seconds = time.perf_counter() - started
                commits = stats.transactions - before
                print(
                    f"concurrency {concurrency:4d}: {SUBMISSIONS} submits in {seconds:.2f} s"
                    f" = {SUBMISSIONS / seconds:6.0f}/s, {commits} commits"
                    f" ({SUBMISSIONS / commits:.1f} submits per commit)"
                )
    finally:
        await running.stop()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    asyncio.run(main(sys.argv[1]))
