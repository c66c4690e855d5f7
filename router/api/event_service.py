"""EventService: every recorded event, in commit order, from a cursor (event_stream.py)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import structlog
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc

from router.api.convert import channel_to_proto, status_to_proto, timestamp
from router.api.errors import fail, status_of
from router.api.servicer import Servicer
from router.domain import AgentStatus, Channel
from router.store.event_feed import StoredEvent

Context = grpc.aio.ServicerContext[Any, Any]

log = structlog.get_logger(__name__)

_MAX_CURSOR = 64
"""Longer than any cursor the router gives out: refused without decoding."""


class EventService(Servicer, pb_grpc.EventServiceServicer):
    async def StreamEvents(
        self, request: pb.StreamEventsRequest, context: Context
    ) -> AsyncIterator[pb.StreamEventsResponse]:
        with structlog.contextvars.bound_contextvars(rpc="StreamEvents"):
            opened = time.perf_counter()
            code = grpc.StatusCode.OK
            sent = 0
            try:
                hub = self._active.get_events()
                cursor = request.cursor[: _MAX_CURSOR + 1]
                log.info("event_stream_opened", cursor=cursor[:_MAX_CURSOR])
                # The cursor and the number of streams are checked before the first event.
                async for event_cursor, event in hub.stream(cursor):
                    yield event_to_proto(event_cursor, event)
                    sent += 1
            except Exception as error:
                code = status_of(error)
                await fail(context, error)
            finally:
                log.info("event_stream_closed", events_sent=sent, code=code.name)
                self.observe_rpc("StreamEvents", code.name, time.perf_counter() - opened)


_TIMINGS = (
    "offered_at",
    "answered_at",
    "ended_at",
    "completed_at",
    "abandoned_at",
    "cancelled_at",
)


def event_to_proto(cursor: str, event: StoredEvent) -> pb.StreamEventsResponse:
    message = pb.StreamEventsResponse(cursor=cursor, at=timestamp(event.at))
    if event.contact_id is None:
        message.agent_event.CopyFrom(
            pb.AgentEvent(
                kind=event.kind,
                agent_id=event.agent_id or "",
                status=status_to_proto(AgentStatus(event.status or "offline")),
                reason=event.reason or "",
                connected=bool(event.connected),
                supervisor=event.supervisor or "",
                supervisor_reason=event.supervisor_reason or "",
            )
        )
        return message
    contact_event = pb.ContactEvent(
        kind=event.kind,
        contact_id=event.contact_id,
        agent_id=event.agent_id or "",
        offer_id=event.offer_id or "",
        reason=event.reason or "",
        supervisor=event.supervisor or "",
        supervisor_reason=event.supervisor_reason or "",
    )
    contact = event.contact
    if contact is not None:
        contact_event.channel = channel_to_proto(Channel(contact.channel))
        contact_event.customer_id = contact.customer_id
        contact_event.attributes.update(contact.attributes)
        contact_event.required_skills.extend(contact.required_skills)
        contact_event.disposition = contact.disposition or ""
        timings = contact_event.timings
        timings.queued_at.CopyFrom(timestamp(contact.queued_at))
        for name in _TIMINGS:
            value = getattr(contact, name)
            if value is not None:
                getattr(timings, name).CopyFrom(timestamp(value))
    message.contact_event.CopyFrom(contact_event)
    return message
