"""ContactService: what channel gateways call."""

from __future__ import annotations

from typing import Any

import grpc
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc

from router.api.convert import (
    channel_from_proto,
    contact_to_proto,
    from_timestamp,
    required_skills,
    skill_levels,
    wait_reason_to_proto,
)
from router.api.errors import rpc
from router.api.feedback import record_feedback
from router.api.servicer import Servicer
from router.domain import InvalidArgument, NotFound, WrongState, validation
from router.domain.callbacks import callback_offered
from router.domain.contact import skill_token
from router.switchboard import NewContact

Context = grpc.aio.ServicerContext[Any, Any]


class ContactService(Servicer, pb_grpc.ContactServiceServicer):
    @rpc
    async def SubmitContact(
        self, request: pb.SubmitContactRequest, context: Context
    ) -> pb.SubmitContactResponse:
        required = required_skills(request.required_skills, request.required_skill_levels)
        preferred = skill_levels(request.preferred_skills, "preferred_skills")
        if len(preferred) > validation.MAX_PREFERRED_SKILLS:
            raise InvalidArgument(
                "preferred_skills", f"at most {validation.MAX_PREFERRED_SKILLS} skills"
            )
        wanted = tuple(dict.fromkeys(skill_token(skill, level) for skill, level in preferred))
        new = NewContact(
            idempotency_key=validation.idempotency_key(request.idempotency_key),
            channel=channel_from_proto(request.channel),
            customer_id=validation.customer_id(request.customer_id),
            attributes=validation.attributes(request.attributes),
            required_skills=required,
            priority_boost=validation.priority_boost(request.priority_boost),
            preferred_skills=tuple(s for s in wanted if s not in required),
            preferred_agent_id=(
                validation.agent_id(request.preferred_agent_id, "preferred_agent_id")
                if request.preferred_agent_id
                else None
            ),
            queue_when_closed=request.queue_when_closed,
        )
        contact, duplicate = await self._switchboard.submit(new)
        return pb.SubmitContactResponse(contact=contact_to_proto(contact), duplicate=duplicate)

    @rpc
    async def GetContact(
        self, request: pb.GetContactRequest, context: Context
    ) -> pb.GetContactResponse:
        contact_id = validation.uuid_text(request.contact_id, "contact_id")
        status = await self._switchboard.status(contact_id)
        response = pb.GetContactResponse(
            contact=contact_to_proto(status.contact),
            queue_position=status.queue_position,
            routing_position=status.routing_position,
            wait_seconds=status.wait_seconds,
        )
        if status.estimated_wait is not None:
            response.estimated_wait_seconds = status.estimated_wait
        if status.wait_reason is not None:
            response.wait_reason = wait_reason_to_proto(status.wait_reason.reason)
            response.wait_detail = status.wait_reason.detail
        response.callback_offered = callback_offered(
            status.contact, status.estimated_wait, self._switchboard.router.policy
        )
        return response

    @rpc
    async def RequestCallback(
        self, request: pb.RequestCallbackRequest, context: Context
    ) -> pb.RequestCallbackResponse:
        contact_id = validation.uuid_text(request.contact_id, "contact_id")
        number = validation.phone_number(request.number, "number")
        window = (
            from_timestamp(request.not_before, "not_before")
            if request.HasField("not_before")
            else None,
            from_timestamp(request.not_after, "not_after")
            if request.HasField("not_after")
            else None,
        )
        try:
            contact = await self._switchboard.change(
                lambda router, now: router.request_callback(contact_id, number, window, now)
            )
        except NotFound:
            # Not in memory: finished (a WrongState, said with its state) or unknown.
            finished = (await self._switchboard.status(contact_id)).contact
            raise WrongState(
                f"contact {contact_id} is {finished.state.value}: "
                "only a waiting contact can become a callback"
            ) from None
        return pb.RequestCallbackResponse(contact=contact_to_proto(contact))

    @rpc
    async def AbandonContact(
        self, request: pb.AbandonContactRequest, context: Context
    ) -> pb.AbandonContactResponse:
        contact_id = validation.uuid_text(request.contact_id, "contact_id")
        contact = await self._switchboard.abandon(contact_id)
        return pb.AbandonContactResponse(contact=contact_to_proto(contact))

    @rpc
    async def RecordFeedback(
        self, request: pb.RecordFeedbackRequest, context: Context
    ) -> pb.RecordFeedbackResponse:
        return await record_feedback(self._switchboard, self._reporting, request)
