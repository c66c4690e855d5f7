"""ContactQueue: one queue, ordered by urgency = waited / channel target x boost."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest

from router.domain import Channel, Contact, RoutingPolicy
from router.domain.queue import ContactQueue

ALL = frozenset({"lang:es", "returns", "vip"})
CHANNELS = tuple(Channel)

MakeContact = Callable[..., Contact]
At = Callable[[float], datetime]


def _queue(*contacts: Contact) -> ContactQueue:
    queue = ContactQueue(RoutingPolicy())
    for seq, contact in enumerate(contacts, start=1):
        queue.add(contact, seq)
    return queue


def _drain(queue: ContactQueue, now: datetime) -> list[str]:
    """The routing order: repeatedly take the most urgent contact."""
    order = []
    while (best := queue.best_for(ALL, CHANNELS, now)) is not None:
        order.append(best)
        queue.remove(best)
    return order


class TestClassOrdering:
    def test_same_class_is_first_in_first_out(self, make_contact: MakeContact, at: At) -> None:
        """Within one channel, skill set and boost the oldest contact goes first."""
        queue = _queue(
            make_contact("late", Channel.CHAT, 30.0),
            make_contact("early", Channel.CHAT, 10.0),
            make_contact("middle", Channel.CHAT, 20.0),
        )
        assert _drain(queue, at(100)) == ["early", "middle", "late"]

    def test_same_instant_keeps_arrival_sequence(self, make_contact: MakeContact, at: At) -> None:
        """Contacts of one class queued at the same instant go in sequence order."""
        queue = ContactQueue(RoutingPolicy())
        queue.add(make_contact("second", Channel.EMAIL), 2)
        queue.add(make_contact("first", Channel.EMAIL), 1)
        assert _drain(queue, at(10)) == ["first", "second"]

    def test_requeue_with_original_seq_returns_to_original_place(
        self, make_contact: MakeContact, at: At
    ) -> None:
        """Removing and re-adding a contact with its seq restores its place."""
        a, b, c = (make_contact(i, Channel.CHAT, 5.0) for i in ("a", "b", "c"))
        queue = _queue(a, b, c)
        queue.remove("a")
        queue.add(a, 1)
        assert _drain(queue, at(10)) == ["a", "b", "c"]


class TestUrgencyAcrossChannels:
    @pytest.mark.parametrize(
        ("first", "second", "now", "winner"),
        [
            # A call waited 15 s of 20 (0.75) beats a chat waited 40 s of 60 (0.67).
            (("chat", Channel.CHAT, 0.0), ("call", Channel.PHONE, 25.0), 40, "call"),
            # A chat waited 50 s of 60 (0.83) beats a call waited 10 s of 20 (0.5).
            (("call", Channel.PHONE, 40.0), ("chat", Channel.CHAT, 0.0), 50, "chat"),
            # Nothing starves: an email waited over an hour beats a call waited 10 s.
            (("email", Channel.EMAIL, 0.0), ("call", Channel.PHONE, 3600.0), 3610, "email"),
            # An email waited 50 min (0.83) yields to a call waited 18 s (0.9).
            (("email", Channel.EMAIL, 0.0), ("call", Channel.PHONE, 2982.0), 3000, "call"),
        ],
        ids=[
            "phone-overtakes-an-older-chat-that-used-less-of-its-target",
            "chat-beats-a-call-that-used-less-of-its-target",
            "email-past-its-target-beats-a-fresh-call",
            "email-before-its-target-yields-to-a-call",
        ],
    )
    def test_larger_share_of_the_target_goes_first(
        self,
        make_contact: MakeContact,
        at: At,
        first: tuple[str, Channel, float],
        second: tuple[str, Channel, float],
        now: float,
        winner: str,
    ) -> None:
        """The contact that has used more of its channel's target wait is served first."""
        queue = _queue(make_contact(*first), make_contact(*second))
        assert queue.best_for(ALL, CHANNELS, at(now)) == winner

    @pytest.mark.parametrize(("phone_wait", "chat_wait"), [(20, 60), (7, 21), (1, 3), (13, 39)])
    def test_equal_urgency_goes_to_the_oldest(
        self, make_contact: MakeContact, at: At, phone_wait: int, chat_wait: int
    ) -> None:
        """A call and a chat at the same share of their targets: the older chat goes first."""
        now = 1000.0
        queue = _queue(
            make_contact("call", Channel.PHONE, now - phone_wait),
            make_contact("chat", Channel.CHAT, now - chat_wait),
        )
        assert _drain(queue, at(now)) == ["chat", "call"]

    def test_equal_wait_favours_phone_then_chat_then_email(
        self, make_contact: MakeContact, at: At
    ) -> None:
        """Contacts queued at the same instant go phone, chat, email (also at zero wait)."""
        contacts = [make_contact(c.value, c, 0.0) for c in (Channel.EMAIL, Channel.CHAT)]
        queue = _queue(*contacts, make_contact("phone", Channel.PHONE, 0.0))
        assert _drain(queue, at(0)) == ["phone", "chat", "email"]


