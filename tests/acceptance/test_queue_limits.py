"""The queue's limits hold under concurrent submissions, in contacts and in bytes."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import replace
from types import MappingProxyType

import asyncpg
import grpc
import pytest
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc

from router.domain import Channel, RoutingPolicy
from tests.acceptance.conftest import reason_of


def _chat_limit(limit: int) -> RoutingPolicy:
    policy = RoutingPolicy(phone_reserve=0)
    chat = replace(policy.of(Channel.CHAT), max_queue=limit)
    return replace(policy, channels=MappingProxyType({**policy.channels, Channel.CHAT: chat}))


async def _submit_all(
    contacts: pb_grpc.ContactServiceAsyncStub, requests: list[pb.SubmitContactRequest]
) -> list[pb.SubmitContactResponse | grpc.aio.AioRpcError]:
    async def one(
        request: pb.SubmitContactRequest,
    ) -> pb.SubmitContactResponse | grpc.aio.AioRpcError:
        try:
            response: pb.SubmitContactResponse = await contacts.SubmitContact(request)
        except grpc.aio.AioRpcError as error:
            return error
        return response

    return list(await asyncio.gather(*(one(r) for r in requests)))


def _chat(key: str, attributes: dict[str, str] | None = None) -> pb.SubmitContactRequest:
    return pb.SubmitContactRequest(
        idempotency_key=key, channel=pb.CHANNEL_CHAT, customer_id=f"c-{key}", attributes=attributes
    )


class TestCountLimit:
    @pytest.fixture
    def policy(self) -> RoutingPolicy:
        return _chat_limit(100)

    async def test_concurrent_submissions_do_not_pass_the_limit(
        self, contacts: pb_grpc.ContactServiceAsyncStub, db: asyncpg.Connection
    ) -> None:
        """1,000 chats at once against a limit of 100, nobody to answer them: exactly 100
        are accepted (submissions in flight count), the rest are RESOURCE_EXHAUSTED
        naming the limit, and PostgreSQL holds the 100."""
        answers = await _submit_all(contacts, [_chat(f"k{n}") for n in range(1000)])
        accepted = [a for a in answers if isinstance(a, pb.SubmitContactResponse)]
        refused = [a for a in answers if isinstance(a, grpc.aio.AioRpcError)]
        assert len(accepted) == 100
        assert Counter(e.code() for e in refused) == {grpc.StatusCode.RESOURCE_EXHAUSTED: 900}
        assert {reason_of(e) for e in refused} == {"QUEUE_FULL"}
        assert all("(100 waiting, limit 100)" in (e.details() or "") for e in refused)
        assert await db.fetchval("SELECT count(*) FROM contacts") == 100


class TestBytes:
    @pytest.fixture
    def policy(self) -> RoutingPolicy:
        return replace(
            RoutingPolicy(phone_reserve=0), max_contact_bytes=4096, max_queue_bytes=40_000
        )

    async def test_a_contact_over_its_byte_limit_is_refused_and_not_recorded(
        self, contacts: pb_grpc.ContactServiceAsyncStub, db: asyncpg.Connection
    ) -> None:
        """Four attributes of 1,024 emoji (4 bytes each in UTF-8) are 16 KiB: refused
        with CONTACT_TOO_LARGE, nothing recorded."""
        emoji = "\N{GRINNING FACE}" * 1024
        request = _chat("big", attributes={f"a{n}": emoji for n in range(4)})
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await contacts.SubmitContact(request)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert reason_of(caught.value) == "CONTACT_TOO_LARGE"
        assert "limit of 4096" in (caught.value.details() or "")
        assert await db.fetchval("SELECT count(*) FROM contacts") == 0

    async def test_concurrent_submissions_do_not_pass_the_queue_bytes(
        self, contacts: pb_grpc.ContactServiceAsyncStub, db: asyncpg.Connection
    ) -> None:
        """200 contacts of about 3 KB at once against 40,000 bytes in all: the accepted
        ones hold at most 40,000 bytes, the others are QUEUE_MEMORY_FULL."""
        notes = dict.fromkeys(("a", "b", "c"), "x" * 1000)
        answers = await _submit_all(contacts, [_chat(f"k{n}", notes) for n in range(200)])
        accepted = [a for a in answers if isinstance(a, pb.SubmitContactResponse)]
        refused = [a for a in answers if isinstance(a, grpc.aio.AioRpcError)]
        assert accepted
        assert {reason_of(e) for e in refused} == {"QUEUE_MEMORY_FULL"}
        held = await db.fetchval(
            "SELECT sum(octet_length(id::text) + octet_length(idempotency_key)"
            " + octet_length(customer_id)"
            " + (SELECT sum(octet_length(key) + octet_length(value))"
            "    FROM jsonb_each_text(attributes))) FROM contacts"
        )
        assert held <= 40_000
        assert held + 3100 > 40_000, "the queue took what fits"
