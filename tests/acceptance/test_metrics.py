"""The Prometheus endpoint of a real router: live queue, offers, RPCs, writes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from router.domain import RoutingPolicy
from router.server import RunningRouter, start_router
from tests.acceptance.conftest import eventually


@pytest.fixture
async def metered(database_url: str) -> AsyncIterator[RunningRouter]:
    """A router with its metrics endpoint on an ephemeral port."""
    running = await start_router(
        database_url, RoutingPolicy(phone_reserve=0), "127.0.0.1", 0, metrics_port=0
    )
    try:
        yield running
    finally:
        await running.stop(grace=1.0)


async def http_get(port: int, path: str, accept: str | None = None) -> tuple[int, str]:
    status, _, body = await http_exchange(port, path, accept)
    return status, body


async def http_exchange(
    port: int, path: str, accept: str | None = None
) -> tuple[int, dict[str, str], str]:
    """GET `path`: the status, the response headers (lower-case names) and the body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    accept_line = "" if accept is None else f"Accept: {accept}\r\n"
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n{accept_line}\r\n".encode())
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 5.0)
    writer.close()
    head, _, body = raw.decode().partition("\r\n\r\n")
    status_line, *header_lines = head.split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, field = line.partition(":")
        headers[name.strip().lower()] = field.strip()
    return int(status_line.split(" ")[1]), headers, body


async def scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    status, body = await http_get(port, "/metrics")
    assert status == 200
    samples = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float | None:
    return samples.get((name, frozenset(labels.items())))