class TestPriorityBoost:
    def test_boost_multiplies_urgency(self, make_contact: MakeContact, at: At) -> None:
        """A chat boosted x3 waited 20 s (1.0) beats a call waited 15 s (0.75)."""
        queue = _queue(
            make_contact("call", Channel.PHONE, 5.0),
            make_contact("vip-chat", Channel.CHAT, 0.0, boost=3.0),
        )
        assert queue.best_for(ALL, CHANNELS, at(20)) == "vip-chat"

    def test_without_boost_the_same_chat_waits(self, make_contact: MakeContact, at: At) -> None:
        """The same chat without a boost (0.33) yields to the call (0.75)."""
        queue = _queue(make_contact("call", Channel.PHONE, 5.0), make_contact("chat", Channel.CHAT))
        assert queue.best_for(ALL, CHANNELS, at(20)) == "call"

    def test_boosted_younger_contact_of_same_channel_goes_first(
        self, make_contact: MakeContact, at: At
    ) -> None:
        """A boosted email queued later can overtake an older unboosted one."""
        queue = _queue(
            make_contact("old", Channel.EMAIL, 0.0),
            make_contact("boosted", Channel.EMAIL, 100.0, boost=2.0),
        )
        assert _drain(queue, at(300)) == ["boosted", "old"]


class TestEligibility:
    def test_required_skills_must_be_covered(self, make_contact: MakeContact, at: At) -> None:
        """A contact needing lang:es is skipped for an agent without it."""
        queue = _queue(
            make_contact("spanish", Channel.PHONE, 0.0, skills={"lang:es"}),
            make_contact("plain", Channel.PHONE, 10.0),
        )
        assert queue.best_for(frozenset({"returns"}), CHANNELS, at(20)) == "plain"
        assert queue.best_for(frozenset({"lang:es", "x"}), CHANNELS, at(20)) == "spanish"

    def test_only_the_given_channels_are_considered(
        self, make_contact: MakeContact, at: At
    ) -> None:
        """An agent limited to email never gets the more urgent call."""
        queue = _queue(make_contact("call", Channel.PHONE), make_contact("email", Channel.EMAIL))
        assert queue.best_for(ALL, [Channel.EMAIL], at(100)) == "email"
        assert queue.best_for(ALL, [], at(100)) is None

    def test_excluded_contact_is_skipped_for_the_next_of_its_class(
        self, make_contact: MakeContact, at: At
    ) -> None:
        """The exclusion callback skips a contact; the next one in its class is found."""
        queue = _queue(
            make_contact("first", Channel.PHONE, 0.0),
            make_contact("second", Channel.PHONE, 1.0),
            make_contact("chat", Channel.CHAT, 0.0),
        )
        assert queue.best_for(ALL, CHANNELS, at(30), lambda c: c == "first") == "second"
        assert queue.best_for(ALL, CHANNELS, at(30), lambda c: c != "chat") == "chat"
        assert queue.best_for(ALL, CHANNELS, at(30), lambda _: True) is None


