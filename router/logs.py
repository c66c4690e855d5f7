"""Logging, configured once: JSON lines in production, readable in a terminal.

Every line about a contact or an agent carries its contact_id / agent_id: the
servicers bind them in contextvars at the start of each RPC, and the switchboard
passes them explicitly for events it logs.
"""

from __future__ import annotations

import logging
import os
import sys

import structlog

# gRPC core writes lines of its own to stderr, not JSON (`I1204 20:40:53 ... fork_posix.cc:71]
# Other threads are currently calling into gRPC, skipping fork() handlers`), at INFO and
# above unless told otherwise. It reads GRPC_VERBOSITY once, when grpc is first imported:
# `contact-router` imports this module before anything imports grpc (router/cli.py;
# tests/unit/test_logs.py keeps it so). Its errors still show; GRPC_VERBOSITY=debug, set
# by the operator, wins.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")


def configure(log_format: str = "auto", level: str = "info") -> None:
    """`auto` renders for humans on a TTY and JSON otherwise."""
    as_json = log_format == "json" or (log_format == "auto" and not sys.stderr.isatty())
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
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
