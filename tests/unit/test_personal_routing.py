"""Personal routing in the core: preferred agents, hourly caps, contacts nobody could
serve (wait reasons, the live list, the fallback rule) and the customer's place in line."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta
from types import MappingProxyType

import pytest

from router.domain import (
    AgentStatus,
    Channel,
    ChannelPolicy,
    ContactEvent,
    ContactEventKind,
    ContactState,
    Event,
    PreferenceSource,
    Router,
    RoutingPolicy,
    WrongState,
)
from router.domain.previous_agents import PreviousAgents
from router.domain.wait_reason import WaitReason
from tests.unit.conftest import T0, SequentialIds, build_contact

PHONE, CHAT, EMAIL = Channel.PHONE, Channel.CHAT, Channel.EMAIL


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def policy(reserve: int = 0, **channels: ChannelPolicy) -> RoutingPolicy:
    base = dict(RoutingPolicy().channels)
    base.update({Channel(name): rule for name, rule in channels.items()})
    return RoutingPolicy(channels=MappingProxyType(base), phone_reserve=reserve)


class Center:
    """A Router with the calls these tests repeat."""

    def __init__(self, rules: RoutingPolicy | None = None) -> None:
        self.router = Router(rules or policy(), SequentialIds())

    def ready(
        self,
        agent_id: str,
        seconds: float,
        skills: Iterable[str] = (),
        phone: int = 1,
        chat: int = 3,
        email: int = 1,
    ) -> list[tuple[str, str]]:
        capacities = {PHONE: phone, CHAT: chat, EMAIL: email}
        events = self.router.sign_in(
            agent_id, frozenset(skills), capacities, AgentStatus.READY, at(seconds)
        )
        return offered(events + self.router.connect(agent_id, at(seconds)))

    def submit(
        self,
        contact_id: str,
        channel: Channel,
        seconds: float,
        *,
        customer: str = "",
        agent: str | None = None,
        skills: Iterable[str] = (),
    ) -> list[tuple[str, str]]:
        contact = build_contact(contact_id, channel, float(seconds), skills)
        contact = replace(
            contact, customer_id=customer or contact.customer_id, preferred_agent_id=agent
        )
        return offered(self.router.submit(self.router.with_preference(contact), at(seconds)))

    def on_a_call(self, agent_id: str, skills: Iterable[str] = ()) -> None:
        """The agent signs in at 0 s and answers "call" at 1 s: busy, but signed in."""
        self.ready(agent_id, 0, skills)
        self.submit("call", PHONE, 1)
        self.answer("call", 1)

    def answer(self, contact_id: str, seconds: float) -> None:
        contact = self.router.contact(contact_id)
        assert contact.agent_id is not None
        assert contact.offer_id is not None
        self.router.accept(contact.agent_id, contact.offer_id, at(seconds))

    def finish(self, contact_id: str, seconds: float) -> list[tuple[str, str]]:
        """End and complete an answered contact; what its agent is offered next."""
        agent_id = self.router.contact(contact_id).agent_id
        assert agent_id is not None
        self.router.end(agent_id, contact_id, at(seconds))
        _, events = self.router.complete(agent_id, contact_id, "done", at(seconds))
        return offered(events)

    def handle(self, contact_id: str, seconds: float) -> list[tuple[str, str]]:
        self.answer(contact_id, seconds)
        return self.finish(contact_id, seconds)

    def expire(self, seconds: float) -> list[tuple[str, str]]:
        return offered(self.router.expire(at(seconds)))

    def reason(self, contact_id: str, seconds: float) -> WaitReason:
        why = self.router.wait_reason(contact_id, at(seconds))
        assert why is not None
        return why.reason


def offered(events: Iterable[Event]) -> list[tuple[str, str]]:
    """(contact, agent) of each offer made, in order."""
    return [
        (e.contact.id, e.agent_id or "")
        for e in events
        if isinstance(e, ContactEvent) and e.kind is ContactEventKind.OFFERED
    ]


class TestPreferredAgent:
    def test_the_named_agent_is_offered_it_before_a_longer_idle_one(self) -> None:
        center = Center()
        center.ready("ann", 0)
        center.ready("bob", 5)
        assert center.submit("c1", CHAT, 10, agent="bob") == [("c1", "bob")]
        source = center.router.contact("c1").preferred_agent_source
        assert source is PreferenceSource.GATEWAY

    def test_a_busy_named_agent_is_waited_for_half_the_target_then_anyone(self) -> None:
        """A chat (target 60 s) is held 30 s for bob, who is on a call; then ann."""
        center = Center()
        center.on_a_call("bob")
        center.ready("ann", 2)
        assert center.submit("c1", CHAT, 10, agent="bob") == []
        assert center.reason("c1", 11) is WaitReason.PREFERRED_AGENT
        assert center.router.next_deadline() == at(40)
        assert center.expire(39.9) == []
        assert center.expire(40) == [("c1", "ann")]

    def test_the_named_agent_freed_within_the_wait_gets_it(self) -> None:
        center = Center()
        center.on_a_call("bob")
        center.ready("ann", 2)
        center.submit("c1", CHAT, 10, agent="bob")
        assert center.finish("call", 25) == [("c1", "bob")]

    def test_no_hold_for_an_agent_not_signed_in_or_without_the_skills(self) -> None:
        center = Center()
        center.ready("ann", 0)
        center.ready("bob", 1, skills=["es"])
        assert center.submit("c1", CHAT, 5, agent="zed") == [("c1", "ann")]
        assert center.submit("c2", EMAIL, 6, agent="ann", skills=["es"]) == [("c2", "bob")]

    def test_a_hold_starts_when_the_preferred_agent_signs_in_within_the_wait(self) -> None:
        """bob is not signed in when kim's chat arrives; he signs in (on a break) 10 s
        later: the chat is his until 30 s, so ann, free at 15 s, does not take it."""
        center = Center()
        center.on_a_call("ann")
        assert center.submit("c1", CHAT, 0, agent="bob") == []
        assert center.reason("c1", 1) is WaitReason.AGENTS_BUSY
        center.router.sign_in("bob", frozenset(), {CHAT: 3}, AgentStatus.AWAY, at(10))
        assert center.reason("c1", 11) is WaitReason.PREFERRED_AGENT
        assert center.finish("call", 15) == []
        assert center.expire(30) == [("c1", "ann")]

    def test_a_returning_customer_is_held_for_the_previous_agent(self) -> None:
        center = Center()
        center.ready("ann", 0)
        center.ready("bob", 1)
        assert center.submit("c1", CHAT, 2, customer="kim") == [("c1", "ann")]
        center.handle("c1", 3)
        # bob idled longer now, but kim's previous agent is ann.
        assert center.submit("c2", EMAIL, 10, customer="kim") == [("c2", "ann")]
        contact = center.router.contact("c2")
        assert contact.preferred_agent_id == "ann"
        assert contact.preferred_agent_source is PreferenceSource.PREVIOUS_AGENT

    def test_a_channel_may_not_prefer_the_previous_agent(self) -> None:
        center = Center(policy(email=ChannelPolicy(3600.0, 1, 20, prefer_previous_agent=False)))
        center.ready("ann", 0)
        center.ready("bob", 1)
        center.submit("c1", CHAT, 2, customer="kim")
        center.handle("c1", 3)
        assert center.submit("c2", EMAIL, 10, customer="kim") == [("c2", "bob")]
        assert center.router.contact("c2").preferred_agent_id is None

    @pytest.mark.parametrize("decline_exclusion", [None, 0.0])
    def test_a_decline_by_the_preferred_agent_ends_the_hold(
        self, decline_exclusion: float | None
    ) -> None:
        """bob passed on the chat held for him: the hold is over and ann takes it, not
        bob again, even with decline_exclusion 0 (nothing keeps bob from it a while)."""
        rules = policy()
        if decline_exclusion is not None:
            rules = replace(rules, decline_exclusion=decline_exclusion)
        center = Center(rules)
        center.ready("ann", 0)
        center.ready("bob", 1)
        assert center.submit("c1", CHAT, 5, agent="bob") == [("c1", "bob")]
        offer_id = center.router.contact("c1").offer_id
        assert offer_id is not None
        _, events = center.router.decline("bob", offer_id, at(6))
        assert offered(events) == [("c1", "ann")]

    def test_an_offer_the_preferred_agent_lets_ring_out_ends_the_hold(self) -> None:
        """bob lets the chat held for him ring out (15 s): he is away ("missed"), and the
        customer goes to ann at once rather than waiting out the hold (30 s)."""
        center = Center()
        center.ready("ann", 0)
        center.on_a_call("ann")
        center.ready("bob", 1)
        assert center.submit("c1", CHAT, 5, agent="bob") == [("c1", "bob")]
        center.finish("call", 10)
        assert center.expire(20) == [("c1", "ann")]

    def test_the_hold_ends_when_the_preferred_agent_signs_out(self) -> None:
        """bob is on a break: the email is held for him (30 min) until he signs out."""
        center = Center()
        center.ready("bob", 0)
        center.router.set_status("bob", AgentStatus.AWAY, "break", at(1))
        center.ready("ann", 2)
        assert center.submit("e1", EMAIL, 10, agent="bob") == []
        assert center.reason("e1", 10) is WaitReason.PREFERRED_AGENT
        assert offered(center.router.sign_out("bob", at(14))) == [("e1", "ann")]

    def test_the_hold_never_outlasts_the_answer_deadline(self) -> None:
        """Held 100 s at most for the preferred agent, but a call's target is 20 s."""
        phone = ChannelPolicy(20.0, 1, 1, exclusive=True, preferred_agent_wait=100.0)
        center = Center(policy(phone=phone))
        center.on_a_call("bob")
        center.ready("ann", 2)
        center.submit("c2", PHONE, 10, agent="bob")
        assert center.router.next_deadline() == at(30)
        assert center.expire(30) == [("c2", "ann")]

    def test_the_preference_survives_a_restart(self) -> None:
        """Restored, the contact is held for its agent again once that agent is back."""
        center = Center()
        center.on_a_call("bob")
        center.submit("c1", EMAIL, 5, agent="bob")
        saved = list(center.router.contacts())
        restarted = Center()
        restarted.router.restore(saved, at(6), previous_agents=[("kim", "bob")])
        restarted.ready("bob", 7)  # bob reclaims his call
        # ann, free, is not offered c1: it is held for bob again (the email's wait).
        assert restarted.ready("ann", 8) == []
        assert restarted.reason("c1", 9) is WaitReason.PREFERRED_AGENT
        restarted.submit("c9", CHAT, 9, customer="kim")
        assert restarted.router.contact("c9").preferred_agent_id == "bob"


