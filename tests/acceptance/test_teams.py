"""Teams through a real server: given at sign-in, recorded with the session, and the
reports grouped or filtered by them. Exact figures per team are in
tests/integration/test_report_teams.py."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

import asyncpg
import grpc
import pytest
from contactrouter.client import AgentDesk, Reports
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc
from google.protobuf.timestamp_pb2 import Timestamp

from router.domain import RoutingPolicy
from tests.acceptance.conftest import (
    OfferStreams,
    details,
    handle,
    next_offer,
    row_counts,
    rpc_error,
    submit,
)


def stamp(value: datetime) -> Timestamp:
    result = Timestamp()
    result.FromDatetime(value)
    return result


def around_now() -> tuple[Timestamp, Timestamp]:
    now = datetime.now(UTC)
    return stamp(now - timedelta(days=1)), stamp(now + timedelta(days=1))


class TestSignIn:
    async def test_the_team_is_recorded_with_the_session(
        self, agents: pb_grpc.AgentServiceAsyncStub, db: asyncpg.Connection
    ) -> None:
        """SignIn's team comes back on the agent and is written with the sign-in; a new
        sign-in with another team moves the agent."""
        signed = await agents.SignIn(pb.SignInRequest(agent_id="alice", team="Returns West"))
        assert signed.agent.team == "Returns West"
        await agents.SignIn(pb.SignInRequest(agent_id="alice", team="tier-2"))
        rows = await db.fetch(
            "SELECT team FROM agent_status_log WHERE agent_id = 'alice' AND kind = 'signed_in' "
            "ORDER BY at, id"
        )
        assert [r["team"] for r in rows] == ["Returns West", "tier-2"]
        assert await db.fetchval("SELECT team FROM agents WHERE id = 'alice'") == "tier-2"

    async def test_the_python_client_signs_in_with_a_team(self, channel: grpc.aio.Channel) -> None:
        desk = AgentDesk(channel, "carol")
        agent = await desk.sign_in(team="Returns West")
        assert agent.team == "Returns West"
        status = await Reports(channel).service_level(
            datetime.now(UTC) - timedelta(days=1),
            datetime.now(UTC),
            pb.INTERVAL_LENGTH_DAY,
            time_zone="Asia/Kolkata",
        )
        assert status.time_zone == "Asia/Kolkata"

    @pytest.mark.parametrize(
        "team", [" leading", "trailing ", "x" * 65, "semi;colon", "tab\tbed", "ünïcode"]
    )
    async def test_a_malformed_team_is_refused_and_nothing_changes(
        self, agents: pb_grpc.AgentServiceAsyncStub, db: asyncpg.Connection, team: str
    ) -> None:
        before = await row_counts(db)
        error = await rpc_error(agents.SignIn(pb.SignInRequest(agent_id="alice", team=team)))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert details(error).startswith("team")
        assert await row_counts(db) == before


class TestTeamsFile:
    @pytest.fixture
    def policy(self) -> RoutingPolicy:
        """ROUTER_TEAMS_FILE puts dave in "orders"."""
        return RoutingPolicy(phone_reserve=0, teams=MappingProxyType({"dave": "orders"}))

    async def test_a_sign_in_without_a_team_takes_the_configured_one(
        self, agents: pb_grpc.AgentServiceAsyncStub, db: asyncpg.Connection
    ) -> None:
        signed = await agents.SignIn(pb.SignInRequest(agent_id="dave"))
        assert signed.agent.team == "orders"
        recorded = await db.fetchval(
            "SELECT team FROM agent_status_log WHERE agent_id = 'dave' AND kind = 'signed_in'"
        )
        assert recorded == "orders"
        signed = await agents.SignIn(pb.SignInRequest(agent_id="dave", team="returns"))
        assert signed.agent.team == "returns"


class TestReports:
    async def test_reports_group_and_filter_by_team(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        reporting: pb_grpc.ReportingServiceAsyncStub,
        offer_streams: OfferStreams,
    ) -> None:
        """alice ("returns") handles a call, bob ("orders") a chat: the contact,
        disposition and agent reports say whose team each was."""
        await agents.SignIn(pb.SignInRequest(agent_id="alice", team="returns"))
        await agents.SignIn(
            pb.SignInRequest(
                agent_id="bob",
                team="orders",
                capacities=[pb.ChannelCapacity(channel=pb.CHANNEL_PHONE, capacity=0)],
            )
        )
        alice = await offer_streams.open("alice")
        await submit(contacts, "call-1")
        await handle(agents, "alice", await next_offer(alice), "return")
        bob = await offer_streams.open("bob")
        await submit(contacts, "chat-1", pb.CHANNEL_CHAT)
        await handle(agents, "bob", await next_offer(bob))
        start, end = around_now()

        report = await reporting.GetContactReport(
            pb.GetContactReportRequest(
                start=start, end=end, interval=pb.INTERVAL_LENGTH_MONTH, by_team=True
            )
        )
        assert sorted((r.channel, r.team, r.offered) for r in report.rows) == [
            (pb.CHANNEL_PHONE, "returns", 1),
            (pb.CHANNEL_CHAT, "orders", 1),
        ]
        only = await reporting.GetContactReport(
            pb.GetContactReportRequest(
                start=start, end=end, interval=pb.INTERVAL_LENGTH_MONTH, team="orders"
            )
        )
        assert [(r.channel, r.team) for r in only.rows] == [(pb.CHANNEL_CHAT, "orders")]

        dispositions = await reporting.GetDispositionReport(
            pb.GetDispositionReportRequest(start=start, end=end, by_team=True)
        )
        assert [(d.team, d.disposition) for d in dispositions.dispositions] == [
            ("returns", "return"),
            ("orders", "order-status"),
        ]
        agent_rows = await reporting.GetAgentReport(pb.GetAgentReportRequest(start=start, end=end))
        assert {a.agent_id: a.team for a in agent_rows.agents} == {
            "alice": "returns",
            "bob": "orders",
        }
        orders = await reporting.GetAgentReport(
            pb.GetAgentReportRequest(start=start, end=end, team="orders")
        )
        assert [a.agent_id for a in orders.agents] == ["bob"]

    @pytest.mark.parametrize("team", ["nobody's team", "bad;name"])
    @pytest.mark.parametrize("report", ["contacts", "agents", "dispositions"])
    async def test_an_unknown_or_malformed_team_filter_is_invalid(
        self,
        agents: pb_grpc.AgentServiceAsyncStub,
        reporting: pb_grpc.ReportingServiceAsyncStub,
        report: str,
        team: str,
    ) -> None:
        await agents.SignIn(pb.SignInRequest(agent_id="alice", team="returns"))
        start, end = around_now()
        call: Awaitable[object]
        if report == "contacts":
            call = reporting.GetContactReport(
                pb.GetContactReportRequest(
                    start=start, end=end, interval=pb.INTERVAL_LENGTH_DAY, team=team
                )
            )
        elif report == "agents":
            call = reporting.GetAgentReport(
                pb.GetAgentReportRequest(start=start, end=end, team=team)
            )
        else:
            call = reporting.GetDispositionReport(
                pb.GetDispositionReportRequest(start=start, end=end, team=team)
            )
        error = await rpc_error(call)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert details(error).startswith("team")
