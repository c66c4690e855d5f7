"""The event stream: every recorded event from a cursor, history first, then live.

One follower of the store's event feed (router/store/event_feed.py) reads each commit's
events once, whatever the number of streams, and hands them to every stream that is
live; it runs only while a stream is live (without one, a read per commit would cost the
router and PostgreSQL for nobody). A stream first reads the history after its cursor
from PostgreSQL, page by page; near the end it subscribes, reads once more (what
committed meanwhile is then in the history or in its buffer, or both: it skips numbers
it has passed), and goes on from its buffer. A stream whose bounded buffer fills (its
consumer reads slower than events come) is dropped from the follower and reads from
PostgreSQL again, by its position, until it catches up: a slow consumer costs a query
per page it reads, never routing time or the router's memory.

Cursors are opaque: a version byte, eight bytes naming the database (a digest of its
origin id and oid, so a cursor of another database is refused) and the event's number.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass, field

import structlog

from router.errors import InvalidArgument, ShuttingDown, TooManyStreams
from router.store.event_feed import PAGE, EventFeed, Origin, StoredEvent

log = structlog.get_logger(__name__)

_VERSION = 1
_CURSOR_BYTES = 17

BUFFER = 2_000
"""Events a live stream may hold unsent before it is sent back to PostgreSQL."""


@dataclass(frozen=True, slots=True)
class Cursors:
    """Encodes and checks the cursors of one database."""

    origin: Origin

    @property
    def _tag(self) -> bytes:
        return hashlib.sha256(f"{self.origin.origin}:{self.origin.oid}".encode()).digest()[:8]

    def encode(self, seq: int) -> str:
        raw = bytes([_VERSION]) + self._tag + seq.to_bytes(8, "big")
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def decode(self, cursor: str, last_seq: int) -> int:
        """The number `cursor` stands for (0 for an empty one); InvalidArgument if it is
        malformed, of another database, or beyond `last_seq`, the highest number given out."""
        if not cursor:
            return 0
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except (binascii.Error, ValueError):
            raise InvalidArgument("cursor", "malformed: pass a cursor as received") from None
        if len(raw) != _CURSOR_BYTES or raw[0] != _VERSION:
            raise InvalidArgument("cursor", "malformed: pass a cursor as received")
        if raw[1:9] != self._tag:
            raise InvalidArgument(
                "cursor", "is from another database: this router cannot resume from it"
            )
        seq = int.from_bytes(raw[9:], "big")
        if seq > last_seq:
            raise InvalidArgument("cursor", "is ahead of every event recorded in this database")
        return seq


@dataclass(eq=False, slots=True)
class _Subscriber:
    capacity: int
    buffer: deque[StoredEvent] = field(default_factory=deque)
    woken: asyncio.Event = field(default_factory=asyncio.Event)
    behind: bool = False
    closed: bool = False

    def push(self, page: Sequence[StoredEvent]) -> bool:
        """Take `page`; False (and the buffer emptied) if it does not fit."""
        if len(self.buffer) + len(page) > self.capacity:
            self.behind = True
            self.buffer.clear()
            self.woken.set()
            return False
        self.buffer.extend(page)
        self.woken.set()
        return True


class EventHub:
    """The active router's event streams, fed by one follower of `feed`."""

    def __init__(self, feed: EventFeed, *, max_streams: int, buffer: int = BUFFER) -> None:
        self._feed = feed
        self._max_streams = max_streams
        self._buffer = buffer
        self._streams = 0
        self._live: set[_Subscriber] = set()
        self._task: asyncio.Task[None] | None = None
        self._starting = asyncio.Lock()
        self._cursors: Cursors | None = None
        self._closing = False
        self.pages_read = 0
        """Pages the follower read (one query each), for tests and curiosity."""

    async def start(self) -> None:
        """Read what names this database in cursors. The follower starts with the first
        live stream (`_join`)."""
        self._cursors = Cursors(await self._feed.origin())

    async def _join(self, subscriber: _Subscriber) -> None:
        """Make `subscriber` live, the follower running. A follower started here starts
        after what is committed now, before the subscriber reads PostgreSQL again: what
        commits later reaches its buffer (a transaction in flight numbers above it)."""
        self._live.add(subscriber)
        async with self._starting:
            if self._task is None or self._task.done():
                position = await self._feed.last_committed_seq()
                self._task = asyncio.create_task(self._follow(position), name="event-hub")

    def _leave(self, subscriber: _Subscriber) -> None:
        """`subscriber` is no longer live; the last one to leave stops the follower."""
        self._live.discard(subscriber)
        if not self._live and self._task is not None:
            self._task.cancel()
            self._task = None

    async def close(self) -> None:
        """End every stream (UNAVAILABLE: the consumer resumes elsewhere) and stop."""
        self._closing = True
        for subscriber in self._live:
            subscriber.closed = True
            subscriber.woken.set()
        self._live.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @property
    def cursors(self) -> Cursors:
        if self._cursors is None:
            raise ShuttingDown("the event stream is not started")
        return self._cursors

    @property
    def open_streams(self) -> int:
        return self._streams

    async def _follow(self, position: int) -> None:
        """Hand each page to every live stream. Should the follower fail (a bug, not an
        outage: the feed waits those out), the live streams go back to PostgreSQL and
        it starts again where it was."""
        while True:
            try:
                async for page in self._feed.follow(position):
                    self.pages_read += 1
                    position = page[-1].seq
                    for subscriber in list(self._live):
                        if not subscriber.push(page):
                            self._live.discard(subscriber)
            except Exception:
                log.exception("event_follower_failed", after=position)
                for subscriber in self._live:
                    subscriber.behind = True
                    subscriber.woken.set()
                self._live.clear()
                await asyncio.sleep(1.0)

    async def stream(self, cursor: str) -> AsyncGenerator[tuple[str, StoredEvent]]:
        """(cursor, event) for every event after `cursor`, for ever. InvalidArgument for
        a bad cursor, TooManyStreams beyond the limit, ShuttingDown when the router stops."""
        if self._closing:
            raise ShuttingDown("the router is stopping: resume on its successor")
        if self._streams >= self._max_streams:
            raise TooManyStreams(
                "too many event streams are open: close one, or raise ROUTER_MAX_EVENT_STREAMS",
                limit=self._max_streams,
            )
        cursors = self.cursors
        self._streams += 1
        try:
            seq = cursors.decode(cursor, await self._feed.last_seq())
            async for event in self._events_after(seq):
                yield cursors.encode(event.seq), event
        finally:
            self._streams -= 1

    async def _read_after(self, seq: int) -> list[StoredEvent]:
        if self._closing:
            raise ShuttingDown("the router is stopping: resume on its successor")
        return await self._feed.read_after(seq)

    async def _recorded_after(self, seq: int) -> AsyncIterator[StoredEvent]:
        """From PostgreSQL, page by page, until a short page: near the end of what is
        committed."""
        while True:
            page = await self._read_after(seq)
            for event in page:
                yield event
            if len(page) < PAGE:
                return
            seq = page[-1].seq

    async def _events_after(self, seq: int) -> AsyncIterator[StoredEvent]:
        while True:
            async for event in self._recorded_after(seq):
                yield event
                seq = event.seq
            subscriber = _Subscriber(self._buffer)
            try:
                await self._join(subscriber)
                # What committed before the follower's position is in PostgreSQL: read
                # it; what commits after reaches the buffer. Overlap is skipped by number.
                async for event in self._recorded_after(seq):
                    yield event
                    seq = event.seq
                while not subscriber.behind:
                    if subscriber.closed:
                        raise ShuttingDown("the router is stopping: resume on its successor")
                    if not subscriber.buffer:
                        subscriber.woken.clear()
                        await subscriber.woken.wait()
                        continue
                    event = subscriber.buffer.popleft()
                    if event.seq > seq:
                        yield event
                        seq = event.seq
                log.info("event_stream_behind", after=seq)
            finally:
                self._leave(subscriber)
