"""One queue of timers for the whole core: what must happen at a given instant.

Every timer has a kind and a key (the contact, offer or agent it is about: a string,
or a tuple of strings). Setting a
timer again for the same kind and key replaces it; cancelling it, or the state it was
about going away, makes its heap entry stale. Each entry carries the generation it was
set with, so a stale entry is recognised when it reaches the top of the heap and is
dropped there, in O(log n), without searching the heap.

Adding a timer to the core is one change in one place: a member of `Timer`, a
`timers.set(...)` where it starts, and a handler `Router._on_<kind>`; expiry, the
next wake-up and stale entries are handled here for every kind alike.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any


class Timer(Enum):
    """The kinds of timer, in the order they are handled when due at the same instant."""

    WAIT_CHANGES = "wait_changes"  # a queued contact's hold ends or a preferred skill relaxes
    FALLBACK = "fallback"  # an unserved contact moves to its channel's fallback skills
    CAP_LIFTS = "cap_lifts"  # an agent's oldest answer of the hour leaves the hour
    ANSWER_DUE = "answer_due"  # a chat or email uses its whole answer target: reserve yields
    RECLAIM_ENDS = "reclaim_ends"  # an agent's reconnect grace after a restart ends
    OFFER_EXPIRES = "offer_expires"  # an offer was not answered in time
    EXCLUSION_ENDS = "exclusion_ends"  # an agent may be offered a contact it declined again
    CALLBACK_DUE = "callback_due"  # a callback's window opens or its retry delay ends
    CALLBACK_WINDOW_ENDS = "callback_window_ends"  # a waiting callback's window closes

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {kind: rank for rank, kind in enumerate(Timer)}


@dataclass(order=True, frozen=True, slots=True)
class _Entry:
    """Ordered by instant, then kind, then key (timers due together fire in the same
    order whatever order they were set in); keys of one kind must be comparable."""

    at: datetime
    rank: int
    key: Any
    generation: int
    kind: Timer = field(compare=False)


COMPACT_SLACK = 1024
"""Stale entries always allowed, so that a small heap is never rebuilt for a few."""


class Timers:
    """A heap of (instant, kind, key) with one live timer per kind and key."""

    def __init__(self) -> None:
        self._heap: list[_Entry] = []
        self._live: dict[tuple[Timer, Hashable], _Entry] = {}
        self._generations = itertools.count()

    def set(self, kind: Timer, key: Hashable, at: datetime) -> None:
        """Fire `kind` for `key` at `at`, replacing any earlier timer of that kind and key."""
        live = self._live.get((kind, key))
        if live is not None and live.at == at:
            return
        entry = _Entry(at, kind.rank, key, next(self._generations), kind)
        self._live[(kind, key)] = entry
        heapq.heappush(self._heap, entry)
        if len(self._heap) > 2 * len(self._live) + COMPACT_SLACK:
            self._compact()

    def cancel(self, kind: Timer, key: Hashable) -> None:
        self._live.pop((kind, key), None)

    def at(self, kind: Timer, key: Hashable) -> datetime | None:
        """When the timer of `kind` for `key` fires, if one is set."""
        live = self._live.get((kind, key))
        return None if live is None else live.at

    def postpone(self, kind: Timer, until: datetime) -> None:
        """Every timer of `kind` due before `until` fires at `until` instead."""
        early = [key for (k, key), entry in self._live.items() if k is kind and entry.at < until]
        for key in early:
            self.set(kind, key, until)

    def next(self) -> datetime | None:
        """The instant of the earliest live timer."""
        self._drop_stale()
        return self._heap[0].at if self._heap else None

    def pop_due(self, now: datetime) -> tuple[Timer, Hashable] | None:
        """The earliest live timer due by `now` (removed), or None."""
        self._drop_stale()
        if not self._heap or self._heap[0].at > now:
            return None
        entry = heapq.heappop(self._heap)
        del self._live[(entry.kind, entry.key)]
        return entry.kind, entry.key

    def _compact(self) -> None:
        """The heap rebuilt from the live timers. A cancelled or replaced timer's entry
        stays in the heap until it reaches the top, and one long timer at the top keeps
        every later one there: a hot standby, whose timers never fire while it follows
        every change (router/domain/warm.py), grew its heap by an entry per change.
        Rebuilt when stale entries outnumber live ones, the heap stays within twice the
        live timers, at an amortised constant cost per set."""
        self._heap = list(self._live.values())
        heapq.heapify(self._heap)

    def held(self) -> int:
        """Heap entries, live and stale (what the heap holds in memory)."""
        return len(self._heap)

    def _drop_stale(self) -> None:
        heap = self._heap
        while heap and self._live.get((heap[0].kind, heap[0].key)) is not heap[0]:
            heapq.heappop(heap)
