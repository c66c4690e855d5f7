"""After a restart, answered contacts wait `reconnect_grace` seconds for their agent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from router.domain import (
    AgentStatus,
    Channel,
    Contact,
    ContactEvent,
    ContactEventKind,
    ContactState,
    Router,
    RoutingPolicy,
)

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
GRACE = 60.0


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def answered(key: str, state: ContactState, agent_id: str = "alice") -> Contact:
    return Contact(
        id=f"id-{key}",
        idempotency_key=key,
        channel=Channel.CHAT,
        customer_id="c",
        queued_at=at(-100),
        state=state,
        offered_at=at(-90),
        answered_at=at(-80),
        ended_at=at(-10) if state is ContactState.WRAP_UP else None,
        agent_id=agent_id,
        offer_id=f"offer-{key}",
        offer_count=1,
    )


def restored(*contacts: Contact) -> Router:
    router = Router(RoutingPolicy(phone_reserve=0, reconnect_grace=GRACE))
    router.restore(contacts, at(0))
    return router


class TestReconnectGrace:
    def test_agent_back_in_time_keeps_its_contacts(self) -> None:
        talking = answered("chat-1", ContactState.CONNECTED)
        router = restored(talking)
        router.sign_in("alice", frozenset(), {}, AgentStatus.READY, at(GRACE - 1))
        assert router.expire(at(GRACE + 1)) == []
        assert router.contact(talking.id).agent_id == "alice"
        assert router.contact(talking.id).state is ContactState.CONNECTED

    def test_deadline_is_the_end_of_the_grace(self) -> None:
        router = restored(answered("chat-1", ContactState.CONNECTED))
        assert router.next_deadline() == at(GRACE)
        assert router.expire(at(GRACE - 0.001)) == []

    def test_conversation_left_behind_returns_to_its_place_in_the_queue(self) -> None:
        talking = answered("chat-1", ContactState.CONNECTED)
        router = restored(talking)
        events = router.expire(at(GRACE))
        requeued = [e for e in events if isinstance(e, ContactEvent)]
        assert [(e.kind, e.reason) for e in requeued] == [
            (ContactEventKind.REQUEUED, "agent_not_back")
        ]
        now = router.contact(talking.id)
        assert now.state is ContactState.QUEUED
        assert now.agent_id is None
        assert now.queued_at == talking.queued_at
        # Another agent takes it; its wait still ended at the first answer.
        router.sign_in("bob", frozenset(), {}, AgentStatus.READY, at(GRACE + 1))
        router.connect("bob", at(GRACE + 1))
        offer = router.offers_for("bob")[0]
        contact, _ = router.accept("bob", offer.id, at(GRACE + 2))
        assert contact.answered_at == talking.answered_at

    def test_wrap_up_left_behind_is_completed(self) -> None:
        wrapping = answered("chat-2", ContactState.WRAP_UP)
        router = restored(wrapping)
        events = router.expire(at(GRACE))
        (completed,) = [e for e in events if isinstance(e, ContactEvent)]
        assert completed.kind is ContactEventKind.COMPLETED
        assert completed.reason == "agent_not_back"
        assert completed.contact.completed_at == at(GRACE)
        assert list(router.contacts()) == []

    def test_contact_completed_by_the_returning_agent_is_not_touched(self) -> None:
        wrapping = answered("chat-3", ContactState.WRAP_UP)
        router = restored(wrapping)
        router.sign_in("alice", frozenset(), {}, AgentStatus.READY, at(1))
        router.complete("alice", wrapping.id, "done", at(2))
        assert router.expire(at(GRACE)) == []
