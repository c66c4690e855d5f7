"""The estimated wait's arithmetic: seconds per place learned from the contacts that
queued and were answered, with the answer rate as its stand-in (answer_rate)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.domain import Channel
from router.domain.answer_rate import MIN_SAMPLES, SAMPLES, AnswerRate

T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
PHONE, CHAT, EMAIL = Channel.PHONE, Channel.CHAT, Channel.EMAIL

# (seconds waited, place at entry) of one contact that queued and was answered
waits = st.lists(
    st.tuples(st.floats(0, 10_000, allow_nan=False), st.integers(1, 5_000)), max_size=250
)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def learned(samples: list[tuple[float, int]], channel: Channel = PHONE) -> AnswerRate:
    """An AnswerRate that saw each sample enter the queue as the one before was
    answered, and be answered after its wait."""
    rate = AnswerRate()
    now = 0.0
    for n, (wait, place) in enumerate(samples):
        rate.entered(f"c{n}", place, at(now))
        now += wait
        rate.note(f"c{n}", channel, at(now), still_waiting=True)
    return rate


class TestSecondsPerPlace:
    def test_waits_over_places_of_the_last_answered(self) -> None:
        """Sum of waits / sum of places at entry, once MIN_SAMPLES contacts waited."""
        samples = [(10.0, 1), (30.0, 2), (20.0, 1), (60.0, 4), (40.0, 2)]
        rate = learned(samples[:-1])
        assert rate.seconds_per_place(PHONE) is None
        rate = learned(samples)
        assert rate.seconds_per_place(PHONE) == pytest.approx(160 / 10)
        assert rate.estimate(3, PHONE, at(100)) == pytest.approx(48.0)
        # learned per channel
        assert rate.seconds_per_place(EMAIL) is None

    def test_only_the_last_samples_count(self) -> None:
        """A wait answered SAMPLES answers ago no longer counts."""
        rate = learned([(1000.0, 1)] + [(5.0, 1)] * SAMPLES)
        assert rate.seconds_per_place(PHONE) == pytest.approx(5.0)

    def test_contacts_answered_without_queueing_teach_nothing(self) -> None:
        """Only contacts that entered the queue are samples; a forgotten one (it left
        unanswered) is not one either."""
        rate = learned([(8.0, 2)] * MIN_SAMPLES)
        rate.note("never-queued", PHONE, at(500), still_waiting=False)
        rate.entered("left", 1, at(500))
        rate.forget("left")
        rate.note("left", PHONE, at(900), still_waiting=False)
        assert rate.seconds_per_place(PHONE) == pytest.approx(4.0)

    def test_a_queue_that_has_not_emptied_takes_its_recent_rate(self) -> None:
        """A backlog entered at 0, 1000 places: answered one a second for 100 s, then
        one every 2 s. The learned waits say 1.25 s per place (25,150 s for 20,100
        places); at 300 s, with the queue non-empty since 0, the last 150 s (half of
        that while) saw 76 answers: about 2 s per place. With fewer than RECENT_MIN
        answers in the horizon, or no busy_since, the learned seconds per place stay."""
        rate = AnswerRate()
        for n in range(1000):
            rate.entered(f"b{n}", n + 1, T0)
        times = [float(n + 1) for n in range(100)] + [100.0 + 2 * n for n in range(1, 101)]
        for n, t in enumerate(times):
            rate.note(f"b{n}", EMAIL, at(t), still_waiting=True)
        assert rate.seconds_per_place(EMAIL) == pytest.approx(25_150 / 20_100)
        now = at(300)
        assert rate.estimate(10, EMAIL, now) == pytest.approx(10 * 25_150 / 20_100)
        recent = rate.estimate(200, EMAIL, now, busy_since=T0.timestamp())
        assert recent == pytest.approx(200 * 150 / 76)
        # non-empty only since 260 s: the last 20 s saw 11 answers, too few
        short = rate.estimate(10, EMAIL, now, busy_since=at(260).timestamp())
        assert short == pytest.approx(10 * 25_150 / 20_100)

    def test_the_answer_rate_stands_in_before_enough_waits(self) -> None:
        """Without MIN_SAMPLES waits: the mean gap between answers that left contacts
        of the channel waiting; before two of those, the center's answers over time."""
        rate = AnswerRate()
        assert rate.estimate(1, PHONE, at(0)) is None
        rate.note("a", CHAT, at(0), still_waiting=False)
        rate.note("b", CHAT, at(10), still_waiting=False)
        assert rate.estimate(2, PHONE, at(20)) == pytest.approx(2 * 20 / 2)
        rate.note("c", PHONE, at(30), still_waiting=True)
        rate.note("d", PHONE, at(36), still_waiting=True)
        rate.note("e", PHONE, at(40), still_waiting=False)
        assert rate.estimate(2, PHONE, at(50)) == pytest.approx(2 * 5.0)

    @given(waits, st.integers(1, 10_000), st.none() | st.floats(0, 1))
    def test_none_without_data_else_non_negative_and_monotone_in_place(
        self, samples: list[tuple[float, int]], place: int, busy: float | None
    ) -> None:
        """Whatever was learned, and whether the queue stayed non-empty since a share
        `busy` of the time so far: no estimate before two answers, then one that is
        never negative and never less for a later place."""
        rate = learned(samples)
        elapsed = sum(w for w, _ in samples) + 1
        later = at(elapsed)
        since = None if busy is None else at(elapsed * (1 - busy)).timestamp()
        estimate = rate.estimate(place, PHONE, later, since)
        if len(samples) < 2:  # not even two answers
            assert estimate is None
            return
        assert estimate is not None
        assert estimate >= 0
        further = rate.estimate(place + 1, PHONE, later, since)
        assert further is not None
        assert further >= estimate

    @given(waits)
    def test_matches_the_definition(self, samples: list[tuple[float, int]]) -> None:
        """The running sums give what the definition says, over the last SAMPLES."""
        rate = learned(samples)
        kept = samples[-SAMPLES:]
        if len(kept) < MIN_SAMPLES:
            assert rate.seconds_per_place(PHONE) is None
            return
        expected = sum(w for w, _ in kept) / sum(p for _, p in kept)
        assert rate.seconds_per_place(PHONE) == pytest.approx(expected, rel=1e-9, abs=1e-6)
