"""Report shaping: ratios with their formulas and staffing from history. Pure: values
in, values out. (The command-line tools render reports: contact_router_tools.tables.)"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

OCCUPANCY_FORMULA = "occupancy = time handling contacts / time ready or handling"
UTILIZATION_FORMULA = "utilization = time handling contacts / time signed in (ready or away)"
HANDLING = (
    "handling = time holding at least one answered contact, from answer to the end of "
    "wrap-up (parallel chats count once)"
)
ABANDONMENT_FORMULA = "abandonment rate = abandoned / offered"


def ratio(numerator: float, denominator: float) -> float | None:
    """numerator / denominator, or None when the denominator is 0 (nothing to divide)."""
    return None if denominator <= 0 else numerator / denominator


def history_forecast(
    intervals: Sequence[tuple[datetime, int, int, float | None]],
) -> list[tuple[datetime, float, float]]:
    """(start, calls, AHT) per interval from recorded (start, offered, short abandoned,
    AHT) rows: calls are the offered contacts less short abandons (they put no work on
    anyone); an interval without a completed contact takes the mean AHT of the range,
    weighted by calls."""
    known = [(o - s, aht) for _, o, s, aht in intervals if aht is not None and o - s > 0]
    weight = sum(calls for calls, _ in known)
    overall = sum(calls * aht for calls, aht in known) / weight if weight else 0.0
    return [
        (start, float(offered - short), overall if aht is None else aht)
        for start, offered, short, aht in intervals
    ]
