"""What tracing costs a submission: one router with traces off, one exporting every span
over OTLP/gRPC to a collector stand-in in this process, the same load on each in
alternating rounds.

    python -m bench.tracing_overhead [--rounds 3] [--submits 2000] [--concurrency 50]

Each router runs as its own process (`contact-router serve`) on its own scratch
database (ROUTER_TEST_DATABASE_URL's server, else 127.0.0.1:5432). A round submits
`--submits` emails from `--concurrency` callers at once and times each call; the table
shows each round's submissions per second and median and 99th-percentile latency, and
the ratio of the traced router's figures to the untraced one's over all rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import time
from collections.abc import AsyncIterator, Iterator

import grpc
from contact_router_tools.tables import number, render_table
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as otlp
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as otlp_grpc

from bench.common import ServerProcess, scratch_database, start_router_process, wait_serving
from bench.harness import DEFAULT_ADMIN_URL

ADMIN_URL = os.environ.get("ROUTER_TEST_DATABASE_URL", DEFAULT_ADMIN_URL)


class Collector(otlp_grpc.TraceServiceServicer):
    """Takes every export and counts the spans, as a collector would acknowledge them."""

    def __init__(self) -> None:
        self.spans = 0

    async def Export(  # noqa: N802 - the OTLP method's name
        self, request: otlp.ExportTraceServiceRequest, context: object
    ) -> otlp.ExportTraceServiceResponse:
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                self.spans += len(scope.spans)
        return otlp.ExportTraceServiceResponse()


@contextlib.asynccontextmanager
async def collector() -> AsyncIterator[tuple[Collector, int]]:
    server = grpc.aio.server()
    servicer = Collector()
    # The generated OTLP stubs carry no annotations.
    otlp_grpc.add_TraceServiceServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield servicer, port
    finally:
        await server.stop(None)


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """`values` in os.environ while a router process is started (it copies them)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


async def one_round(
    server: ServerProcess, label: str, submits: int, concurrency: int
) -> tuple[float, list[float]]:
    """Submissions per second and each call's latency (seconds)."""
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(submits):
        queue.put_nowait(n)
    async with grpc.aio.insecure_channel(server.target) as channel:
        stub = pb_grpc.ContactServiceStub(channel)

        async def caller() -> None:
            while not queue.empty():
                n = queue.get_nowait()
                request = pb.SubmitContactRequest(
                    idempotency_key=f"{label}-{n}",
                    channel=pb.CHANNEL_EMAIL,
                    customer_id=f"customer-{n}",
                    attributes={"subject": "order 1234"},
                )
                started = time.perf_counter()
                await stub.SubmitContact(request)
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return submits / elapsed, latencies


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


async def run(args: argparse.Namespace) -> None:
    load = {"ROUTER_EMAIL_MAX_QUEUE": str(args.rounds * args.submits * 2 + 1000)}
    async with (
        collector() as (spans, port),
        scratch_database(ADMIN_URL, "trace_off") as off_url,
        scratch_database(ADMIN_URL, "trace_on") as on_url,
    ):
        with environment({**load, "OTEL_TRACES_EXPORTER": "none"}):
            off = start_router_process(off_url)
        with environment(
            {
                **load,
                "OTEL_TRACES_EXPORTER": "otlp",
                "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
                "OTEL_EXPORTER_OTLP_INSECURE": "true",
            }
        ):
            on = start_router_process(on_url)
        try:
            await wait_serving(off)
            await wait_serving(on)
            rows = []
            totals: dict[str, list[tuple[float, list[float]]]] = {"off": [], "on": []}
            for round_number in range(1, args.rounds + 1):
                for label, server in (("off", off), ("on", on)):
                    rate, latencies = await one_round(
                        server, f"{label}{round_number}", args.submits, args.concurrency
                    )
                    totals[label].append((rate, latencies))
                    rows.append(
                        [
                            round_number,
                            f"traces {label}",
                            number(rate, 0),
                            number(statistics.median(latencies) * 1000, 2),
                            number(p99(latencies) * 1000, 2),
                        ]
                    )
            print(render_table((("round", "router", "submits/s", "p50 ms", "p99 ms"), rows)))
            ratio = {
                "submits/s": statistics.mean(r for r, _ in totals["on"])
                / statistics.mean(r for r, _ in totals["off"]),
                "p50": statistics.median([x for _, ls in totals["on"] for x in ls])
                / statistics.median([x for _, ls in totals["off"] for x in ls]),
                "p99": p99([x for _, ls in totals["on"] for x in ls])
                / p99([x for _, ls in totals["off"] for x in ls]),
            }
            print(
                "traced / untraced: "
                + ", ".join(f"{name} x{value:.2f}" for name, value in ratio.items())
            )
            print(f"spans the collector received: {spans.spans}")
            print(f"load average: {os.getloadavg()}")
        finally:
            for server in (off, on):
                server.process.terminate()
                server.process.wait(30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--submits", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    asyncio.run(run(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
