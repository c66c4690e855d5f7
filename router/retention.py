"""Retention: forget personal data after N months and timings after M (M >= N).

A job in the active router (started at activation, stopped at shutdown) runs at start
and then every `interval` seconds. Each run:

1. drops the monthly partitions of contact_events whose every row is older than the
   timings cutoff, the start of the month M months ago (detach, then drop: no row by
   row delete), keeping any partition that holds an event of an open contact;
2. deletes, in batches, the finished contacts queued before that cutoff with their
   remaining events (the DEFAULT partition's, a contact's last events in the next
   month) and feedback, then the agent status log's rows before it, except each
   agent's latest of each kind (the status, session and team the agent had at the
   cutoff, which reports of the kept range read);
3. anonymises, in batches, the finished contacts queued more than N months ago, as
   erasure does (anonymise_contacts in migration 0008): the customer id becomes a
   pseudonym, one per customer for the run, so returning-customer figures among the
   contacts a run anonymises hold; attributes and feedback comments go; timings and
   ratings stay, so reports of the kept range do not change;
4. records what it did in retention_runs and a `retention_run` log line.

Open contacts are never touched. Each batch is one short transaction on a pool
connection, never the group commit's: routing does not wait for the job. Running it
again changes nothing: the anonymisation resumes where the last run stopped (or at the
oldest contact that was still open then), and what was deleted is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import structlog

from router.clock import utc_now
from router.errors import StoreUnavailable
from router.store.retention import FIRST_ID, Key, RetentionStore, RunRecord

log = structlog.get_logger(__name__)

DAY = 24 * 3600.0
LOCK_ATTEMPTS = 5
"""Tries to detach one partition within a run (each waits at most the lock timeout)."""


@dataclass(frozen=True, slots=True)
class RetentionSettings:
    """ROUTER_PERSONAL_DATA_MONTHS, ROUTER_TIMINGS_MONTHS (0: kept forever),
    ROUTER_RETENTION_INTERVAL_SECONDS, ROUTER_RETENTION_BATCH_SIZE and
    ROUTER_RETENTION_PAUSE_SECONDS."""

    personal_months: int = 0
    timings_months: int = 0
    interval: float = DAY
    batch_size: int = 5000
    pause: float = 0.0
    """Seconds between two batches, leaving PostgreSQL to the router's writes."""

    @property
    def enabled(self) -> bool:
        return self.personal_months > 0 or self.timings_months > 0


def months_before(at: datetime, months: int) -> datetime:
    """`at` moved back `months` calendar months (the day clamped to the month's end)."""
    index = at.year * 12 + at.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    for day in range(at.day, 27, -1):
        with contextlib.suppress(ValueError):
            return at.replace(year=year, month=month, day=day)
    return at.replace(year=year, month=month, day=min(at.day, 28))


def month_start(at: datetime) -> datetime:
    """The start of `at`'s month, in UTC."""
    at = at.astimezone(UTC)
    return at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def cutoffs(settings: RetentionSettings, at: datetime) -> tuple[datetime | None, datetime | None]:
    """(personal cutoff, timings cutoff) at `at`: personal data of contacts queued before
    the first goes; rows of contacts queued before the second go (a month's start, so
    whole partitions go with it). None: that part is off."""
    personal = months_before(at, settings.personal_months) if settings.personal_months else None
    timings = (
        month_start(months_before(at, settings.timings_months)) if settings.timings_months else None
    )
    return personal, timings


