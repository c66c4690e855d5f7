"""What every servicer holds: the active switchboard, and where to report how each RPC
went."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from router.errors import NotActive
from router.event_stream import EventHub
from router.reporting.reporting import Reporting
from router.switchboard import Switchboard

RpcObserver = Callable[[str, str, float], None]
"""Told (method, status code name, seconds) after each RPC."""


StreamObserver = Callable[[float], None]
"""Told how many seconds an offer stream was open, when it ends (its own histogram:
a stream lasts as long as the agent is present, not an RPC latency)."""


def ignore_rpc(method: str, code: str, seconds: float) -> None:
    return None


def ignore_stream(seconds: float) -> None:
    return None


class ActiveSwitchboard:
    """The switchboard, once this process is the active router.

    The gRPC server starts before the process knows whether it is active (a standby
    answers health checks with NOT_SERVING while it waits), so servicers are built
    around this holder and answer UNAVAILABLE until it is filled.
    """

    def __init__(
        self,
        switchboard: Switchboard | None = None,
        reporting: Reporting | None = None,
        events: EventHub | None = None,
    ) -> None:
        self.switchboard = switchboard
        self.reporting = reporting
        """The reports, built with the switchboard when this router becomes active."""
        self.events = events
        """The event streams' hub, started when this router becomes active."""
        self.activating = False
        """This router holds the active lock and is restoring: calls wait for it
        (router/api/activation.py) rather than being refused."""
        self.serving = asyncio.Event()
        """Set once the switchboard, the reports and the event hub are all in place."""
        self.held_calls = 0
        """Calls that waited for this router to take over."""

    def taking_over(self) -> None:
        """The active lock is this router's: it restores, then serves."""
        self.activating = True

    def serve(self, switchboard: Switchboard, reporting: Reporting, events: EventHub) -> None:
        """The router serves: every call held meanwhile goes on."""
        self.reporting = reporting
        self.events = events
        self.switchboard = switchboard
        self.activating = False
        self.serving.set()

    def get(self) -> Switchboard:
        if self.switchboard is None:
            raise _standby()
        return self.switchboard

    def get_reporting(self) -> Reporting:
        if self.reporting is None:
            raise _standby()
        return self.reporting

    def get_events(self) -> EventHub:
        if self.events is None:
            raise _standby()
        return self.events


def _standby() -> NotActive:
    return NotActive(
        "this router is a standby: the active router serves; retry, or connect "
        "through the service address"
    )


class Servicer:
    def __init__(
        self,
        active: ActiveSwitchboard,
        observe_rpc: RpcObserver = ignore_rpc,
        observe_stream: StreamObserver = ignore_stream,
    ) -> None:
        self._active = active
        self.observe_rpc = observe_rpc
        self.observe_stream = observe_stream

    @property
    def _switchboard(self) -> Switchboard:
        return self._active.get()

    @property
    def _reporting(self) -> Reporting:
        return self._active.get_reporting()
