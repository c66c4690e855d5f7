"""A small typed Python client for contact-router.

    channel = connect("127.0.0.1:50051")
    gateway, desk = Gateway(channel), AgentDesk(channel, "alice")
    contact = await gateway.submit("call-1", pb.CHANNEL_PHONE, "+15550100")
    await desk.sign_in()
    async with contextlib.aclosing(desk.offers()) as offers:
        async for event in offers:
            if isinstance(event, pb.Offer):
                await desk.accept(event.offer_id)
                ...

Retry policy (`RETRY_POLICY`, installed by `connect` as the channel's service config):

* Only UNAVAILABLE (and CANCELLED, which a call in flight gets when the router stops
  under it) is retried, by gRPC itself: up to 5 attempts in all, backing off
  0.1 s, 0.2 s, 0.4 s... (at most 2 s, with gRPC's jitter). The router answers
  UNAVAILABLE when PostgreSQL could not take a write, and a refused call changes
  nothing; the same code comes from a connection that failed. Every unary call has a
  default deadline of 10 s covering all its attempts (a `timeout=` given per call still
  wins when shorter); DEADLINE_EXCEEDED is not retried.
* Repeating a unary call is safe: SubmitContact is idempotent by its idempotency key
  (the same key returns the existing contact); AcceptOffer, EndContact and
  CompleteContact return the same contact when repeated; AbandonContact, SignIn and
  SetStatus set a state that repeating does not change; reads change nothing. In the
  rare case that a first attempt committed but its answer was lost, a repeated
  DeclineOffer or SignOut can answer FAILED_PRECONDITION or NOT_FOUND. A supervisor's
  actions (`Supervisor`) set a state that repeating does not change (CancelContact
  returns the cancelled contact), but each attempt that lands is recorded as an action
  of its own; a repeated SignOutAgent can answer NOT_FOUND.
* StreamOffers is not retried by gRPC and has no deadline: the open stream is the
  agent's presence. `AgentDesk.offers()` reopens it by itself when the router ends it
  with UNAVAILABLE (it is stopping, or is a standby) or the connection drops, backing
  off, and signs in again first when the reopened stream answers NOT_FOUND (the router
  restarted without the agent). It stops when the agent signs out (the stream ends OK)
  and raises ABORTED when a newer stream of the same agent replaced it.
* WatchQueue, likewise a stream without deadline or retries: `Reports.watch_queue()`
  reopens it when the router ends it with UNAVAILABLE or the connection drops.
* StreamEvents, likewise: `Events.events(cursor)` reopens it after the last event it
  yielded when the router ends it with UNAVAILABLE (stopping, a standby, PostgreSQL
  down) or the connection drops, so that nothing is missed or repeated.
* INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION and RESOURCE_EXHAUSTED are never
  retried: the same request would get the same answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, TypeVar

import grpc

from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc

_SERVICES = tuple(service.full_name for service in pb.DESCRIPTOR.services_by_name.values())
TOKEN_VARIABLE: Final = "CONTACT_ROUTER_TOKEN"
"""The environment variable `connect` reads the token from when none is given."""
DEFAULT_TIMEOUT: Final = "10s"

RECONNECT_BACKOFF: Final = (0.1, 5.0)
"""Seconds before an offer stream (or a queue watch) is reopened: the first wait, and
the most it grows to."""

# UNAVAILABLE: how the router ends a stream while it stops, as a standby, or with
# PostgreSQL down; CANCELLED: what a call gets when its server goes away under it;
# NOT_FOUND: a restarted router does not know the agent yet (the desk signs in again).
_REOPEN = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED, grpc.StatusCode.NOT_FOUND}
)

_REWATCH = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED})

Message = TypeVar("Message")
RetryObserver = Callable[[grpc.aio.AioRpcError, float], None]
"""Told (the error, the seconds it waits) before a stream is opened again."""


async def _reopened(
    open_stream: Callable[[], grpc.aio.UnaryStreamCall[Any, Message]],
    *,
    reconnect: bool,
    codes: frozenset[grpc.StatusCode],
    on_retry: RetryObserver | None = None,
    before_reopen: Callable[[grpc.aio.AioRpcError], Awaitable[None]] | None = None,
) -> AsyncGenerator[Message, None]:
    """The messages of the stream `open_stream()` opens; it returns when a stream ends
    OK. With `reconnect`, a stream that ends with one of `codes` is opened again after
    RECONNECT_BACKOFF (doubling, with jitter; back to the first wait once a stream has
    delivered a message or stayed open longer than the most): `before_reopen(error)`
    first (it may raise), then `on_retry(error, seconds)`. Any other error is raised.
    Closing the iterator cancels the stream."""
    first, most = RECONNECT_BACKOFF
    delay = first
    loop = asyncio.get_running_loop()
    while True:
        call = open_stream()
        opened = loop.time()
        try:
            async for message in call:
                delay = first
                yield message
            return
        except grpc.aio.AioRpcError as error:
            if loop.time() - opened > most:
                delay = first
            if not reconnect or error.code() not in codes:
                raise
            if before_reopen is not None:
                await before_reopen(error)
            wait = delay * random.uniform(0.5, 1.0)
            if on_retry is not None:
                on_retry(error, wait)
        finally:
            call.cancel()
        await asyncio.sleep(wait)
        delay = min(delay * 2, most)


RETRY_POLICY: Final[dict[str, Any]] = {
    "methodConfig": [
        {
            "name": [{"service": service} for service in _SERVICES],
            "timeout": DEFAULT_TIMEOUT,
            "retryPolicy": {
                "maxAttempts": 5,
                "initialBackoff": "0.1s",
                "maxBackoff": "2s",
                "backoffMultiplier": 2,
                # CANCELLED: what a call in flight gets when the router stops under it.
                "retryableStatusCodes": ["UNAVAILABLE", "CANCELLED"],
            },
        },
        {
            # A method's own entry wins over its service's: no retries, no deadline.
            "name": [
                {
                    "service": pb.DESCRIPTOR.services_by_name["AgentService"].full_name,
                    "method": "StreamOffers",
                },
                {
                    "service": pb.DESCRIPTOR.services_by_name["ReportingService"].full_name,
                    "method": "WatchQueue",
                },
                {
                    "service": pb.DESCRIPTOR.services_by_name["EventService"].full_name,
                    "method": "StreamEvents",
                },
            ],
        },
    ]
}

# The server pings every 10 s and drops a peer silent for 5 s more; the client does the
# same so that a dead router is noticed and an idle connection is kept open.
KEEPALIVE_OPTIONS: Final[tuple[tuple[str, int], ...]] = (
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
)


def service_config(*, retry: bool = True) -> dict[str, Any]:
    """RETRY_POLICY, or (retry=False) the same default deadlines without retries."""
    if retry:
        return RETRY_POLICY
    configs = [
        {k: v for k, v in config.items() if k != "retryPolicy"}
        for config in RETRY_POLICY["methodConfig"]
    ]
    return {"methodConfig": configs}


@dataclass(frozen=True, slots=True)
class ClientTls:
    """PEM contents: the CA that signed the router's certificate (None: the system's
    roots), and this client's certificate and key when the router requires them."""

    root_certificates: bytes | None = None
    certificate_chain: bytes | None = None
    private_key: bytes | None = None


