"""The timer heap: one live timer per kind and key, and no unbounded growth."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from router.domain.timers import COMPACT_SLACK, Timer, Timers

T0 = datetime(2026, 12, 5, 9, tzinfo=UTC)


def test_replaced_and_cancelled_timers_do_not_pile_up_behind_a_long_one() -> None:
    """A timer that stays at the top (a long wait) keeps the stale entries of every
    later timer from reaching it: as on a hot standby, which follows every change and
    fires nothing, the heap must still stay within twice the live timers."""
    timers = Timers()
    timers.set(Timer.FALLBACK, "oldest", T0)
    for change in range(20):
        for n in range(1_000):
            timers.set(Timer.FALLBACK, f"contact-{n}", T0 + timedelta(seconds=change + n + 1))
        for n in range(0, 1_000, 2):
            timers.cancel(Timer.FALLBACK, f"contact-{n}")
    live = 1 + 500
    assert timers.held() <= 2 * live + COMPACT_SLACK + 1
    fired: list[str] = []
    while (due := timers.pop_due(T0 + timedelta(days=1))) is not None:
        fired.append(str(due[1]))
    assert fired[0] == "oldest"
    assert sorted(fired[1:]) == sorted(f"contact-{n}" for n in range(1, 1_000, 2))
    assert timers.next() is None
