"""SupervisorService: a supervisor's actions on agents and waiting contacts (supervisor
and admin tokens). Validation and conversion; the transitions are
router/domain/supervision.py's, reached through Switchboard.change.

Each action is recorded with who made it: the name of the token that made the call
(access.caller_name). A router without ROUTER_TOKENS_FILE has no names to give: its
actions are recorded as access.LOOPBACK_CALLER."""

from __future__ import annotations

from typing import Any

import grpc
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc

from router.api.access import Tokens, caller_name
from router.api.convert import (
    agent_skills,
    agent_to_proto,
    capacities_from_proto,
    contact_to_proto,
    required_skills,
    status_from_proto,
)
from router.api.errors import rpc
from router.api.servicer import ActiveSwitchboard, RpcObserver, Servicer, ignore_rpc
from router.domain import ContactState, InvalidArgument, NotFound, WrongState, validation
from router.domain.events import Intervention

Context = grpc.aio.ServicerContext[Any, Any]


class SupervisorService(Servicer, pb_grpc.SupervisorServiceServicer):
    def __init__(
        self,
        active: ActiveSwitchboard,
        tokens: Tokens | None,
        observe_rpc: RpcObserver = ignore_rpc,
    ) -> None:
        super().__init__(active, observe_rpc)
        self._tokens = tokens

    def _by(self, reason: str, context: Context) -> Intervention:
        """Who acts (the token's name) and why (checked: the field `reason`)."""
        reason = validation.supervisor_reason(reason)
        return Intervention(caller_name(self._tokens, context.invocation_metadata() or ()), reason)

    @rpc
    async def SetAgentStatus(
        self, request: pb.SetAgentStatusRequest, context: Context
    ) -> pb.SetAgentStatusResponse:
        agent_id = validation.agent_id(request.agent_id)
        status = status_from_proto(request.status, "status")
        away_reason = validation.away_reason(request.away_reason)
        by = self._by(request.reason, context)
        agent = await self._switchboard.change(
            lambda router, now: router.supervision.set_status(
                agent_id, status, away_reason, by, now
            )
        )
        return pb.SetAgentStatusResponse(agent=agent_to_proto(agent))

    @rpc
    async def SignOutAgent(
        self, request: pb.SignOutAgentRequest, context: Context
    ) -> pb.SignOutAgentResponse:
        agent_id = validation.agent_id(request.agent_id)
        by = self._by(request.reason, context)
        agent = await self._switchboard.change(
            lambda router, now: router.supervision.sign_out(agent_id, request.force, by, now)
        )
        return pb.SignOutAgentResponse(agent=agent_to_proto(agent))

    @rpc
    async def ChangeAgentSkills(
        self, request: pb.ChangeAgentSkillsRequest, context: Context
    ) -> pb.ChangeAgentSkillsResponse:
        agent_id = validation.agent_id(request.agent_id)
        skills = agent_skills(request.skills, request.skill_levels)
        capacities = capacities_from_proto(request.capacities)
        by = self._by(request.reason, context)
        agent = await self._switchboard.change(
            lambda router, now: router.supervision.change_agent(
                agent_id, skills, capacities, by, now
            )
        )
        return pb.ChangeAgentSkillsResponse(agent=agent_to_proto(agent))

    @rpc
    async def SetContactPriority(
        self, request: pb.SetContactPriorityRequest, context: Context
    ) -> pb.SetContactPriorityResponse:
        contact_id = validation.uuid_text(request.contact_id, "contact_id")
        if request.priority_boost == 0:
            raise InvalidArgument(
                "priority_boost",
                f"is required: {validation.MIN_BOOST} to {validation.MAX_BOOST}",
            )
        boost = validation.priority_boost(request.priority_boost)
        by = self._by(request.reason, context)
        contact = await self._switchboard.change(
            lambda router, now: router.supervision.set_priority(contact_id, boost, by, now)
        )
        return pb.SetContactPriorityResponse(contact=contact_to_proto(contact))

    @rpc
    async def SetContactSkills(
        self, request: pb.SetContactSkillsRequest, context: Context
    ) -> pb.SetContactSkillsResponse:
        contact_id = validation.uuid_text(request.contact_id, "contact_id")
        skills = required_skills(request.required_skills, request.required_skill_levels)
        by = self._by(request.reason, context)
        contact = await self._switchboard.change(
            lambda router, now: router.supervision.set_skills(contact_id, skills, by, now)
        )
        return pb.SetContactSkillsResponse(contact=contact_to_proto(contact))

    @rpc
    async def AssignContact(
        self, request: pb.AssignContactRequest, context: Context
    ) -> pb.AssignContactResponse:
        contact_id = validation.uuid_text(request.contact_id, "contact_id")
        agent_id = validation.agent_id(request.agent_id)
        by = self._by(request.reason, context)
        contact = await self._switchboard.change(
            lambda router, now: router.supervision.assign(contact_id, agent_id, by, now)
        )
        return pb.AssignContactResponse(contact=contact_to_proto(contact))

    @rpc
    async def CancelContact(
        self, request: pb.CancelContactRequest, context: Context
    ) -> pb.CancelContactResponse:
        contact_id = validation.uuid_text(request.contact_id, "contact_id")
        by = self._by(request.reason, context)
        switchboard = self._switchboard
        try:
            contact = await switchboard.change(
                lambda router, now: router.supervision.cancel(contact_id, by, now)
            )
        except NotFound:
            # A retry whose first call cancelled it (its answer lost) gets the contact.
            contact = (await switchboard.status(contact_id)).contact
            if contact.state is not ContactState.CANCELLED:
                raise WrongState(
                    f"contact {contact_id} is {contact.state.value}: only a waiting contact "
                    "can be cancelled"
                ) from None
        return pb.CancelContactResponse(contact=contact_to_proto(contact))
