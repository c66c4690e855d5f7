"""Logging, configured once: JSON lines in production, readable in a terminal.

Every line about a contact or an agent carries its contact_id / agent_id: the
servicers bind them in contextvars at the start of each RPC, and the switchboard
passes them explicitly for events it logs.
"""

from __future__ import annotations

import logging
import sys

import structlog
from opentelemetry import trace


def add_trace_ids(
    logger: object, method: str, event_dict: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    """trace_id and span_id of the current span (router/tracing.py), as an OTLP backend
    shows them (hex), on each line logged inside one; installed only with tracing on."""
    span = trace.get_current_span().get_span_context()
    if span.is_valid:
        event_dict["trace_id"] = format(span.trace_id, "032x")
        event_dict["span_id"] = format(span.span_id, "016x")
    return event_dict


def configure(log_format: str = "auto", level: str = "info", *, trace_ids: bool = False) -> None:
    """`auto` renders for humans on a TTY and JSON otherwise; `trace_ids` (tracing is
    on) adds the current span's ids to each line."""
    as_json = log_format == "json" or (log_format == "auto" and not sys.stderr.isatty())
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            *([add_trace_ids] if trace_ids else []),
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
