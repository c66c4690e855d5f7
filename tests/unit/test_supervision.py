"""The supervisor's transitions (router/domain/supervision.py), on the pure core."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

import pytest

from router.domain import (
    AgentEvent,
    AgentEventKind,
    AgentStatus,
    Channel,
    ContactEvent,
    ContactEventKind,
    ContactState,
    Event,
    InvalidArgument,
    NotFound,
    OfferWithdrawn,
    PreferenceSource,
    Router,
    RoutingPolicy,
    WrongState,
)
from router.domain.events import Intervention
from router.domain.supervision import SIGNED_OUT_BY_SUPERVISOR
from tests.unit.conftest import T0, SequentialIds, build_contact, fingerprint

PHONE, CHAT, EMAIL = Channel.PHONE, Channel.CHAT, Channel.EMAIL
BY = Intervention("floor-lead", "spam from a known sender")


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _router(reserve: int = 0) -> Router:
    return Router(RoutingPolicy(phone_reserve=reserve, skill_relax=30.0), SequentialIds())


def _ready(
    router: Router,
    agent_id: str,
    now: datetime = T0,
    *,
    skills: Iterable[str] = (),
    phone: int = 1,
    chat: int = 3,
    email: int = 1,
) -> list[Event]:
    capacities = {PHONE: phone, CHAT: chat, EMAIL: email}
    events = router.sign_in(agent_id, frozenset(skills), capacities, AgentStatus.READY, now)
    return events + router.connect(agent_id, now)


def _kinds(events: list[Event]) -> list[str]:
    names = []
    for event in events:
        if isinstance(event, ContactEvent):
            names.append(f"{event.kind.value}:{event.contact.id}")
        elif isinstance(event, AgentEvent):
            names.append(f"agent_{event.kind.value}:{event.agent_id}")
        else:
            names.append(f"withdrawn:{event.offer.contact_id}:{event.reason}")
    return names


def _offered_to(router: Router, contact_id: str) -> str | None:
    contact = router.contact(contact_id)
    return contact.agent_id if contact.state is ContactState.OFFERED else None


class TestCancel:
    def test_a_queued_contact_ends_cancelled_and_leaves_the_core(self) -> None:
        """Cancelled: final, out of the queue, with its instant and who did it."""
        router = _router()
        router.submit(build_contact("spam", EMAIL), T0)
        contact, events = router.supervision.cancel("spam", BY, _at(5))
        assert (contact.state, contact.cancelled_at) == (ContactState.CANCELLED, _at(5))
        assert contact.wait_seconds(_at(100)) == 5.0
        (event,) = events
        assert isinstance(event, ContactEvent)
        assert (event.kind, event.intervention) == (ContactEventKind.CANCELLED, BY)
        assert list(router.contacts()) == []
        with pytest.raises(NotFound):
            router.abandon("spam", _at(6))

    def test_an_offered_contact_is_withdrawn_and_its_agent_gets_the_next(self) -> None:
        """The offer goes (withdrawn, "cancelled"); the agent is offered what waits next."""
        router = _router()
        router.submit(build_contact("spam", EMAIL), T0)
        router.submit(build_contact("next", EMAIL, 1.0), _at(1))
        _ready(router, "ann", _at(2), phone=0)
        assert _offered_to(router, "spam") == "ann"
        _, events = router.supervision.cancel("spam", BY, _at(3))
        assert _kinds(events) == [
            "withdrawn:spam:cancelled",
            "cancelled:spam",
            "offered:next",
        ]
        assert _offered_to(router, "next") == "ann"

    def test_an_answered_contact_cannot_be_cancelled(self) -> None:
        """FAILED_PRECONDITION for a connected contact, and nothing changes."""
        router = _router()
        router.submit(build_contact("call"), T0)
        _ready(router, "ann")
        offer = router.offers_for("ann")[0]
        router.accept("ann", offer.id, _at(1))
        before = fingerprint(router, _at(2))
        with pytest.raises(WrongState, match="connected"):
            router.supervision.cancel("call", BY, _at(2))
        assert fingerprint(router, _at(2)) == before

    def test_a_callback_waiting_for_its_window_is_changed_then_cancelled(self) -> None:
        """Out of the queue until its window opens: a new boost waits with it (it enters
        the queue only then), and a cancel ends it with no timer left behind."""
        router = _router()
        router.submit(build_contact("mail", EMAIL), T0)
        router.request_callback("mail", "+14155550123", (_at(3600), None), _at(1))
        assert router.position("mail", _at(2)) == 0
        changed, _ = router.supervision.set_priority("mail", 2.0, BY, _at(2))
        assert (changed.priority_boost, router.position("mail", _at(2))) == (2.0, 0)
        _, events = router.supervision.cancel("mail", BY, _at(3))
        assert _kinds(events) == ["cancelled:mail"]
        assert router.next_deadline() is None
        assert router.expire(_at(7200)) == []

    def test_an_unknown_contact_is_not_found(self) -> None:
        with pytest.raises(NotFound):
            _router().supervision.cancel("nope", BY, T0)


class TestPriority:
    def test_a_raised_priority_moves_the_contact_ahead(self) -> None:
        """Same channel, queued later, boosted: it is first in line, keeping queued_at."""
        router = _router()
        router.submit(build_contact("old", EMAIL), T0)
        router.submit(build_contact("new", EMAIL, 60.0), _at(60))
        assert router.position("new", _at(120)) == 2
        contact, events = router.supervision.set_priority("new", 3.0, BY, _at(120))
        assert (contact.priority_boost, contact.queued_at) == (3.0, _at(60))
        assert router.position("new", _at(120)) == 1
        (event,) = events
        assert isinstance(event, ContactEvent)
        assert (event.reason, event.intervention) == ("priority 1 -> 3", BY)
        _ready(router, "ann", _at(121), phone=0)
        assert _offered_to(router, "new") == "ann"

    def test_an_offer_stands_when_the_priority_changes(self) -> None:
        router = _router()
        router.submit(build_contact("call"), T0)
        _ready(router, "ann")
        contact, events = router.supervision.set_priority("call", 2.0, BY, _at(1))
        assert (contact.state, contact.priority_boost) == (ContactState.OFFERED, 2.0)
        assert _kinds(events) == ["priority_changed:call"]
        assert len(router.offers_for("ann")) == 1

    def test_a_boost_out_of_bounds_is_refused(self) -> None:
        router = _router()
        router.submit(build_contact("call"), T0)
        before = fingerprint(router, T0)
        with pytest.raises(InvalidArgument, match="priority_boost"):
            router.supervision.set_priority("call", 11.0, BY, T0)
        assert fingerprint(router, T0) == before

    def test_a_boosted_email_past_its_deadline_takes_the_phone_reserve(self) -> None:
        """A boost that moves an email's deadline into the past places it at once."""
        router = _router(reserve=1)
        _ready(router, "ann")
        router.submit(build_contact("mail", EMAIL), T0)
        assert _offered_to(router, "mail") is None  # the reserve keeps ann for calls
        router.supervision.set_priority("mail", 10.0, BY, _at(400))  # 3600/10 = 360 s
        assert _offered_to(router, "mail") == "ann"


