"""What every servicer holds: the switchboard, and where to report how each RPC went."""

from __future__ import annotations

from collections.abc import Callable

from router.switchboard import Switchboard

RpcObserver = Callable[[str, str, float], None]
"""Told (method, status code name, seconds) after each RPC."""


def ignore_rpc(method: str, code: str, seconds: float) -> None:
    return None


class Servicer:
    def __init__(self, switchboard: Switchboard, observe_rpc: RpcObserver = ignore_rpc) -> None:
        self._switchboard = switchboard
        self.observe_rpc = observe_rpc
