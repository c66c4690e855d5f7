"""The queued callbacks a report response carries beside its inbound rows.

GetServiceLevel's and GetContactReport's rows leave callbacks out (their wait, answer
and service level are not an inbound contact's: docs/reporting.md, "Queued callbacks,
counted apart"), so a phone or chat row holds fewer contacts than the center took.
Each response therefore carries the callback rows of the same range, intervals and time
zone, with their formula and target, so that no reader has to know to ask elsewhere.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from router.api.convert import callback_row_to_proto
from router.domain import Channel
from router.reporting.intervals import Interval
from router.reporting.reporting import Reporting


async def callback_fields(
    reporting: Reporting,
    start: datetime,
    end: datetime,
    interval: Interval,
    channels: Collection[Channel],
    time_zone: str | None,
    team: str | None = None,
) -> dict[str, Any]:
    """The response fields callbacks, callback_formula and callback_target_seconds.
    The rows are the center's, per interval and channel the customer came from: shown
    when phone is asked for (callbacks are phone contacts) and no team is (a callback
    row is not split by team); the formula and target always."""
    shown = (not channels or Channel.PHONE in channels) and team is None
    report = await reporting.callback_report(start, end, interval, time_zone, rows=shown)
    return {
        "callbacks": [callback_row_to_proto(row) for row in report.rows],
        "callback_formula": report.formula,
        "callback_target_seconds": report.target_seconds,
    }