class TestSkills:
    def test_new_skills_reach_an_agent_who_has_them(self) -> None:
        router = _router()
        _ready(router, "es-agent", skills={"es"})
        router.submit(build_contact("call", skills={"fr"}), T0)
        assert _offered_to(router, "call") is None
        contact, events = router.supervision.set_skills("call", frozenset({"es"}), BY, _at(1))
        assert _kinds(events) == ["skills_changed:call", "offered:call"]
        assert events[0].reason == "skills fr -> es"
        assert contact.required_skills == {"es"}
        assert _offered_to(router, "call") == "es-agent"

    def test_an_offer_to_an_agent_without_the_new_skills_is_withdrawn(self) -> None:
        """Offered to ann (no skills); now it needs "es": withdrawn, then to bea."""
        router = _router()
        _ready(router, "ann")
        router.submit(build_contact("call"), T0)
        _ready(router, "bea", _at(1), skills={"es"})
        assert _offered_to(router, "call") == "ann"
        _, events = router.supervision.set_skills("call", frozenset({"es"}), BY, _at(2))
        assert _kinds(events) == [
            "skills_changed:call",
            "withdrawn:call:skills_changed",
            "requeued:call",
            "offered:call",
        ]
        assert _offered_to(router, "call") == "bea"
        assert router.agent("ann").contact_ids == ()

    def test_an_offer_to_an_agent_with_the_new_skills_stands(self) -> None:
        router = _router()
        _ready(router, "ann", skills={"es"})
        router.submit(build_contact("call"), T0)
        _, events = router.supervision.set_skills("call", frozenset({"es"}), BY, _at(1))
        assert _kinds(events) == ["skills_changed:call"]
        assert _offered_to(router, "call") == "ann"


