"""What every part of a simulation run shares: the scenario, its seed and run id, the
simulated clock, the counters, RPCs made with retries and counted, the tasks the run
starts (a failure in one must not end the run), and the signal that the run is closing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import grpc

from contact_router_tools.scenario import Scenario
from contact_router_tools.simulation.records import RunCounters

Request = TypeVar("Request")
Response = TypeVar("Response")

RPC_TIMEOUT = 10.0
ATTEMPTS = 6  # backing off 0.5, 1, 2, 4, 4 s between attempts
RETRY = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
# After a router restart an agent is unknown (NOT_FOUND) until its client signs in again,
# which the agent's stream task does; ending or completing a held contact waits for that.
HELD_RETRY = (*RETRY, grpc.StatusCode.NOT_FOUND)


class RunContext:
    def __init__(self, scenario: Scenario, run_id: str, seed: int) -> None:
        self.scenario = scenario
        self.run_id = run_id
        self.seed = seed
        self.counters = RunCounters()
        self.closing = asyncio.Event()
        self.handlers: set[asyncio.Task[None]] = set()  # agents working on offers
        self.customers: set[asyncio.Task[None]] = set()  # customers waiting for an answer
        self.started = time.monotonic()

    def start_clock(self) -> None:
        """Simulated time 0 is now."""
        self.started = time.monotonic()

    def now(self) -> float:
        """Simulated seconds since the arrivals began."""
        return (time.monotonic() - self.started) * self.scenario.time_scale

    async def pause(self, simulated: float) -> bool:
        """Sleep a simulated duration; True when cut short because the run is closing."""
        try:
            await asyncio.wait_for(self.closing.wait(), timeout=self.scenario.real(simulated))
        except TimeoutError:
            return False
        return True

    async def until(self, simulated_time: float) -> None:
        await asyncio.sleep(max(0.0, self.scenario.real(simulated_time - self.now())))

    async def rpc(
        self,
        method: grpc.aio.UnaryUnaryMultiCallable[Request, Response],
        request: Request,
        expected: tuple[grpc.StatusCode, ...] = (),
        attempts: int = ATTEMPTS,
        retry: tuple[grpc.StatusCode, ...] = RETRY,
        deadline: float = RPC_TIMEOUT,
    ) -> Response | None:
        """Make one RPC, retrying UNAVAILABLE and DEADLINE_EXCEEDED (every call this
        simulator makes is safe to repeat); on failure count it, as refused when its code
        is expected, and return None. The channel (contactrouter.client.connect) already
        retries UNAVAILABLE a few times within each attempt; this loop outlasts a router
        restart."""
        name = type(request).__name__.removesuffix("Request")
        for attempt in range(1, attempts + 1):
            try:
                return await method(request, timeout=deadline)
            except grpc.aio.AioRpcError as err:
                if err.code() in retry and attempt < attempts:
                    self.counters.retries += 1
                    await asyncio.sleep(min(4.0, 0.25 * 2**attempt))
                    continue
                bucket = self.counters.refused if err.code() in expected else self.counters.errors
                bucket[f"{name} {err.code().name}"] += 1
                break
        return None

    async def call(
        self, method: grpc.aio.UnaryUnaryMultiCallable[Request, Response], request: Request
    ) -> None:
        """rpc() for a task that needs no answer."""
        await self.rpc(method, request)

    def spawn(self, coro: Coroutine[Any, Any, None], group: set[asyncio.Task[None]]) -> None:
        """Run `coro` as a task of `group` (handlers or customers)."""
        task = asyncio.create_task(coro)
        group.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self.handlers.discard(task)
        self.customers.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            # A bug or an unexpected answer in one task must not end the run.
            self.counters.errors[f"task {type(exc).__name__}: {exc}"[:120]] += 1


async def settle(
    tasks: set[asyncio.Task[None]], *, cancel: bool = False, limit: float = 5.0
) -> None:
    """Wait for tasks (cancelling them first when asked); cancel what outlives limit seconds."""
    pending = set(tasks)
    if cancel:
        for task in pending:
            task.cancel()
    if pending:
        _, late = await asyncio.wait(pending, timeout=limit)
        for task in late:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