class TestPreviousAgents:
    def test_the_least_recently_completed_customer_is_forgotten_first(self) -> None:
        memory = PreviousAgents(capacity=2)
        memory.remember("kim", "ann")
        memory.remember("lee", "bob")
        memory.remember("kim", "cat")  # kim again: now the most recent
        memory.remember("max", "dan")
        assert (memory.of("kim"), memory.of("lee"), memory.of("max")) == ("cat", None, "dan")
        assert len(memory) == 2

    def test_an_erased_customer_is_forgotten(self) -> None:
        """After forget_customer the customer's next contact is held for nobody."""
        center = Center()
        center.ready("ann", 0)
        center.submit("first", PHONE, 1, customer="kim")
        center.handle("first", 2)
        center.router.forget_customer("kim")
        center.ready("bob", 3)
        center.submit("second", PHONE, 4, customer="kim")
        assert center.router.contact("second").preferred_agent_id is None

    def test_a_customer_with_an_open_contact_is_not_forgotten(self) -> None:
        """While a contact of theirs is open the core refuses, and still remembers them."""
        center = Center()
        center.ready("ann", 0)
        center.submit("first", PHONE, 1, customer="kim")
        center.handle("first", 2)
        center.submit("waiting", EMAIL, 3, customer="kim")
        with pytest.raises(WrongState, match="erase once they end"):
            center.router.forget_customer("kim")
        center.submit("second", PHONE, 4, customer="kim")
        assert center.router.contact("second").preferred_agent_id == "ann"