def connect(
    target: str,
    *,
    retry: bool = True,
    token: str | None = None,
    tls: ClientTls | None = None,
) -> grpc.aio.Channel:
    """An aio channel to the router at `target` with the retry policy above
    (retry=False: deadlines only) and keepalive matching the server.

    `token` (by default the TOKEN_VARIABLE environment variable, if set) is sent
    as "authorization: Bearer <token>" on every call; `tls` makes the channel secure
    (without it the channel is plaintext, for loopback and trials).

    `target` is "host:port", or, for an active router and its standby without a load
    balancer in front, several IP addresses "10.0.0.1:50051,10.0.0.2:50051": calls then
    go round robin, and the standby's UNAVAILABLE is retried on the active router.
    """
    if token is None:
        token = os.environ.get(TOKEN_VARIABLE) or None
    config = service_config(retry=retry)
    if "," in target:
        target = f"ipv4:{target}" if "[" not in target else f"ipv6:{target}"
        config = {**config, "loadBalancingConfig": [{"round_robin": {}}]}
    options: list[tuple[str, Any]] = [
        ("grpc.service_config", json.dumps(config)),
        ("grpc.enable_retries", 1 if retry else 0),
        *KEEPALIVE_OPTIONS,
    ]
    if tls is None:
        interceptors = [] if token is None else [BearerToken(token)]
        return grpc.aio.insecure_channel(target, options=options, interceptors=interceptors)
    credentials = grpc.ssl_channel_credentials(
        tls.root_certificates, tls.private_key, tls.certificate_chain
    )
    if token is not None:
        credentials = grpc.composite_channel_credentials(
            credentials, grpc.access_token_call_credentials(token)
        )
    return grpc.aio.secure_channel(target, credentials, options=options)


