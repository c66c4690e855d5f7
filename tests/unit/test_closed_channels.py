"""The core outside a channel's hours: calls refused, the rest queued, nothing stops."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from router.domain import AgentStatus, Channel, ContactEvent, ContactEventKind, Router
from router.domain.channel import RoutingPolicy
from router.domain.opening_hours import Calendar, Closure, WeeklyHours
from router.domain.wait_reason import WaitReason
from router.errors import ChannelClosed
from tests.unit.conftest import SequentialIds, build_contact, fingerprint

PHONE, CHAT, EMAIL = Channel.PHONE, Channel.CHAT, Channel.EMAIL
# Paris, 08:00-22:00 every day; in winter 07:00-21:00 UTC.
HOURS = Calendar("Europe/Paris", channels={c: WeeklyHours.every_day((480, 1320)) for c in Channel})
EVENING = datetime(2026, 1, 12, 20, 59, tzinfo=UTC)  # 21:59 in Paris, a Monday
CLOSED = datetime(2026, 1, 12, 22, 0, tzinfo=UTC)  # 23:00
MORNING = datetime(2026, 1, 13, 7, 0, tzinfo=UTC)  # 08:00, the next opening


def router() -> Router:
    core = Router(RoutingPolicy(phone_reserve=0), SequentialIds())
    core.hours.use(HOURS)
    return core


def ready(core: Router, agent_id: str, now: datetime) -> list[object]:
    capacities = {PHONE: 1, CHAT: 1, EMAIL: 1}
    events = core.sign_in(agent_id, frozenset(), capacities, AgentStatus.READY, now)
    return [*events, *core.connect(agent_id, now)]


class TestNewContacts:
    def test_a_call_while_closed_is_refused_with_the_next_opening(self) -> None:
        """CHANNEL_CLOSED with the opening in local time and UTC; nothing changes."""
        core = router()
        before = fingerprint(core, CLOSED)
        call = build_contact("c1", PHONE, CLOSED)
        with pytest.raises(ChannelClosed) as refused:
            core.hours.check_open(call, CLOSED, queue_when_closed=False)
        assert refused.value.metadata == {"channel": "phone", "opensAt": MORNING.isoformat()}
        assert "2026-01-13 08:00 CET (2026-01-13 07:00 UTC)" in str(refused.value)
        assert fingerprint(core, CLOSED) == before

    def test_a_call_the_gateway_wants_queued_is_queued(self) -> None:
        """queue_when_closed: no refusal."""
        core = router()
        core.hours.check_open(build_contact("c1", PHONE, CLOSED), CLOSED, queue_when_closed=True)

    @pytest.mark.parametrize("channel", [CHAT, EMAIL])
    def test_chats_and_emails_are_queued(self, channel: Channel) -> None:
        """Only calls are refused: a chat or email waits for the morning."""
        core = router()
        core.hours.check_open(build_contact("c1", channel, CLOSED), CLOSED, queue_when_closed=False)

    def test_a_call_in_hours_is_taken(self) -> None:
        """Open: nothing to refuse."""
        core = router()
        core.hours.check_open(build_contact("c1", PHONE, EVENING), EVENING, queue_when_closed=False)


class TestWaitingWhileClosed:
    def test_the_wait_reason_says_until_when(self) -> None:
        """A contact waiting after the close: CLOSED, "closed until" the opening."""
        core = router()
        core.submit(build_contact("c1", EMAIL, EVENING), EVENING)
        open_reason = core.wait_reason("c1", EVENING)
        assert open_reason is not None
        assert open_reason.reason is WaitReason.NO_AGENT_SIGNED_IN
        why = core.wait_reason("c1", CLOSED)
        assert why is not None
        assert why.reason is WaitReason.CLOSED
        assert why.detail.startswith("closed until 2026-01-13 08:00 CET (2026-01-13 07:00 UTC)")
        assert core.snapshot(CLOSED).closed == frozenset(Channel)
        assert core.snapshot(EVENING).closed == frozenset()

    def test_an_agent_working_the_backlog_still_gets_it(self) -> None:
        """Routing does not stop while closed: the agent is offered the contact."""
        core = router()
        core.submit(build_contact("c1", EMAIL, EVENING), EVENING)
        events = ready(core, "a1", CLOSED)
        offered = [e for e in events if isinstance(e, ContactEvent)]
        assert [e.kind for e in offered] == [ContactEventKind.OFFERED]

    def test_a_reload_drops_nothing(self) -> None:
        """A closure added for now leaves every waiting contact where it was."""
        core = router()
        core.submit(build_contact("c1", PHONE, EVENING), EVENING)
        before = fingerprint(core, EVENING)
        start = datetime(2026, 1, 12, 21, 59)  # local wall time, as the file gives it
        core.hours.use(
            Calendar("Europe/Paris", closures=(Closure(start, start + timedelta(hours=1)),))
        )
        assert fingerprint(core, EVENING)[1:] == before[1:]
        assert core.wait_reason("c1", EVENING).reason is WaitReason.CLOSED  # type: ignore[union-attr]


class TestClosedWait:
    def test_queued_before_the_close_answered_at_the_opening(self) -> None:
        """Queued at 21:59, answered at 08:00: 10 h closed, a wait of 60 s open."""
        core = router()
        core.submit(build_contact("c1", PHONE, EVENING), EVENING)
        [offer] = [e.offer for e in ready(core, "a1", MORNING) if isinstance(e, ContactEvent)]
        assert offer is not None
        contact, _ = core.accept("a1", offer.id, MORNING)
        assert contact.closed_wait == 10 * 3600
        assert contact.wait_seconds(MORNING) - contact.closed_wait == 60

    def test_an_abandon_counts_its_closed_time(self) -> None:
        """Queued at 21:59, left at 23:00: 60 s open, an hour closed."""
        core = router()
        core.submit(build_contact("c1", CHAT, EVENING), EVENING)
        [event] = [e for e in core.abandon("c1", CLOSED) if isinstance(e, ContactEvent)]
        assert event.contact.closed_wait == 3600

    def test_always_open_counts_nothing(self) -> None:
        """Without hours, no wait has closed time (the default changes nothing)."""
        core = Router(RoutingPolicy(), SequentialIds())
        core.submit(build_contact("c1", CHAT, EVENING), EVENING)
        [event] = [e for e in core.abandon("c1", MORNING) if isinstance(e, ContactEvent)]
        assert event.contact.closed_wait == 0
