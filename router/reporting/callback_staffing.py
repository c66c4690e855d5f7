"""Queued callbacks in staffing from history: the phone agents' time they took, added
to the agents each interval's calls need (plan.with_callbacks says how and why)."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

from router.domain import InvalidArgument
from router.reporting import plan
from router.reporting.plan import StaffingPlan
from router.store.reports import Reports


async def with_callback_work(
    reports: Reports, staffing: StaffingPlan, length: timedelta, time_zone: str
) -> StaffingPlan:
    """`staffing` (phone, from history) with each interval's callback work counted."""
    rows = staffing.rows
    if not rows:
        return staffing
    work = await reports.callback_work(
        rows[0].interval_start, rows[-1].interval_start + length, length, time_zone
    )
    erlangs = {w.interval_start: w.agent_seconds / length.total_seconds() for w in work}
    question = dataclasses.replace(staffing.question, callbacks=True)
    counted = [
        dataclasses.replace(
            row,
            staffed=interval_with_callbacks(
                row.staffed, question, erlangs.get(row.interval_start, 0.0), row.interval_start
            ),
        )
        for row in rows
    ]
    return StaffingPlan(rows=counted, question=question)


def interval_with_callbacks(
    staffed: plan.StaffedInterval,
    question: plan.StaffingQuestion,
    callback_erlangs: float,
    start: datetime,
) -> plan.StaffedInterval:
    """plan.with_callbacks for the interval from `start`, past MAX_AGENTS refused as the
    request's history asking too much (not an internal error), as plan.staff is."""
    try:
        return plan.with_callbacks(staffed, question, callback_erlangs)
    except ValueError as error:
        raise InvalidArgument(
            "history_start", f"the interval from {start:%Y-%m-%d %H:%M}: {error}"
        ) from error
