"""Report shaping: ratios with their formulas, staffing from history, and the terminal
table, CSV and JSON renderings of a report. Pure: values in, values out."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

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


Table = tuple[Sequence[str], Sequence[Sequence[Any]]]
"""Column names and rows of plain values (str, int, float, None, datetime)."""


def cell(value: Any) -> str:
    """A value as a person reads it in a terminal: seconds and ratios rounded."""
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, float):
        if math.isinf(value):
            return "inf"
        return f"{value:.1f}"
    return str(value)


def percent(value: float | None) -> str | None:
    return None if value is None else f"{value * 100:.1f}%"


def render_table(table: Table) -> str:
    """Aligned columns: text to the left, numbers to the right."""
    header, rows = table
    cells = [[cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(header)]
    numeric = [
        all(isinstance(row[i], int | float) or row[i] is None for row in rows) and rows
        for i in range(len(header))
    ]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if numeric[i] else v.ljust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        ).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in cells])


def render_csv(table: Table) -> str:
    """RFC 4180 CSV; times in ISO 8601, numbers unrounded, missing values empty."""
    header, rows = table
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(
            ["" if v is None else v.isoformat() if isinstance(v, datetime) else v for v in row]
        )
    return out.getvalue()


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def render_json(document: Mapping[str, Any]) -> str:
    return json.dumps(jsonable(document), indent=2, sort_keys=False) + "\n"


def records(table: Table) -> list[dict[str, Any]]:
    """A table as a list of objects, for JSON."""
    header, rows = table
    return [dict(zip(header, row, strict=True)) for row in rows]
