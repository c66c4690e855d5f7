"""Ports for processes that must be told theirs before they start.

A port found free here can still be taken by another process before the one it is
meant for binds it. Wherever a process can choose its own port and say which it took
(the router with ROUTER_PORT=0 logs it on `router_listening`), prefer that; this is for
the rest: an address to restart on, a PostgreSQL replica, a metrics port.
"""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listened on a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
