"""The retention job's statements (queries.sql, retention section) as plain values.

Every statement runs on a pool connection in its own short transaction, never on the
group commit's connection: the router's writes do not wait for the job, and the job's
row locks are on finished contacts, which the router no longer writes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from router.store.fetch import fetch

FIRST_ID = uuid.UUID(int=0)
"""The smallest contact id: a key (queued_at, FIRST_ID) starts at queued_at."""

DROP_LOCK_TIMEOUT = "SET LOCAL lock_timeout = '200ms'"
"""How long a partition's detach may wait for contact_events to itself. While it waits,
the router's inserts of events queue behind it, so it gives up soon (a long report may
hold the table) and is tried again later."""


@dataclass(frozen=True, slots=True)
class Key:
    """Where a batch stopped: the last contact's (queued_at, id)."""

    queued_at: datetime
    id: uuid.UUID


@dataclass(frozen=True, slots=True)
class Anonymised:
    last: Key
    contacts: int
    comments: int


@dataclass(frozen=True, slots=True)
class Deleted:
    last: Key
    contacts: int
    events: int
    feedback: int


@dataclass(frozen=True, slots=True)
class RunRecord:
    """What one run did: retention_runs' row."""

    started_at: datetime
    finished_at: datetime
    personal_months: int
    timings_months: int
    personal_cutoff: datetime | None
    personal_resume_at: datetime | None
    timings_cutoff: datetime | None
    partitions_dropped: tuple[str, ...]
    partitions_kept: tuple[str, ...]
    contacts_anonymised: int
    comments_erased: int
    contacts_deleted: int
    events_deleted: int
    batches: int
    agent_status_deleted: int = 0


class RetentionStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def resume_at(self) -> datetime | None:
        rows = await fetch(self._pool, "retention_resume_at")
        return rows[0]["personal_resume_at"] if rows else None

    async def oldest_open(self, before: datetime) -> datetime | None:
        rows = await fetch(self._pool, "retention_oldest_open", before)
        value: datetime | None = rows[0]["queued_at"]
        return value

    async def anonymise_batch(
        self, after: Key, before: datetime, size: int, salt: str
    ) -> Anonymised | None:
        """Anonymise the next `size` finished contacts after `after` queued before
        `before`; None when none is left."""
        rows = await fetch(
            self._pool,
            "retention_anonymise_batch",
            after.queued_at,
            after.id,
            before,
            size,
            salt,
        )
        if not rows:
            return None
        row = rows[0]
        return Anonymised(Key(row["queued_at"], row["id"]), row["contacts"], row["comments"])

    async def partitions_before(self, cutoff: datetime) -> list[str]:
        """contact_events' monthly partitions holding only rows before `cutoff`."""
        return [r["name"] for r in await fetch(self._pool, "retention_partitions_before", cutoff)]

    async def drop_partition(self, name: str) -> bool:
        """Detach and drop `name`; False if it holds events of an open contact (kept).
        asyncpg.LockNotAvailableError if the table stayed busy past the lock timeout."""
        rows = await fetch(self._pool, "retention_drop_partition", name, settings=DROP_LOCK_TIMEOUT)
        return bool(rows[0]["dropped"])

    async def delete_batch(self, after: Key, before: datetime, size: int) -> Deleted | None:
        """Delete the next `size` finished contacts after `after` queued before `before`,
        with their events and feedback; None when none is left."""
        rows = await fetch(
            self._pool, "retention_delete_batch", after.queued_at, after.id, before, size
        )
        if not rows:
            return None
        row = rows[0]
        return Deleted(
            Key(row["queued_at"], row["id"]), row["contacts"], row["events"], row["feedback"]
        )

    async def delete_agent_status_batch(
        self, before: datetime, after_id: int, size: int
    ) -> tuple[int, int] | None:
        """Delete the next `size` agent_status_log rows after id `after_id` that are
        before `before` and not their agent's latest of their kind before it: (last id
        deleted, rows deleted); None when none is left."""
        rows = await fetch(
            self._pool, "retention_delete_agent_status_batch", before, after_id, size
        )
        if not rows:
            return None
        return rows[0]["last_id"], rows[0]["rows"]

    async def record(self, run: RunRecord) -> int:
        rows = await fetch(
            self._pool,
            "retention_record_run",
            run.started_at,
            run.finished_at,
            run.personal_months,
            run.timings_months,
            run.personal_cutoff,
            run.personal_resume_at,
            run.timings_cutoff,
            list(run.partitions_dropped),
            list(run.partitions_kept),
            run.contacts_anonymised,
            run.comments_erased,
            run.contacts_deleted,
            run.events_deleted,
            run.batches,
            run.agent_status_deleted,
        )
        run_id: int = rows[0]["id"]
        return run_id