class BearerToken(
    grpc.aio.UnaryUnaryClientInterceptor,
    grpc.aio.UnaryStreamClientInterceptor,
):
    """Adds the token to every call of a plaintext channel (gRPC's own call credentials
    need TLS)."""

    def __init__(self, token: str) -> None:
        self._header = ("authorization", f"Bearer {token}")

    def _with_token(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = grpc.aio.Metadata(*(details.metadata or ()), self._header)
        return grpc.aio.ClientCallDetails(
            details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
        )

    async def intercept_unary_unary(
        self, continuation: Any, client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        return await continuation(self._with_token(client_call_details), request)

    async def intercept_unary_stream(
        self, continuation: Any, client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        return await continuation(self._with_token(client_call_details), request)


class Gateway:
    """ContactService for a channel gateway: submit, follow and abandon contacts."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub: pb_grpc.ContactServiceAsyncStub = pb_grpc.ContactServiceStub(channel)

    async def submit(
        self,
        idempotency_key: str,
        channel: pb.Channel.ValueType,
        customer_id: str,
        attributes: Mapping[str, str] | None = None,
        required_skills: Iterable[str] = (),
        priority_boost: float = 0.0,
        preferred_agent_id: str = "",
        queue_when_closed: bool = False,
    ) -> pb.Contact:
        """Queue a contact; with a key already used, the existing contact as it is now.
        `preferred_agent_id` names the agent the customer should reach if free soon. A
        call outside the phone hours fails FAILED_PRECONDITION (CHANNEL_CLOSED, the
        opening in its message) unless `queue_when_closed`."""
        request = pb.SubmitContactRequest(
            idempotency_key=idempotency_key,
            channel=channel,
            customer_id=customer_id,
            attributes=dict(attributes or {}),
            required_skills=list(required_skills),
            priority_boost=priority_boost,
            preferred_agent_id=preferred_agent_id,
            queue_when_closed=queue_when_closed,
        )
        return (await self._stub.SubmitContact(request)).contact

    async def get(self, contact_id: str) -> pb.GetContactResponse:
        """The contact with its place in line, estimated wait and why it waits."""
        return await self._stub.GetContact(pb.GetContactRequest(contact_id=contact_id))

    async def abandon(self, contact_id: str) -> pb.Contact:
        """The customer left before an agent answered."""
        request = pb.AbandonContactRequest(contact_id=contact_id)
        return (await self._stub.AbandonContact(request)).contact

    async def request_callback(
        self,
        contact_id: str,
        number: str,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
    ) -> pb.Contact:
        """The customer keeps their place and is called back at `number` (E.164),
        within the window if one is given (aware datetimes): the contact, now a
        callback."""
        request = pb.RequestCallbackRequest(contact_id=contact_id, number=number)
        if not_before is not None:
            request.not_before.FromDatetime(not_before)
        if not_after is not None:
            request.not_after.FromDatetime(not_after)
        return (await self._stub.RequestCallback(request)).contact


class AgentDesk:
    """AgentService for one agent's desktop."""

    def __init__(self, channel: grpc.aio.Channel, agent_id: str) -> None:
        self.agent_id = agent_id
        self._stub: pb_grpc.AgentServiceAsyncStub = pb_grpc.AgentServiceStub(channel)
        self._signed_in_with: pb.SignInRequest | None = None

    async def sign_in(
        self,
        skills: Iterable[str] = (),
        capacities: Mapping[pb.Channel.ValueType, int] | None = None,
        initial_status: pb.AgentStatus.ValueType | None = None,
        team: str = "",
    ) -> pb.Agent:
        """Sign in (or update skills, capacities and team); unset capacities take the
        defaults. `team` is recorded with the sign-in for reports by team ("" for none)."""
        request = pb.SignInRequest(
            agent_id=self.agent_id,
            team=team,
            skills=list(skills),
            capacities=[
                pb.ChannelCapacity(channel=channel, capacity=capacity)
                for channel, capacity in (capacities or {}).items()
            ],
            initial_status=initial_status or pb.AGENT_STATUS_UNSPECIFIED,
        )
        agent = (await self._stub.SignIn(request)).agent
        self._signed_in_with = request
        return agent

    async def sign_out(self) -> pb.Agent:
        """Sign out; unanswered offers go back to the queue."""
        agent = (await self._stub.SignOut(pb.SignOutRequest(agent_id=self.agent_id))).agent
        self._signed_in_with = None
        return agent

    async def set_status(self, status: pb.AgentStatus.ValueType, reason: str = "") -> pb.Agent:
        """READY, or AWAY with a reason."""
        request = pb.SetStatusRequest(agent_id=self.agent_id, status=status, away_reason=reason)
        return (await self._stub.SetStatus(request)).agent

    async def offers(
        self, *, reconnect: bool = True
    ) -> AsyncGenerator[pb.Offer | pb.OfferWithdrawn, None]:
        """Open the offer stream (the agent's presence) and yield its events; closing the
        iterator (use contextlib.aclosing) cancels the stream.

        With `reconnect` (the default) the stream is opened again when the router ends
        it with UNAVAILABLE (stopping, a standby, PostgreSQL down) or the connection
        drops, after RECONNECT_BACKOFF (doubling, with jitter; back to the first wait
        once a stream has delivered an event or stayed open longer than the most);
        when the reopened stream answers NOT_FOUND (the router restarted
        without this agent), the desk signs in again as it last did, then opens it. It
        returns when the agent signed out (the stream ends OK) and raises the
        AioRpcError otherwise: ABORTED when a newer stream of this agent replaced it."""

        async def sign_in_again(error: grpc.aio.AioRpcError) -> None:
            if error.code() is grpc.StatusCode.NOT_FOUND:
                if self._signed_in_with is None:
                    raise error
                with contextlib.suppress(grpc.aio.AioRpcError):
                    await self._stub.SignIn(self._signed_in_with)

        def open_stream() -> grpc.aio.UnaryStreamCall[Any, pb.StreamOffersResponse]:
            return self._stub.StreamOffers(pb.StreamOffersRequest(agent_id=self.agent_id))

        messages = _reopened(
            open_stream, reconnect=reconnect, codes=_REOPEN, before_reopen=sign_in_again
        )
        async with contextlib.aclosing(messages):
            async for message in messages:
                event = message.WhichOneof("event")
                if event == "offer":
                    yield message.offer
                elif event == "offer_withdrawn":
                    yield message.offer_withdrawn

    async def accept(self, offer_id: str) -> pb.Contact:
        """Accept an offer: the contact, now CONNECTED."""
        request = pb.AcceptOfferRequest(agent_id=self.agent_id, offer_id=offer_id)
        return (await self._stub.AcceptOffer(request)).contact

    async def decline(self, offer_id: str) -> pb.Contact:
        """Decline an offer: the contact goes back to the queue."""
        request = pb.DeclineOfferRequest(agent_id=self.agent_id, offer_id=offer_id)
        return (await self._stub.DeclineOffer(request)).contact

    async def end(self, contact_id: str) -> pb.Contact:
        """The conversation ended: the contact, now WRAP_UP."""
        request = pb.EndContactRequest(agent_id=self.agent_id, contact_id=contact_id)
        return (await self._stub.EndContact(request)).contact

    async def complete(self, contact_id: str, disposition: str) -> pb.Contact:
        """After-contact work done: the contact, now COMPLETED."""
        request = pb.CompleteContactRequest(
            agent_id=self.agent_id, contact_id=contact_id, disposition=disposition
        )
        return (await self._stub.CompleteContact(request)).contact

    async def report_dial(self, contact_id: str, outcome: pb.DialOutcome.ValueType) -> pb.Contact:
        """What the dial of an accepted callback gave (Offer.dial_number): the contact,
        reached (CONNECTED), QUEUED for a retry, or UNREACHED."""
        request = pb.ReportDialOutcomeRequest(
            agent_id=self.agent_id, contact_id=contact_id, outcome=outcome
        )
        return (await self._stub.ReportDialOutcome(request)).contact


class Reports:
    """ReportingService: service level over a time range and the live queue."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub: pb_grpc.ReportingServiceAsyncStub = pb_grpc.ReportingServiceStub(channel)

    async def service_level(
        self,
        start: datetime,
        end: datetime,
        interval: pb.IntervalLength.ValueType,
        channels: Iterable[pb.Channel.ValueType] = (),
        time_zone: str = "",
    ) -> pb.GetServiceLevelResponse:
        """Service level per channel and interval for contacts queued in [start, end)
        (timezone-aware datetimes); days, months and years begin at local midnight in
        `time_zone` (an IANA name; "" for the center's, ROUTER_TIME_ZONE)."""
        request = pb.GetServiceLevelRequest(
            interval=interval, channels=list(channels), time_zone=time_zone
        )
        request.start.FromDatetime(start)
        request.end.FromDatetime(end)
        return await self._stub.GetServiceLevel(request)

    async def queue_status(self) -> pb.GetQueueStatusResponse:
        """Waiting contacts per channel and agents by status, now."""
        return await self._stub.GetQueueStatus(pb.GetQueueStatusRequest())

    async def watch_queue(
        self,
        *,
        reconnect: bool = True,
        on_retry: RetryObserver | None = None,
    ) -> AsyncGenerator[pb.WatchQueueResponse, None]:
        """The live queue as it changes (WatchQueue): each message is the whole picture.
        Closing the iterator (contextlib.aclosing) cancels the stream.

        With `reconnect` (the default) the stream is opened again when the router ends
        it with UNAVAILABLE (stopping, a standby) or the connection drops, after
        RECONNECT_BACKOFF as `AgentDesk.offers()` waits; `on_retry(error, seconds)` is
        told before each wait (a wallboard shows that it is reconnecting). Any other
        error is raised (PERMISSION_DENIED without the reporting role,
        RESOURCE_EXHAUSTED when the router serves its maximum of watchers)."""

        def open_stream() -> grpc.aio.UnaryStreamCall[Any, pb.WatchQueueResponse]:
            return self._stub.WatchQueue(pb.WatchQueueRequest())

        messages = _reopened(open_stream, reconnect=reconnect, codes=_REWATCH, on_retry=on_retry)
        async with contextlib.aclosing(messages):
            async for message in messages:
                yield message


class Supervisor:
    """SupervisorService (a supervisor or admin token): act on agents and waiting
    contacts. Each action needs a `reason`, recorded with it and the token's name."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub: pb_grpc.SupervisorServiceAsyncStub = pb_grpc.SupervisorServiceStub(channel)

    async def set_agent_status(
        self,
        agent_id: str,
        status: pb.AgentStatus.ValueType,
        reason: str,
        away_reason: str = "",
    ) -> pb.Agent:
        """Set a signed-in agent READY, or AWAY (`away_reason`, "supervisor" if empty)."""
        request = pb.SetAgentStatusRequest(
            agent_id=agent_id, status=status, away_reason=away_reason, reason=reason
        )
        return (await self._stub.SetAgentStatus(request)).agent

    async def sign_out_agent(self, agent_id: str, reason: str, force: bool = False) -> pb.Agent:
        """Sign an agent out; with `force`, even while it holds answered contacts (its
        conversations go back to the queue, its wrap-ups are completed)."""
        request = pb.SignOutAgentRequest(agent_id=agent_id, force=force, reason=reason)
        return (await self._stub.SignOutAgent(request)).agent

    async def change_agent_skills(
        self,
        agent_id: str,
        reason: str,
        skills: Iterable[str] = (),
        capacities: Mapping[pb.Channel.ValueType, int] | None = None,
    ) -> pb.Agent:
        """Replace a signed-in agent's skills and capacities (unset capacities take the
        defaults): offers it can no longer take go back, work it now can is offered."""
        request = pb.ChangeAgentSkillsRequest(
            agent_id=agent_id,
            skills=list(skills),
            capacities=[
                pb.ChannelCapacity(channel=channel, capacity=capacity)
                for channel, capacity in (capacities or {}).items()
            ],
            reason=reason,
        )
        return (await self._stub.ChangeAgentSkills(request)).agent

    async def set_priority(self, contact_id: str, priority_boost: float, reason: str) -> pb.Contact:
        """A waiting contact's priority boost (1.0 to 10.0); it keeps its queued_at."""
        request = pb.SetContactPriorityRequest(
            contact_id=contact_id, priority_boost=priority_boost, reason=reason
        )
        return (await self._stub.SetContactPriority(request)).contact

    async def set_skills(
        self, contact_id: str, required_skills: Iterable[str], reason: str
    ) -> pb.Contact:
        """A waiting contact's required skills (empty: any agent)."""
        request = pb.SetContactSkillsRequest(
            contact_id=contact_id, required_skills=list(required_skills), reason=reason
        )
        return (await self._stub.SetContactSkills(request)).contact

    async def assign(self, contact_id: str, agent_id: str, reason: str) -> pb.Contact:
        """Hold a waiting contact for a named, signed-in agent, as a transfer by name."""
        request = pb.AssignContactRequest(contact_id=contact_id, agent_id=agent_id, reason=reason)
        return (await self._stub.AssignContact(request)).contact

    async def cancel(self, contact_id: str, reason: str) -> pb.Contact:
        """End a waiting contact that is not a customer's (spam): CANCELLED, counted
        apart from abandons."""
        request = pb.CancelContactRequest(contact_id=contact_id, reason=reason)
        return (await self._stub.CancelContact(request)).contact


class Events:
    """EventService: every recorded contact and agent event, in commit order, from a
    cursor (needs a reporting token)."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub: pb_grpc.EventServiceAsyncStub = pb_grpc.EventServiceStub(channel)

    async def events(
        self,
        cursor: str = "",
        *,
        reconnect: bool = True,
        on_retry: RetryObserver | None = None,
    ) -> AsyncGenerator[pb.StreamEventsResponse, None]:
        """The events after `cursor` (empty: from the beginning), then each new one as
        it commits; each carries its `cursor`. Store an event's cursor once it is
        processed, and start from it next time: nothing is missed or repeated. Closing
        the iterator (contextlib.aclosing) cancels the stream.

        With `reconnect` (the default) the stream is opened again, after the last
        event yielded, when the router ends it with UNAVAILABLE (stopping, a standby
        that took over, PostgreSQL down) or the connection drops, after
        RECONNECT_BACKOFF as `AgentDesk.offers()` waits; `on_retry(error, seconds)` is
        told before each wait. Any other error is raised (INVALID_ARGUMENT for a cursor
        of another database, PERMISSION_DENIED without the reporting role,
        RESOURCE_EXHAUSTED when the router serves its maximum of event streams)."""

        def open_stream() -> grpc.aio.UnaryStreamCall[Any, pb.StreamEventsResponse]:
            # Reopened after the last event yielded (`cursor` moves as they are).
            return self._stub.StreamEvents(pb.StreamEventsRequest(cursor=cursor))

        messages = _reopened(open_stream, reconnect=reconnect, codes=_REWATCH, on_retry=on_retry)
        async with contextlib.aclosing(messages):
            async for message in messages:
                yield message
                cursor = message.cursor
