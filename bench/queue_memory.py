"""What a waiting contact costs the router in memory, small and at its byte limit.

    python -m bench.queue_memory [--contacts 10000]

For each shape, a fresh router (its own process and scratch database) is given
`--contacts` emails that nobody answers; its resident memory is read before and after,
and the growth per contact printed beside the bytes the contact counts against
ROUTER_MAX_QUEUE_BYTES (Contact.size: ids, attributes and skills in UTF-8). So the
limits can be read as memory: a queue full to ROUTER_MAX_QUEUE_BYTES costs about
(growth per contact / counted bytes) times the limit, plus the fixed cost per contact
for small ones. Scratch databases live on ROUTER_TEST_DATABASE_URL's server, else
127.0.0.1:5432.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from dataclasses import dataclass
from datetime import UTC, datetime

import grpc
from contact_router_tools.tables import number, render_table
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc

from bench.common import rss_bytes, scratch_database, start_router_process, wait_serving
from bench.harness import DEFAULT_ADMIN_URL
from router.domain import Channel, Contact

ADMIN_URL = os.environ.get("ROUTER_TEST_DATABASE_URL", DEFAULT_ADMIN_URL)
EMOJI = "\N{GRINNING FACE}"  # 4 bytes in UTF-8 and in CPython's str


@dataclass(frozen=True)
class Shape:
    name: str
    attributes: dict[str, str]


SHAPES = (
    Shape("typical (3 short attributes)", {"subject": "order 1234", "lang": "en", "tier": "gold"}),
    Shape("ascii, 15 KiB of attributes", {f"a{n}": "x" * 1000 for n in range(15)}),
    Shape("emoji, 15 KiB of attributes", {f"a{n}": EMOJI * 250 for n in range(15)}),
)


def key(n: int) -> str:
    """The idempotency key of the n-th contact; its customer is f"customer-{key}"."""
    return f"k{n:08d}"


def counted_bytes(shape: Shape, n: int) -> int:
    """What the n-th of these contacts counts against the byte limits (Contact.size)."""
    return Contact(
        id="00000000-0000-0000-0000-000000000000",
        idempotency_key=key(n),
        channel=Channel.EMAIL,
        customer_id=f"customer-{key(n)}",
        queued_at=datetime.now(UTC),
        attributes=shape.attributes,
    ).size()


async def measure(shape: Shape, contacts: int) -> tuple[float, int]:
    """(resident bytes added per waiting contact, bytes it counts against the limit)."""
    async with scratch_database(ADMIN_URL, "memory") as url:
        server = start_router_process(url)
        try:
            await wait_serving(server)
            async with grpc.aio.insecure_channel(server.target) as channel:
                stub = pb_grpc.ContactServiceStub(channel)
                before = rss_bytes(server.pid)
                batch = 200
                for first in range(0, contacts, batch):
                    await asyncio.gather(
                        *(
                            stub.SubmitContact(
                                pb.SubmitContactRequest(
                                    idempotency_key=key(n),
                                    channel=pb.CHANNEL_EMAIL,
                                    customer_id=f"customer-{key(n)}",
                                    attributes=shape.attributes,
                                )
                            )
                            for n in range(first, min(first + batch, contacts))
                        )
                    )
                after = rss_bytes(server.pid)
        finally:
            server.stop()
    return (after - before) / contacts, counted_bytes(shape, 0)


async def main(contacts: int) -> None:
    print(f"{contacts} waiting emails per shape, resident memory of the router process\n")
    rows = []
    for shape in SHAPES:
        per_contact, counted = await measure(shape, contacts)
        rows.append([shape.name, counted, number(per_contact, 0), number(per_contact / counted, 2)])
    print(render_table((["shape", "counted B", "RSS B/contact", "RSS / counted"], rows)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=10_000)
    asyncio.run(main(parser.parse_args().contacts))
