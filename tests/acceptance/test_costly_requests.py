"""Costly reporting requests against a real router: the arithmetic a staffing request
starts is bounded, runs where it cannot starve routing, stops when its caller gives up,
and does not keep a stopping router alive (issue 14 #12)."""

from __future__ import annotations

import asyncio
import signal
import statistics
import time
import uuid

import grpc
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc
from google.protobuf.timestamp_pb2 import Timestamp

from tests.acceptance.router_process import RouterProcess

START = Timestamp(seconds=1_790_000_000)
HEAVY = pb.ForecastInterval(interval_start=START, calls=297_000, aht_seconds=300)
"""99,000 Erlangs: answering 99% within 1 s takes about 99,500 agents, found by trying
each count from 99,001 up (tens of milliseconds)."""


def heavy_staffing(intervals: int) -> pb.GetStaffingRequest:
    """A valid forecast of `intervals` HEAVY intervals (2,000 are minutes of arithmetic)."""
    return pb.GetStaffingRequest(
        channel=pb.CHANNEL_PHONE,
        interval=pb.INTERVAL_LENGTH_15_MINUTES,
        target_service_level=0.99,
        threshold_seconds=1.0,
        forecast=[HEAVY] * intervals,
    )


NORMAL = pb.GetStaffingRequest(
    channel=pb.CHANNEL_PHONE,
    interval=pb.INTERVAL_LENGTH_30_MINUTES,
    forecast=[pb.ForecastInterval(interval_start=START, calls=100, aht_seconds=180)],
)


async def gave_up(
    call: grpc.aio.UnaryUnaryCall[pb.GetStaffingRequest, pb.GetStaffingResponse],
) -> grpc.StatusCode:
    """The status a call ends with (DEADLINE_EXCEEDED when its client gave up)."""
    try:
        await call
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


class TestCostlyRequests:
    async def test_a_large_staffing_forecast_does_not_stall_routing(
        self, reporting: pb_grpc.ReportingServiceAsyncStub
    ) -> None:
        """While a staffing forecast of huge intervals is computed, the router's event loop
        (which routes every contact) is never held for a second."""
        loop = asyncio.get_running_loop()
        longest_hold = 0.0
        done = asyncio.Event()

        async def heartbeat() -> None:
            # The server runs in this process, on this loop: a gap between beats is
            # time the router could not route.
            nonlocal longest_hold
            while not done.is_set():
                before = loop.time()
                await asyncio.sleep(0.01)
                longest_hold = max(longest_hold, loop.time() - before)

        beats = asyncio.create_task(heartbeat())
        try:
            response = await reporting.GetStaffing(heavy_staffing(1), timeout=60)
        finally:
            done.set()
            await beats
        assert 99_000 < response.rows[0].agents < 100_000
        assert longest_hold < 1.0, f"the event loop was held for {longest_hold:.1f} s"

    async def test_six_long_staffing_requests_do_not_slow_submissions(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        reporting: pb_grpc.ReportingServiceAsyncStub,
    ) -> None:
        """Six staffing requests of minutes of arithmetic each, given up by their clients
        after 4 s: meanwhile a submission takes milliseconds, not hundreds (in a thread
        the arithmetic held the GIL); afterwards the work has stopped, so an ordinary
        staffing request is answered at once (threads computed on for minutes, and the
        ordinary request waited behind them past its deadline)."""
        heavy = [
            asyncio.ensure_future(gave_up(reporting.GetStaffing(heavy_staffing(2_000), timeout=4)))
            for _ in range(6)
        ]
        await asyncio.sleep(0.5)  # let them start: the load, not a synchronisation
        latencies = []
        for n in range(30):
            began = time.perf_counter()
            await contacts.SubmitContact(
                pb.SubmitContactRequest(
                    idempotency_key=f"during-{n}",
                    channel=pb.CHANNEL_EMAIL,
                    customer_id=str(uuid.uuid4()),
                ),
                timeout=10,
            )
            latencies.append(time.perf_counter() - began)
        median = statistics.median(latencies)
        assert median < 0.1, f"SubmitContact took {median * 1000:.0f} ms (median) under load"
        assert not any(task.done() for task in heavy), "the load ended before the measure"
        assert set(await asyncio.gather(*heavy)) == {grpc.StatusCode.DEADLINE_EXCEEDED}
        response = await reporting.GetStaffing(NORMAL, timeout=5)
        assert response.rows[0].agents == 14


class TestShutdown:
    async def test_ctrl_c_after_a_staffing_request_stops_without_a_traceback(
        self, database_url: str
    ) -> None:
        """Ctrl-C reaches the staffing worker process too (it is in the terminal's process
        group): the router stops cleanly, exit 0, and no traceback of the worker's
        KeyboardInterrupt lands in the terminal."""
        process = await RouterProcess.start({"ROUTER_DATABASE_URL": database_url}, own_group=True)
        try:
            async with grpc.aio.insecure_channel(process.address) as channel:
                reporting = pb_grpc.ReportingServiceStub(channel)
                await reporting.GetStaffing(NORMAL, timeout=10)
            status = await process.interrupt()
            assert status == 0, process.output
            assert "Traceback" not in process.output
            assert "KeyboardInterrupt" not in process.output
            assert process.event("router_stopped")
        finally:
            if process.process.returncode is None:
                await process.kill()

    async def test_sigterm_ends_the_process_while_staffing_computes(
        self, database_url: str
    ) -> None:
        """SIGTERM while six long staffing requests compute (their clients gave up): the
        router stops, exit status 0, within the stop timeout (it stayed alive until
        SIGKILL while threads computed on)."""
        process = await RouterProcess.start({"ROUTER_DATABASE_URL": database_url})
        try:
            async with grpc.aio.insecure_channel(process.address) as channel:
                reporting = pb_grpc.ReportingServiceStub(channel)
                codes = await asyncio.gather(
                    *(
                        gave_up(reporting.GetStaffing(heavy_staffing(2_000), timeout=2))
                        for _ in range(6)
                    )
                )
            assert set(codes) == {grpc.StatusCode.DEADLINE_EXCEEDED}
            began = time.perf_counter()
            status = await process.stop(signal.SIGTERM)
            assert status == 0, process.output
            assert time.perf_counter() - began < 10, process.output
        finally:
            if process.process.returncode is None:
                await process.kill()
