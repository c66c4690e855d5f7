"""A standby's warm core (router/domain/warm.py): after following any sequence of
changes, its takeover leaves the core a cold restore of the same contacts at the same
instant builds, with the same events."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from types import MappingProxyType

from hypothesis import given, settings
from hypothesis import strategies as st

from router.domain import (
    Callback,
    Channel,
    Contact,
    ContactEvent,
    ContactState,
    Event,
    PreferenceSource,
    Router,
    RoutingPolicy,
)
from router.domain.channel import ChannelPolicy
from router.domain.state import RESERVE
from router.domain.timers import Timer
from tests.unit.conftest import T0, build_contact

IDS = [f"c{n}" for n in range(10)]
AGENTS = ["ann", "bob", "cy"]


def _policy() -> RoutingPolicy:
    channels = dict(RoutingPolicy().channels)
    channels[Channel.EMAIL] = ChannelPolicy(
        3600.0, 1, 20, fallback_after=600.0, fallback_skills=frozenset({"general"})
    )
    channels[Channel.CHAT] = ChannelPolicy(60.0, 3, 5, fallback_after=30.0)
    return RoutingPolicy(channels=MappingProxyType(channels), phone_reserve=1)


POLICY = _policy()


@st.composite
def versions(draw: st.DrawFn) -> Contact:
    """One contact of IDS as a row might read: any state, kind and preference."""
    index = draw(st.integers(0, len(IDS) - 1))
    contact_id = IDS[index]
    # queued_at and channel are fixed per contact, as they are in the table.
    contact = build_contact(
        contact_id,
        list(Channel)[index % 3],
        float(index * 97 % 1000),
        skills=draw(st.sampled_from([(), ("general",), ("lang:es",)])),
        boost=draw(st.sampled_from([1.0, 2.0])),
    )
    state = draw(st.sampled_from(list(ContactState)))
    agent = draw(st.sampled_from(AGENTS))
    at = T0 + timedelta(seconds=1000)
    if state is not ContactState.QUEUED:
        contact = replace(contact, state=state, offered_at=at, offer_count=1)
    if state in (ContactState.OFFERED, ContactState.CONNECTED, ContactState.WRAP_UP):
        contact = replace(contact, agent_id=agent)
    if state is ContactState.OFFERED:
        contact = replace(contact, offer_id=f"offer-{draw(st.integers(0, 99))}")
    if state in (ContactState.CONNECTED, ContactState.WRAP_UP):
        contact = replace(contact, answered_at=at)
    preference = draw(st.sampled_from(["none", "none", "skills", "agent", "callback"]))
    if preference == "skills":
        contact = replace(contact, preferred_skills=("vip", "lang:fr"))
    elif preference == "agent":
        contact = replace(
            contact,
            preferred_agent_id=draw(st.sampled_from(AGENTS)),
            preferred_agent_source=PreferenceSource.GATEWAY,
        )
    elif preference == "callback":
        window = T0 + timedelta(seconds=draw(st.sampled_from([0, 1500, 4000])))
        callback = Callback("+15550100", contact.channel, contact.queued_at, window, None)
        contact = replace(contact, channel=Channel.PHONE, callback=callback)
    return contact


# A step: a page of changed contacts and of contacts gone from the table, applied at
# a standby's instant.
steps = st.lists(
    st.tuples(
        st.lists(versions(), max_size=6),
        st.lists(st.sampled_from(IDS), max_size=2),
        st.integers(0, 4000),
    ),
    max_size=12,
)


def _picture(router: Router, events: list[Event], now: datetime) -> tuple[object, ...]:
    state = router._state  # the core's insides are what is compared
    keys = [*IDS, *AGENTS, RESERVE]
    waiting = sorted(c for c in IDS if c in state.queue)
    return (
        sorted(events, key=lambda e: e.contact.id if isinstance(e, ContactEvent) else ""),
        dict(state.contacts),
        dict(state.keys),
        [(c, state.queue.position(c, now)) for c in waiting],
        [(c, state.queue.skills_of(c), state.queue.hold_of(c)) for c in waiting],
        [(kind, key, state.timers.at(kind, key)) for kind in Timer for key in keys],
        state.timers.next(),
        state.queued_bytes,
        {agent: sorted(ids) for agent, ids in state.unclaimed.items()},
        {agent: sorted(ids) for agent, ids in state.preferred_absent.items()},
        state.quiet_until,
        [state.queue.count(channel) for channel in Channel],
        router.snapshot(now),
    )


class TestWarmCore:
    @settings(max_examples=300)
    @given(steps, st.integers(1000, 5000))  # after every contact was queued
    def test_takeover_equals_a_cold_restore_of_the_same_rows(
        self, changes: list[tuple[list[Contact], list[str], int]], takeover: int
    ) -> None:
        """Whatever the standby followed (contacts queued, offered, answered, finished,
        changed again, gone; plain, preferring, callbacks), its takeover leaves the
        core and events of a cold restore of the rows as they stand."""
        rows: dict[str, Contact] = {}
        warm = Router(POLICY)
        for contacts, gone, seconds in changes:
            page = {c.id: c for c in contacts}  # a read returns each row once
            warm.warm.apply(page.values(), gone, T0 + timedelta(seconds=seconds))
            for contact_id in gone:
                rows.pop(contact_id, None)
            rows.update(page)
        now = T0 + timedelta(seconds=takeover)
        previous = [("customer-c1", "ann")]
        answers = [("bob", Channel.CHAT, now - timedelta(minutes=5))]
        voided, restored = warm.warm.take_over(now, previous, answers)
        cold = Router(POLICY)
        open_rows = [c for c in rows.values() if not c.state.is_final]
        cold_events = cold.restore(open_rows, now, previous, answers)
        assert _picture(warm, [*voided, *restored], now) == _picture(cold, cold_events, now)

    def test_a_followed_offer_is_requeued_at_its_place_at_the_takeover(self) -> None:
        """A contact the dead router had offered waits in the warm queue at its
        original place; the takeover voids the offer (REQUEUED, reason restart)."""
        first = build_contact("a", Channel.EMAIL, 10.0)
        second = build_contact("b", Channel.EMAIL, 20.0)
        offered = replace(first, state=ContactState.OFFERED, agent_id="ann", offer_id="o1")
        router = Router(POLICY)
        router.warm.apply([second, offered], [], T0)
        now = T0 + timedelta(seconds=60)
        voided, events = router.warm.take_over(now)
        assert events == []
        assert [(e.contact.id, e.reason, e.at, e.contact.state) for e in voided] == [
            ("a", "restart", now, ContactState.QUEUED)
        ]
        assert router.position("a", now) == 1
        assert router.position("b", now) == 2

    def test_changes_after_the_takeover_are_refused(self) -> None:
        """Once taken over the core is the active router's: a late page of the
        follower must not change it behind the router's back."""
        router = Router(POLICY)
        router.warm.take_over(T0)
        try:
            router.warm.apply([build_contact("a")], [], T0)
        except RuntimeError:
            return
        raise AssertionError("a change after the takeover was applied")
