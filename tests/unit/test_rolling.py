"""Rolling service level over a window, from outcomes passed in with their times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from router.domain import Channel, RoutingPolicy
from router.domain.rolling import RollingServiceLevel

T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


class TestRollingServiceLevel:
    def test_share_answered_within_threshold(self) -> None:
        """Answers at or under the channel's target count as within; over it, not."""
        rolling = RollingServiceLevel(RoutingPolicy(), window=900)
        rolling.answered(Channel.PHONE, at(0), 20.0)
        rolling.answered(Channel.PHONE, at(1), 20.5)
        assert rolling.value(Channel.PHONE, at(2)) == 0.5
        assert rolling.value(Channel.CHAT, at(2)) is None

    def test_short_abandons_do_not_count(self) -> None:
        """Customers who leave within the short-abandon limit are left out."""
        rolling = RollingServiceLevel(RoutingPolicy(short_abandon=5.0), window=900)
        rolling.answered(Channel.PHONE, at(0), 3.0)
        rolling.abandoned(Channel.PHONE, at(1), 4.0)
        assert rolling.value(Channel.PHONE, at(2)) == 1.0
        rolling.abandoned(Channel.PHONE, at(3), 6.0)
        assert rolling.value(Channel.PHONE, at(4)) == 0.5

    def test_old_outcomes_leave_the_window(self) -> None:
        """Only outcomes within the last `window` seconds count."""
        rolling = RollingServiceLevel(RoutingPolicy(), window=60)
        rolling.answered(Channel.PHONE, at(0), 30.0)
        rolling.answered(Channel.PHONE, at(30), 1.0)
        assert rolling.value(Channel.PHONE, at(59)) == 0.5
        assert rolling.value(Channel.PHONE, at(61)) == 1.0
        assert rolling.value(Channel.PHONE, at(200)) is None


@given(
    st.lists(
        st.tuples(st.integers(0, 300_000), st.floats(0, 60), st.booleans()), min_size=1, max_size=40
    ),
    st.integers(0, 400_000),
)
def test_running_count_matches_a_recount(
    outcomes: list[tuple[int, float, bool]], read_at_ms: int
) -> None:
    """Read at any moment (twice, as scrapes do), the running count equals counting the
    outcomes still in the window from scratch. Times are whole milliseconds, which a
    datetime holds exactly."""
    read_at = read_at_ms / 1000
    policy = RoutingPolicy()
    rolling = RollingServiceLevel(policy, window=120)
    ordered = sorted(outcomes)
    for when, wait, answered in ordered:
        if answered:
            rolling.answered(Channel.PHONE, at(when / 1000), wait)
        else:
            rolling.abandoned(Channel.PHONE, at(when / 1000), wait)
    kept = [
        wait <= policy.of(Channel.PHONE).answer_target if answered else False
        for when, wait, answered in ordered
        if when > read_at_ms - 120_000 and (answered or wait > policy.short_abandon)
    ]
    for _ in range(2):
        expected = sum(kept) / len(kept) if kept else None
        assert rolling.value(Channel.PHONE, at(read_at)) == expected
