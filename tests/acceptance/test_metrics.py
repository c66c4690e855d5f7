"""The Prometheus endpoint of a real router: live queue, offers, RPCs, writes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc
from prometheus_client.parser import text_string_to_metric_families

from router.domain import RoutingPolicy
from router.server import RunningRouter, start_router


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


async def http_get(port: int, path: str) -> tuple[int, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 5.0)
    writer.close()
    head, _, body = raw.decode().partition("\r\n\r\n")
    return int(head.split(" ")[1]), body


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
        assert value(after, "contactrouter_routing_latency_seconds_count") == 1

        async def stream_counted() -> bool:
            assert metered.metrics_port is not None
            samples = await scrape(metered.metrics_port)
            return value(samples, "contactrouter_rpcs_total", method="StreamOffers", code="OK") == 1

        deadline = asyncio.get_running_loop().time() + 5.0
        while not await stream_counted():
            assert asyncio.get_running_loop().time() < deadline, "StreamOffers never counted"
            await asyncio.sleep(0.02)

    async def test_other_paths_are_not_found(self, metered: RunningRouter) -> None:
        """Only /metrics is served."""
        assert metered.metrics_port is not None
        status, _ = await http_get(metered.metrics_port, "/")
        assert status == 404
