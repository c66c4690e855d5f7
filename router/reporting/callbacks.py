"""Queued callbacks as a report, apart from inbound calls: each row's service level,
and the formula it is computed by. Pure: values in, values out.

A callback's customer is not holding on a line: what the center controls is how soon
it dials, not whether the customer picks up. So a callback meets its service level when
its first dial comes within the callback target (ROUTER_CALLBACK_TARGET_SECONDS) of its
start: its queued_at, the first moment of the customer's wait, or its window's start
when the customer asked to be called later. Reached and unreached are reported beside
it. Inbound calls' service level never counts callbacks (report_contacts leaves them
out), so neither figure is diluted by the other.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from router.reporting.report import ratio
from router.store.reports import CallbackFigures

CALLBACK_FORMULA = (
    "callback service level = callbacks first dialled within the callback target of their "
    "start (queued_at, or not_before when the customer asked for later) / (callbacks "
    "dialled + callbacks that ended unreached before a dial); callbacks cancelled by the "
    "customer or a supervisor, or still waiting, do not count"
)


@dataclass(frozen=True, slots=True)
class CallbackRow:
    figures: CallbackFigures
    service_level: float | None
    """placed within target / (placed + unreached before a dial); None when none count."""


@dataclass(frozen=True, slots=True)
class CallbackReport:
    rows: list[CallbackRow]
    formula: str
    target_seconds: float


def callback_rows(figures: Iterable[CallbackFigures]) -> list[CallbackRow]:
    return [
        CallbackRow(f, ratio(f.placed_within_target, f.placed + f.unreached_before_dial))
        for f in figures
    ]
