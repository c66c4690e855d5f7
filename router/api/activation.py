"""Calls that arrive while this router takes over wait for it instead of being refused.

A standby that has taken the active lock restores the queue before it serves (a second
or more at a large center). Refusing the calls of that moment (UNAVAILABLE, as a
standby refuses them) made every agent's desk retry after its backoff: thousands of
retries competed with the restore and its first commit for the one event loop, and
each desk then waited out up to its longest backoff (5 s) before it asked again. Held
instead, each call goes on the moment the router serves, or is refused as before once
`HOLD_SECONDS` have passed (a restore that slow, or an activation that failed).

A standby that does not hold the lock still refuses at once: the active router serves.
The check runs in the wrapper every router method already has (router/api/malformed.py),
one attribute read per call, rather than in a server interceptor, whose chain of
coroutines grpcio runs on every call.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Protocol

import structlog

log = structlog.get_logger(__name__)

HOLD_SECONDS = 10.0
"""The longest a call waits for the router it reached to finish taking over."""


class Holding(Protocol):
    """What the method wrappers ask (router.api.servicer.ActiveSwitchboard)."""

    held_calls: int

    @property
    def activating(self) -> bool: ...

    @property
    def serving(self) -> asyncio.Event: ...


async def hold(holding: Holding, method: str, most: float = HOLD_SECONDS) -> None:
    """Wait, at most `most` seconds, for the router taking over to serve. Called only
    while `holding.activating`. The first call held is logged, the others counted
    (`router_active` says how many): thousands of desks may call in that second."""
    if not holding.held_calls:
        log.info("rpc_held", rpc=method.rsplit("/", 1)[-1])
    holding.held_calls += 1
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(holding.serving.wait(), most)