class TestFairLoad:
    def test_fewest_open_contacts_first_then_longest_idle(self) -> None:
        center = Center()
        center.ready("ann", 0)
        center.ready("bob", 1)
        assert center.submit("c1", CHAT, 2) == [("c1", "ann")]
        assert center.submit("c2", CHAT, 3) == [("c2", "bob")]
        assert center.submit("c3", CHAT, 4) == [("c3", "ann")]

    def test_an_agent_at_its_hourly_cap_gets_no_more_until_an_answer_is_an_hour_old(
        self,
    ) -> None:
        email = ChannelPolicy(3600.0, 1, 20, max_per_hour=2)
        center = Center(policy(email=email))
        center.ready("ann", 0)
        for n, second in ((1, 10), (2, 20)):
            assert center.submit(f"e{n}", EMAIL, second) == [(f"e{n}", "ann")]
            center.handle(f"e{n}", second + 1)
        assert center.submit("e3", EMAIL, 30) == []
        assert center.reason("e3", 30) is WaitReason.AGENTS_BUSY
        center.ready("bob", 40)
        assert center.router.contact("e3").agent_id == "bob"
        center.answer("e3", 41)
        center.submit("e4", EMAIL, 50)
        assert center.router.next_deadline() == at(3611)  # e1's answer leaves the hour
        assert center.expire(3611) == [("e4", "ann")]

    def test_open_offers_count_towards_the_cap(self) -> None:
        email = ChannelPolicy(3600.0, 1, 20, max_per_hour=1)
        center = Center(policy(email=email))
        center.ready("ann", 0, email=5)
        assert center.submit("e1", EMAIL, 1) == [("e1", "ann")]
        assert center.submit("e2", EMAIL, 2) == []

    def test_a_cap_lifted_and_reached_again_is_lifted_again(self) -> None:
        """Cap 1: answered at 1 s, free again at 3601 s and offered the next email at
        once; answered at 3602 s, capped until 7202 s."""
        email = ChannelPolicy(3600.0, 1, 20, max_per_hour=1)
        center = Center(policy(email=email))
        center.ready("ann", 0)
        center.submit("e1", EMAIL, 1)
        center.handle("e1", 1)
        center.submit("e2", EMAIL, 2)
        center.submit("e3", EMAIL, 3)
        assert center.expire(3601) == [("e2", "ann")]
        center.handle("e2", 3602)
        assert center.router.next_deadline() == at(7202)
        assert center.expire(7202) == [("e3", "ann")]

    def test_the_count_survives_a_restart_and_signing_out(self) -> None:
        email = ChannelPolicy(3600.0, 1, 20, max_per_hour=1)
        center = Center(policy(email=email))
        center.ready("ann", 0)
        center.submit("e1", EMAIL, 1)
        center.handle("e1", 2)
        center.router.sign_out("ann", at(3))
        center.ready("ann", 4)
        assert center.submit("e2", EMAIL, 5) == []
        restarted = Center(policy(email=email))
        restarted.router.restore([], at(6), recent_answers=[("ann", EMAIL, at(2))])
        restarted.ready("ann", 7)
        assert restarted.submit("e3", EMAIL, 8) == []
        assert restarted.expire(3602) == [("e3", "ann")]