class TestPosition:
    def test_position_follows_routing_order(self, make_contact: MakeContact, at: At) -> None:
        """position() is the 1-based place in the order best_for would serve them."""
        contacts = [
            make_contact("email", Channel.EMAIL, 0.0),
            make_contact("chat", Channel.CHAT, 50.0),
            make_contact("call-1", Channel.PHONE, 80.0),
            make_contact("call-2", Channel.PHONE, 95.0),
        ]
        now = at(100)
        positions = {c.id: _queue(*contacts).position(c.id, now) for c in contacts}
        order = _drain(_queue(*contacts), now)
        assert order == ["call-1", "chat", "call-2", "email"]
        assert [positions[c] for c in order] == [1, 2, 3, 4]

    def test_position_changes_as_urgency_grows(self, make_contact: MakeContact, at: At) -> None:
        """A call queued after an email passes it once it has waited a moment."""
        queue = _queue(
            make_contact("email", Channel.EMAIL, 0.0), make_contact("call", Channel.PHONE, 100.0)
        )
        assert queue.position("call", at(100)) == 2
        assert queue.position("call", at(101)) == 1
        assert queue.position("email", at(101)) == 2

    @pytest.mark.parametrize(("phone_wait", "chat_wait"), [(20, 60), (7, 21), (0, 0)])
    def test_tied_contacts_get_distinct_positions(
        self, make_contact: MakeContact, at: At, phone_wait: int, chat_wait: int
    ) -> None:
        """At equal urgency the two contacts hold places 1 and 2, as best_for serves them."""
        now = 500.0
        queue = _queue(
            make_contact("call", Channel.PHONE, now - phone_wait),
            make_contact("chat", Channel.CHAT, now - chat_wait),
        )
        first = queue.best_for(ALL, CHANNELS, at(now))
        assert first is not None
        second = "chat" if first == "call" else "call"
        assert (queue.position(first, at(now)), queue.position(second, at(now))) == (1, 2)


class TestBookkeeping:
    def test_counts_oldest_and_membership(self, make_contact: MakeContact, at: At) -> None:
        """len, count per channel, oldest per channel and `in` track adds and removes."""
        queue = _queue(
            make_contact("c1", Channel.CHAT, 5.0),
            make_contact("c2", Channel.CHAT, 3.0, skills={"vip"}),
            make_contact("p1", Channel.PHONE, 7.0),
        )
        assert (len(queue), queue.count(Channel.CHAT), queue.count(Channel.EMAIL)) == (3, 2, 0)
        assert queue.oldest(Channel.CHAT) == at(3).timestamp()
        assert queue.oldest(Channel.EMAIL) is None
        queue.remove("c2")
        assert "c2" not in queue
        assert "c1" in queue
        assert queue.oldest(Channel.CHAT) == at(5).timestamp()
        assert "p1" in queue
        assert len(queue) == 2

    def test_adding_a_queued_contact_twice_is_refused(self, make_contact: MakeContact) -> None:
        """A contact is never in the queue twice."""
        contact = make_contact("c1")
        queue = _queue(contact)
        with pytest.raises(ValueError, match="already queued"):
            queue.add(contact, 9)
        assert len(queue) == 1

    def test_add_all_is_add_of_each(self, make_contact: MakeContact, at: At) -> None:
        """add_all (a restart's bulk insert) leaves the queue as add() of each would,
        into classes that already hold contacts and into new ones."""
        older = [make_contact("c0", Channel.CHAT, 9.0), make_contact("p0", Channel.PHONE, 1.0)]
        contacts = [
            make_contact(f"{channel.value}-{n}", channel, float(n % 7), skills=skills)
            for n, (channel, skills) in enumerate(
                (channel, skills)
                for channel in CHANNELS
                for skills in (set(), {"vip"}, {"lang:es", "returns"})
                for _ in range(4)
            )
        ]
        one_by_one = _queue(*older, *contacts)
        bulk = _queue(*older)
        bulk.add_all(
            (contact, seq, contact.required_skills, None)
            for seq, contact in enumerate(contacts, start=len(older) + 1)
        )
        ids = [c.id for c in (*older, *contacts)]
        assert [bulk.position(i, at(60)) for i in ids] == [
            one_by_one.position(i, at(60)) for i in ids
        ]
        assert [bulk.count(c) for c in CHANNELS] == [one_by_one.count(c) for c in CHANNELS]
        assert _drain(bulk, at(60)) == _drain(one_by_one, at(60))

    def test_add_all_refuses_a_queued_contact(self, make_contact: MakeContact) -> None:
        """add_all, like add, never queues a contact twice."""
        contact = make_contact("c1")
        queue = _queue(contact)
        with pytest.raises(ValueError, match="already queued"):
            queue.add_all([(contact, 9, contact.required_skills, None)])
        assert len(queue) == 1

    def test_add_all_refuses_a_contact_given_twice(self, make_contact: MakeContact, at: At) -> None:
        """A contact given twice to add_all is refused the second time, queued as the
        first time says, with those given before it."""
        first, again = make_contact("c1"), make_contact("c2")
        queue = _queue()
        with pytest.raises(ValueError, match="already queued"):
            queue.add_all(
                [
                    (first, 1, first.required_skills, None),
                    (again, 2, again.required_skills, None),
                    (first, 3, first.required_skills, None),
                ]
            )
        assert len(queue) == 2
        assert _drain(queue, at(60)) == ["c1", "c2"]