class TestAssign:
    def test_a_queued_contact_goes_to_the_named_free_agent(self) -> None:
        """Not the longest idle: the one named, reserve or not."""
        router = _router(reserve=1)
        _ready(router, "ann", phone=1)
        _ready(router, "bea", _at(1), phone=1)
        router.supervision.set_status("ann", AgentStatus.AWAY, "", BY, _at(2))
        router.supervision.set_status("bea", AgentStatus.AWAY, "", BY, _at(2))
        router.submit(build_contact("mail", EMAIL), _at(3))
        router.supervision.set_status("ann", AgentStatus.READY, "", BY, _at(4))
        router.supervision.set_status("bea", AgentStatus.READY, "", BY, _at(5))
        # Two phone-ready agents, reserve 1: the email went to the longest idle (ann).
        assert _offered_to(router, "mail") == "ann"
        contact, events = router.supervision.assign("mail", "bea", BY, _at(6))
        assert _kinds(events) == [
            "assigned:mail",
            "withdrawn:mail:assigned",
            "requeued:mail",
            "offered:mail",
        ]
        assert (contact.agent_id, contact.preferred_agent_id) == ("bea", "bea")
        assert contact.preferred_agent_source is PreferenceSource.SUPERVISOR

    def test_a_busy_named_agent_is_waited_for_then_anyone_takes_it(self) -> None:
        router = _router()
        _ready(router, "ann")
        router.submit(build_contact("first"), T0)  # ann is on it
        router.accept("ann", router.offers_for("ann")[0].id, _at(1))
        router.submit(build_contact("call"), _at(2))
        router.supervision.assign("call", "ann", BY, _at(3))
        _ready(router, "bea", _at(4))
        assert _offered_to(router, "call") is None  # held for ann
        events = router.expire(_at(3 + 30))
        assert "offered:call" in _kinds(events)
        assert _offered_to(router, "call") == "bea"

    def test_the_named_agents_decline_no_longer_keeps_it_away(self) -> None:
        router = _router()
        _ready(router, "ann")
        router.submit(build_contact("call"), T0)
        router.decline("ann", router.offers_for("ann")[0].id, _at(1))
        assert _offered_to(router, "call") is None
        router.supervision.assign("call", "ann", BY, _at(2))
        assert _offered_to(router, "call") == "ann"

    def test_an_agent_who_could_not_serve_it_is_refused(self) -> None:
        router = _router()
        _ready(router, "ann", email=0)
        router.submit(build_contact("mail", EMAIL, skills={"es"}), T0)
        before = fingerprint(router, T0)
        with pytest.raises(WrongState, match="lacks es"):
            router.supervision.assign("mail", "ann", BY, T0)
        router.supervision.set_skills("mail", frozenset(), BY, T0)
        before = fingerprint(router, T0)
        with pytest.raises(WrongState, match="takes no email"):
            router.supervision.assign("mail", "ann", BY, T0)
        with pytest.raises(NotFound, match="not signed in"):
            router.supervision.assign("mail", "zed", BY, T0)
        assert fingerprint(router, T0) == before


