"""router.live_feed: when pictures are due, what a slow watcher keeps, and that one
picture serves every watcher."""

from __future__ import annotations

import asyncio
import math

import pytest

from router.errors import ShuttingDown, TooManyWatchers
from router.live_feed import Coalescer, LiveFeed, Slot


class TestCoalescer:
    def test_the_first_picture_is_due_at_once(self) -> None:
        """Nothing built yet: due now, change or not."""
        assert Coalescer(0.25).due(100.0) == 0.0

    def test_changes_wait_for_the_interval_since_the_last_picture(self) -> None:
        """A change right after a picture is due `interval` after it, not sooner."""
        pace = Coalescer(0.25)
        pace.built(100.0)
        pace.changed()
        assert pace.due(100.1) == pytest.approx(0.15)
        assert pace.due(100.3) == 0.0

    def test_many_changes_make_one_picture(self) -> None:
        """Only the first change since a picture can bring the due time closer; after
        the picture, nothing is due until the next change."""
        pace = Coalescer(0.25)
        pace.built(100.0)
        firsts = [pace.changed() for _ in range(1000)]
        assert firsts == [True] + [False] * 999
        pace.built(100.25)
        assert pace.due(100.3) == math.inf

    def test_a_quiet_queue_is_refreshed(self) -> None:
        """Without a change, a picture is due `refresh` after the last (never sooner
        than the interval)."""
        pace = Coalescer(0.25, refresh=1.0)
        pace.built(100.0)
        assert pace.due(100.5) == pytest.approx(0.5)
        assert pace.due(101.5) == 0.0
        assert Coalescer(2.0, refresh=1.0).due(0.0) == 0.0
        slow = Coalescer(2.0, refresh=1.0)
        slow.built(0.0)
        assert slow.due(1.5) == pytest.approx(0.5)


class TestSlot:
    async def test_keeps_only_the_newest_picture(self) -> None:
        """Three pictures put before a read: the read gets the third, two skipped."""
        slot: Slot[int] = Slot()
        for picture in (1, 2, 3):
            slot.put(picture)
        assert await slot.next() == 3
        assert slot.skipped == 2
        slot.put(4)
        assert await slot.next() == 4

    async def test_closing_delivers_the_unread_picture_then_ends(self) -> None:
        """A picture unread when the slot closes is still read; then None, with the
        ending; later puts are dropped."""
        slot: Slot[int] = Slot()
        slot.put(1)
        slot.close(ShuttingDown("stopping"))
        slot.put(2)
        assert await slot.next() == 1
        assert await slot.next() is None
        assert isinstance(slot.ending, ShuttingDown)


class Pictures:
    """A build function that counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, sequence: int) -> int:
        self.calls += 1
        return sequence


class TestLiveFeed:
    async def test_one_picture_serves_every_watcher(self) -> None:
        """500 watchers and a burst of 1,000 changes: each picture is built once and
        every watcher reads the same ones."""
        build = Pictures()
        feed: LiveFeed[int] = LiveFeed(build, interval=0.01, refresh=None, limit=500)
        slots = [feed.subscribe() for _ in range(500)]
        firsts = await asyncio.gather(*(slot.next() for slot in slots))
        assert set(firsts) == {1}
        assert build.calls == 1
        for _ in range(1000):
            feed.changed()
        seconds = await asyncio.gather(*(slot.next() for slot in slots))
        assert set(seconds) == {2}
        assert build.calls == 2
        await feed.close(ShuttingDown("stopping"))

    async def test_a_new_watcher_gets_the_newest_picture_without_a_build(self) -> None:
        """A watcher joining between updates reads the picture already built."""
        build = Pictures()
        feed: LiveFeed[int] = LiveFeed(build, interval=0.01, refresh=None, limit=10)
        assert await feed.subscribe().next() == 1
        assert await feed.subscribe().next() == 1
        assert build.calls == 1
        await feed.close(ShuttingDown("stopping"))

    async def test_a_quiet_queue_still_gets_pictures(self) -> None:
        """Without any change, a new picture comes after `refresh` (waits grow)."""
        build = Pictures()
        feed: LiveFeed[int] = LiveFeed(build, interval=0.001, refresh=0.01, limit=1)
        slot = feed.subscribe()
        assert [await slot.next(), await slot.next()] == [1, 2]
        await feed.close(ShuttingDown("stopping"))

    async def test_the_last_watcher_leaving_stops_the_pictures(self) -> None:
        """Nobody watching: the producer ends, and the next watcher gets a new picture
        rather than the stale one."""
        build = Pictures()
        feed: LiveFeed[int] = LiveFeed(build, interval=0.001, refresh=None, limit=1)
        slot = feed.subscribe()
        assert await slot.next() == 1
        feed.unsubscribe(slot)
        assert await feed.subscribe().next() == 2
        await feed.close(ShuttingDown("stopping"))

    async def test_watchers_beyond_the_limit_are_refused(self) -> None:
        """The limit's next watcher gets TooManyWatchers; one leaving makes room."""
        feed: LiveFeed[int] = LiveFeed(Pictures(), interval=0.01, refresh=None, limit=2)
        first, _ = feed.subscribe(), feed.subscribe()
        with pytest.raises(TooManyWatchers, match="maximum of 2"):
            feed.subscribe()
        feed.unsubscribe(first)
        feed.subscribe()
        assert feed.watchers == 2
        await feed.close(ShuttingDown("stopping"))

    async def test_closing_ends_every_watcher_and_refuses_new_ones(self) -> None:
        """close(ending): each slot ends with it, and a later subscribe raises it."""
        feed: LiveFeed[int] = LiveFeed(Pictures(), interval=0.01, refresh=None, limit=5)
        slot = feed.subscribe()
        assert await slot.next() == 1
        ending = ShuttingDown("stopping")
        await feed.close(ending)
        assert await slot.next() is None
        assert slot.ending is ending
        with pytest.raises(ShuttingDown):
            feed.subscribe()

    async def test_a_failing_build_ends_the_watchers_with_internal(self) -> None:
        """A picture that cannot be built ends its watchers (INTERNAL) instead of
        leaving them waiting."""

        def broken(sequence: int) -> int:
            raise ValueError("bug")

        feed: LiveFeed[int] = LiveFeed(broken, interval=0.01, refresh=None, limit=5)
        slot = feed.subscribe()
        assert await slot.next() is None
        assert slot.ending is not None
        assert slot.ending.reason == "INTERNAL"
