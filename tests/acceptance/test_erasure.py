"""AdminService.EraseCustomer through a real server: a customer's id, attributes and
feedback comments go, every report stays the same, asking again changes nothing, each
request is audited without the customer id, and an open contact refuses it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import grpc
import pytest
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc
from google.protobuf.json_format import MessageToDict
from google.protobuf.timestamp_pb2 import Timestamp

from router.api.access import LOOPBACK_CALLER, Principal, Role, Tokens, digest_of, new_token
from router.domain import RoutingPolicy
from router.server import RunningRouter, start_router
from tests.acceptance.conftest import (
    OfferCall,
    OfferStreams,
    details,
    handle,
    next_offer,
    reason_of,
    rpc_error,
    sign_in,
)
from tests.acceptance.test_reporting_cli import command

CUSTOMER = "+15550100"
OTHER = "+15550199"


def stamp(value: datetime) -> Timestamp:
    result = Timestamp()
    result.FromDatetime(value)
    return result


async def served(
    contacts: pb_grpc.ContactServiceAsyncStub,
    agents: pb_grpc.AgentServiceAsyncStub,
    offers: OfferCall,
    key: str,
    customer_id: str,
    comment: str,
) -> str:
    """Submit a call with attributes, have Alice handle it, record feedback: its id."""
    submitted = await contacts.SubmitContact(
        pb.SubmitContactRequest(
            idempotency_key=key,
            channel=pb.CHANNEL_PHONE,
            customer_id=customer_id,
            attributes={"name": "Ada Lovelace", "order": "A-17"},
        )
    )
    offer = await next_offer(offers)
    assert offer.contact.contact_id == submitted.contact.contact_id
    await handle(agents, "alice", offer)
    await contacts.RecordFeedback(
        pb.RecordFeedbackRequest(
            contact_id=submitted.contact.contact_id, rating=4, comment=comment, source="survey"
        )
    )
    return submitted.contact.contact_id


def rounded(value: object) -> object:
    """Floats to 9 decimals: PostgreSQL may sum the same seconds in another order."""
    if isinstance(value, float):
        return round(value, 9)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


async def reports(reporting: pb_grpc.ReportingServiceAsyncStub) -> list[object]:
    """Every report over the test's range, with the clock ('as of') left out, as plain
    values to compare."""
    now = datetime.now(UTC)
    start, end = stamp(now - timedelta(days=2)), stamp(now + timedelta(days=2))
    level = await reporting.GetServiceLevel(
        pb.GetServiceLevelRequest(start=start, end=end, interval=pb.INTERVAL_LENGTH_DAY)
    )
    contacts = await reporting.GetContactReport(
        pb.GetContactReportRequest(start=start, end=end, interval=pb.INTERVAL_LENGTH_DAY)
    )
    contacts.ClearField("as_of")
    agents = await reporting.GetAgentReport(pb.GetAgentReportRequest(start=start, end=end))
    agents.ClearField("as_of")
    dispositions = await reporting.GetDispositionReport(
        pb.GetDispositionReportRequest(start=start, end=end)
    )
    return [rounded(MessageToDict(m)) for m in (level, contacts, agents, dispositions)]


async def erase(channel: grpc.aio.Channel, customer_id: str) -> pb.EraseCustomerResponse:
    admin = pb_grpc.AdminServiceStub(channel)
    return await admin.EraseCustomer(
        pb.EraseCustomerRequest(customer_id=customer_id, reason="ticket GDPR-42")
    )


class TestEraseCustomer:
    async def test_erases_keeps_reports_audits_and_is_idempotent(
        self,
        channel: grpc.aio.Channel,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        reporting: pb_grpc.ReportingServiceAsyncStub,
        offer_streams: OfferStreams,
        db: asyncpg.Connection,
    ) -> None:
        """Two calls of one customer (the second a returning customer's) and one of
        another: erasing the first customer empties their ids, attributes and comments,
        leaves the other's, and no report changes; a second erasure erases nothing."""
        await sign_in(agents, "alice")
        offers = await offer_streams.open("alice")
        mine = [
            await served(contacts, agents, offers, f"c-{n}", CUSTOMER, "rude") for n in range(2)
        ]
        theirs = await served(contacts, agents, offers, "c-9", OTHER, "great")
        await offer_streams.close_all()
        await agents.SignOut(pb.SignOutRequest(agent_id="alice"))
        before = await reports(reporting)
        report = before[1]
        assert isinstance(report, dict)
        returning = report["rows"][0]["returningAnswered"]
        assert returning == "1", "the customer's second call is a returning customer's"

        first = await erase(channel, CUSTOMER)
        assert (first.contacts_erased, first.comments_erased) == (2, 2)
        assert first.pseudonym.startswith("erased-")
        assert await reports(reporting) == before

        rows = await db.fetch(
            "SELECT c.id::text, c.customer_id, c.attributes, f.comment, f.rating "
            "FROM contacts c JOIN contact_feedback f ON f.contact_id = c.id"
        )
        by_id = {r["id"]: r for r in rows}
        for contact_id in mine:
            row = by_id[contact_id]
            assert row["customer_id"] == first.pseudonym
            assert row["attributes"] == "{}"
            assert (row["comment"], row["rating"]) == ("", 4)
        assert by_id[theirs]["customer_id"] == OTHER
        assert by_id[theirs]["comment"] == "great"
        assert not await db.fetchval(
            "SELECT count(*) FROM contacts WHERE customer_id = $1", CUSTOMER
        )

        again = await erase(channel, CUSTOMER)
        assert (again.contacts_erased, again.comments_erased) == (0, 0)
        assert again.erasure_id > first.erasure_id
        assert await reports(reporting) == before

        audit = await db.fetch("SELECT * FROM customer_erasures ORDER BY id")
        assert [(a["contacts_erased"], a["comments_erased"]) for a in audit] == [(2, 2), (0, 0)]
        assert {a["requested_by"] for a in audit} == {LOOPBACK_CALLER}
        assert {a["reason"] for a in audit} == {"ticket GDPR-42"}
        assert audit[0]["pseudonym"] == first.pseudonym
        assert all(CUSTOMER not in str(dict(a)) for a in audit), "the audit names no customer"

        # A survey that answers after the erasure: its rating counts, its words go.
        await contacts.RecordFeedback(
            pb.RecordFeedbackRequest(
                contact_id=mine[0], rating=2, comment="call me at +15550100", source="survey"
            )
        )
        late = await db.fetchrow(
            "SELECT rating, comment FROM contact_feedback WHERE contact_id = $1::uuid", mine[0]
        )
        assert late is not None
        assert (late["rating"], late["comment"]) == (2, "")

        # The router forgot the customer's previous agent: their second call was held
        # for Alice, a new one is not.
        held = await db.fetchval(
            "SELECT preferred_agent_id FROM contacts WHERE id = $1::uuid", mine[1]
        )
        assert held == "alice"
        new = await contacts.SubmitContact(
            pb.SubmitContactRequest(
                idempotency_key="c-after", channel=pb.CHANNEL_PHONE, customer_id=CUSTOMER
            )
        )
        assert new.contact.preferred_agent_id == ""

    async def test_open_contact_refuses_and_changes_nothing(
        self,
        channel: grpc.aio.Channel,
        contacts: pb_grpc.ContactServiceAsyncStub,
        db: asyncpg.Connection,
    ) -> None:
        """A customer still waiting: FAILED_PRECONDITION, nothing erased, nothing audited."""
        await contacts.SubmitContact(
            pb.SubmitContactRequest(
                idempotency_key="waiting-1", channel=pb.CHANNEL_EMAIL, customer_id=CUSTOMER
            )
        )
        error = await rpc_error(erase(channel, CUSTOMER))
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert reason_of(error) == "WRONG_STATE"
        assert "erase once they end" in details(error)
        assert CUSTOMER not in details(error)
        assert await db.fetchval("SELECT count(*) FROM contacts WHERE customer_id = $1", CUSTOMER)
        assert not await db.fetchval("SELECT count(*) FROM customer_erasures")

    @pytest.mark.parametrize(
        ("request_fields", "field"),
        [
            ({"customer_id": ""}, "customer_id"),
            ({"customer_id": "x", "reason": "r" * 201}, "reason"),
        ],
    )
    async def test_bad_request_names_the_field(
        self,
        channel: grpc.aio.Channel,
        db: asyncpg.Connection,
        request_fields: dict[str, str],
        field: str,
    ) -> None:
        """A missing customer id or an overlong reason: INVALID_ARGUMENT naming it."""
        admin = pb_grpc.AdminServiceStub(channel)
        error = await rpc_error(admin.EraseCustomer(pb.EraseCustomerRequest(**request_fields)))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert details(error).startswith(field)
        assert not await db.fetchval("SELECT count(*) FROM customer_erasures")


class TestWhoMayErase:
    @pytest.fixture
    def tokens(self) -> dict[str, str]:
        return {"ops-anna": new_token(), "reports-job": new_token()}

    @pytest.fixture
    async def guarded(
        self, database_url: str, policy: RoutingPolicy, tokens: dict[str, str]
    ) -> AsyncIterator[RunningRouter]:
        principals = Tokens(
            {
                digest_of(tokens["ops-anna"]): Principal("ops-anna", Role.ADMIN),
                digest_of(tokens["reports-job"]): Principal("reports-job", Role.REPORTING),
            }
        )
        running = await start_router(database_url, policy, tokens=principals)
        try:
            yield running
        finally:
            await running.stop(grace=1.0)

    async def test_admin_only_and_the_audit_names_the_token(
        self, guarded: RunningRouter, tokens: dict[str, str], db: asyncpg.Connection
    ) -> None:
        """`contact-router erase` with an admin token erases and is audited under the
        token's name; a reporting token is refused and nothing is audited."""
        address = f"127.0.0.1:{guarded.port}"
        code, out, err = await command(
            "erase",
            CUSTOMER,
            "--router",
            address,
            env={"CONTACT_ROUTER_TOKEN": tokens["reports-job"]},
        )
        assert code == 1
        assert "admin token" in err
        assert not await db.fetchval("SELECT count(*) FROM customer_erasures")

        code, out, err = await command(
            "erase",
            CUSTOMER,
            "--reason",
            "ticket 7",
            "--router",
            address,
            "--format",
            "json",
            env={"CONTACT_ROUTER_TOKEN": tokens["ops-anna"]},
        )
        assert code == 0, err
        answer = json.loads(out)
        assert answer["contacts_erased"] == 0
        assert answer["pseudonym"].startswith("erased-")
        row = await db.fetchrow("SELECT requested_by, reason FROM customer_erasures")
        assert row is not None
        assert (row["requested_by"], row["reason"]) == ("ops-anna", "ticket 7")

        code, out, err = await command(
            "erase", CUSTOMER, "--router", address, env={"CONTACT_ROUTER_TOKEN": tokens["ops-anna"]}
        )
        assert code == 0, err
        assert out.startswith("Nothing left to erase")