class TestMetrics:
    async def test_lifecycle_shows_in_metrics(self, metered: RunningRouter) -> None:
        """Waiting contacts, offers, RPC codes, batches and service level are exported."""
        assert metered.metrics_port is not None
        async with grpc.aio.insecure_channel(f"127.0.0.1:{metered.port}") as channel:
            contacts = pb_grpc.ContactServiceStub(channel)
            agents = pb_grpc.AgentServiceStub(channel)
            for key in ("call-1", "call-2"):
                await contacts.SubmitContact(
                    pb.SubmitContactRequest(
                        idempotency_key=key, channel=pb.CHANNEL_PHONE, customer_id="+1555"
                    )
                )
            before = await scrape(metered.metrics_port)
            assert value(before, "contactrouter_contacts_waiting", channel="phone") == 2
            assert value(before, "contactrouter_agents", state="idle") == 0
            assert (value(before, "contactrouter_oldest_wait_seconds", channel="phone") or 0) > 0
            # Nobody is signed in: both calls are unserved until alice comes.
            assert value(before, "contactrouter_contacts_unserved", channel="phone") == 2

            await agents.SignIn(pb.SignInRequest(agent_id="alice"))
            stream = agents.StreamOffers(pb.StreamOffersRequest(agent_id="alice"))
            message = await asyncio.wait_for(stream.read(), 5.0)
            assert isinstance(message, pb.StreamOffersResponse)
            offer = message.offer
            await agents.AcceptOffer(
                pb.AcceptOfferRequest(agent_id="alice", offer_id=offer.offer_id)
            )
            with pytest.raises(grpc.aio.AioRpcError):
                await contacts.SubmitContact(pb.SubmitContactRequest(idempotency_key="bad"))
            after = await scrape(metered.metrics_port)
            stream.cancel()

        assert value(after, "contactrouter_contacts_waiting", channel="phone") == 1
        assert value(after, "contactrouter_agents", state="busy") == 1
        # alice could serve the call still waiting: it is no longer unserved.
        assert value(after, "contactrouter_contacts_unserved", channel="phone") == 0
        assert value(after, "contactrouter_offers_total", outcome="made") == 1
        assert value(after, "contactrouter_offers_total", outcome="accepted") == 1
        assert value(after, "contactrouter_service_level_ratio", channel="phone") == 1.0
        assert value(after, "contactrouter_service_level_ratio", channel="email") is None
        assert value(after, "contactrouter_rpcs_total", method="SubmitContact", code="OK") == 2
        assert (
            value(
                after, "contactrouter_rpcs_total", method="SubmitContact", code="INVALID_ARGUMENT"
            )
            == 1
        )
        assert (value(after, "contactrouter_db_batch_writes_count") or 0) >= 3
        callers = value(after, "contactrouter_db_commit_callers_total") or 0
        assert callers >= 3
        assert value(after, "contactrouter_db_commit_queued_seconds_total") is not None
        assert (value(after, "contactrouter_db_commit_wait_seconds_total") or 0) > 0
        assert value(after, "contactrouter_routing_latency_seconds_count") == 1

        async def stream_counted() -> bool:
            assert metered.metrics_port is not None
            samples = await scrape(metered.metrics_port)
            return value(samples, "contactrouter_offer_stream_duration_seconds_count") == 1

        await eventually(stream_counted, what="the ended stream counted")

    async def test_streams_stay_out_of_the_rpc_latency(self, metered: RunningRouter) -> None:
        """An offer stream lasts as long as the agent is present: it is counted in a
        gauge of open streams while open and in its own duration histogram when it
        ends, never in the RPC latency histogram (whose buckets stop at 2.5 s)."""
        assert metered.metrics_port is not None
        port = metered.metrics_port
        async with grpc.aio.insecure_channel(f"127.0.0.1:{metered.port}") as channel:
            agents = pb_grpc.AgentServiceStub(channel)
            streams = []
            for agent in ("alice", "bob"):
                await agents.SignIn(pb.SignInRequest(agent_id=agent))
                streams.append(agents.StreamOffers(pb.StreamOffersRequest(agent_id=agent)))

            async def both_open() -> bool:
                return value(await scrape(port), "contactrouter_offer_streams_open") == 2

            await eventually(both_open, what="two open streams")
            streams[0].cancel()

            async def one_ended() -> bool:
                samples = await scrape(port)
                return (
                    value(samples, "contactrouter_offer_streams_open") == 1
                    and value(samples, "contactrouter_offer_stream_duration_seconds_count") == 1
                )

            await eventually(one_ended, what="one stream ended")
            streams[1].cancel()
        samples = await scrape(port)
        assert (
            value(samples, "contactrouter_rpc_duration_seconds_count", method="StreamOffers")
            is None
        )
        # Buckets fit presences of minutes to hours.
        assert (
            value(samples, "contactrouter_offer_stream_duration_seconds_bucket", le="3600.0")
            is not None
        )

    async def test_standard_collectors_and_no_created_series(self, metered: RunningRouter) -> None:
        """The process and platform collectors are in the router's registry; no
        `_created` series (a timestamp per series that dashboards do not use)."""
        assert metered.metrics_port is not None
        status, body = await http_get(metered.metrics_port, "/metrics")
        assert status == 200
        names = {
            sample.name
            for family in text_string_to_metric_families(body)
            for sample in family.samples
        }
        assert {"process_cpu_seconds_total", "process_resident_memory_bytes"} <= names
        assert "python_info" in names
        assert not [name for name in names if name.endswith("_created")]

    async def test_openmetrics_is_negotiated(self, metered: RunningRouter) -> None:
        """Accept: application/openmetrics-text gets the OpenMetrics exposition; any
        other Accept (or none) the Prometheus text format."""
        assert metered.metrics_port is not None
        port = metered.metrics_port
        accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
        status, headers, body = await http_exchange(port, "/metrics", accept)
        assert status == 200
        assert headers["content-type"].startswith("application/openmetrics-text")
        assert body.endswith("# EOF\n")
        # The library's OpenMetrics parser is untyped; parsing proves the format.
        parsed = openmetrics_families(body)  # type: ignore[no-untyped-call]
        families = {f.name for f in parsed}
        assert "contactrouter_offers" in families
        for plain_accept in (None, "text/plain", "*/*"):
            status, headers, body = await http_exchange(port, "/metrics", plain_accept)
            assert status == 200
            assert headers["content-type"].startswith("text/plain; version=0.0.4")
            assert "# EOF" not in body

    async def test_other_paths_are_not_found(self, metered: RunningRouter) -> None:
        """Only /metrics is served."""
        assert metered.metrics_port is not None
        status, _ = await http_get(metered.metrics_port, "/")
        assert status == 404

    async def test_queue_watchers_and_their_pictures(self, metered: RunningRouter) -> None:
        """Two open WatchQueue streams show as two watchers; the pictures counter is the
        sequence of the newest picture they read (one picture each update for both)."""
        assert metered.metrics_port is not None
        port = metered.metrics_port
        async with grpc.aio.insecure_channel(f"127.0.0.1:{metered.port}") as channel:
            reporting = pb_grpc.ReportingServiceStub(channel)
            watches = [reporting.WatchQueue(pb.WatchQueueRequest()) for _ in range(2)]
            pictures = [await asyncio.wait_for(w.read(), 5) for w in watches]
            samples = await scrape(port)
            assert value(samples, "contactrouter_queue_watchers") == 2
            built = value(samples, "contactrouter_queue_pictures_total")
            assert built is not None
            assert built >= max(
                p.sequence for p in pictures if isinstance(p, pb.WatchQueueResponse)
            )
            for watch in watches:
                watch.cancel()

            async def none_left() -> bool:
                return value(await scrape(port), "contactrouter_queue_watchers") == 0

            await eventually(none_left, what="the watchers gone")
