"""Fixtures for the pure routing core: a fixed clock origin, deterministic ids, contacts."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

import pytest

from router.domain import Channel, Contact, Router

T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)


class SequentialIds:
    """A deterministic id factory: offer-1, offer-2, ..."""

    def __init__(self, prefix: str = "offer") -> None:
        self._prefix = prefix
        self._n = 0

    def __call__(self) -> str:
        self._n += 1
        return f"{self._prefix}-{self._n}"


def build_contact(
    contact_id: str,
    channel: Channel = Channel.PHONE,
    queued_at: datetime | float = 0.0,
    skills: Iterable[str] = (),
    boost: float = 1.0,
) -> Contact:
    """A freshly queued contact; a float `queued_at` is seconds after T0."""
    when = T0 + timedelta(seconds=queued_at) if isinstance(queued_at, float | int) else queued_at
    return Contact(
        id=contact_id,
        idempotency_key=f"key-{contact_id}",
        channel=channel,
        customer_id=f"customer-{contact_id}",
        queued_at=when,
        required_skills=frozenset(skills),
        priority_boost=boost,
    )


def fingerprint(router: Router, now: datetime) -> tuple[object, ...]:
    """Everything observable about the router, to show a refused call changed nothing."""
    agents = sorted(router.agents(), key=lambda a: a.id)
    contacts = sorted(router.contacts(), key=lambda c: c.id)
    return (
        router.snapshot(now),
        agents,
        contacts,
        {a.id: router.offers_for(a.id) for a in agents},
        {c.id: router.position(c.id, now) for c in contacts},
        router.next_deadline(),
    )


@pytest.fixture
def t0() -> datetime:
    """The fixed instant every unit test starts at (timezone-aware UTC)."""
    return T0


@pytest.fixture
def at() -> Callable[[float], datetime]:
    """Seconds after T0 as a datetime."""

    def at(seconds: float) -> datetime:
        return T0 + timedelta(seconds=seconds)

    return at


@pytest.fixture
def new_id() -> Callable[[], str]:
    """A fresh deterministic id factory for a Router."""
    return SequentialIds()


@pytest.fixture
def make_contact() -> Callable[..., Contact]:
    """build_contact as a fixture: make_contact("c1", Channel.CHAT, queued_at=5.0)."""
    return build_contact
