"""AgentService: what agent desktops call."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import structlog
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc

from router.api.convert import (
    agent_skills,
    agent_to_proto,
    capacities_from_proto,
    contact_to_proto,
    outcome_from_proto,
    status_from_proto,
    timestamp,
)
from router.api.errors import abort, fail, rpc, status_of
from router.api.servicer import Servicer
from router.domain import AgentStatus, InvalidArgument, validation
from router.offer_stream import StreamMessage

Context = grpc.aio.ServicerContext[Any, Any]

log = structlog.get_logger(__name__)


class AgentService(Servicer, pb_grpc.AgentServiceServicer):
    @rpc
    async def SignIn(self, request: pb.SignInRequest, context: Context) -> pb.SignInResponse:
        agent_id = validation.agent_id(request.agent_id)
        skills = agent_skills(request.skills, request.skill_levels)
        capacities = capacities_from_proto(request.capacities)
        status = status_from_proto(request.initial_status, "initial_status", AgentStatus.READY)
        team = validation.team(request.team, "team")
        agent = await self._switchboard.sign_in(agent_id, skills, capacities, status, team)
        return pb.SignInResponse(agent=agent_to_proto(agent))

    @rpc
    async def SignOut(self, request: pb.SignOutRequest, context: Context) -> pb.SignOutResponse:
        agent = await self._switchboard.sign_out(validation.agent_id(request.agent_id))
        return pb.SignOutResponse(agent=agent_to_proto(agent))

    @rpc
    async def SetStatus(
        self, request: pb.SetStatusRequest, context: Context
    ) -> pb.SetStatusResponse:
        agent_id = validation.agent_id(request.agent_id)
        status = status_from_proto(request.status, "status")
        reason = validation.away_reason(request.away_reason)
        agent = await self._switchboard.set_status(agent_id, status, reason)
        return pb.SetStatusResponse(agent=agent_to_proto(agent))

    async def StreamOffers(
        self, request: pb.StreamOffersRequest, context: Context
    ) -> AsyncIterator[pb.StreamOffersResponse]:
        with structlog.contextvars.bound_contextvars(
            rpc="StreamOffers", agent_id=request.agent_id[:128]
        ):
            opened = time.perf_counter()
            try:
                agent_id = validation.agent_id(request.agent_id)
                stream = await self._switchboard.open_stream(agent_id)
            except Exception as error:
                elapsed = time.perf_counter() - opened
                self.observe_rpc("StreamOffers", status_of(error).name, elapsed)
                await fail(context, error)
            log.info("offer_stream_opened")
            try:
                while (message := await stream.next()) is not None:
                    yield _stream_message(message)
                if stream.ending is not None:
                    # Stopping (UNAVAILABLE: reopen it) or replaced (ABORTED: do not).
                    log.info("offer_stream_ended", reason=stream.ending.reason)
                    await abort(context, stream.ending)
            finally:
                self._switchboard.close_stream(stream)
                # Its duration is how long the agent was present: not an RPC latency.
                self.observe_stream(time.perf_counter() - opened)
                log.info("offer_stream_closed")

    @rpc
    async def AcceptOffer(
        self, request: pb.AcceptOfferRequest, context: Context
    ) -> pb.AcceptOfferResponse:
        contact = await self._switchboard.accept(
            validation.agent_id(request.agent_id),
            validation.uuid_text(request.offer_id, "offer_id"),
        )
        return pb.AcceptOfferResponse(contact=contact_to_proto(contact))

    @rpc
    async def ReportDialOutcome(
        self, request: pb.ReportDialOutcomeRequest, context: Context
    ) -> pb.ReportDialOutcomeResponse:
        agent_id = validation.agent_id(request.agent_id)
        contact_id = validation.uuid_text(request.contact_id, "contact_id")
        outcome = outcome_from_proto(request.outcome)
        contact = await self._switchboard.change(
            lambda router, now: router.report_dial(agent_id, contact_id, outcome, now)
        )
        return pb.ReportDialOutcomeResponse(contact=contact_to_proto(contact))

    @rpc
    async def DeclineOffer(
        self, request: pb.DeclineOfferRequest, context: Context
    ) -> pb.DeclineOfferResponse:
        contact = await self._switchboard.decline(
            validation.agent_id(request.agent_id),
            validation.uuid_text(request.offer_id, "offer_id"),
        )
        return pb.DeclineOfferResponse(contact=contact_to_proto(contact))

    @rpc
    async def EndContact(
        self, request: pb.EndContactRequest, context: Context
    ) -> pb.EndContactResponse:
        contact = await self._switchboard.end(
            validation.agent_id(request.agent_id),
            validation.uuid_text(request.contact_id, "contact_id"),
        )
        return pb.EndContactResponse(contact=contact_to_proto(contact))

    @rpc
    async def CompleteContact(
        self, request: pb.CompleteContactRequest, context: Context
    ) -> pb.CompleteContactResponse:
        contact = await self._switchboard.complete(
            validation.agent_id(request.agent_id),
            validation.uuid_text(request.contact_id, "contact_id"),
            validation.disposition(request.disposition),
        )
        return pb.CompleteContactResponse(contact=contact_to_proto(contact))

    @rpc
    async def TransferContact(
        self, request: pb.TransferContactRequest, context: Context
    ) -> pb.TransferContactResponse:
        agent_id = validation.agent_id(request.agent_id)
        contact_id = validation.uuid_text(request.contact_id, "contact_id")
        to_skills = None
        to_agent = None
        if request.to_skills:
            to_skills = validation.skills(
                request.to_skills, "to_skills", validation.MAX_REQUIRED_SKILLS
            )
        if request.to_agent_id:
            to_agent = validation.agent_id(request.to_agent_id, "to_agent_id")
            if to_agent == agent_id:
                raise InvalidArgument("to_agent_id", "cannot transfer to oneself")
        if (to_skills is None) == (to_agent is None):
            raise InvalidArgument("to_skills", "give either to_skills or to_agent_id")
        contact = await self._switchboard.transfer(
            agent_id, contact_id, to_skills=to_skills, to_agent=to_agent
        )
        return pb.TransferContactResponse(contact=contact_to_proto(contact))


def _stream_message(message: StreamMessage) -> pb.StreamOffersResponse:
    if isinstance(message, tuple):
        offer, contact = message
        return pb.StreamOffersResponse(
            offer=pb.Offer(
                offer_id=offer.id,
                contact=contact_to_proto(contact),
                expires_at=timestamp(offer.expires_at),
                dial_number="" if contact.callback is None else contact.callback.number,
            )
        )
    return pb.StreamOffersResponse(
        offer_withdrawn=pb.OfferWithdrawn(
            offer_id=message.offer.id,
            contact_id=message.offer.contact_id,
            reason=message.reason,
        )
    )
