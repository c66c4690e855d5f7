"""Group commit: many RPCs' writes share one transaction.

Each caller hands over a list of writes (statement name, arguments) and awaits its
commit. A single task takes everything pending and commits it in one transaction,
then runs the callers' after-commit hooks in order and wakes the callers. Two ways,
by the size of the batch (`one_statement_up_to`):

- a small batch (light load: an RPC or a few) is one executemany of the `write`
  statement, each write in its own slots, in the order the writes were made: one
  round trip and one implicit transaction (asyncpg's executemany is atomic);
- a larger one is BEGIN, one executemany per statement in an order that respects
  foreign keys, a NOTIFY and COMMIT: more round trips, but PostgreSQL spends about
  45 us per row there against 75 us through `write`, which plans and opens the
  tables of all five writes for each row (bench/RESULTS.md, issue 18).

There is no batching timer: a write that finds the writer idle starts its commit at
once (the writer only waits for the next event-loop pass), so a lone RPC waits for
one round trip. While one commit runs, new writes pile up and go together in the
next, so the batch grows with the load and durability costs one commit per batch,
not per RPC. When a commit ends with writes waiting, they are sent before its own
callers are told (their hooks run and they wake while the next commit is in flight):
the next commit does not wait for that work.

It writes on the connection that holds the active router's lock (see active_lock):
a router that lost the lock cannot write. One transaction at a time, on that one
connection: that is what makes the events' `seq` numbers rise in commit order
(event_feed.py), so every write to contact_events and agent_status_log goes through
here, and each transaction that records events notifies their readers.

Failures:
- PostgreSQL unreachable (an outage): writes that must not be lost (state already
  applied in memory) stay queued, in order, and are retried until they commit.
  While the outage lasts their callers need not wait: each such write is released
  at once (its caller goes on), and is written when PostgreSQL returns. Writes
  marked `retry=False` (new submissions, applied to memory only after commit) fail
  at once instead, so the gateway can retry them.
  An idle writer checks its session every `heartbeat` seconds, so an outage is
  noticed (and its end too) without waiting for a write.
- Another router took the active lock: every pending write fails, `lost` is set,
  and the writer stops; the process must stop serving.
- A statement error (a bug or bad data): the batch is split and each caller's
  writes run alone, so one bad write fails only its own caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import structlog

from router.errors import ActiveLockLost, DuplicateKey, NotActive, ShuttingDown, StoreUnavailable
from router.store.active_lock import ActiveLock
from router.store.outage import OUTAGE
from router.store.queries import QUERIES

log = structlog.get_logger(__name__)

Write = tuple[str, tuple[Any, ...]]

# Statement order inside a grouped transaction: parents before children.
_ORDER = (
    "insert_contact",
    "requeue_voided",  # before any later change of those contacts in the same batch
    "update_contact",
    "upsert_callback",
    "record_closed_wait",
    "insert_contact_event",
    "upsert_agent",
    "insert_agent_status",
)

# Where each statement's arguments go in the `write` statement (queries.sql): after
# $1, the statement's name, each kind has its own slots and the others are NULL.
_SLOTS = {
    "insert_contact": 12,
    "update_contact": 18,
    "insert_contact_event": 8,
    "upsert_agent": 4,
    "insert_agent_status": 9,
    "upsert_callback": 13,
    "record_closed_wait": 2,
}


def _pads() -> dict[str, tuple[tuple[Any, ...], tuple[Any, ...]]]:
    total = sum(_SLOTS.values())
    pads = {}
    start = 0
    for name, count in _SLOTS.items():
        pads[name] = ((name, *(None,) * start), (None,) * (total - start - count))
        start += count
    return pads


_PADS = _pads()


def write_row(name: str, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """One write as the arguments of the `write` statement."""
    before, after = _PADS[name]
    return before + args + after


@dataclass(slots=True)
class _Pending:
    writes: Sequence[Write]
    retry: bool
    after_commit: Callable[[], None] | None
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    queued: float = field(default_factory=time.perf_counter)
    """When the writes were handed over (time.perf_counter())."""


@dataclass(slots=True)
class _Waiting:
    """A caller waiting for its commit, until `deadline` (time.monotonic())."""

    deadline: float
    waiter: asyncio.Future[None]
    retry: bool


def _settle(waiter: asyncio.Future[None], done: asyncio.Future[None]) -> None:
    """Pass a commit's outcome on to a caller still waiting for it."""
    if waiter.done():
        return
    if done.cancelled():
        waiter.cancel()
    elif (error := done.exception()) is not None:
        waiter.set_exception(error)
    else:
        waiter.set_result(None)


