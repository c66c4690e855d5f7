"""Staffing arithmetic and forecasts in a worker process, where they cannot starve
routing.

A thread would not do: it holds the GIL, so a request computing for seconds slowed
every SubmitContact of the router's event loop (5 ms to hundreds), and a thread cannot
be stopped, so a request whose client gave up kept its CPU and held shutdown. Instead
one worker process (created at the first staffing request, with the "spawn" start
method: a fork would copy gRPC's threads) takes bounded pieces of work (PIECE_SECONDS
plus one interval, itself bounded by the plan's input limits and Erlang A's cap of
terms). A request hands it one piece at a time, so concurrent requests take turns; a
cancelled request hands it no more; closing waits at most for the piece in progress.

A forecast is one piece: one fit of a bounded history (router.reporting.forecasting's
limits; about a second at 13 weeks of 15-minute intervals). Its numerical libraries
(numpy, statsmodels) are imported in the worker only, at its first forecast.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from router.errors import ShuttingDown, Unavailable
from router.reporting.forecasting import ForecastQuestion, ForecastValues
from router.reporting.plan import StaffedInterval, StaffingQuestion, staff_many

PIECE_SECONDS = 0.1
"""Arithmetic per piece: short, so that requests take turns often and a cancelled one
stops soon; long enough that the round trip to the worker is a small share."""
PIECE_INTERVALS = 2_000
"""Intervals sent with one piece: more than a piece computes in PIECE_SECONDS when each
is quick, so that a long forecast is not copied to the worker whole for every piece."""


def forecast_in_worker(question: ForecastQuestion) -> ForecastValues:
    """In the worker: fit and forecast (the model's libraries load here, not in the
    router's process)."""
    from router.reporting.forecast_model import forecast_values

    return forecast_values(question)


def _leave_interrupts_to_the_router() -> None:
    """In the worker: ignore SIGINT. Ctrl-C in a terminal reaches the whole process group;
    the router stops its workers itself (close()), and a worker that raised
    KeyboardInterrupt would print a traceback into the operator's terminal."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class StaffingWorkers:
    """A lazily started pool of worker processes for staffing plans."""

    def __init__(self, processes: int = 1) -> None:
        self._processes = processes
        self._pool: ProcessPoolExecutor | None = None
        self._closed = False

    async def staff(
        self, question: StaffingQuestion, work: Sequence[tuple[float, float]]
    ) -> tuple[list[StaffedInterval], tuple[int, str] | None]:
        """Staff each (calls, AHT) interval; the rows, and (index, why) of the first
        interval that could not be staffed, if any (the rows stop before it)."""
        loop = asyncio.get_running_loop()
        staffed: list[StaffedInterval] = []
        while len(staffed) < len(work):
            pool = self._started()
            batch = list(work[len(staffed) : len(staffed) + PIECE_INTERVALS])
            try:
                piece = await loop.run_in_executor(pool, staff_many, question, batch, PIECE_SECONDS)
            except BrokenProcessPool:
                # The worker died (killed, out of memory): the next request starts another.
                if self._pool is pool:
                    self._pool = None
                    pool.shutdown(wait=False, cancel_futures=True)
                raise Unavailable("the staffing worker process stopped; retry") from None
            staffed.extend(piece.staffed)
            if piece.problem is not None:
                return staffed, (len(staffed), piece.problem)
        return staffed, None

    async def forecast(self, question: ForecastQuestion) -> ForecastValues:
        """The question's forecast, computed in the worker process."""
        loop = asyncio.get_running_loop()
        pool = self._started()
        try:
            return await loop.run_in_executor(pool, forecast_in_worker, question)
        except BrokenProcessPool:
            if self._pool is pool:
                self._pool = None
                pool.shutdown(wait=False, cancel_futures=True)
            raise Unavailable("the reporting worker process stopped; retry") from None

    def _started(self) -> ProcessPoolExecutor:
        if self._closed:
            raise ShuttingDown("the router is stopping: retry the staffing request")
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self._processes,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_leave_interrupts_to_the_router,
            )
        return self._pool

    async def close(self) -> None:
        """Drop queued pieces, wait for the one in progress, end the worker processes."""
        self._closed = True
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)