async def run_retention(
    store: RetentionStore, settings: RetentionSettings, at: datetime
) -> RunRecord:
    """One run of the job as of `at` (what "now" is: tests pass their own)."""
    started = time.perf_counter()
    personal_cutoff, timings_cutoff = cutoffs(settings, at)
    dropped: list[str] = []
    kept: list[str] = []
    batches = anonymised = comments = deleted = events = status_rows = 0
    if timings_cutoff is not None:
        for name in await store.partitions_before(timings_cutoff):
            if await _drop(store, name):
                dropped.append(name)
            else:
                kept.append(name)
        key = Key(datetime.min.replace(tzinfo=UTC), FIRST_ID)
        while (
            batch := await store.delete_batch(key, timings_cutoff, settings.batch_size)
        ) is not None:
            key = batch.last
            batches += 1
            deleted += batch.contacts
            events += batch.events
            await _rest(settings)
        last_id = 0
        while (
            status_batch := await store.delete_agent_status_batch(
                timings_cutoff, last_id, settings.batch_size
            )
        ) is not None:
            last_id, rows = status_batch
            batches += 1
            status_rows += rows
            await _rest(settings)
    resume_at = None
    if personal_cutoff is not None:
        start = await store.resume_at() or datetime.min.replace(tzinfo=UTC)
        if timings_cutoff is not None:
            start = max(start, timings_cutoff)
        # Read before the pass: a contact that ends during it is then visited next time.
        oldest_open = await store.oldest_open(personal_cutoff)
        resume_at = personal_cutoff if oldest_open is None else min(personal_cutoff, oldest_open)
        salt = secrets.token_hex(16)
        key = Key(start, FIRST_ID)
        while (
            step := await store.anonymise_batch(key, personal_cutoff, settings.batch_size, salt)
        ) is not None:
            key = step.last
            batches += 1
            anonymised += step.contacts
            comments += step.comments
            await _rest(settings)
    record = RunRecord(
        started_at=at,
        finished_at=utc_now(),
        personal_months=settings.personal_months,
        timings_months=settings.timings_months,
        personal_cutoff=personal_cutoff,
        personal_resume_at=resume_at,
        timings_cutoff=timings_cutoff,
        partitions_dropped=tuple(dropped),
        partitions_kept=tuple(kept),
        contacts_anonymised=anonymised,
        comments_erased=comments,
        contacts_deleted=deleted,
        events_deleted=events,
        batches=batches,
        agent_status_deleted=status_rows,
    )
    run_id = await store.record(record)
    log.info(
        "retention_run",
        run_id=run_id,
        personal_cutoff=None if personal_cutoff is None else personal_cutoff.isoformat(),
        timings_cutoff=None if timings_cutoff is None else timings_cutoff.isoformat(),
        partitions_dropped=dropped,
        partitions_kept_open_contacts=kept,
        contacts_anonymised=anonymised,
        comments_erased=comments,
        contacts_deleted=deleted,
        events_deleted=events,
        agent_status_deleted=status_rows,
        batches=batches,
        seconds=round(time.perf_counter() - started, 3),
    )
    return record


async def _rest(settings: RetentionSettings) -> None:
    if settings.pause > 0:
        await asyncio.sleep(settings.pause)


async def _drop(store: RetentionStore, name: str) -> bool:
    """Drop one partition, trying again if the table stays busy (a long report); False
    if it holds an open contact's events or stayed busy (the next run tries again)."""
    for attempt in range(LOCK_ATTEMPTS):
        try:
            return await store.drop_partition(name)
        except asyncpg.LockNotAvailableError:
            log.info("retention_partition_busy", partition=name, attempt=attempt + 1)
            await asyncio.sleep(0.5 * (attempt + 1))
    return False


class RetentionJob:
    """The job as a background task of the active router: a run at start, then one
    every `settings.interval` seconds, until close()."""

    def __init__(
        self,
        store: RetentionStore,
        settings: RetentionSettings,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self.runs: list[RunRecord] = []
        """The runs of this process, oldest first (for tests and the bench)."""
        self.ran = asyncio.Event()
        """Set after each run (tests clear it and wait for the next)."""

    @property
    def running(self) -> bool:
        """Whether the job is scheduled (started, enabled, not closed)."""
        return self._task is not None

    def start(self) -> None:
        if self._settings.enabled and self._task is None:
            self._task = asyncio.create_task(self._loop(), name="retention")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                self.runs.append(await run_retention(self._store, self._settings, self._clock()))
                self.ran.set()
            except (StoreUnavailable, asyncpg.PostgresError) as error:
                # The next run does what this one did not: nothing half-done is recorded.
                log.warning("retention_failed", error=str(error) or repr(error))
            except Exception as error:  # a bug: log it, route on, and try again next time
                log.exception("retention_failed", error=repr(error))
            await asyncio.sleep(self._settings.interval)
