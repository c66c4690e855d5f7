"""Load-generator processes: gateways that submit contacts and agents that pull, accept,
end and complete them. Each runs in its own process (multiprocessing, spawn) with its
own event loop and one gRPC channel, and speaks the proto through the generated stubs,
so the router and the bare baseline are driven by exactly the same code.

Processes share only counters (one slot per process, written by that process alone)
and flags; detailed timings go back through a queue when a process ends. Times are
time.monotonic(), which on Linux is one clock for every process on the machine, so
an acknowledgement seen by a gateway and an offer seen by an agent can be subtracted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc

# Many streams share one channel in the scale run; the limit is the server's, not ours.
CHANNEL_OPTIONS = [("grpc.max_concurrent_streams", 1 << 20)]


class Counters(Protocol):
    """A multiprocessing Array of 64-bit ints, one slot per process."""

    def __getitem__(self, index: int) -> int: ...
    def __setitem__(self, index: int, value: int) -> None: ...
    def __len__(self) -> int: ...


class Flag(Protocol):
    """A multiprocessing Value or Event's view: a shared boolean."""

    value: int


class Stop(Protocol):
    def is_set(self) -> bool: ...
    def wait(self, timeout: float | None = None) -> bool: ...


class ResultQueue(Protocol):
    def put(self, obj: Any) -> None: ...


@dataclass
class AgentResult:
    """What one agent process saw: offers received while recording, and failures."""

    offered_at: dict[str, float] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    pid: int = 0
    rpc_ms: dict[str, list[float]] = field(default_factory=dict)
    """Round trips of AcceptOffer, EndContact and CompleteContact while recording."""


@dataclass
class GatewayResult:
    """What one gateway process saw: acknowledgement time per submitted contact."""

    acknowledged_at: dict[str, float] = field(default_factory=dict)
    rpc_ms: dict[str, list[float]] = field(default_factory=dict)
    """Round trips of SubmitContact while recording."""
    submitted: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    pid: int = 0


def total(counters: Counters) -> int:
    return sum(counters[i] for i in range(len(counters)))


def _count_error(errors: dict[str, int], error: grpc.aio.AioRpcError) -> None:
    name = error.code().name
    errors[name] = errors.get(name, 0) + 1


def run_agents(
    target: str,
    agent_ids: Sequence[str],
    completed: Counters,
    slot: int,
    recording: Flag,
    stop: Stop,
    results: ResultQueue,
    skills: Sequence[str] = (),
) -> None:
    """Process entry: sign the agents in, hold their offer streams open, and take each
    offer through accept, end and complete until `stop` is set."""
    asyncio.run(_agents(target, agent_ids, completed, slot, recording, stop, results, skills))


async def _agents(
    target: str,
    agent_ids: Sequence[str],
    completed: Counters,
    slot: int,
    recording: Flag,
    stop: Stop,
    results: ResultQueue,
    skills: Sequence[str],
) -> None:
    result = AgentResult(pid=os.getpid())
    async with grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS) as channel:
        stub = pb_grpc.AgentServiceStub(channel)
        sign_in_gate = asyncio.Semaphore(200)

        async def work(agent_id: str) -> None:
            async with sign_in_gate:
                await stub.SignIn(pb.SignInRequest(agent_id=agent_id, skills=skills))
            stream = stub.StreamOffers(pb.StreamOffersRequest(agent_id=agent_id))
            async for message in stream:
                if not message.HasField("offer"):
                    continue
                offer = message.offer
                contact_id = offer.contact.contact_id
                recorded = bool(recording.value)
                if recorded:
                    result.offered_at[contact_id] = time.monotonic()
                started = time.perf_counter()
                await stub.AcceptOffer(
                    pb.AcceptOfferRequest(agent_id=agent_id, offer_id=offer.offer_id)
                )
                accepted = time.perf_counter()
                await stub.EndContact(
                    pb.EndContactRequest(agent_id=agent_id, contact_id=contact_id)
                )
                ended = time.perf_counter()
                await stub.CompleteContact(
                    pb.CompleteContactRequest(
                        agent_id=agent_id, contact_id=contact_id, disposition="bench"
                    )
                )
                if recorded:
                    for method, took in (
                        ("AcceptOffer", accepted - started),
                        ("EndContact", ended - accepted),
                        ("CompleteContact", time.perf_counter() - ended),
                    ):
                        result.rpc_ms.setdefault(method, []).append(1000 * took)
                completed[slot] += 1

        async def guarded(agent_id: str) -> None:
            try:
                await work(agent_id)
            except grpc.aio.AioRpcError as error:
                if not stop.is_set():
                    _count_error(result.errors, error)

        tasks = [asyncio.create_task(guarded(agent_id)) for agent_id in agent_ids]
        await asyncio.to_thread(stop.wait)
        for task in tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks, return_exceptions=True)
    results.put(("agents", slot, result))


def run_gateway(
    target: str,
    slot: int,
    submitted: Counters,
    completed: Counters,
    *,
    duration: float,
    window: int = 0,
    concurrency: int = 32,
    rate: float = 0.0,
    record: bool = False,
    results: ResultQueue,
    skills: Sequence[str] = (),
) -> None:
    """Process entry: submit phone contacts for `duration` seconds, either as fast as
    the system completes them (window > 0: at most `window` contacts submitted and not
    yet completed, across all gateways) or paced at `rate` per second (open loop: a
    slow answer does not delay the next submission)."""
    asyncio.run(
        _gateway(
            target,
            slot,
            submitted,
            completed,
            duration,
            window,
            concurrency,
            rate,
            record,
            results,
            skills,
        )
    )


async def _gateway(
    target: str,
    slot: int,
    submitted: Counters,
    completed: Counters,
    duration: float,
    window: int,
    concurrency: int,
    rate: float,
    record: bool,
    results: ResultQueue,
    skills: Sequence[str],
) -> None:
    result = GatewayResult(pid=os.getpid())
    async with grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS) as channel:
        stub = pb_grpc.ContactServiceStub(channel)

        async def submit() -> None:
            key = os.urandom(12).hex()
            request = pb.SubmitContactRequest(
                idempotency_key=key,
                channel=pb.CHANNEL_PHONE,
                # A new customer each time: with one shared customer id every call
                # would be held for its previous agent.
                customer_id=f"bench-{key}",
                required_skills=skills,
            )
            started = time.perf_counter()
            try:
                answer = await stub.SubmitContact(request)
            except grpc.aio.AioRpcError as error:
                _count_error(result.errors, error)
                return
            if record:
                took = time.perf_counter() - started
                result.rpc_ms.setdefault("SubmitContact", []).append(1000 * took)
                result.acknowledged_at[answer.contact.contact_id] = time.monotonic()
            result.submitted += 1
            submitted[slot] += 1

        deadline = time.monotonic() + duration
        if window > 0:

            def outstanding() -> int:
                return total(submitted) - total(completed)

            async def submitter() -> None:
                while time.monotonic() < deadline:
                    if outstanding() >= window:
                        # Pacing, not synchronisation: wait for agents to catch up.
                        await asyncio.sleep(0.001)
                        continue
                    await submit()

            await asyncio.gather(*(submitter() for _ in range(concurrency)))
        else:
            interval = 1.0 / rate
            pending: set[asyncio.Task[None]] = set()
            due = time.monotonic()
            while due < deadline:
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                task = asyncio.create_task(submit())
                pending.add(task)
                task.add_done_callback(pending.discard)
                due += interval
            await asyncio.gather(*pending)
    results.put(("gateway", slot, result))
