"""The retention job's schedule, on a store that fails once: it logs and runs again."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from structlog.testing import capture_logs

from router.retention import RetentionJob, RetentionSettings
from router.store.retention import Anonymised, Deleted, Key, RetentionStore, RunRecord


class FailsOnce(RetentionStore):
    """Nothing to do, but the first question raises as a bug would."""

    def __init__(self) -> None:
        self.asked = 0
        self.recorded: list[RunRecord] = []

    async def resume_at(self) -> datetime | None:
        self.asked += 1
        if self.asked == 1:
            raise RuntimeError("a bug")
        return None

    async def oldest_open(self, before: datetime) -> datetime | None:
        return None

    async def anonymise_batch(
        self, after: Key, before: datetime, size: int, salt: str
    ) -> Anonymised | None:
        return None

    async def partitions_before(self, cutoff: datetime) -> list[str]:
        return []

    async def delete_batch(self, after: Key, before: datetime, size: int) -> Deleted | None:
        return None

    async def record(self, run: RunRecord) -> int:
        self.recorded.append(run)
        return len(self.recorded)


class TestRetentionJob:
    async def test_a_failed_run_is_logged_and_the_next_one_runs(self) -> None:
        """A run that raises does not end the job: the next interval runs again."""
        store = FailsOnce()
        job = RetentionJob(
            store,
            RetentionSettings(personal_months=1, interval=0.01),
            lambda: datetime(2026, 12, 5, tzinfo=UTC),
        )
        with capture_logs() as logs:
            job.start()
            try:
                await asyncio.wait_for(job.ran.wait(), 5)
            finally:
                await job.close()
        assert [e["event"] for e in logs if e["event"].startswith("retention")][:2] == [
            "retention_failed",
            "retention_run",
        ]
        assert len(store.recorded) == 1
        assert not job.running

    async def test_off_schedules_nothing(self) -> None:
        """With both periods 0, start() starts no task."""
        job = RetentionJob(FailsOnce(), RetentionSettings())
        job.start()
        assert not job.running
