"""The restart's bulk paths leave the core exactly as the one-by-one paths would."""

from __future__ import annotations

import random
from dataclasses import FrozenInstanceError, astuple, replace
from datetime import datetime, timedelta
from types import MappingProxyType

import pytest

from router.domain import Channel, ContactState, PreferenceSource, Router, RoutingPolicy
from router.domain.channel import ChannelPolicy
from router.domain.contact import NO_ATTRIBUTES, Contact, contact_of
from router.domain.state import RESERVE, RoutingState
from router.domain.timers import Timer
from tests.unit.conftest import T0, build_contact


def _policy(reserve: int) -> RoutingPolicy:
    channels = dict(RoutingPolicy().channels)
    channels[Channel.EMAIL] = ChannelPolicy(
        3600.0, 1, 20, fallback_after=600.0, fallback_skills=frozenset({"general"})
    )
    channels[Channel.CHAT] = ChannelPolicy(60.0, 3, 5, fallback_after=30.0)
    return RoutingPolicy(channels=MappingProxyType(channels), phone_reserve=reserve)


def _contacts(seed: int, count: int, preferring: bool = True) -> list[Contact]:
    """Contacts of every channel and kind: plain, with preferred skills, with a
    preferred agent (named, previous, transferred) unless not `preferring`, boosted,
    needing the fallback's skills already."""
    rng = random.Random(seed)
    contacts = []
    for n in range(count):
        contact = build_contact(
            f"c{n}",
            rng.choice(list(Channel)),
            float(rng.randrange(0, 3000)),
            skills=rng.choice([(), ("lang:es",), ("general",), ("returns", "vip")]),
            boost=rng.choice([1.0, 1.0, 2.0]),
        )
        kind = rng.randrange(5) if preferring else 0
        if kind == 1:
            contact = replace(contact, preferred_skills=("vip", "lang:fr"))
        elif kind == 2:
            contact = replace(
                contact,
                preferred_agent_id=rng.choice(["ann", "bob"]),
                preferred_agent_source=rng.choice(list(PreferenceSource)),
            )
        contacts.append(contact)
    return contacts


def _picture(state: RoutingState, contacts: list[Contact], now: datetime) -> tuple[object, ...]:
    ids = [c.id for c in contacts]
    return (
        [state.queue.position(i, now) for i in ids],
        [state.queue.skills_of(i) for i in ids],
        [state.queue.hold_of(i) for i in ids],
        [(kind, i, state.timers.at(kind, i)) for kind in Timer for i in ids],
        state.timers.at(Timer.ANSWER_DUE, RESERVE),
        state.timers.next(),
        state.queued_bytes,
        dict(state.contacts),
        dict(state.keys),
        {k: sorted(v) for k, v in state.preferred_absent.items()},
        [state.queue.count(channel) for channel in Channel],
        state.next_seq(),
    )


class TestEnqueueAll:
    @pytest.mark.parametrize("preferring", [True, False])
    @pytest.mark.parametrize("reserve", [0, 1])
    @pytest.mark.parametrize("seed", range(3))
    def test_same_state_as_enqueue_of_each(self, seed: int, reserve: int, preferring: bool) -> None:
        """enqueue_all (the restart's) leaves queue, timers, bytes and indexes as
        enqueue() of each contact in turn, with or without the phone reserve, with
        or without contacts that prefer an agent or skills (they take the long way)."""
        contacts = _contacts(seed, 300, preferring)
        # Queued before, with the latest answer deadline: the reserve's timer is armed,
        # and enqueue_all must bring it forward.
        contacts[0] = build_contact("c0", Channel.EMAIL, 2999.0)
        now = T0 + timedelta(seconds=3000)
        policy = _policy(reserve)
        one_by_one, bulk = RoutingState(policy), RoutingState(policy)
        for state in (one_by_one, bulk):
            state.quiet_until = now + timedelta(seconds=60)
            state.due_seen = (T0 + timedelta(seconds=900)).timestamp()
            # A contact already queued before: enqueue_all adds to what is there.
            state.enqueue(contacts[0], now)
        for contact in contacts[1:]:
            one_by_one.enqueue(contact, now)
        bulk.enqueue_all(contacts[1:], now)
        assert _picture(bulk, contacts, now) == _picture(one_by_one, contacts, now)


class TestRestore:
    def test_restore_orders_the_contacts_itself(self) -> None:
        """Open contacts given in any order restore to the same queue (open_contacts
        reads them in no order), and an offered one is queued again."""
        contacts = _contacts(7, 200)
        contacts[5] = replace(
            contacts[5], state=ContactState.OFFERED, agent_id="ann", offer_id="offer-9"
        )
        now = T0 + timedelta(seconds=3000)
        shuffled = list(contacts)
        random.Random(1).shuffle(shuffled)
        ordered, unordered = Router(_policy(1)), Router(_policy(1))
        first = ordered.restore(sorted(contacts, key=lambda c: (c.queued_at, c.id)), now)
        second = unordered.restore(shuffled, now)
        assert first == second
        assert ordered.snapshot(now) == unordered.snapshot(now)
        assert [ordered.position(c.id, now) for c in contacts] == [
            unordered.position(c.id, now) for c in contacts
        ]
        assert ordered.next_deadline() == unordered.next_deadline()

    def test_a_contact_given_twice_is_restored_once(self) -> None:
        """A contact given twice is queued once, as first given (the restore looks for
        repeated ids only when some id comes twice)."""
        contacts = _contacts(9, 100)
        now = T0 + timedelta(seconds=3000)
        once, twice = Router(_policy(1)), Router(_policy(1))
        once.restore(contacts, now)
        twice.restore([*contacts, replace(contacts[3], priority_boost=5.0)], now)
        assert once.snapshot(now) == twice.snapshot(now)
        assert [once.position(c.id, now) for c in contacts] == [
            twice.position(c.id, now) for c in contacts
        ]


class TestContactOf:
    def test_a_contact_like_any_other(self) -> None:
        """contact_of (the restore's fast build) makes a Contact equal to the one its
        constructor makes, of its class, frozen, and replace() copies it."""
        for made in _contacts(3, 50):
            fast = contact_of(*astuple(made))
            assert type(fast) is Contact
            assert fast == made
            assert replace(fast, offer_count=9) == replace(made, offer_count=9)
            with pytest.raises(FrozenInstanceError):
                fast.offer_count = 9  # type: ignore[misc]
            assert fast.offer_count == made.offer_count

    def test_the_shared_empty_attributes_cannot_change(self) -> None:
        with pytest.raises(TypeError):
            NO_ATTRIBUTES["name"] = "x"  # type: ignore[index]
        assert NO_ATTRIBUTES == {}
