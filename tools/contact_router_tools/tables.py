"""The one table renderer of the tools: a table of plain values as aligned terminal text,
CSV, JSON objects or Markdown.

A table is column names and rows of values: str, int, float, None (missing), datetime,
or a `Figure`, a number with its unit and precision for people ("12.3s", "83.3%") that
CSV and JSON write bare. Text is aligned to the left, numbers to the right; nothing here
knows what a report means.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

Table = tuple[Sequence[str], Sequence[Sequence[Any]]]
"""Column names and rows of plain values (str, int, float, None, datetime, Figure)."""


@dataclass(frozen=True, slots=True)
class Figure:
    """A number as a person reads it: value x scale with `digits` decimals and a unit.
    CSV and JSON get `value` itself, unscaled and unrounded."""

    value: float | None
    digits: int = 1
    unit: str = ""
    scale: float = 1.0
    signed: bool = False  # "+1.5": the sign of a difference

    def __str__(self) -> str:
        if self.value is None:
            return "-"
        shown = self.value * self.scale
        if math.isinf(shown):
            return "inf"
        sign = "+" if self.signed else ""
        return f"{shown:{sign}.{self.digits}f}{self.unit}"


def seconds(value: float | None, digits: int = 1) -> Figure:
    """Seconds with `digits` decimals: "12.3s" (one, the default), "20s" (none)."""
    return Figure(value, digits=digits, unit="s")


def percent(value: float | None, digits: int = 1, *, signed: bool = False) -> Figure:
    """A ratio as a percentage with `digits` decimals: 0.8333 reads "83.3%" (one)."""
    return Figure(value, digits=digits, unit="%", scale=100.0, signed=signed)


def points(value: float | None, digits: int = 1, *, signed: bool = True) -> Figure:
    """A difference of two shares in percentage points, signed: 0.015 reads "+1.5"."""
    return Figure(value, digits=digits, scale=100.0, signed=signed)


def number(value: float | None, digits: int) -> Figure:
    """A plain number with `digits` decimals."""
    return Figure(value, digits=digits)


def for_people(table: Table, ratio_columns: frozenset[str]) -> Table:
    """The table with the values of `ratio_columns` as percentages, for the terminal
    (CSV and JSON keep the fractions)."""
    header, rows = table
    shown = {i for i, name in enumerate(header) if name in ratio_columns}
    return header, [[percent(v) if i in shown else v for i, v in enumerate(row)] for row in rows]


def cell(value: Any) -> str:
    """A value as a person reads it in a terminal: floats to one decimal, times to the
    minute, nothing as "-"."""
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, float):
        return "inf" if math.isinf(value) else f"{value:.1f}"
    return str(value)


def _numeric(value: Any) -> bool:
    return value is None or isinstance(value, Figure | float) or type(value) is int


def render_table(table: Table, indent: str = "") -> str:
    """Aligned columns under a rule: numbers (every value a number or missing) to the
    right, anything else to the left; "(no rows)" under the rule when there are none."""
    header, rows = table
    cells = [[cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(header)]
    right = [bool(rows) and all(_numeric(row[i]) for row in rows) for i in range(len(header))]

    def line(values: Sequence[str]) -> str:
        return (
            indent
            + "  ".join(
                v.rjust(w) if right[i] else v.ljust(w)
                for i, (v, w) in enumerate(zip(values, widths, strict=True))
            )
        ).rstrip()

    lines = [line(header), line(["-" * w for w in widths])]
    lines += [line(r) for r in cells] if cells else [f"{indent}(no rows)"]
    return "\n".join(lines)


def render_markdown(table: Table) -> str:
    """A GitHub Markdown table (cells as in the terminal)."""
    header, rows = table
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def bare(value: Any) -> Any:
    """What CSV and JSON write: a Figure's own value, anything else unchanged."""
    return value.value if isinstance(value, Figure) else value


def render_csv(table: Table) -> str:
    """RFC 4180 CSV; times in ISO 8601, numbers unrounded, missing values empty."""
    header, rows = table
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        values = [bare(v) for v in row]
        writer.writerow(
            ["" if v is None else v.isoformat() if isinstance(v, datetime) else v for v in values]
        )
    return out.getvalue()


def jsonable(value: Any) -> Any:
    """A document made of plain JSON values: times in ISO 8601, infinities as null."""
    value = bare(value)
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
    """A table as a list of objects, one per row, for JSON."""
    header, rows = table
    return [dict(zip(header, row, strict=True)) for row in rows]
