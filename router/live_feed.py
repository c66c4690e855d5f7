"""One picture of the live queue per update, however many watch it.

WatchQueue's watchers must cost the router one picture per update, not one per
watcher, and a busy router must not build one per event. So:

- `Coalescer` (pure: every time is passed in) decides when the next picture is due:
  at once for the first, then no sooner than `interval` after the last one however
  many changes came in between, and after `refresh` without any change (waits grow
  and the rolling service level's window moves while nothing happens).
- `Slot` is one watcher's mailbox: it keeps only the newest picture, so a watcher
  that reads slowly skips pictures and never holds more than one.
- `LiveFeed` runs the one producer task while anyone watches: it builds each picture
  once and puts it in every slot; it bounds the number of slots and, when the router
  stops, ends every slot with the error their streams end with.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import structlog

from router.errors import InternalError, RouterError, TooManyWatchers

log = structlog.get_logger(__name__)

T = TypeVar("T")


WATCH_INTERVAL = 0.25
"""Least seconds between two pictures by default: a few a second however busy the
router is."""
MAX_WATCHERS = 1000
"""Most watchers at once by default; each holds at most one picture (a few hundred
bytes) besides what gRPC buffers for its connection."""


@dataclass(frozen=True, slots=True)
class FeedSettings:
    """ROUTER_WATCH_INTERVAL_SECONDS and ROUTER_MAX_WATCHERS."""

    interval: float = WATCH_INTERVAL
    max_watchers: int = MAX_WATCHERS


class Coalescer:
    """When the next picture is due, given the changes seen since the last one."""

    def __init__(self, interval: float, refresh: float | None = None) -> None:
        """`interval`: least seconds between two pictures; `refresh`: most seconds
        between two (None: only on a change)."""
        self.interval = interval
        self.refresh = refresh
        self._last: float | None = None
        self._dirty = False

    def changed(self) -> bool:
        """Something changed; True when it is the first change since the last picture
        (only then can the due time move closer)."""
        first = not self._dirty
        self._dirty = True
        return first

    def due(self, now: float) -> float:
        """Seconds from `now` until the next picture is due (0: now; inf: only after
        a change)."""
        if self._last is None:
            return 0.0
        if self._dirty:
            return max(0.0, self._last + self.interval - now)
        if self.refresh is None:
            return math.inf
        return max(0.0, self._last + max(self.refresh, self.interval) - now)

    def built(self, now: float) -> None:
        """A picture was taken at `now`: it holds every change seen so far."""
        self._last = now
        self._dirty = False


class Slot(Generic[T]):
    """One watcher's newest picture: putting a new one replaces any unread one."""

    def __init__(self) -> None:
        self._latest: T | None = None
        self._ready = asyncio.Event()
        self._closed = False
        self.ending: RouterError | None = None
        """Once closed: the error the watcher's stream ends with."""
        self.skipped = 0
        """Pictures replaced before the watcher read them."""

    def put(self, picture: T) -> None:
        if self._closed:
            return
        if self._latest is not None:
            self.skipped += 1
        self._latest = picture
        self._ready.set()

    def close(self, ending: RouterError) -> None:
        """No more pictures: an unread one is still read, then `next` returns None."""
        self._closed = True
        self.ending = ending
        self._ready.set()

    async def next(self) -> T | None:
        """The newest unread picture, waiting for one; None once closed."""
        await self._ready.wait()
        picture, self._latest = self._latest, None
        if not self._closed:
            self._ready.clear()
        return picture


class LiveFeed(Generic[T]):
    """One producer, many watchers: see the module's docstring."""

    def __init__(
        self,
        build: Callable[[int], T],
        *,
        interval: float,
        refresh: float | None = 1.0,
        limit: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`build(sequence)`: the picture numbered `sequence` (1, 2, ...); `limit`: the
        most watchers at once."""
        self._build = build
        self._coalescer = Coalescer(interval, refresh)
        self._limit = limit
        self._clock = clock
        self._slots: set[Slot[T]] = set()
        self._latest: T | None = None
        self._wake = asyncio.Event()
        self._producer: asyncio.Task[None] | None = None
        self._ending: RouterError | None = None
        self.built = 0
        """Pictures built since the start (the sequence of the newest)."""

    @property
    def watchers(self) -> int:
        return len(self._slots)

    def subscribe(self) -> Slot[T]:
        """A new watcher's slot, holding the newest picture at once when there is one
        (else the producer takes one now). TooManyWatchers beyond the limit; the
        closing error once closed."""
        if self._ending is not None:
            raise self._ending
        if len(self._slots) >= self._limit:
            raise TooManyWatchers(
                f"this router serves its maximum of {self._limit} queue watchers "
                "(ROUTER_MAX_WATCHERS): close one, or try later",
                limit=str(self._limit),
            )
        slot: Slot[T] = Slot()
        self._slots.add(slot)
        if self._latest is not None:
            slot.put(self._latest)
        else:
            self.changed()
        if self._producer is None or self._producer.done():
            self._producer = asyncio.create_task(self._produce(), name="live-feed")
        return slot

    def unsubscribe(self, slot: Slot[T]) -> None:
        self._slots.discard(slot)
        if not self._slots:
            # Nobody keeps it fresh any more: the next watcher gets a new picture.
            self._latest = None
            self._wake.set()  # the producer sees nobody is left, and ends

    def changed(self) -> None:
        """Something the picture shows changed (a switchboard observer calls this
        with each batch of events): a picture is due within `interval`."""
        if self._coalescer.changed():
            self._wake.set()

    async def close(self, ending: RouterError) -> None:
        """End every watcher with `ending`, refuse new ones with it, stop producing."""
        self._ending = ending
        for slot in self._slots:
            slot.close(ending)
        self._slots.clear()
        self._latest = None
        if self._producer is not None:
            self._producer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._producer

    async def _produce(self) -> None:
        try:
            while self._slots:
                wait = self._coalescer.due(self._clock())
                if wait > 0:
                    self._wake.clear()
                    timeout = None if wait == math.inf else wait
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout)
                    continue
                self.built += 1
                picture = self._build(self.built)
                self._coalescer.built(self._clock())
                self._latest = picture
                for slot in self._slots:
                    slot.put(picture)
        except Exception:
            log.exception("live_feed_failed")
            failure = InternalError("the live queue feed failed; see server log")
            for slot in self._slots:
                slot.close(failure)
            self._slots.clear()
            self._latest = None