@dataclass(frozen=True, slots=True)
class BatchTiming:
    """One commit, as metrics see it. Each caller's wait for its writes is the time
    they were queued (behind the commit in flight) plus this commit's `seconds`."""

    rows: int
    seconds: float
    """From the start of the commit to PostgreSQL's answer."""
    callers: int
    queued: float
    """Seconds the callers' writes waited before this commit started, summed."""


@dataclass(slots=True)
class BatchStats:
    """Running totals, for logs now and metrics later."""

    transactions: int = 0
    writes: int = 0
    largest_batch: int = 0
    failures: int = 0


class GroupCommit:
    def __init__(
        self,
        lock: ActiveLock,
        *,
        max_batch: int = 2000,
        wait_timeout: float = 5.0,
        retry_delay: float = 0.2,
        heartbeat: float = 1.0,
        one_statement_up_to: int = 16,
    ) -> None:
        self._lock = lock
        self._max_batch = max_batch
        self._one_statement_up_to = one_statement_up_to
        self._wait_timeout = wait_timeout
        self._retry_delay = retry_delay
        self._heartbeat = heartbeat
        self._pending: deque[_Pending] = deque()
        self._waiting: deque[_Waiting] = deque()
        self._committed: deque[Sequence[_Pending]] = deque()
        """Batches committed whose callers are told once the next commit is sent."""
        self._expiry: asyncio.TimerHandle | None = None
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.stats = BatchStats()
        self.healthy = True
        self.lost = asyncio.Event()
        """Set once another router holds the active lock: this one must stop."""
        self.on_commit_start: Callable[[int], None] | None = None
        """Called with the number of writes as each commit starts (what the tests watch
        to see that a lone write does not wait and that writes made during a commit go
        together in the next)."""
        self.on_batch: Callable[[BatchTiming], None] | None = None
        """Called after each commit with its figures, for metrics."""
        self.on_health: Callable[[bool], None] | None = None
        """Called with False when an outage starts and True when it ends."""

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="group-commit")

    async def close(self, flush_seconds: float = 10.0) -> None:
        """Flush what is pending, giving PostgreSQL up to `flush_seconds`, then stop."""
        self._closing = True
        self._wakeup.set()
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), flush_seconds)
        except TimeoutError:
            log.error("writes_not_flushed", writes=self.backlog)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def enqueue(
        self,
        writes: Sequence[Write],
        *,
        retry: bool = True,
        after_commit: Callable[[], None] | None = None,
    ) -> asyncio.Future[None]:
        """Queue `writes` now, in call order, and return a future for their commit.

        Synchronous on purpose: a caller that changes memory and then enqueues, with
        no await in between, gets its writes committed in the order of the changes.
        """
        if self.lost.is_set():
            raise NotActive("this router is no longer the active one")
        if not retry:
            if self._closing:
                raise ShuttingDown("the router is shutting down")
            if not self.healthy:
                raise StoreUnavailable("PostgreSQL is unavailable; retry later")
        pending = _Pending(writes, retry, after_commit)
        # A caller that gave up waiting must not leave an unretrieved exception behind.
        pending.done.add_done_callback(lambda f: f.cancelled() or f.exception())
        if not writes:
            self._finish([pending])
            return pending.done
        if not self.healthy:
            self._release([pending])
        self._pending.append(pending)
        self._wakeup.set()
        return pending.done

    async def wait(self, done: asyncio.Future[None], *, retry: bool = True) -> None:
        """Wait for an enqueued commit (or its release during an outage);
        StoreUnavailable if it fails or takes longer than `wait_timeout`.

        The caller awaits a future of its own that `done` settles: a caller that gives
        up (is cancelled) must not cancel the commit that others may wait for too (a
        retried call waits for its first attempt's). Its deadline joins a queue that
        one timer serves, rather than a timer per call (asyncio.timeout and
        asyncio.shield cost about 20 us per wait, this hottest await, against 5).
        """
        if done.done():
            done.result()
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.add_done_callback(functools.partial(_settle, waiter))
        self._watch(_Waiting(time.monotonic() + self._wait_timeout, waiter, retry))
        await waiter

    def _watch(self, waiting: _Waiting) -> None:
        """Time `waiting` out at its deadline. Deadlines come in call order (the
        timeout is the same for all), so one timer for the oldest serves the queue;
        waits already over are dropped from its head as new ones join."""
        queue = self._waiting
        while queue and queue[0].waiter.done():
            queue.popleft()
        queue.append(waiting)
        if self._expiry is None:
            self._expiry = asyncio.get_running_loop().call_later(
                queue[0].deadline - time.monotonic(), self._expire
            )

    def _expire(self) -> None:
        self._expiry = None
        queue = self._waiting
        now = time.monotonic()
        while queue:
            head = queue[0]
            if not head.waiter.done():
                if head.deadline > now:
                    self._expiry = asyncio.get_running_loop().call_later(
                        head.deadline - now, self._expire
                    )
                    return
                late = "PostgreSQL did not commit in time"
                if head.retry:
                    late += "; the change is kept and will be written"
                head.waiter.set_exception(StoreUnavailable(late))
            queue.popleft()

    async def write(self, writes: Sequence[Write], *, retry: bool = True) -> None:
        """Enqueue and wait: return once `writes` are committed."""
        await self.wait(self.enqueue(writes, retry=retry), retry=retry)

    async def _run(self) -> None:
        try:
            await self._write_until_closed()
        except ActiveLockLost as error:
            self._stop_writing(error)
        finally:
            self._finish_committed()

    async def _write_until_closed(self) -> None:
        while True:
            if not self._pending:
                if self._closing:
                    return
                await self._idle()
                continue
            batch = self._take()
            try:
                await self._commit(batch)
            except OUTAGE as error:
                self._on_outage(batch, error)
                if self._closing and not self._pending:
                    return
                await asyncio.sleep(self._retry_delay)
                continue
            except asyncpg.PostgresError:
                await self._commit_one_by_one(batch)
                continue
            except ActiveLockLost:
                self._pending.extendleft(reversed(batch))
                raise
            except Exception as error:
                # A bug, not an outage: fail these callers loudly, keep serving others.
                log.exception("group_commit_failed")
                for item in batch:
                    if not item.done.done():
                        item.done.set_exception(StoreUnavailable(f"write failed: {error!r}"))
                continue
            self._set_healthy(True)
            if self._pending:
                # Writes made during this commit wait: send them first, and tell this
                # batch's callers (hooks, wake-ups) while they are in flight, instead
                # of making them wait for that too.
                self._committed.append(batch)
                asyncio.get_running_loop().call_soon(self._finish_committed)
            else:
                self._finish(batch)

    async def _idle(self) -> None:
        """Wait for writes; check the session when none come (or, in an outage, try to
        reconnect), so that health follows PostgreSQL even with no traffic."""
        self._wakeup.clear()
        if self.healthy:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._heartbeat):
                    await self._wakeup.wait()
                    return
        elif self._closing:
            return
        try:
            connection = await self._lock.connection()
            await connection.fetchval(QUERIES["heartbeat"])
        except OUTAGE as error:
            self._lock.drop_connection()
            self._on_outage([], error)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._retry_delay):
                    await self._wakeup.wait()
            return
        self._set_healthy(True)

    def _take(self) -> list[_Pending]:
        batch: list[_Pending] = []
        count = 0
        while self._pending and (
            not batch or count + len(self._pending[0].writes) <= self._max_batch
        ):
            item = self._pending.popleft()
            batch.append(item)
            count += len(item.writes)
        return batch

    async def _commit(self, batch: Sequence[_Pending]) -> None:
        size = sum(len(item.writes) for item in batch)
        if self.on_commit_start is not None:
            self.on_commit_start(size)
        started = time.perf_counter()
        connection = await self._lock.connection()
        try:
            if size <= self._one_statement_up_to and all(
                name in _SLOTS for item in batch for name, _ in item.writes
            ):
                # One round trip: executemany is atomic (one implicit transaction).
                rows = [write_row(name, args) for item in batch for name, args in item.writes]
                await connection.executemany(QUERIES["write"], rows)
            else:
                await self._commit_grouped(connection, batch)
        except OUTAGE:
            self._lock.drop_connection()
            raise
        if self.on_batch is not None:
            ended = time.perf_counter()
            # Callers an outage let go (_release) waited for no commit: a catch-up commit
            # would count the whole outage as their wait.
            waiting = [item for item in batch if not item.done.done()]
            queued = sum(started - item.queued for item in waiting)
            self.on_batch(BatchTiming(size, ended - started, len(waiting), queued))
        self.stats.transactions += 1
        self.stats.writes += size
        self.stats.largest_batch = max(self.stats.largest_batch, size)

    @staticmethod
    async def _commit_grouped(connection: asyncpg.Connection, batch: Sequence[_Pending]) -> None:
        by_statement: dict[str, list[tuple[Any, ...]]] = {name: [] for name in _ORDER}
        for item in batch:
            for name, args in item.writes:
                by_statement[name].append(args)
        async with connection.transaction():
            for name in _ORDER:
                rows = by_statement[name]
                if rows:
                    await connection.executemany(QUERIES[name], rows)
            if (
                by_statement["insert_contact_event"]
                or by_statement["insert_agent_status"]
                or by_statement["requeue_voided"]
            ):
                # Readers of the event stream (and a standby) wake when this commits.
                await connection.execute(QUERIES["notify_events"])

    async def _commit_one_by_one(self, batch: Sequence[_Pending]) -> None:
        for index, item in enumerate(batch):
            try:
                await self._commit([item])
            except OUTAGE as error:
                # This item and every later one go back, in order, for the next try.
                self._on_outage(batch[index:], error)
                return
            except asyncpg.UniqueViolationError as error:
                self.stats.failures += 1
                if not item.done.done():
                    item.done.set_exception(DuplicateKey(str(error)))
            except asyncpg.PostgresError as error:
                self.stats.failures += 1
                log.error("write_rejected", error=str(error), writes=len(item.writes))
                if not item.done.done():
                    item.done.set_exception(StoreUnavailable(f"write rejected: {error}"))
            else:
                self._finish([item])

    def _on_outage(self, batch: Sequence[_Pending], error: BaseException) -> None:
        self._set_healthy(False, error)
        self.stats.failures += 1
        waiting = [*batch, *self._pending]
        self._pending.clear()
        for item in waiting:
            if item.retry:
                self._pending.append(item)
            elif not item.done.done():
                item.done.set_exception(StoreUnavailable(f"PostgreSQL unavailable: {error}"))
        self._release(self._pending)

    def _release(self, items: Iterable[_Pending]) -> None:
        """During an outage, kept writes let their callers go on: the change is applied
        in memory and will be written, in order, when PostgreSQL returns (their
        after-commit hooks run then, not before)."""
        for item in items:
            if not item.done.done():
                item.done.set_result(None)

    def _set_healthy(self, healthy: bool, error: BaseException | None = None) -> None:
        if healthy == self.healthy:
            return
        self.healthy = healthy
        if healthy:
            log.info("database_available", writes_to_catch_up=self.backlog)
        else:
            log.warning("database_unavailable", error=repr(error))
        if self.on_health is not None:
            self.on_health(healthy)

    def _stop_writing(self, error: ActiveLockLost) -> None:
        log.error("active_lock_lost", error=str(error), writes_dropped=self.backlog)
        self.lost.set()
        while self._pending:
            item = self._pending.popleft()
            if not item.done.done():
                item.done.set_exception(StoreUnavailable(str(error)))
        if self.on_health is not None:
            self.on_health(False)

    def _finish(self, batch: Sequence[_Pending]) -> None:
        """Run a committed batch's after-commit hooks and wake its callers, after those
        of every batch committed before it (the hooks run in commit order)."""
        self._finish_committed()
        self._finish_now(batch)

    def _finish_committed(self) -> None:
        while self._committed:
            self._finish_now(self._committed.popleft())

    def _finish_now(self, batch: Sequence[_Pending]) -> None:
        for item in batch:
            if item.after_commit is not None:
                try:
                    item.after_commit()
                except Exception:
                    log.exception("after_commit_failed")
            if not item.done.done():
                item.done.set_result(None)

    @property
    def backlog(self) -> int:
        """Writes waiting to be committed."""
        return sum(len(item.writes) for item in self._pending)
