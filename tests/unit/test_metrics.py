"""RouterMetrics fed with events directly: what the rolling service level counts."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from router.domain import (
    Channel,
    Contact,
    ContactEvent,
    ContactEventKind,
    ContactState,
    RoutingPolicy,
)
from router.domain.rolling import RollingServiceLevel
from router.metrics import RouterMetrics

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def test_a_transferred_contact_counts_its_first_answer_only() -> None:
    """A customer answered after 5 s and transferred must count once, not once per leg."""
    metrics = RouterMetrics(RollingServiceLevel(RoutingPolicy()))
    first = T0 + timedelta(seconds=5)
    contact = Contact(
        id="c-1",
        idempotency_key="k-1",
        channel=Channel.PHONE,
        customer_id="c",
        queued_at=T0,
        state=ContactState.CONNECTED,
        answered_at=first,
        agent_id="alice",
    )
    second_leg = replace(contact, agent_id="bob")
    late_answer = T0 + timedelta(seconds=30)
    late = replace(contact, id="c-2", idempotency_key="k-2", answered_at=late_answer)
    metrics.observe_events(
        [
            ContactEvent(ContactEventKind.ANSWERED, contact, first, "alice"),
            ContactEvent(ContactEventKind.ANSWERED, late, late_answer, "carol"),
            ContactEvent(ContactEventKind.ANSWERED, second_leg, T0 + timedelta(seconds=70), "bob"),
        ],
        delivered=(T0 + timedelta(seconds=70)).timestamp(),
    )
    # One of two customers answered within 20 s (not two of three).
    assert metrics.rolling.value(Channel.PHONE, T0 + timedelta(seconds=71)) == 0.5


def test_the_rolling_service_level_counts_open_time_only() -> None:
    """A call that waited the night (ten hours closed) and 15 s open is within 20 s."""
    metrics = RouterMetrics(RollingServiceLevel(RoutingPolicy()))
    answered = T0 + timedelta(hours=10, seconds=15)
    contact = Contact(
        id="c-1",
        idempotency_key="k-1",
        channel=Channel.PHONE,
        customer_id="c",
        queued_at=T0,
        state=ContactState.CONNECTED,
        answered_at=answered,
        agent_id="alice",
        closed_wait=10 * 3600.0,
    )
    metrics.observe_events(
        [ContactEvent(ContactEventKind.ANSWERED, contact, answered, "alice")],
        delivered=answered.timestamp(),
    )
    assert metrics.rolling.value(Channel.PHONE, answered + timedelta(seconds=1)) == 1.0


def test_stream_durations_have_buckets_for_hours() -> None:
    """A stream that lasted 3 hours lands in a bucket below +Inf, and in no RPC series."""
    metrics = RouterMetrics(RollingServiceLevel(RoutingPolicy()))
    metrics.observe_stream(3 * 3600.0)
    registry = metrics.registry
    name = "contactrouter_offer_stream_duration_seconds_bucket"
    assert registry.get_sample_value(name, {"le": "3600.0"}) == 0
    assert registry.get_sample_value(name, {"le": "14400.0"}) == 1
    count = "contactrouter_rpc_duration_seconds_count"
    assert registry.get_sample_value(count, {"method": "StreamOffers"}) is None
