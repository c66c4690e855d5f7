"""Queued callbacks in the core: the place kept, the window, dials, retries, unreached."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from router.domain import (
    AgentStatus,
    Channel,
    ChannelPolicy,
    ContactEvent,
    ContactEventKind,
    ContactState,
    DialOutcome,
    Event,
    InvalidArgument,
    OfferWithdrawn,
    Router,
    RoutingPolicy,
    WrongState,
)
from router.domain.callbacks import callback_offered
from router.domain.channel import _default_channels
from router.domain.wait_reason import WaitReason
from tests.unit.conftest import T0, SequentialIds, build_contact, fingerprint

PHONE, CHAT, EMAIL = Channel.PHONE, Channel.CHAT, Channel.EMAIL
NUMBER = "+14155550123"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _router(*, attempts: int = 3, retry: float = 60.0) -> Router:
    policy = RoutingPolicy(phone_reserve=0, callback_attempts=attempts, callback_retry_delay=retry)
    return Router(policy, SequentialIds())


def _ready(router: Router, agent_id: str, now: datetime, *, phone: int = 1) -> list[Event]:
    capacities = {PHONE: phone, CHAT: 3, EMAIL: 1}
    events = router.sign_in(agent_id, frozenset(), capacities, AgentStatus.READY, now)
    return events + router.connect(agent_id, now)


def _kinds(events: list[Event]) -> list[str]:
    return [e.kind.value for e in events if isinstance(e, ContactEvent)]


def _offer_of(router: Router, agent_id: str) -> str:
    (offer,) = router.offers_for(agent_id)
    return offer.id


class TestRequest:
    def test_a_waiting_call_keeps_its_place(self) -> None:
        """A call turned into a callback keeps queued_at and is routed before later calls."""
        router = _router()
        router.submit(build_contact("a", PHONE, 0.0), at(0))
        router.submit(build_contact("b", PHONE, 5.0), at(5))
        contact, events = router.request_callback("a", NUMBER, (None, None), at(10))
        assert contact.queued_at == at(0)
        assert contact.callback is not None
        assert contact.callback.requested_from is PHONE
        assert _kinds(events) == ["callback_requested"]
        assert router.position("a", at(10)) == 1
        events = _ready(router, "ann", at(11))
        assert [e.contact.id for e in events if isinstance(e, ContactEvent)] == ["a"]

    def test_a_chat_becomes_a_phone_contact_with_its_queued_at(self) -> None:
        """A chat that asks for a call is the same contact, now phone, its wait counted once."""
        router = _router()
        router.submit(build_contact("c", CHAT, 0.0), at(0))
        contact, _ = router.request_callback("c", NUMBER, (None, None), at(30))
        assert (contact.channel, contact.queued_at) == (PHONE, at(0))
        assert contact.callback is not None
        assert contact.callback.requested_from is CHAT
        # Offered only to an agent who takes calls.
        assert not [e for e in _ready(router, "chat-only", at(31), phone=0) if _is_offer(e)]
        assert _offered_ids(_ready(router, "ann", at(32))) == ["c"]

    def test_an_offered_contact_loses_its_offer(self) -> None:
        """An offer out for the contact is withdrawn; it is offered again as a callback."""
        router = _router()
        _ready(router, "ann", at(0))
        router.submit(build_contact("a", PHONE, 0.0), at(0))
        contact, events = router.request_callback("a", NUMBER, (None, None), at(1))
        withdrawn = [e for e in events if isinstance(e, OfferWithdrawn)]
        assert [w.reason for w in withdrawn] == ["became_callback"]
        assert contact.state is ContactState.OFFERED
        assert router.offers_for("ann")[0].id != withdrawn[0].offer.id

    def test_not_offered_before_its_window(self) -> None:
        """Before not_before it waits out of the queue; at not_before it is offered."""
        router = _router()
        _ready(router, "ann", at(0))
        router.submit(build_contact("a", CHAT, 0.0), at(0))
        router.decline("ann", _offer_of(router, "ann"), at(1))  # ann passes on it
        contact, _events = router.request_callback("a", NUMBER, (at(100), None), at(2))
        assert contact.state is ContactState.QUEUED
        assert router.position("a", at(2)) == 0
        why = router.wait_reason("a", at(2))
        assert why is not None
        assert why.reason is WaitReason.CALLBACK_SCHEDULED
        assert "2025-01-06T09:01:40Z" in why.detail
        deadline = router.next_deadline()
        assert deadline is not None
        assert deadline <= at(100)
        assert not [e for e in router.expire(at(99)) if _is_offer(e)]
        assert _offered_ids(router.expire(at(100))) == ["a"]

    def test_a_window_that_closes_ends_it_unreached(self) -> None:
        """Still waiting at not_after: UNREACHED, reason window_ended."""
        router = _router()
        router.submit(build_contact("a", PHONE, 0.0), at(0))
        router.request_callback("a", NUMBER, (None, at(50)), at(1))
        events = router.expire(at(50))
        (last,) = [e for e in events if isinstance(e, ContactEvent)]
        assert (last.kind, last.reason) == (ContactEventKind.UNREACHED, "window_ended")
        assert last.contact.state is ContactState.UNREACHED
        assert "a" not in {c.id for c in router.contacts()}

    def test_offered_when_the_window_closes_it_ends_once_it_waits_again(self) -> None:
        """An offer out at not_after goes on; declined after it, the callback ends."""
        router = _router()
        _ready(router, "ann", at(0))
        router.submit(build_contact("a", PHONE, 0.0), at(0))
        router.request_callback("a", NUMBER, (None, at(10)), at(1))
        assert not _kinds(router.expire(at(10)))
        router.decline("ann", _offer_of(router, "ann"), at(12))
        router.sign_out("ann", at(12))
        kinds = _kinds(router.expire(at(25)))
        assert kinds == ["unreached"]

    def test_repeated_request_changes_nothing(self) -> None:
        """The same number and window again: the contact unchanged, no event."""
        router = _router()
        router.submit(build_contact("a", PHONE, 0.0), at(0))
        first, _ = router.request_callback("a", NUMBER, (None, None), at(1))
        again, events = router.request_callback("a", NUMBER, (None, None), at(2))
        assert (again, events) == (first, [])

    @pytest.mark.parametrize(
        ("window", "field"),
        [((at(20), at(10)), "not_after"), ((None, at(0)), "not_after")],
    )
    def test_a_bad_window_is_refused(
        self, window: tuple[datetime | None, datetime | None], field: str
    ) -> None:
        """A window that ends before it starts, or is over: InvalidArgument, nothing changed."""
        router = _router()
        router.submit(build_contact("a", PHONE, 0.0), at(0))
        before = fingerprint(router, at(5))
        with pytest.raises(InvalidArgument) as raised:
            router.request_callback("a", NUMBER, window, at(5))
        assert raised.value.field == field
        assert fingerprint(router, at(5)) == before

    def test_an_answered_contact_or_another_number_is_refused(self) -> None:
        """Only a waiting contact, and only once per number: WrongState, nothing changed."""
        router = _router()
        _ready(router, "ann", at(0))
        router.submit(build_contact("a", PHONE, 0.0), at(0))
        router.accept("ann", _offer_of(router, "ann"), at(1))
        router.submit(build_contact("b", PHONE, 0.0), at(0))
        router.request_callback("b", NUMBER, (None, None), at(2))
        before = fingerprint(router, at(3))
        with pytest.raises(WrongState):
            router.request_callback("a", NUMBER, (None, None), at(3))
        with pytest.raises(WrongState):
            router.request_callback("b", "+14155550999", (None, None), at(3))
        assert fingerprint(router, at(3)) == before


class TestDialling:
    def _dialling(self, router: Router, now: datetime) -> None:
        _ready(router, "ann", now)
        router.submit(build_contact("a", PHONE, 0.0), at(0))
        router.request_callback("a", NUMBER, (None, None), at(0))
        contact, events = router.accept("ann", _offer_of(router, "ann"), now)
        assert _kinds(events) == ["dialled"]
        assert contact.answered_at is None

    def test_reached(self) -> None:
        """CONNECTED: answered now (its wait is reached - queued_at), then as any call."""
        router = _router()
        self._dialling(router, at(10))
        contact, events = router.report_dial("ann", "a", DialOutcome.CONNECTED, at(15))
        assert _kinds(events) == ["reached"]
        assert contact.answered_at == at(15)
        assert contact.callback is not None
        assert (contact.callback.placed_at, contact.callback.reached_at) == (at(10), at(15))
        assert contact.callback.attempts == 1
        router.end("ann", "a", at(20))
        assert router.complete("ann", "a", "done", at(21))[0].state is ContactState.COMPLETED

    def test_a_reached_callback_transferred_is_answered_not_dialled_again(self) -> None:
        """Once reached, the customer is on the line: a transfer's next agent answers."""
        router = _router()
        self._dialling(router, at(10))
        router.report_dial("ann", "a", DialOutcome.CONNECTED, at(15))
        _ready(router, "bob", at(16))
        _, events = router.transfer("ann", "a", at(20), to_agent="bob")
        (offer,) = router.offers_for("bob")
        contact, events = router.accept("bob", offer.id, at(21))
        assert _kinds(events) == ["answered"]
        assert contact.answered_at == at(15)
        router.end("bob", "a", at(30))

    def test_not_ended_before_reached(self) -> None:
        """A callback being dialled cannot be ended: its outcome comes first."""
        router = _router()
        self._dialling(router, at(10))
        with pytest.raises(WrongState):
            router.end("ann", "a", at(11))

    def test_no_answer_retries_then_unreached(self) -> None:
        """NO_ANSWER and BUSY: offered again after the delay, UNREACHED after the last."""
        router = _router(attempts=2, retry=60.0)
        self._dialling(router, at(10))
        contact, events = router.report_dial("ann", "a", DialOutcome.NO_ANSWER, at(12))
        assert _kinds(events) == ["dial_failed"]
        assert contact.state is ContactState.QUEUED
        assert contact.callback is not None
        assert contact.callback.retry_at == at(72)
        assert router.agent("ann").contact_ids == ()
        assert not [e for e in router.expire(at(71)) if _is_offer(e)]
        assert _offered_ids(router.expire(at(72))) == ["a"]
        router.accept("ann", _offer_of(router, "ann"), at(73))
        contact, events = router.report_dial("ann", "a", DialOutcome.BUSY, at(75))
        assert _kinds(events) == ["dial_failed", "unreached"]
        assert contact.state is ContactState.UNREACHED
        assert contact.callback is not None
        assert (contact.callback.attempts, contact.callback.placed_at) == (2, at(10))
        assert [e.reason for e in events if isinstance(e, ContactEvent)][-1] == "attempts"

    def test_wrong_number_ends_at_once(self) -> None:
        """WRONG_NUMBER: UNREACHED whatever attempts are left; the agent is free."""
        router = _router(attempts=5)
        self._dialling(router, at(10))
        router.submit(build_contact("b", PHONE, 1.0), at(11))
        contact, events = router.report_dial("ann", "a", DialOutcome.WRONG_NUMBER, at(12))
        assert contact.state is ContactState.UNREACHED
        assert _kinds(events)[:2] == ["dial_failed", "unreached"]
        assert _offered_ids(events) == ["b"]

    def test_outcome_from_an_agent_not_holding_it_is_refused(self) -> None:
        """Only the agent dialling reports; a second report is refused; nothing changes."""
        router = _router()
        self._dialling(router, at(10))
        _ready(router, "bob", at(10))
        before = fingerprint(router, at(11))
        with pytest.raises(WrongState):
            router.report_dial("bob", "a", DialOutcome.CONNECTED, at(11))
        assert fingerprint(router, at(11)) == before
        router.report_dial("ann", "a", DialOutcome.CONNECTED, at(12))
        with pytest.raises(WrongState):
            router.report_dial("ann", "a", DialOutcome.NO_ANSWER, at(13))

    def test_outcome_for_a_contact_that_is_not_a_callback_is_refused(self) -> None:
        router = _router()
        _ready(router, "ann", at(0))
        router.submit(build_contact("a", PHONE, 0.0), at(0))
        router.accept("ann", _offer_of(router, "ann"), at(1))
        with pytest.raises(WrongState):
            router.report_dial("ann", "a", DialOutcome.CONNECTED, at(2))