def fallback_policy(after: float = 120.0) -> RoutingPolicy:
    chat = ChannelPolicy(60.0, 3, 20, fallback_after=after, fallback_skills=frozenset({"any"}))
    return policy(chat=chat)


class TestNobodyThere:
    def test_with_nobody_signed_in_the_contact_waits_and_says_why(self) -> None:
        center = Center()
        center.submit("c1", CHAT, 0)
        why = center.router.wait_reason("c1", at(5))
        assert why is not None
        assert why.reason is WaitReason.NO_AGENT_SIGNED_IN
        assert "nothing is dropped" in why.detail
        snapshot = center.router.snapshot(at(5))
        assert snapshot.unserved[CHAT] == 1
        assert [u.contact_id for u in snapshot.unserved_contacts] == ["c1"]

    def test_a_skill_nobody_signed_in_has_is_listed_oldest_first(self) -> None:
        center = Center()
        center.ready("ann", 0, skills=["en"])
        center.submit("c1", CHAT, 1, skills=["fr"])
        center.submit("c2", EMAIL, 2, skills=["fr"])
        center.submit("c3", CHAT, 3, skills=["en"])
        assert center.reason("c1", 10) is WaitReason.NO_AGENT_WITH_SKILLS
        snapshot = center.router.snapshot(at(10))
        assert dict(snapshot.unserved) == {PHONE: 0, CHAT: 1, EMAIL: 1}
        listed = [(u.contact_id, u.wait_seconds) for u in snapshot.unserved_contacts]
        assert listed == [("c1", 9.0), ("c2", 8.0)]
        assert all(u.fallback_at is None for u in snapshot.unserved_contacts)

    def test_the_fallback_rule_moves_it_after_its_wait(self) -> None:
        center = Center(fallback_policy())
        center.ready("ann", 0, skills=["any"])
        center.submit("c1", CHAT, 10, skills=["fr"])
        why = center.router.wait_reason("c1", at(11))
        assert why is not None
        assert "moves to skill any at" in why.detail
        assert center.router.snapshot(at(11)).unserved_contacts[0].fallback_at == at(130)
        assert center.router.next_deadline() == at(130)
        events = center.router.expire(at(130))
        rerouted = next(e for e in events if isinstance(e, ContactEvent))
        assert rerouted.kind is ContactEventKind.REROUTED
        assert rerouted.agent_id is None
        assert rerouted.reason == (
            "fallback from skill fr to skill any after 120 s: no signed-in agent could serve it"
        )
        assert offered(events) == [("c1", "ann")]
        assert center.router.contact("c1").required_skills == frozenset({"any"})

    def test_an_offer_that_times_out_past_the_wait_brings_back_the_timer(self) -> None:
        """Found by the state machine (seed 8): c1 is offered to bob, who then stops
        taking chats and lets the offer ring out. Back in the queue with nobody to serve
        it, c1 still moves at 120 s, although its timer was dropped while it was offered."""
        center = Center(fallback_policy())
        center.ready("bob", 0, skills=["fr"])
        assert center.submit("c1", CHAT, 0, skills=["fr"]) == [("c1", "bob")]
        center.router.sign_in("bob", frozenset({"fr"}), {CHAT: 0}, AgentStatus.AWAY, at(1))
        assert center.router.next_deadline() == at(15)  # the offer's; c1's timer is gone
        center.expire(15)
        assert center.reason("c1", 16) is WaitReason.NO_AGENT_WITH_SKILLS
        assert center.router.next_deadline() == at(120)
        center.expire(120)
        assert center.router.contact("c1").required_skills == frozenset({"any"})

    def test_a_contact_that_could_be_served_is_not_moved(self) -> None:
        center = Center(fallback_policy())
        center.on_a_call("bob", skills=["fr"])  # bob is busy, but he could serve c1
        center.submit("c1", CHAT, 10, skills=["fr"])
        assert center.reason("c1", 11) is WaitReason.AGENTS_BUSY
        center.expire(130)
        contact = center.router.contact("c1")
        assert (contact.state, contact.required_skills) == (ContactState.QUEUED, frozenset({"fr"}))

    def test_when_the_last_agent_with_the_skill_leaves_an_old_contact_moves_at_once(
        self,
    ) -> None:
        center = Center(fallback_policy())
        center.on_a_call("bob", skills=["fr"])
        center.submit("c1", CHAT, 10, skills=["fr"])
        center.expire(200)
        center.finish("call", 201)  # bob is offered c1
        offer_id = center.router.contact("c1").offer_id
        assert offer_id is not None
        center.router.decline("bob", offer_id, at(202))
        events = center.router.sign_out("bob", at(203))
        assert [e.kind for e in events if isinstance(e, ContactEvent)] == [
            ContactEventKind.REROUTED
        ]

    def test_no_fallback_while_agents_have_their_grace_after_a_restart(self) -> None:
        center = Center(fallback_policy())
        center.submit("c1", CHAT, 0, skills=["fr"])
        saved = list(center.router.contacts())
        restarted = Center(fallback_policy())
        restarted.router.restore(saved, at(500))
        assert restarted.expire(500) == []
        assert restarted.router.contact("c1").required_skills == frozenset({"fr"})
        assert restarted.router.next_deadline() == at(620)  # the reconnect grace, 120 s
        restarted.router.expire(at(620))
        assert restarted.router.contact("c1").required_skills == frozenset({"any"})

    def test_a_first_start_has_no_grace_to_wait_for(self) -> None:
        """Nothing was open: nobody is coming back, so the rule keeps its own time."""
        center = Center(fallback_policy())
        center.router.restore([], at(0))
        center.submit("c1", CHAT, 1, skills=["fr"])
        assert center.router.next_deadline() == at(121)


