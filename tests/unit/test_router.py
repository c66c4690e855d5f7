"""Router: the lifecycle of contacts and offers, and who gets what."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime
from types import MappingProxyType

import pytest

from router.domain import (
    AgentEvent,
    AgentStatus,
    Channel,
    ChannelPolicy,
    Contact,
    ContactEvent,
    ContactEventKind,
    ContactState,
    DomainError,
    Event,
    InvalidArgument,
    NotFound,
    Offer,
    OfferWithdrawn,
    QueueFull,
    Router,
    RoutingPolicy,
    WrongState,
)
from router.domain.contact import proficiency_tokens, skill_token
from router.errors import ContactTooLarge, QueueMemoryFull
from tests.unit.conftest import fingerprint

MakeContact = Callable[..., Contact]
At = Callable[[float], datetime]
NewId = Callable[[], str]

PHONE, CHAT, EMAIL = Channel.PHONE, Channel.CHAT, Channel.EMAIL


def _router(new_id: NewId, *, reserve: int = 0, decline_exclusion: float = 30.0) -> Router:
    policy = RoutingPolicy(phone_reserve=reserve, decline_exclusion=decline_exclusion)
    return Router(policy, new_id)


def _ready(
    router: Router,
    agent_id: str,
    now: datetime,
    *,
    skills: Iterable[str] = (),
    phone: int = 1,
    chat: int = 3,
    email: int = 1,
) -> list[Event]:
    """Sign an agent in READY and open its offer stream."""
    capacities = {PHONE: phone, CHAT: chat, EMAIL: email}
    events = router.sign_in(agent_id, frozenset(skills), capacities, AgentStatus.READY, now)
    return events + router.connect(agent_id, now)


def _offers(events: Iterable[Event]) -> list[Offer]:
    """The offers made, in order."""
    return [
        e.offer
        for e in events
        if isinstance(e, ContactEvent) and e.kind is ContactEventKind.OFFERED and e.offer
    ]


def _offered(events: Iterable[Event]) -> list[tuple[str, str]]:
    """(contact id, agent id) of each offer made, in order."""
    return [(o.contact_id, o.agent_id) for o in _offers(events)]


def _kinds(events: Iterable[Event]) -> list[str]:
    out = []
    for e in events:
        if isinstance(e, OfferWithdrawn):
            out.append(f"withdrawn:{e.reason}")
        else:
            out.append(str(e.kind))
    return out


def _call_offered_to_ann_while_bob_waits(
    new_id: NewId, make_contact: MakeContact, at: At
) -> tuple[Router, Offer]:
    """ann (free since 0 s) is offered c1, a call at 2 s; bob (free since 1 s) stays free."""
    router = _router(new_id)
    _ready(router, "ann", at(0))
    _ready(router, "bob", at(1))
    (offer,) = _offers(router.submit(make_contact("c1", PHONE, 2.0), at(2)))
    return router, offer


def _offer_of(router: Router, contact_id: str) -> Offer:
    offer_id = router.contact(contact_id).offer_id
    assert offer_id is not None
    offer = router.offer(offer_id)
    assert offer is not None
    return offer


class TestLifecycle:
    def test_submit_offer_accept_end_complete(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """A call goes QUEUED -> OFFERED -> CONNECTED -> WRAP_UP -> COMPLETED with timings."""
        router = _router(new_id)
        _ready(router, "ann", at(0))
        events = router.submit(make_contact("c1", PHONE, 0.0), at(1))
        assert _kinds(events) == ["offered"]
        (offer,) = _offers(events)
        assert (offer.agent_id, offer.offered_at, offer.expires_at) == ("ann", at(1), at(16))
        assert router.contact("c1").state is ContactState.OFFERED

        contact, events = router.accept("ann", offer.id, at(4))
        assert _kinds(events) == ["answered"]
        assert (contact.state, contact.answered_at, contact.wait_seconds(at(99))) == (
            ContactState.CONNECTED,
            at(4),
            4.0,
        )
        contact, events = router.end("ann", "c1", at(600))
        assert (contact.state, contact.ended_at, _kinds(events)) == (
            ContactState.WRAP_UP,
            at(600),
            ["ended"],
        )
        contact, events = router.complete("ann", "c1", "order-status", at(630))
        assert (contact.state, contact.completed_at, contact.disposition) == (
            ContactState.COMPLETED,
            at(630),
            "order-status",
        )
        assert _kinds(events) == ["completed"]
        assert router.agent("ann").contact_ids == ()
        with pytest.raises(NotFound):
            router.contact("c1")

    def test_contact_waits_queued_until_an_agent_is_present(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """Signed in is not enough: the offer comes when the agent's stream connects."""
        router = _router(new_id)
        router.submit(make_contact("c1", PHONE, 0.0), at(0))
        events = router.sign_in("ann", frozenset(), {}, AgentStatus.READY, at(5))
        assert _offered(events) == []
        assert router.contact("c1").state is ContactState.QUEUED
        assert _offered(router.connect("ann", at(6))) == [("c1", "ann")]

    def test_completing_frees_the_agent_for_the_next_contact(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """Completing wrap-up offers the next waiting contact in the same call."""
        router = _router(new_id)
        _ready(router, "ann", at(0))
        (offer,) = _offers(router.submit(make_contact("c1", PHONE, 0.0), at(0)))
        router.submit(make_contact("c2", PHONE, 1.0), at(1))
        router.accept("ann", offer.id, at(2))
        router.end("ann", "c1", at(10))
        _, events = router.complete("ann", "c1", "return", at(20))
        assert _kinds(events) == ["completed", "offered"]
        assert _offered(events) == [("c2", "ann")]

    def test_finishing_work_sends_the_agent_to_the_back_of_the_line(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """An agent who just completed a contact is idle for less time than one who waited."""
        router, offer = _call_offered_to_ann_while_bob_waits(new_id, make_contact, at)
        assert offer.agent_id == "ann"
        router.accept("ann", offer.id, at(3))
        router.end("ann", "c1", at(4))
        router.complete("ann", "c1", "done", at(5))
        assert _offered(router.submit(make_contact("c2", PHONE, 6.0), at(6))) == [("c2", "bob")]

    def test_longest_idle_agent_gets_the_offer(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """Of two free agents the one free since earlier is offered the contact."""
        router = _router(new_id)
        _ready(router, "late", at(0))
        _ready(router, "early", at(0))
        router.set_status("late", AgentStatus.AWAY, "break", at(1))
        router.set_status("late", AgentStatus.READY, "", at(2))
        assert _offered(router.submit(make_contact("c1", PHONE, 3.0), at(3))) == [("c1", "early")]


class TestDecline:
    def test_decline_goes_to_another_agent_first(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """A declined contact is offered to the next free agent in the same call."""
        router, offer = _call_offered_to_ann_while_bob_waits(new_id, make_contact, at)
        assert offer.agent_id == "ann"
        contact, events = router.decline("ann", offer.id, at(3))
        assert _kinds(events) == ["declined", "requeued", "offered"]
        assert _offered(events) == [("c1", "bob")]
        assert contact.offer_count == 2
        assert contact.queued_at == at(2)

    def test_declined_contact_keeps_its_original_place(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """Back in the queue a declined contact is ahead of later ones; its wait goes on."""
        router = _router(new_id)
        _ready(router, "ann", at(0))
        (offer,) = _offers(router.submit(make_contact("first", PHONE, 0.0), at(0)))
        router.submit(make_contact("second", PHONE, 5.0), at(5))
        contact, events = router.decline("ann", offer.id, at(6))
        # ann is excluded from "first", so she gets "second"; "first" waits at place 1.
        assert _offered(events) == [("second", "ann")]
        assert (contact.state, router.position("first", at(6))) == (ContactState.QUEUED, 1)
        assert router.contact("first").wait_seconds(at(6)) == 6.0
        _ready(router, "bob", at(7))
        assert router.contact("first").agent_id == "bob"

    def test_declined_contact_stays_ahead_of_one_queued_at_the_same_instant(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """Requeueing keeps the arrival sequence, not only queued_at."""
        router = _router(new_id)
        _ready(router, "ann", at(0))
        (offer,) = _offers(router.submit(make_contact("first", PHONE, 0.0), at(0)))
        router.submit(make_contact("second", PHONE, 0.0), at(0))
        router.set_status("ann", AgentStatus.AWAY, "", at(1))
        router.decline("ann", offer.id, at(1))
        assert [router.position(c, at(2)) for c in ("first", "second")] == [1, 2]
        _ready(router, "bob", at(2))
        assert router.contact("first").agent_id == "bob"

    def test_decline_exclusion_expires(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """The decliner gets the contact again only after decline_exclusion seconds."""
        router = _router(new_id, decline_exclusion=30.0)
        _ready(router, "ann", at(0))
        (offer,) = _offers(router.submit(make_contact("c1", PHONE, 0.0), at(0)))
        _, events = router.decline("ann", offer.id, at(10))
        assert _offered(events) == []
        assert router.next_deadline() == at(40)
        assert router.expire(at(39.999)) == []
        assert router.contact("c1").state is ContactState.QUEUED
        assert _offered(router.expire(at(40))) == [("c1", "ann")]
        assert router.contact("c1").offer_count == 2

    def test_a_finished_contact_leaves_no_decline_deadline(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """Once a declined contact is abandoned, its exclusion no longer wakes the timer."""
        router = _router(new_id, decline_exclusion=30.0)
        _ready(router, "ann", at(0))
        (offer,) = _offers(router.submit(make_contact("c1", PHONE, 0.0), at(0)))
        router.decline("ann", offer.id, at(10))
        assert router.next_deadline() == at(40)
        router.abandon("c1", at(11))
        assert router.next_deadline() is None

    def test_zero_exclusion_may_offer_back_at_once(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """With decline_exclusion 0 the only agent is offered the contact again at once."""
        router = _router(new_id, decline_exclusion=0.0)
        _ready(router, "ann", at(0))
        (offer,) = _offers(router.submit(make_contact("c1", PHONE, 0.0), at(0)))
        _, events = router.decline("ann", offer.id, at(1))
        assert _offered(events) == [("c1", "ann")]

    def test_declining_does_not_cost_the_agent_its_place_in_line(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """After a decline the decliner is still the longest idle for the next contact."""
        router, offer = _call_offered_to_ann_while_bob_waits(new_id, make_contact, at)
        router.decline("ann", offer.id, at(3))
        assert _offered(router.submit(make_contact("c2", PHONE, 4.0), at(4))) == [("c2", "ann")]


class TestOfferTimeout:
    def test_unanswered_offer_returns_and_agent_is_set_away_missed(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """At offer_timeout the offer is withdrawn, the agent goes AWAY "missed"."""
        router, offer = _call_offered_to_ann_while_bob_waits(new_id, make_contact, at)
        assert router.next_deadline() == at(17)
        assert router.expire(at(16.9)) == []
        events = router.expire(at(17))
        assert _kinds(events) == [
            "withdrawn:timed_out",
            "offer_timed_out",
            "requeued",
            "status_changed",
            "offered",
        ]
        assert _offered(events) == [("c1", "bob")]
        ann = router.agent("ann")
        assert (ann.status, ann.away_reason, ann.contact_ids) == (AgentStatus.AWAY, "missed", ())
        with pytest.raises(WrongState):
            router.accept("ann", offer.id, at(17))

    def test_missed_agent_gets_work_again_once_ready(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """The AWAY agent is skipped until it sets itself READY again."""
        router = _router(new_id)
        _ready(router, "ann", at(0))
        router.submit(make_contact("c1", PHONE, 0.0), at(0))
        events = router.expire(at(15))
        assert _offered(events) == []
        assert router.contact("c1").state is ContactState.QUEUED
        events = router.set_status("ann", AgentStatus.READY, "", at(20))
        assert _offered(events) == [("c1", "ann")]


class TestDisconnect:
    def test_disconnect_returns_offers_but_keeps_answered_contacts(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """Losing the stream requeues unanswered offers; connected chats stay with the agent."""
        router = _router(new_id)
        _ready(router, "ann", at(0), phone=0)
        (first,) = _offers(router.submit(make_contact("c1", CHAT, 0.0), at(0)))
        router.accept("ann", first.id, at(1))
        (second,) = _offers(router.submit(make_contact("c2", CHAT, 2.0), at(2)))
        events = router.disconnect("ann", at(3))
        assert _kinds(events) == ["disconnected", "withdrawn:agent_lost", "requeued"]
        assert router.contact("c2").state is ContactState.QUEUED
        assert router.contact("c1").state is ContactState.CONNECTED
        assert router.agent("ann").contact_ids == ("c1",)
        assert router.offer(second.id) is None
        router.end("ann", "c1", at(4))
        _, events = router.complete("ann", "c1", "done", at(5))
        assert _offered(events) == []

    def test_offers_returned_on_disconnect_go_to_another_agent(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """A contact whose agent lost its stream is offered to the next free agent at once."""
        router, _ = _call_offered_to_ann_while_bob_waits(new_id, make_contact, at)
        events = router.disconnect("ann", at(3))
        assert _kinds(events) == ["disconnected", "withdrawn:agent_lost", "requeued", "offered"]
        assert _offered(events) == [("c1", "bob")]

    def test_disconnect_is_a_no_op_when_not_connected(self, new_id: NewId, at: At) -> None:
        """Disconnecting an unknown or already disconnected agent does nothing."""
        router = _router(new_id)
        assert router.disconnect("ghost", at(0)) == []
        router.sign_in("ann", frozenset(), {}, AgentStatus.READY, at(0))
        assert router.disconnect("ann", at(1)) == []

    def test_reconnecting_resumes_offers(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """The requeued contact goes to the agent again when its stream reopens."""
        router = _router(new_id)
        _ready(router, "ann", at(0))
        router.submit(make_contact("c1", PHONE, 0.0), at(0))
        router.disconnect("ann", at(1))
        assert _offered(router.connect("ann", at(2))) == [("c1", "ann")]


class TestPhoneReserve:
    def test_last_idle_phone_agent_is_kept_for_calls(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """With K=1 and one idle phone agent a chat waits, a call is answered at once."""
        router = _router(new_id, reserve=1)
        _ready(router, "ann", at(0))
        assert _offered(router.submit(make_contact("chat", CHAT, 1.0), at(1))) == []
        assert _offered(router.submit(make_contact("call", PHONE, 2.0), at(2))) == [("call", "ann")]

    def test_only_agents_beyond_the_reserve_take_chat(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """K=2 with three idle phone agents: one chat is offered, the others wait."""
        router = _router(new_id, reserve=2)
        for name in ("a", "b", "c"):
            _ready(router, name, at(0), chat=1)
        offered = []
        for i in range(3):
            offered += _offered(router.submit(make_contact(f"chat{i}", CHAT, 1.0 + i), at(1 + i)))
        assert offered == [("chat0", "a")]
        assert router.snapshot(at(5)).waiting[CHAT] == 2

    def test_agent_joining_releases_one_reserved_agent(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """When a second phone agent appears with K=1, the longest idle takes the chat."""
        router = _router(new_id, reserve=1)
        _ready(router, "ann", at(0))
        router.submit(make_contact("chat", CHAT, 1.0), at(1))
        assert _offered(_ready(router, "bob", at(2))) == [("chat", "ann")]

    def test_freed_agent_releases_another_when_it_cannot_serve(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """A freed agent without the chat's skill lets a reserved agent with it take it."""
        router = _router(new_id, reserve=1)
        _ready(router, "bob", at(0))
        (call,) = _offers(router.submit(make_contact("call", PHONE, 0.0), at(0)))
        router.accept("bob", call.id, at(1))
        _ready(router, "eva", at(2), skills={"lang:es"})
        assert (
            _offered(router.submit(make_contact("es", CHAT, 3.0, skills={"lang:es"}), at(3))) == []
        )
        router.end("bob", "call", at(4))
        _, events = router.complete("bob", "call", "done", at(5))
        assert _offered(events) == [("es", "eva")]

    def test_released_agent_takes_all_the_chats_it_can(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """An agent released from the reserve for one chat also takes the next waiting chat."""
        router = _router(new_id, reserve=1)
        _ready(router, "ann", at(0))
        router.sign_in("bob", frozenset(), {}, AgentStatus.AWAY, at(0))
        router.connect("bob", at(0))
        router.submit(make_contact("chat-1", CHAT, 1.0), at(1))
        router.submit(make_contact("chat-2", CHAT, 2.0), at(2))
        events = router.set_status("bob", AgentStatus.READY, "", at(3))
        # bob's arrival frees ann from the reserve; once she holds a chat she is out of it
        # for good, so she takes chat-2 too while bob stays free for calls.
        assert _offered(events) == [("chat-1", "ann"), ("chat-2", "ann")]
        assert router.agent("bob").contact_ids == ()

    def test_decline_that_releases_a_reserved_agent_fills_it(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """A decline can release a reserved agent; it then takes every chat it can."""
        router = _router(new_id, reserve=1)
        _ready(router, "ann", at(0), chat=1)
        _ready(router, "bob", at(1))
        (chat,) = _offers(router.submit(make_contact("chat-1", CHAT, 2.0), at(2)))
        assert chat.agent_id == "ann"
        router.submit(make_contact("chat-2", CHAT, 3.0), at(3))
        router.submit(make_contact("chat-3", CHAT, 4.0), at(4))
        assert router.snapshot(at(4)).waiting[CHAT] == 2  # bob is the reserve
        _, events = router.decline("ann", chat.id, at(5))
        # ann is free for calls again, so bob leaves the reserve for chat-1 and the rest.
        assert _offered(events) == [("chat-1", "bob"), ("chat-2", "bob"), ("chat-3", "bob")]
        assert router.agent("ann").contact_ids == ()

    def test_agents_without_phone_take_chat_regardless(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """The reserve holds back only phone-capable agents."""
        router = _router(new_id, reserve=1)
        _ready(router, "ann", at(0))
        _ready(router, "chatter", at(1), phone=0)
        assert _offered(router.submit(make_contact("chat", CHAT, 2.0), at(2))) == [
            ("chat", "chatter")
        ]


class TestReserveGivesWayAtTheAnswerDeadline:
    """The reserve holds a chat or email back only until it has used its answer target."""

    def test_lone_agent_gets_the_chat_at_its_deadline(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """K=1 and one agent for everything: the chat is offered once it has waited 60 s."""
        router = _router(new_id, reserve=1)
        _ready(router, "ann", at(0))
        assert _offered(router.submit(make_contact("chat", CHAT, 1.0), at(1))) == []
        assert router.next_deadline() == at(61)
        assert _offered(router.expire(at(60.5))) == []
        assert _offered(router.expire(at(61))) == [("chat", "ann")]

    def test_deadline_scales_with_the_boost(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """A boosted email reaches its deadline sooner: 3600 s / 4."""
        router = _router(new_id, reserve=1)
        _ready(router, "ann", at(0))
        router.submit(make_contact("mail", EMAIL, 0.0, boost=4.0), at(0))
        assert router.next_deadline() == at(900)
        assert _offered(router.expire(at(900))) == [("mail", "ann")]

    def test_agent_freed_after_the_deadline_takes_the_overdue_chat(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """A chat that passed its deadline while nobody was free goes to the next agent
        who frees up, even as the last idle phone-capable one."""
        router = _router(new_id, reserve=1)
        _ready(router, "ann", at(0))
        (call,) = _offers(router.submit(make_contact("call", PHONE, 0.0), at(0)))
        router.accept("ann", call.id, at(1))
        router.submit(make_contact("chat", CHAT, 2.0), at(2))
        assert _offered(router.expire(at(62))) == []  # ann is on the call
        router.end("ann", "call", at(100))
        _, events = router.complete("ann", "call", "done", at(101))
        assert _offered(events) == [("chat", "ann")]

    def test_a_waiting_call_still_comes_first_when_more_urgent(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """An overdue chat (urgency 1.1) loses to a call that waited 30 s (urgency 1.5)."""
        router = _router(new_id, reserve=1)
        _ready(router, "ann", at(0))
        (call,) = _offers(router.submit(make_contact("call-1", PHONE, 0.0), at(0)))
        router.accept("ann", call.id, at(0))
        router.submit(make_contact("chat", CHAT, 0.0), at(0))
        router.submit(make_contact("call-2", PHONE, 36.0), at(36))
        router.end("ann", "call-1", at(65))
        _, events = router.complete("ann", "call-1", "done", at(66))
        assert _offered(events) == [("call-2", "ann")]

    def test_without_reserve_there_is_no_deadline_timer(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """With K=0 the chat is offered at once and no answer deadline is scheduled."""
        router = _router(new_id, reserve=0)
        router.submit(make_contact("chat", CHAT, 0.0), at(0))
        assert router.next_deadline() is None


def _preferring(contact: Contact, *skills: str) -> Contact:
    return replace(contact, preferred_skills=skills)


class TestPreferredSkillsRelax:
    """Preferred skills hold for skill_relax seconds each, least wanted dropped first."""

    def test_preferred_agent_free_soon_gets_the_contact(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """The Spanish speaker is on a call; it frees in 10 s and gets the Spanish caller."""
        router = _router(new_id)
        _ready(router, "eva", at(0), skills={"lang:es"})
        (call,) = _offers(router.submit(make_contact("call", PHONE, 0.0), at(0)))
        router.accept("eva", call.id, at(0))
        _ready(router, "ann", at(1))
        es = _preferring(make_contact("es", PHONE, 2.0), "lang:es")
        assert _offered(router.submit(es, at(2))) == []
        router.end("eva", "call", at(11))
        _, events = router.complete("eva", "call", "done", at(12))
        assert _offered(events) == [("es", "eva")]

    def test_any_agent_after_the_relax_period(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """No Spanish speaker frees within 30 s: the caller goes to whoever is free."""
        router = _router(new_id)
        _ready(router, "ann", at(0))
        es = _preferring(make_contact("es", PHONE, 0.0), "lang:es")
        assert _offered(router.submit(es, at(0))) == []
        assert router.next_deadline() == at(30)
        assert _offered(router.expire(at(29.9))) == []
        assert _offered(router.expire(at(30))) == [("es", "ann")]

    def test_the_pool_widens_step_by_step(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """Preferring lang:es then vip: first both, after 30 s lang:es alone, after 60 s
        anyone; an agent with lang:es gets it at 30 s."""
        router = _router(new_id)
        _ready(router, "ann", at(0))
        _ready(router, "eva", at(0), skills={"lang:es"})
        es = _preferring(make_contact("es", PHONE, 0.0), "lang:es", "vip")
        assert _offered(router.submit(es, at(0))) == []
        assert _offered(router.expire(at(30))) == [("es", "eva")]

    def test_required_skills_never_relax(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """Only preferences relax: a required skill still holds after every step."""
        router = _router(new_id)
        _ready(router, "ann", at(0))
        contact = _preferring(make_contact("c", PHONE, 0.0, skills={"returns"}), "lang:es")
        router.submit(contact, at(0))
        assert _offered(router.expire(at(30))) == []
        assert router.next_deadline() is None
        assert router.position("c", at(3600)) == 1

    def test_a_requeued_contact_keeps_its_relaxed_pool(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """Declined after relaxing, the contact goes to another agent without waiting again."""
        router = _router(new_id)
        _ready(router, "ann", at(0))
        _ready(router, "bob", at(0))
        router.submit(_preferring(make_contact("es", PHONE, 0.0), "lang:es"), at(0))
        (offer,) = _offers(router.expire(at(30)))
        _, events = router.decline(offer.agent_id, offer.id, at(31))
        assert [agent for _, agent in _offered(events)] == [
            {"ann": "bob", "bob": "ann"}[offer.agent_id]
        ]

    def test_zero_relax_ignores_preferences(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """skill_relax = 0 routes on required skills only."""
        router = Router(RoutingPolicy(phone_reserve=0, skill_relax=0), new_id)
        _ready(router, "ann", at(0))
        es = _preferring(make_contact("es", PHONE, 0.0), "lang:es")
        assert _offered(router.submit(es, at(0))) == [("es", "ann")]


class TestProficiency:
    def test_a_contact_asking_a_level_gets_an_agent_at_that_level_or_above(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """lang:es at level 3: the agent at level 2 is skipped, the one at 4 is offered."""
        router = _router(new_id)
        _ready(router, "low", at(0), skills=proficiency_tokens("lang:es", 2))
        _ready(router, "high", at(1), skills=proficiency_tokens("lang:es", 4))
        contact = make_contact("c", PHONE, 2.0, skills={skill_token("lang:es", 3)})
        assert _offered(router.submit(contact, at(2))) == [("c", "high")]

    def test_level_one_is_the_plain_skill(self) -> None:
        """Any proficiency satisfies a skill asked at level 1 (or 0)."""
        assert skill_token("returns", 1) == skill_token("returns", 0) == "returns"
        assert proficiency_tokens("returns", 3) == {"returns", "returns@2", "returns@3"}


def _connected(router: Router, make_contact: MakeContact, at: At, agent: str) -> Contact:
    """A call answered by `agent` at 2 s after waiting 2 s."""
    (offer,) = _offers(router.submit(make_contact("call", PHONE, 0.0), at(0)))
    assert offer.agent_id == agent
    contact, _ = router.accept(agent, offer.id, at(2))
    return contact


class TestTransfer:
    def test_to_a_skill_keeps_the_customer_clock(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """Transferred to billing: the billing agent is offered it; queued_at and the first
        answer stay, so the wait counts once; the first agent is free again."""
        router = _router(new_id)
        _ready(router, "ann", at(0))
        first = _connected(router, make_contact, at, "ann")
        _ready(router, "bob", at(3), skills={"billing"})
        contact, events = router.transfer("ann", "call", at(60), to_skills=frozenset({"billing"}))
        assert _kinds(events) == ["transferred", "offered"]
        transferred = events[0]
        assert isinstance(transferred, ContactEvent)
        assert (transferred.agent_id, transferred.reason) == ("ann", "to skills billing")
        assert _offered(events) == [("call", "bob")]
        assert contact.queued_at == first.queued_at
        assert contact.answered_at == first.answered_at == at(2)
        assert contact.wait_seconds(at(61)) == 2.0
        assert router.agent("ann").contact_ids == ()
        (offer,) = _offers(events)
        answered, _ = router.accept("bob", offer.id, at(61))
        assert answered.answered_at == at(2)

    def test_to_a_named_agent_waits_for_that_agent(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """To bob by name: a longer idle carl is not offered it; bob gets it when free."""
        router = _router(new_id)
        _ready(router, "ann", at(0))
        _connected(router, make_contact, at, "ann")
        _ready(router, "carl", at(3))
        _ready(router, "bob", at(4))
        (other,) = _offers(router.submit(make_contact("other", PHONE, 5.0), at(5)))
        router.accept(other.agent_id, other.id, at(5))
        busy = other.agent_id
        assert busy == "carl"  # carl idled longest
        _, events = router.transfer("ann", "call", at(10), to_agent="bob")
        assert _offered(events) == [("call", "bob")]

    def test_named_agent_busy_then_anyone_after_the_relax_period(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """bob stays busy: after skill_relax (30 s) from the transfer anyone takes it."""
        router = _router(new_id)
        _ready(router, "ann", at(0))
        _connected(router, make_contact, at, "ann")
        _ready(router, "bob", at(3))
        (other,) = _offers(router.submit(make_contact("other", PHONE, 4.0), at(4)))
        router.accept("bob", other.id, at(4))
        _ready(router, "carl", at(5))
        _, events = router.transfer("ann", "call", at(10), to_agent="bob")
        assert _offered(events) == []  # carl is free, but the customer asked for bob
        assert router.next_deadline() == at(40)
        assert _offered(router.expire(at(39))) == []
        # carl has been free since 5 s, ann since the transfer at 10 s
        assert _offered(router.expire(at(40))) == [("call", "carl")]

    def test_a_transfer_does_not_come_back_to_its_agent(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """ann transfers to skills she has herself: carl gets it, though ann is now the
        longest idle; once the exclusion (30 s) ends and carl is busy, ann may take it."""
        router = _router(new_id)
        _ready(router, "ann", at(0))
        _connected(router, make_contact, at, "ann")
        _, events = router.transfer("ann", "call", at(10), to_skills=frozenset())
        assert _offered(events) == []
        assert router.next_deadline() == at(40)
        assert _offered(router.expire(at(40))) == [("call", "ann")]

    def test_a_transfer_respects_the_phone_reserve(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """Found by the state machine (seed 4): bob answered a chat without phone, then
        signed in again able to take calls. After he transfers the chat, he and ann are
        the reserve of 2, so the chat waits for its answer deadline (60 s) instead of
        going to one of them through bob's stale place among chat-only agents."""
        router = _router(new_id, reserve=2, decline_exclusion=0.0)
        _ready(router, "ann", at(0))
        _ready(router, "bob", at(0), phone=0)
        (offer,) = _offers(router.submit(make_contact("chat", CHAT, 0.0), at(0)))
        assert offer.agent_id == "bob"
        router.accept("bob", offer.id, at(1))
        _ready(router, "bob", at(2))
        _, events = router.transfer("bob", "chat", at(3), to_skills=frozenset())
        assert _offered(events) == []
        assert router.next_deadline() == at(60)
        assert _offered(router.expire(at(60))) == [("chat", "ann")]

    @pytest.mark.parametrize(
        ("target", "error"),
        [
            ({"to_agent": "ann"}, InvalidArgument),
            ({"to_agent": "nobody"}, WrongState),
            ({}, InvalidArgument),
            ({"to_agent": "bob", "to_skills": frozenset({"x"})}, InvalidArgument),
        ],
    )
    def test_refused_transfers_change_nothing(
        self,
        new_id: NewId,
        make_contact: MakeContact,
        at: At,
        target: dict[str, object],
        error: type[DomainError],
    ) -> None:
        """To oneself, to an agent not signed in, to nothing or to two targets: refused."""
        router = _router(new_id)
        _ready(router, "ann", at(0))
        _ready(router, "bob", at(0))
        _connected(router, make_contact, at, "ann")
        before = fingerprint(router, at(9))
        with pytest.raises(error):
            router.transfer("ann", "call", at(9), **target)  # type: ignore[arg-type]
        assert fingerprint(router, at(9)) == before

    def test_only_a_connected_contact_is_transferred(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """In wrap-up the conversation is over: FAILED_PRECONDITION (WrongState)."""
        router = _router(new_id)
        _ready(router, "ann", at(0))
        _ready(router, "bob", at(0))
        _connected(router, make_contact, at, "ann")
        router.end("ann", "call", at(5))
        with pytest.raises(WrongState, match="only a connected contact"):
            router.transfer("ann", "call", at(6), to_agent="bob")


class TestSkillsAndCapacity:
    def test_required_skills_are_respected(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """A contact needing lang:es skips a longer idle agent without it."""
        router = _router(new_id)
        _ready(router, "ann", at(0))
        _ready(router, "eva", at(1), skills={"lang:es", "returns"})
        events = router.submit(make_contact("c1", PHONE, 2.0, skills={"lang:es"}), at(2))
        assert _offered(events) == [("c1", "eva")]
        events = router.submit(make_contact("c2", PHONE, 3.0, skills={"lang:fr"}), at(3))
        assert _offered(events) == []

    def test_a_call_is_exclusive(self, new_id: NewId, make_contact: MakeContact, at: At) -> None:
        """An agent on a call gets no chat; an agent with a chat gets no call."""
        router = _router(new_id)
        _ready(router, "ann", at(0))
        router.submit(make_contact("call", PHONE, 0.0), at(0))
        assert _offered(router.submit(make_contact("chat", CHAT, 1.0), at(1))) == []
        _ready(router, "bob", at(2))
        assert router.contact("chat").agent_id == "bob"
        assert _offered(router.submit(make_contact("call2", PHONE, 3.0), at(3))) == []

    def test_three_chats_at_once_by_default(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """Default chat capacity is 3: a fourth chat waits until one completes."""
        router = _router(new_id)
        router.sign_in("ann", frozenset(), {PHONE: 0}, AgentStatus.READY, at(0))
        router.connect("ann", at(0))
        offers = []
        for i in range(4):
            offers += _offers(router.submit(make_contact(f"c{i}", CHAT, float(i)), at(i)))
        assert [o.contact_id for o in offers] == ["c0", "c1", "c2"]
        router.accept("ann", offers[0].id, at(5))
        router.end("ann", "c0", at(6))
        _, events = router.complete("ann", "c0", "done", at(7))
        assert _offered(events) == [("c3", "ann")]

    def test_zero_capacity_channel_is_never_offered(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """An agent with email capacity 0 never gets an email."""
        router = _router(new_id)
        _ready(router, "ann", at(0), email=0)
        assert _offered(router.submit(make_contact("e1", EMAIL, 0.0), at(0))) == []

    def test_least_loaded_agent_is_preferred(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """An idle agent gets a chat before a longer idle agent already holding one."""
        router = _router(new_id)
        _ready(router, "ann", at(0), phone=0)
        router.submit(make_contact("c1", CHAT, 0.0), at(0))
        _ready(router, "bob", at(1), phone=0)
        assert _offered(router.submit(make_contact("c2", CHAT, 2.0), at(2))) == [("c2", "bob")]

    @pytest.mark.parametrize("capacities", [{PHONE: 2}, {CHAT: 21}, {EMAIL: -1}])
    def test_capacity_outside_limits_is_refused(
        self, new_id: NewId, at: At, capacities: dict[Channel, int]
    ) -> None:
        """sign_in refuses capacities beyond a channel's max (a call is at most 1)."""
        router = _router(new_id)
        with pytest.raises(InvalidArgument) as raised:
            router.sign_in("ann", frozenset(), capacities, AgentStatus.READY, at(0))
        assert raised.value.field == "capacities"
        assert router.agents() == []


class TestAbandon:
    def test_abandon_while_queued(self, new_id: NewId, make_contact: MakeContact, at: At) -> None:
        """A waiting customer who leaves is ABANDONED, its wait ending when it left."""
        router = _router(new_id)
        router.submit(make_contact("c1", PHONE, 0.0), at(0))
        events = router.abandon("c1", at(12))
        assert _kinds(events) == ["abandoned"]
        (event,) = events
        assert isinstance(event, ContactEvent)
        assert (event.contact.abandoned_at, event.contact.wait_seconds(at(99))) == (at(12), 12.0)
        assert router.snapshot(at(12)).waiting[PHONE] == 0
        with pytest.raises(NotFound):
            router.contact("c1")

    def test_abandon_while_offered_withdraws_the_offer(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """Abandoning an offered contact withdraws its offer and frees the agent."""
        router = _router(new_id)
        _ready(router, "ann", at(0))
        (offer,) = _offers(router.submit(make_contact("c1", PHONE, 0.0), at(0)))
        router.submit(make_contact("c2", PHONE, 1.0), at(1))
        events = router.abandon("c1", at(2))
        assert _kinds(events) == ["withdrawn:abandoned", "abandoned", "offered"]
        assert _offered(events) == [("c2", "ann")]
        assert router.offer(offer.id) is None
        with pytest.raises(WrongState):
            router.accept("ann", offer.id, at(3))


class _Scene:
    """ann (chats, no phone) holds c1 connected, c2 and c3 offered; bob has p1 offered;
    c4 waits. Every refused call below must leave all of this exactly as it was."""

    def __init__(self, router: Router, make_contact: MakeContact, at: At) -> None:
        self.router = router
        _ready(router, "ann", at(0), phone=0, email=0)
        _ready(router, "bob", at(0), chat=0, email=0)
        for i, (cid, channel) in enumerate(
            [("c1", CHAT), ("c2", CHAT), ("p1", PHONE), ("c3", CHAT), ("c4", CHAT)]
        ):
            router.submit(make_contact(cid, channel, float(i)), at(i))
        self.c1 = _offer_of(router, "c1")
        router.accept("ann", self.c1.id, at(5))
        self.c2 = _offer_of(router, "c2")
        self.p1 = _offer_of(router, "p1")
        assert router.contact("c4").state is ContactState.QUEUED


_Call = Callable[[_Scene, At], object]

WRONG_STATE: list[tuple[str, _Call]] = [
    ("accept another agent's offer", lambda s, at: s.router.accept("ann", s.p1.id, at(6))),
    ("accept at expiry", lambda s, at: s.router.accept("ann", s.c2.id, s.c2.expires_at)),
    ("accept after expiry", lambda s, at: s.router.accept("ann", s.c2.id, at(18))),
    ("accept an unknown offer", lambda s, at: s.router.accept("ann", "nope", at(6))),
    ("decline an answered offer", lambda s, at: s.router.decline("ann", s.c1.id, at(6))),
    ("decline another's offer", lambda s, at: s.router.decline("ann", s.p1.id, at(6))),
    ("end an offered contact", lambda s, at: s.router.end("ann", "c2", at(6))),
    ("end someone else's contact", lambda s, at: s.router.end("bob", "c1", at(6))),
    ("complete before end", lambda s, at: s.router.complete("ann", "c1", "x", at(6))),
    ("complete a queued contact", lambda s, at: s.router.complete("ann", "c4", "x", at(6))),
    ("abandon a connected contact", lambda s, at: s.router.abandon("c1", at(6))),
    ("submit an active contact", lambda s, at: s.router.submit(s.router.contact("c4"), at(6))),
    ("sign out holding answered work", lambda s, at: s.router.sign_out("ann", at(6))),
]

NOT_FOUND: list[tuple[str, _Call]] = [
    ("contact", lambda s, at: s.router.contact("nope")),
    ("agent", lambda s, at: s.router.agent("ghost")),
    ("offers_for", lambda s, at: s.router.offers_for("ghost")),
    ("accept", lambda s, at: s.router.accept("ghost", s.c2.id, at(6))),
    ("decline", lambda s, at: s.router.decline("ghost", s.c2.id, at(6))),
    ("end unknown contact", lambda s, at: s.router.end("ann", "nope", at(6))),
    ("complete by unknown agent", lambda s, at: s.router.complete("ghost", "c1", "x", at(6))),
    ("abandon", lambda s, at: s.router.abandon("nope", at(6))),
    ("set_status", lambda s, at: s.router.set_status("ghost", AgentStatus.AWAY, "", at(6))),
    ("connect", lambda s, at: s.router.connect("ghost", at(6))),
    ("sign_out", lambda s, at: s.router.sign_out("ghost", at(6))),
]

INVALID: list[tuple[str, _Call]] = [
    (
        "initial_status",
        lambda s, at: s.router.sign_in("cy", frozenset(), {}, AgentStatus.OFFLINE, at(6)),
    ),
    ("status", lambda s, at: s.router.set_status("ann", AgentStatus.OFFLINE, "", at(6))),
    (
        "state",
        lambda s, at: s.router.submit(
            replace(s.router.contact("c4"), id="c9", state=ContactState.CONNECTED), at(6)
        ),
    ),
]


class TestRefusedCallsChangeNothing:
    def _check(
        self,
        call: _Call,
        error: type[DomainError],
        new_id: NewId,
        make_contact: MakeContact,
        at: At,
    ) -> DomainError:
        scene = _Scene(_router(new_id), make_contact, at)
        before = fingerprint(scene.router, at(6))
        with pytest.raises(error) as raised:
            call(scene, at)
        assert fingerprint(scene.router, at(6)) == before
        return raised.value

    @pytest.mark.parametrize(("case", "call"), WRONG_STATE, ids=[c for c, _ in WRONG_STATE])
    def test_wrong_state(
        self, case: str, call: _Call, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """A call that does not fit the state raises WrongState and changes nothing."""
        self._check(call, WrongState, new_id, make_contact, at)

    @pytest.mark.parametrize(("case", "call"), NOT_FOUND, ids=[c for c, _ in NOT_FOUND])
    def test_not_found(
        self, case: str, call: _Call, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """An unknown contact, agent or offer raises NotFound and changes nothing."""
        self._check(call, NotFound, new_id, make_contact, at)

    @pytest.mark.parametrize(("field", "call"), INVALID, ids=[c for c, _ in INVALID])
    def test_invalid_argument(
        self, field: str, call: _Call, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """Bad input raises InvalidArgument naming the field and changes nothing."""
        error = self._check(call, InvalidArgument, new_id, make_contact, at)
        assert isinstance(error, InvalidArgument)
        assert error.field == field


class TestRetries:
    def test_accept_retry_returns_the_same_contact(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """Accepting an already accepted offer again returns the contact, no new events."""
        router = _router(new_id)
        _ready(router, "ann", at(0))
        (offer,) = _offers(router.submit(make_contact("c1", PHONE, 0.0), at(0)))
        first, _ = router.accept("ann", offer.id, at(2))
        again, events = router.accept("ann", offer.id, at(30))
        assert (again, events) == (first, [])
        assert again.answered_at == at(2)

    def test_end_retry_returns_the_wrap_up_contact(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """Ending an already ended contact again keeps the first ended_at."""
        router = _router(new_id)
        _ready(router, "ann", at(0))
        (offer,) = _offers(router.submit(make_contact("c1", PHONE, 0.0), at(0)))
        router.accept("ann", offer.id, at(1))
        first, _ = router.end("ann", "c1", at(9))
        again, events = router.end("ann", "c1", at(12))
        assert (again, events) == (first, [])
        assert again.ended_at == at(9)

    def test_repeated_status_and_connect_emit_nothing(self, new_id: NewId, at: At) -> None:
        """Setting the current status again or reconnecting a connected agent is a no-op."""
        router = _router(new_id)
        _ready(router, "ann", at(0))
        assert router.set_status("ann", AgentStatus.READY, "", at(1)) == []
        assert router.connect("ann", at(1)) == []


class TestSignOut:
    def test_sign_out_returns_offers_to_another_agent(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """Signing out with only an offer withdraws it and routes the contact on."""
        router, _ = _call_offered_to_ann_while_bob_waits(new_id, make_contact, at)
        events = router.sign_out("ann", at(3))
        assert _kinds(events) == ["withdrawn:agent_signed_out", "requeued", "signed_out", "offered"]
        assert _offered(events) == [("c1", "bob")]
        with pytest.raises(NotFound):
            router.agent("ann")

    def test_signing_in_again_updates_skills(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """A second sign_in updates skills and offers newly eligible work."""
        router = _router(new_id)
        _ready(router, "ann", at(0))
        router.submit(make_contact("c1", PHONE, 0.0, skills={"vip"}), at(0))
        events = router.sign_in("ann", frozenset({"vip"}), {}, AgentStatus.READY, at(1))
        assert _kinds(events) == ["signed_in", "offered"]
        assert isinstance(events[0], AgentEvent)
        assert events[0].skills == frozenset({"vip"})


class TestRestore:
    def test_restore_rebuilds_queue_and_held_work(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """After a restart waiting contacts keep their places; answered ones their agent."""
        before = _router(new_id)
        _ready(before, "ann", at(0), phone=0)
        for i, cid in enumerate(["talking", "offered", "waiting-1"]):
            before.submit(make_contact(cid, CHAT, float(i)), at(i))
        before.accept("ann", _offer_of(before, "talking").id, at(3))
        before.submit(make_contact("waiting-2", CHAT, 4.0), at(4))
        saved = list(before.contacts())
        done = replace(make_contact("done", CHAT, 0.0), state=ContactState.COMPLETED)

        after = _router(new_id)
        events = after.restore([*reversed(saved), done], at(10))
        assert _kinds(events) == ["requeued", "requeued"]
        requeued = [e.contact for e in events if isinstance(e, ContactEvent)]
        assert {c.id for c in requeued} == {"offered", "waiting-1"}
        assert all(c.agent_id is None and c.offer_id is None for c in requeued)
        assert [after.position(c, at(10)) for c in ("offered", "waiting-1", "waiting-2")] == [
            1,
            2,
            3,
        ]
        assert after.contact("talking").state is ContactState.CONNECTED
        with pytest.raises(NotFound):
            after.contact("done")

        events = _ready(after, "ann", at(11), phone=0, chat=3)
        assert after.agent("ann").contact_ids[0] == "talking"
        assert _offered(events) == [("offered", "ann"), ("waiting-1", "ann")]
        ended, _ = after.end("ann", "talking", at(12))
        assert ended.state is ContactState.WRAP_UP

    def test_restore_offers_waiting_contacts_to_agents_already_present(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """A contact restored while an agent is free is offered at once."""
        router = _router(new_id)
        _ready(router, "ann", at(0))
        events = router.restore([make_contact("c1", PHONE, 0.0)], at(1))
        assert _offered(events) == [("c1", "ann")]

    def test_restore_ignores_contacts_already_active(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """Restoring a contact that is already in memory does not duplicate it."""
        router = _router(new_id)
        router.submit(make_contact("c1", EMAIL, 0.0), at(0))
        assert router.restore([make_contact("c1", EMAIL, 0.0)], at(1)) == []
        assert router.snapshot(at(1)).waiting[EMAIL] == 1


class TestEstimatesAndSnapshot:
    def test_position_is_zero_unless_queued(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """An offered or unknown contact has position 0; queued ones count from 1."""
        router = _router(new_id)
        _ready(router, "ann", at(0))
        router.submit(make_contact("c1", PHONE, 0.0), at(0))
        router.submit(make_contact("c2", PHONE, 1.0), at(1))
        assert [router.position(c, at(2)) for c in ("c1", "c2", "nope")] == [0, 1, 0]

    def test_estimated_wait_uses_the_recent_answer_rate(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """No estimate before two answers; then, until the channel has two gaps between
        answers with contacts waiting, position x time span / answers of the center."""
        router = _router(new_id)
        _ready(router, "ann", at(0), phone=0)
        for i in range(5):
            router.submit(make_contact(f"c{i}", CHAT, 0.0), at(0))
        # Calls ahead of the chats, which ann (no phone) never takes: a chat's place
        # is among chats only.
        for i in range(5):
            router.submit(make_contact(f"call{i}", PHONE, 0.0), at(0))
        assert router.estimated_wait("c3", at(1)) is None
        router.accept("ann", _offer_of(router, "c0").id, at(4))
        assert router.estimated_wait("c3", at(5)) is None
        router.accept("ann", _offer_of(router, "c1").id, at(10))
        # GetContact's position counts every channel; the estimate, chats only.
        assert [router.position(c, at(30)) for c in ("c3", "c4")] == [6, 7]
        # two answers in the 26 s since the first: one answer per 13 s
        assert router.estimated_wait("c3", at(30)) == pytest.approx(13.0)
        assert router.estimated_wait("c4", at(30)) == pytest.approx(26.0)
        assert router.estimated_wait("c0", at(30)) is None

    def test_estimated_wait_uses_gaps_while_the_channel_queue_waits(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """The estimate is place in the channel's queue x the mean gap between answers
        that began with contacts of that channel still waiting; idle gaps do not count."""
        router = _router(new_id)
        _ready(router, "ann", at(0), chat=0, email=0)

        def talk(contact_id: str, start: float, end: float) -> None:
            """Accept the offer at `start` (the answer), finish at `end`."""
            router.accept("ann", _offer_of(router, contact_id).id, at(start))
            router.end("ann", contact_id, at(end))
            router.complete("ann", contact_id, "done", at(end))

        router.submit(make_contact("idle", PHONE, 0.0), at(0))
        talk("idle", 1, 2)  # answered with nothing else waiting: the next gap is left out
        for i in range(4):
            router.submit(make_contact(f"c{i}", PHONE, 100.0), at(100))
        talk("c0", 100, 110)  # gap 99 s after an answer that left the queue empty
        talk("c1", 110, 130)  # gap 10 s with contacts waiting
        talk("c2", 130, 131)  # gap 20 s with contacts waiting
        for i in range(4, 7):
            router.submit(make_contact(f"c{i}", PHONE, 131.0), at(131))
        router.submit(make_contact("mail", EMAIL, 131.0), at(131))  # another channel
        # c3 is offered to ann; c4, c5, c6 wait in that order, 15 s per answer
        assert router.estimated_wait("c5", at(140)) == pytest.approx(2 * 15.0)
        assert router.estimated_wait("c6", at(140)) == pytest.approx(3 * 15.0)

    def test_estimated_wait_learns_seconds_per_place_from_queued_waits(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """Once five calls that queued at submission were answered: place among the
        calls ahead x their waits / their places at entry. A call answered at once
        teaches nothing, and an email ahead in routing order now is not counted: the
        call overtakes it (urgency grows 180 times faster on the phone)."""
        router = _router(new_id)
        _ready(router, "ann", at(0), chat=0, email=1)
        router.submit(make_contact("first", PHONE, 0.0), at(0))  # offered at once
        router.submit(make_contact("mail", EMAIL, 0.0), at(0))
        for i in range(1, 7):
            router.submit(make_contact(f"w{i}", PHONE, 0.0), at(0))  # places 1 to 6

        def talk(contact_id: str, start: float) -> None:
            """Answered at `start`, ten seconds of talk and nothing after."""
            router.accept("ann", _offer_of(router, contact_id).id, at(start))
            router.end("ann", contact_id, at(start + 10))
            router.complete("ann", contact_id, "done", at(start + 10))

        for n, contact_id in enumerate(["first", "w1", "w2", "w3"]):
            talk(contact_id, 10.0 * n)
        router.accept("ann", _offer_of(router, "w4").id, at(40))
        # w1..w4 waited 10, 20, 30, 40 s from places 1..4: a fifth wait is needed; till
        # then the mean gap between answers stands in (10 s)
        assert router.estimated_wait("w6", at(45)) == pytest.approx(2 * 10.0)
        router.end("ann", "w4", at(50))
        router.complete("ann", "w4", "done", at(50))
        router.accept("ann", _offer_of(router, "w5").id, at(50))  # 50 s from place 5
        router.submit(make_contact("late1", PHONE, 55.0), at(55))
        router.submit(make_contact("late2", PHONE, 55.0), at(55))
        assert router.position("late1", at(55)) == 3  # behind w6 and the email
        assert [router.estimated_wait(c, at(55)) for c in ("w6", "late1", "late2")] == [
            pytest.approx(10.0),
            pytest.approx(20.0),
            pytest.approx(30.0),
        ]

    def test_snapshot_counts_queue_and_agents(
        self, new_id: NewId, make_contact: MakeContact, at: At
    ) -> None:
        """The snapshot splits waiting/offered by channel and agents by activity."""
        router = _router(new_id)
        _ready(router, "busy", at(0), phone=0)
        _ready(router, "idle", at(0), chat=0, email=0)
        _ready(router, "away", at(0))
        router.set_status("away", AgentStatus.AWAY, "lunch", at(0))
        router.sign_in("gone", frozenset(), {}, AgentStatus.READY, at(0))
        router.submit(make_contact("chat", CHAT, 0.0), at(0))
        router.submit(make_contact("email", EMAIL, 0.0), at(0))
        router.submit(make_contact("email2", EMAIL, 5.0), at(5))
        snap = router.snapshot(at(30))
        assert (dict(snap.waiting), dict(snap.offered)) == (
            {PHONE: 0, CHAT: 0, EMAIL: 1},
            {PHONE: 0, CHAT: 1, EMAIL: 1},
        )
        assert dict(snap.oldest_wait) == {PHONE: 0.0, CHAT: 30.0, EMAIL: 30.0}
        assert (snap.agents_idle, snap.agents_busy, snap.agents_away) == (1, 1, 1)
        assert (snap.agents_disconnected, snap.agents_signed_in) == (1, 4)


class TestQueueLimit:
    def test_a_full_channel_refuses_more_and_names_the_channel(
        self, at: At, make_contact: MakeContact
    ) -> None:
        """With room for two phone calls waiting, the third is refused; chat is not."""
        phone = ChannelPolicy(20.0, 1, 1, exclusive=True, max_queue=2)
        policy = RoutingPolicy(
            channels=MappingProxyType({**RoutingPolicy().channels, PHONE: phone})
        )
        router = Router(policy)
        for n in range(2):
            router.check_room(PHONE)
            router.submit(make_contact(f"call-{n}", PHONE, float(n)), at(n))
        with pytest.raises(QueueFull, match="phone queue is full"):
            router.check_room(PHONE)
        router.check_room(CHAT)

    def test_submissions_in_flight_count_against_the_limit(self) -> None:
        """Two calls accepted for recording but not yet queued fill a limit of two."""
        phone = ChannelPolicy(20.0, 1, 1, exclusive=True, max_queue=2)
        router = Router(
            RoutingPolicy(channels=MappingProxyType({**RoutingPolicy().channels, PHONE: phone}))
        )
        router.check_room(PHONE, submitting=1)
        with pytest.raises(QueueFull, match=r"\(2 waiting, limit 2\)"):
            router.check_room(PHONE, submitting=2)


class TestQueueBytes:
    """A contact, and the queue as a whole, are bounded in bytes (Contact.size)."""

    def test_a_contact_over_its_limit_is_refused(self) -> None:
        """One byte over max_contact_bytes is CONTACT_TOO_LARGE; the limit itself fits."""
        router = Router(RoutingPolicy(max_contact_bytes=100, max_queue_bytes=1000))
        with pytest.raises(ContactTooLarge, match="limit of 100"):
            router.check_room(CHAT, 101)
        router.check_room(CHAT, 100)

    def test_the_queue_holds_its_bytes_until_contacts_leave_it(
        self, at: At, make_contact: MakeContact
    ) -> None:
        """Queued contacts hold their bytes; an offered one gives them back."""
        contact = make_contact("c1", CHAT, 0.0)
        size = contact.size()
        policy = RoutingPolicy(phone_reserve=0, max_contact_bytes=size, max_queue_bytes=2 * size)
        router = Router(policy)
        router.submit(contact, at(0))
        router.check_room(CHAT, size)
        router.submit(make_contact("c2", CHAT, 1.0), at(1))
        with pytest.raises(QueueMemoryFull):
            router.check_room(PHONE, 1)  # the bytes are the whole queue's, any channel
        _ready(router, "ann", at(2))  # takes both chats: the queue is empty again
        router.check_room(CHAT, size, submitting_bytes=size)


class TestTeams:
    def test_a_sign_in_without_a_team_takes_the_configured_one(self, new_id: NewId, at: At) -> None:
        """ROUTER_TEAMS_FILE's team (the policy's) when the sign-in gives none; a team
        given at sign-in wins; the sign-in event carries it for the status log."""
        policy = RoutingPolicy(teams=MappingProxyType({"ann": "orders"}))
        router = Router(policy, new_id)
        events = router.sign_in("ann", frozenset(), {}, AgentStatus.READY, at(0))
        assert router.agent("ann").team == "orders"
        assert [e.team for e in events if isinstance(e, AgentEvent)] == ["orders"]
        router.sign_in("ann", frozenset(), {}, AgentStatus.READY, at(1), "returns")
        assert router.agent("ann").team == "returns"
        router.sign_in("bob", frozenset(), {}, AgentStatus.READY, at(2))
        assert router.agent("bob").team == ""