class TestRestore:
    def test_a_pending_retry_survives_a_restart(self) -> None:
        """Restored with its retry_at ahead, it waits out of the queue until then."""
        router = _router(retry=60.0)
        _ready(router, "ann", at(0))
        router.submit(build_contact("a", PHONE, 0.0), at(0))
        router.request_callback("a", NUMBER, (None, at(500)), at(0))
        router.accept("ann", _offer_of(router, "ann"), at(1))
        waiting, _ = router.report_dial("ann", "a", DialOutcome.NO_ANSWER, at(2))
        restarted = _router(retry=60.0)
        restarted.restore([waiting], at(3))
        _ready(restarted, "ann", at(4))
        assert restarted.position("a", at(4)) == 0
        assert _offered_ids(restarted.expire(at(62))) == ["a"]
        restarted.decline("ann", _offer_of(restarted, "ann"), at(63))
        restarted.sign_out("ann", at(64))
        kinds = _kinds(restarted.expire(at(500)))
        assert kinds[-1] == "unreached"


class TestOffered:
    def test_offered_when_the_estimate_is_over_the_threshold(self) -> None:
        channels = dict(_default_channels())
        channels[PHONE] = ChannelPolicy(20.0, 1, 1, exclusive=True, callback_offer_after=60)
        policy = RoutingPolicy(channels=channels)
        contact = build_contact("a", PHONE)
        assert callback_offered(contact, 61.0, policy)
        assert not callback_offered(contact, 59.0, policy)
        assert not callback_offered(contact, None, policy)
        assert not callback_offered(build_contact("b", CHAT), 600.0, policy)


def _offered_ids(events: list[Event]) -> list[str]:
    return [e.contact.id for e in events if isinstance(e, ContactEvent) and _is_offer(e)]


def _is_offer(event: Event) -> bool:
    return isinstance(event, ContactEvent) and event.kind is ContactEventKind.OFFERED