class TestAgents:
    def test_a_forced_status_is_recorded_even_when_unchanged(self) -> None:
        router = _router()
        _ready(router, "ann")
        view, events = router.supervision.set_status("ann", AgentStatus.READY, "", BY, _at(1))
        (event,) = events
        assert isinstance(event, AgentEvent)
        assert (event.kind, event.intervention) == (AgentEventKind.STATUS_CHANGED, BY)
        view, events = router.supervision.set_status("ann", AgentStatus.AWAY, "", BY, _at(2))
        assert (view.status, view.away_reason) == (AgentStatus.AWAY, "supervisor")

    def test_sign_out_is_refused_while_the_agent_holds_a_conversation(self) -> None:
        router = _router()
        _ready(router, "ann")
        router.submit(build_contact("call"), T0)
        router.accept("ann", router.offers_for("ann")[0].id, _at(1))
        before = fingerprint(router, _at(2))
        with pytest.raises(WrongState, match="force"):
            router.supervision.sign_out("ann", False, BY, _at(2))
        assert fingerprint(router, _at(2)) == before

    def test_a_forced_sign_out_queues_the_call_again_and_completes_the_wrap_up(self) -> None:
        """The call keeps its first answer and goes to bea; the wrap-up is completed."""
        router = _router()
        _ready(router, "ann", phone=0, chat=3)
        router.submit(build_contact("chat1", CHAT), T0)
        router.submit(build_contact("chat2", CHAT), T0)
        for offer in router.offers_for("ann"):
            router.accept("ann", offer.id, _at(1))
        router.end("ann", "chat2", _at(2))
        _ready(router, "bea", _at(3), phone=0)
        router.supervision.set_status("bea", AgentStatus.AWAY, "", BY, _at(3))
        view, events = router.supervision.sign_out("ann", True, BY, _at(4))
        assert view.status is AgentStatus.OFFLINE
        assert _kinds(events) == ["requeued:chat1", "completed:chat2", "agent_signed_out:ann"]
        assert all(
            e.reason == SIGNED_OUT_BY_SUPERVISOR for e in events if isinstance(e, ContactEvent)
        )
        assert events[-1].intervention == BY  # type: ignore[union-attr]
        chat1 = router.contact("chat1")
        assert (chat1.state, chat1.answered_at) == (ContactState.QUEUED, _at(1))
        router.supervision.set_status("bea", AgentStatus.READY, "", BY, _at(5))
        assert _offered_to(router, "chat1") == "bea"

    def test_new_skills_withdraw_offers_it_cannot_keep_and_offer_what_it_now_can(self) -> None:
        router = _router()
        _ready(router, "ann", phone=0, chat=3)
        router.submit(build_contact("en", CHAT), T0)
        router.submit(build_contact("es", CHAT, skills={"es"}), T0)
        assert (_offered_to(router, "en"), _offered_to(router, "es")) == ("ann", None)
        view, events = router.supervision.change_agent(
            "ann", frozenset({"es"}), {PHONE: 0, CHAT: 3}, BY, _at(1)
        )
        assert _kinds(events) == ["agent_signed_in:ann", "offered:es"]
        assert view.skills == {"es"}
        # Now chat capacity 1 and no "es" any more: both offers go.
        _, events = router.supervision.change_agent(
            "ann", frozenset(), {PHONE: 0, CHAT: 1}, BY, _at(2)
        )
        assert "withdrawn:es:agent_changed" in _kinds(events)
        assert _offered_to(router, "es") is None
        assert _offered_to(router, "en") == "ann"

    def test_capacity_below_the_offers_withdraws_the_newest(self) -> None:
        router = _router()
        _ready(router, "ann", phone=0, chat=3)
        router.submit(build_contact("c1", CHAT), T0)
        router.submit(build_contact("c2", CHAT, 1.0), _at(1))
        _, events = router.supervision.change_agent("ann", frozenset(), {CHAT: 1}, BY, _at(2))
        withdrawn = [e for e in events if isinstance(e, OfferWithdrawn)]
        assert [e.offer.contact_id for e in withdrawn] == ["c2"]
        assert _offered_to(router, "c1") == "ann"

    def test_a_bad_capacity_changes_nothing(self) -> None:
        router = _router()
        _ready(router, "ann", phone=0, chat=3)
        router.submit(build_contact("c1", CHAT), T0)
        before = fingerprint(router, T0)
        with pytest.raises(InvalidArgument, match="capacities"):
            router.supervision.change_agent("ann", frozenset({"x"}), {CHAT: 99}, BY, T0)
        assert fingerprint(router, T0) == before