class TestWaitReasons:
    def test_away_busy_reserve_and_declined(self) -> None:
        center = Center(policy(reserve=1))
        center.ready("ann", 0)
        center.submit("c1", CHAT, 1)
        assert center.reason("c1", 2) is WaitReason.PHONE_RESERVE
        center.router.set_status("ann", AgentStatus.AWAY, "lunch", at(3))
        assert center.reason("c1", 4) is WaitReason.AGENTS_AWAY
        center.router.set_status("ann", AgentStatus.READY, "", at(5))
        center.submit("call", PHONE, 6)
        center.answer("call", 6)
        assert center.reason("c1", 7) is WaitReason.AGENTS_BUSY
        center.ready("bob", 8, phone=0)
        offer_id = center.router.contact("c1").offer_id
        assert offer_id is not None
        center.router.decline("bob", offer_id, at(9))
        assert center.reason("c1", 10) is WaitReason.DECLINED

    def test_preferred_skills_nobody_has(self) -> None:
        center = Center()
        center.ready("ann", 0)
        contact = replace(build_contact("c1", CHAT, 1.0), preferred_skills=("es",))
        center.router.submit(contact, at(1))
        assert center.reason("c1", 2) is WaitReason.PREFERRED_SKILLS


class TestPlaceInLine:
    def test_only_contacts_the_same_agents_could_serve_are_ahead(self) -> None:
        """Billing and sales agents are separate: a sales chat is 1st in its line though
        3rd in routing order; an agent with both skills joins the lines."""
        center = Center()
        for agent, skill in (("bill", "billing"), ("sal", "sales")):
            center.ready(agent, 0, skills=[skill])
            center.submit(f"call-{skill}", PHONE, 1, skills=[skill])
            center.answer(f"call-{skill}", 1)
        center.submit("b1", CHAT, 2, skills=["billing"])
        center.submit("b2", CHAT, 3, skills=["billing"])
        center.submit("s1", CHAT, 4, skills=["sales"])
        routing = [center.router.position(c, at(5)) for c in ("b1", "b2", "s1")]
        in_line = [center.router.line_position(c, at(5)) for c in ("b1", "b2", "s1")]
        assert (routing, in_line) == ([1, 2, 3], [1, 2, 1])
        center.router.sign_in(
            "both",
            frozenset({"billing", "sales"}),
            {PHONE: 1, CHAT: 0, EMAIL: 0},
            AgentStatus.AWAY,
            at(6),
        )
        assert center.router.line_position("s1", at(7)) == 1  # "both" takes no chat
        center.router.sign_in(
            "both", frozenset({"billing", "sales"}), {CHAT: 1}, AgentStatus.AWAY, at(8)
        )
        assert center.router.line_position("s1", at(9)) == 3

    def test_a_held_contact_is_in_line_for_its_agent_only(self) -> None:
        center = Center()
        center.on_a_call("bob")
        center.submit("e1", EMAIL, 2)
        center.submit("e2", EMAIL, 3, agent="bob")
        assert center.router.position("e2", at(4)) == 2
        assert center.router.line_position("e2", at(4)) == 2
        center.ready("ann", 5)  # ann takes e1: e2 is first in bob's line
        assert center.router.line_position("e2", at(6)) == 1
