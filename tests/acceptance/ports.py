"""Ports for processes that must be told theirs before they start.

Wherever a process can choose its own port and say which it took (the router with
ROUTER_PORT=0 logs it on `router_listening`), prefer that; this is for the rest: an
address to restart on, a PostgreSQL replica, a metrics port.

A port the kernel picks (bind to port 0) comes from its ephemeral range, the same range
it takes every outgoing connection's own port from: with four test workers connecting
to PostgreSQL and to routers all the time, such a port was taken between the probe and
the router's start (CI, test_crash_safety: "127.0.0.1:36369 is in use"). So the ports
here are counted out of a block below the ephemeral range, which the kernel gives to
nobody unasked, one block per pytest-xdist worker, each port handed out once per
process and checked free before it is.
"""

from __future__ import annotations

import itertools
import os
import socket
from collections.abc import Iterator
from pathlib import Path

_BLOCK = 1_000
"""Ports per test process: far more than a session's tests ask for."""
_WORKERS = 8
"""Blocks below the ephemeral range: pytest-xdist workers gw0 to gw7 (more share)."""


def _ephemeral_start() -> int:
    """The first port of the kernel's ephemeral range (Linux; 32768 by default)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def _block() -> Iterator[int]:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    index = int(worker) % _WORKERS if worker.isdigit() else 0
    first = _ephemeral_start() - _WORKERS * _BLOCK + index * _BLOCK
    if first < 1_024:
        raise RuntimeError("the ephemeral port range leaves no room below it for test ports")
    # Another test session on the machine counts the same block: starting at a place
    # of this process's own makes the two meet (and the probe's check matter) rarely.
    start = os.getpid() % _BLOCK
    return itertools.chain(range(first + start, first + _BLOCK), range(first, first + start))


_PORTS = _block()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on or is bound to, that no other test
    process of this session hands out, and that the kernel gives to no connection."""
    for port in itertools.islice(_PORTS, _BLOCK):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("this test process has used up its block of ports")
