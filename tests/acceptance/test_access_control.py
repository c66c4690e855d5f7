"""TLS and bearer tokens, over a real port: each refusal, and each role's reach."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import structlog
from contactrouter.client import ClientTls, connect
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc

from router.api.access import Role, Tokens, new_token, token_entry
from router.config import ServerTls
from router.domain import RoutingPolicy
from router.server import RunningRouter, start_router
from tests.acceptance.conftest import next_offer, rpc_error

TOKENS = {
    "gateway": (Role.GATEWAY, None),
    "alice": (Role.AGENT, "alice"),
    "bob": (Role.AGENT, "bob"),
    "reporting": (Role.REPORTING, None),
    "admin": (Role.ADMIN, None),
}


@dataclass(frozen=True)
class Pki:
    """A CA, a certificate for the router at 127.0.0.1, and one for a client."""

    ca: bytes
    server_chain: bytes
    server_key: bytes
    client_chain: bytes
    client_key: bytes


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool = False,
    ip: str | None = None,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ip is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki() -> Pki:
    ca_key, server_key, client_key = _key(), _key(), _key()
    ca = _certificate("test-ca", ca_key, None, ca_key, ca=True)
    server = _certificate("router", server_key, ca.subject, ca_key, ip="127.0.0.1")
    client = _certificate("gateway-1", client_key, ca.subject, ca_key)
    pem = serialization.Encoding.PEM
    return Pki(
        ca.public_bytes(pem),
        server.public_bytes(pem),
        _pem_key(server_key),
        client.public_bytes(pem),
        _pem_key(client_key),
    )


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> tuple[Tokens, dict[str, str]]:
    """A tokens file as an operator writes it (digests only), and the raw tokens."""
    raw = {name: new_token() for name in TOKENS}
    path: Path = tmp_path_factory.mktemp("access") / "tokens.toml"
    path.write_text(
        "\n".join(token_entry(raw[n], n, role, agent) for n, (role, agent) in TOKENS.items())
    )
    assert all(token not in path.read_text() for token in raw.values())
    return Tokens.load(path), raw


@pytest.fixture
async def secured(
    database_url: str, pki: Pki, tokens: tuple[Tokens, dict[str, str]]
) -> AsyncIterator[RunningRouter]:
    running = await start_router(
        database_url,
        RoutingPolicy(phone_reserve=0),
        tokens=tokens[0],
        tls=ServerTls(pki.server_chain, pki.server_key),
    )
    try:
        yield running
    finally:
        await running.stop(grace=1.0)


class Clients:
    def __init__(self, port: int, pki: Pki, raw: dict[str, str]) -> None:
        self._port, self._pki, self._raw = port, pki, raw
        self._channels: list[grpc.aio.Channel] = []

    def channel(self, who: str | None) -> grpc.aio.Channel:
        token = None if who is None else self._raw.get(who, who)
        channel = connect(
            f"127.0.0.1:{self._port}",
            retry=False,
            token=token,
            tls=ClientTls(root_certificates=self._pki.ca),
        )
        self._channels.append(channel)
        return channel

    def contacts(self, who: str | None) -> pb_grpc.ContactServiceAsyncStub:
        return pb_grpc.ContactServiceStub(self.channel(who))

    def agents(self, who: str | None) -> pb_grpc.AgentServiceAsyncStub:
        return pb_grpc.AgentServiceStub(self.channel(who))

    def reporting(self, who: str | None) -> pb_grpc.ReportingServiceAsyncStub:
        return pb_grpc.ReportingServiceStub(self.channel(who))

    async def close(self) -> None:
        for channel in self._channels:
            await channel.close()


@pytest.fixture
async def clients(
    secured: RunningRouter, pki: Pki, tokens: tuple[Tokens, dict[str, str]]
) -> AsyncIterator[Clients]:
    made = Clients(secured.port, pki, tokens[1])
    try:
        yield made
    finally:
        await made.close()


def submission(key: str) -> pb.SubmitContactRequest:
    return pb.SubmitContactRequest(idempotency_key=key, channel=pb.CHANNEL_CHAT, customer_id="c")


def sign_in_as(agent_id: str) -> pb.SignInRequest:
    return pb.SignInRequest(agent_id=agent_id)


class TestTokens:
    async def test_no_token_is_unauthenticated(self, clients: Clients) -> None:
        error = await rpc_error(clients.contacts(None).SubmitContact(submission("k")))
        assert error.code() is grpc.StatusCode.UNAUTHENTICATED

    async def test_unknown_token_is_unauthenticated(self, clients: Clients) -> None:
        error = await rpc_error(clients.contacts(new_token()).SubmitContact(submission("k")))
        assert error.code() is grpc.StatusCode.UNAUTHENTICATED

    async def test_each_role_reaches_only_its_service(self, clients: Clients) -> None:
        await clients.contacts("gateway").SubmitContact(submission("k-1"))
        await clients.agents("alice").SignIn(sign_in_as("alice"))
        await clients.reporting("reporting").GetQueueStatus(pb.GetQueueStatusRequest())
        refused: list[Awaitable[object]] = [
            clients.contacts("reporting").SubmitContact(submission("k-2")),
            clients.contacts("alice").SubmitContact(submission("k-3")),
            clients.agents("gateway").SignIn(sign_in_as("alice")),
            clients.reporting("gateway").GetQueueStatus(pb.GetQueueStatusRequest()),
            clients.reporting("alice").GetQueueStatus(pb.GetQueueStatusRequest()),
        ]
        for call in refused:
            assert (await rpc_error(call)).code() is grpc.StatusCode.PERMISSION_DENIED

    async def test_watching_the_queue_takes_the_reporting_role(self, clients: Clients) -> None:
        """WatchQueue streams to a reporting token and refuses a gateway's or an agent's
        with PERMISSION_DENIED."""
        watch = clients.reporting("reporting").WatchQueue(pb.WatchQueueRequest())
        try:
            first = await asyncio.wait_for(watch.read(), 5)
            assert isinstance(first, pb.WatchQueueResponse)
            assert len(first.channels) == 3
        finally:
            watch.cancel()
        for who in ("gateway", "alice"):
            refused = clients.reporting(who).WatchQueue(pb.WatchQueueRequest())
            error = await rpc_error(refused.read())
            assert error.code() is grpc.StatusCode.PERMISSION_DENIED

    async def test_the_event_stream_needs_the_reporting_role(self, clients: Clients) -> None:
        """EventService is for reporting (and admin) tokens: gateways and agents are refused
        before anything is streamed."""
        for who in ("gateway", "alice"):
            stub = pb_grpc.EventServiceStub(clients.channel(who))
            call = stub.StreamEvents(pb.StreamEventsRequest())
            error = await rpc_error(call.read())
            assert error.code() is grpc.StatusCode.PERMISSION_DENIED, who
        for who in ("reporting", "admin"):
            stub = pb_grpc.EventServiceStub(clients.channel(who))
            call = stub.StreamEvents(pb.StreamEventsRequest())
            await clients.agents("alice").SignIn(sign_in_as("alice"))
            message = await asyncio.wait_for(call.read(), 10)
            assert isinstance(message, pb.StreamEventsResponse), who
            call.cancel()

    async def test_admin_reaches_everything(self, clients: Clients) -> None:
        await clients.contacts("admin").SubmitContact(submission("k-1"))
        await clients.agents("admin").SignIn(sign_in_as("carol"))
        await clients.reporting("admin").GetQueueStatus(pb.GetQueueStatusRequest())

    async def test_refused_submission_changes_nothing(self, clients: Clients) -> None:
        await rpc_error(clients.contacts("reporting").SubmitContact(submission("k-9")))
        status = await clients.reporting("admin").GetQueueStatus(pb.GetQueueStatusRequest())
        assert sum(c.waiting + c.offered for c in status.channels) == 0

    async def test_health_needs_no_token(self, clients: Clients) -> None:
        stub = health_pb2_grpc.HealthStub(clients.channel(None))
        response = await stub.Check(health_pb2.HealthCheckRequest(service=""))
        assert response.status == health_pb2.HealthCheckResponse.SERVING


class TestAgentTokens:
    async def test_agent_acts_for_itself_only(self, clients: Clients) -> None:
        alice = clients.agents("alice")
        for call in (
            alice.SignIn(sign_in_as("bob")),
            alice.SetStatus(pb.SetStatusRequest(agent_id="bob", status=pb.AGENT_STATUS_AWAY)),
            alice.SignOut(pb.SignOutRequest(agent_id="bob")),
        ):
            assert (await rpc_error(call)).code() is grpc.StatusCode.PERMISSION_DENIED
        stream = alice.StreamOffers(pb.StreamOffersRequest(agent_id="bob"))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stream.read()
        assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED

    async def test_agent_cannot_touch_another_agents_offer_or_contact(
        self, clients: Clients
    ) -> None:
        alice, bob = clients.agents("alice"), clients.agents("bob")
        await alice.SignIn(sign_in_as("alice"))
        await bob.SignIn(sign_in_as("bob"))
        await alice.SetStatus(pb.SetStatusRequest(agent_id="alice", status=pb.AGENT_STATUS_AWAY))
        stream = bob.StreamOffers(pb.StreamOffersRequest(agent_id="bob"))
        try:
            await clients.contacts("gateway").SubmitContact(submission("k-1"))
            offer = await next_offer(stream)
            steal = pb.AcceptOfferRequest(agent_id="alice", offer_id=offer.offer_id)
            error = await rpc_error(alice.AcceptOffer(steal))
            assert error.code() is grpc.StatusCode.PERMISSION_DENIED
            await bob.AcceptOffer(pb.AcceptOfferRequest(agent_id="bob", offer_id=offer.offer_id))
            contact_id = offer.contact.contact_id
            for call in (
                alice.EndContact(pb.EndContactRequest(agent_id="alice", contact_id=contact_id)),
                alice.CompleteContact(
                    pb.CompleteContactRequest(
                        agent_id="alice", contact_id=contact_id, disposition="x"
                    )
                ),
            ):
                assert (await rpc_error(call)).code() is grpc.StatusCode.PERMISSION_DENIED
            await bob.EndContact(pb.EndContactRequest(agent_id="bob", contact_id=contact_id))
        finally:
            stream.cancel()


class TestTransport:
    async def test_plaintext_client_is_refused_by_a_tls_router(
        self, secured: RunningRouter, tokens: tuple[Tokens, dict[str, str]]
    ) -> None:
        channel = connect(f"127.0.0.1:{secured.port}", retry=False, token=tokens[1]["admin"])
        try:
            stub = pb_grpc.ContactServiceStub(channel)
            error = await rpc_error(stub.SubmitContact(submission("k"), timeout=5))
        finally:
            await channel.close()
        assert error.code() is grpc.StatusCode.UNAVAILABLE

    async def test_client_certificates_when_required(
        self, database_url: str, pki: Pki, tokens: tuple[Tokens, dict[str, str]]
    ) -> None:
        running = await start_router(
            database_url,
            RoutingPolicy(),
            tokens=tokens[0],
            tls=ServerTls(pki.server_chain, pki.server_key, client_ca=pki.ca),
        )
        target = f"127.0.0.1:{running.port}"
        without = connect(target, retry=False, token=tokens[1]["admin"], tls=ClientTls(pki.ca))
        with_certificate = connect(
            target,
            retry=False,
            token=tokens[1]["admin"],
            tls=ClientTls(pki.ca, pki.client_chain, pki.client_key),
        )
        try:
            refused = await rpc_error(
                pb_grpc.ContactServiceStub(without).SubmitContact(submission("k"), timeout=5)
            )
            assert refused.code() is grpc.StatusCode.UNAVAILABLE
            stub = pb_grpc.ContactServiceStub(with_certificate)
            await stub.SubmitContact(submission("k"), timeout=5)
        finally:
            await without.close()
            await with_certificate.close()
            await running.stop(grace=1.0)

    async def test_without_tokens_only_loopback_is_served(self, database_url: str) -> None:
        with structlog.testing.capture_logs() as logs:
            running = await start_router(database_url, RoutingPolicy(), host="0.0.0.0")
            await running.stop(grace=1.0)
        events = {entry["event"]: entry for entry in logs}
        assert events["listening_on_loopback_only"]["requested_host"] == "0.0.0.0"
        assert events["router_listening"]["host"] == "127.0.0.1"
