"""Properties of the routing core, checked by hypothesis over random operation sequences.

The state machines drive one Router through submits, sign-ins, presence and status
changes, accepts, declines, ends, completions, abandons, sign-outs, restarts, queued
callbacks (requests with and without a window, dial outcomes, retries, unreached), a
supervisor's actions (a status or sign-out forced, an agent's skills changed, a waiting
contact's priority or skills changed, its assignment to an agent, its cancellation:
offered contacts moved too), refused calls and monotonic clock advances. They replay
the events the router returns into a model of their own and check, after every step,
that the model and the router agree and that the routing invariants hold.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from fractions import Fraction
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import event as event_label
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from router.domain import (
    AgentEvent,
    AgentEventKind,
    AgentStatus,
    Channel,
    Contact,
    ContactEvent,
    ContactEventKind,
    ContactState,
    DialOutcome,
    DomainError,
    Event,
    NotFound,
    Offer,
    OfferWithdrawn,
    Router,
    RoutingPolicy,
    WrongState,
)
from router.domain.callbacks import being_dialled
from router.domain.channel import ChannelPolicy
from router.domain.contact import AGENT_TOKEN
from router.domain.events import Intervention
from router.domain.opening_hours import ALWAYS_OPEN, Calendar, Closure, SkillHours, WeeklyHours
from router.domain.queue import ContactQueue, answer_deadline
from router.domain.supervision import SIGNED_OUT_BY_SUPERVISOR
from router.domain.wait_reason import WaitReason
from router.errors import ChannelClosed
from tests.unit.conftest import T0, SequentialIds, build_contact, fingerprint

AGENTS = ("a1", "a2", "a3")
SKILLS = ("es", "vip")
PHONE, CHAT, EMAIL = Channel.PHONE, Channel.CHAT, Channel.EMAIL
ALL_SKILLS = frozenset(SKILLS)
ANSWERED = (ContactState.CONNECTED, ContactState.WRAP_UP)
SUPERVISOR = Intervention("lead", "a supervisor's reason")
SUPERVISED = frozenset(
    {
        ContactEventKind.PRIORITY_CHANGED,
        ContactEventKind.SKILLS_CHANGED,
        ContactEventKind.ASSIGNED,
        ContactEventKind.CANCELLED,
    }
)

skill_sets = st.frozensets(st.sampled_from(SKILLS), max_size=2)
# Most contacts need no skill and most agents have all, so that routing happens often.
contact_skills = st.sampled_from(
    [frozenset(), frozenset(), frozenset({"es"}), frozenset({"vip"}), ALL_SKILLS]
)
agent_skills = st.sampled_from([ALL_SKILLS, ALL_SKILLS, frozenset({"es"}), frozenset()])
# Hours of operation the machines switch between (T0 is a Monday, 09:00 UTC): open,
# phone open for half an hour a day, a closure of every channel soon after T0, every
# channel closed, and "es" with hours of its own.
_START = T0.replace(tzinfo=None)
CALENDARS = (
    ALWAYS_OPEN,
    Calendar("UTC", channels={PHONE: WeeklyHours.every_day((540, 570))}),
    Calendar(
        "UTC", closures=(Closure(_START + timedelta(minutes=1), _START + timedelta(hours=1)),)
    ),
    Calendar("UTC", channels={c: WeeklyHours(((),) * 7) for c in Channel}),
    Calendar("Europe/Paris", skills={"es": SkillHours(WeeklyHours.every_day((600, 610)))}),
)


def _to_agent(agent_id: str) -> dict[str, Any]:
    return {"to_agent": agent_id}


def _to_skills(skills: frozenset[str]) -> dict[str, Any]:
    return {"to_skills": skills}


transfer_targets: st.SearchStrategy[dict[str, Any]] = st.one_of(
    st.sampled_from(AGENTS).map(_to_agent), contact_skills.map(_to_skills)
)
capacities = st.fixed_dictionaries(
    {
        PHONE: st.sampled_from([1, 1, 0]),
        CHAT: st.sampled_from([3, 1, 2, 0]),
        EMAIL: st.sampled_from([1, 2, 0]),
    }
)


@dataclass
class _CallbackModel:
    """What the model knows of a queued callback, from the events alone."""

    due: datetime | None  # not offered before (not_before, then a pending retry)
    not_after: datetime | None
    attempts: int = 0
    reached: bool = False


@dataclass
class _AgentModel:
    status: AgentStatus
    connected: bool
    skills: frozenset[str]
    capacities: dict[Channel, int]


class RouterMachine(RuleBasedStateMachine):
    """Random operations against one Router; invariants checked after every step.

    The clock only moves in `advance`, which calls expire() at every deadline it passes
    (as the service's timer does), so after each step no open offer is past its deadline
    and no decline exclusion that has ended is still pending.

    (1) No contact is lost or duplicated: the active contacts are exactly those
        submitted and neither abandoned, completed nor cancelled, and each is in exactly one place:
        queued (state QUEUED, no agent) or held by exactly one agent (its agent_id).
    (2) Every offer, replayed in event order, went to an agent that was READY and
        connected, had the contact's required skills, had free capacity on the channel,
        held no call and, for a call, held nothing; and that had not declined the
        contact less than decline_exclusion seconds before. A chat or email went to an
        agent who could take a call only while more than K agents could (the reserve),
        or once it was past its answer deadline (queued_at + answer_target / boost).
    (3) Phone before email at equal waits is checked directly, below the machines.
    (4) Nothing waits while a free eligible agent exists. Let a *free eligible* agent
        of a queued contact c be one that is READY and connected, has c's skills, can
        take c's channel now (capacity left, no call held, nothing held if c is a call)
        and did not decline c less than decline_exclusion ago. Let P be the agents who
        could take a call now (free for PHONE, which means holding nothing), and K the
        phone reserve. Then for a call c, no free eligible agent exists; for a chat or
        email c, every free eligible agent is in P (the reserve), and if |P| > K or c
        is past its answer deadline there is none at all (beyond K, or once c has used
        its whole answer target, the reserve must give up an agent to c). With K = 0
        this is simply "no queued contact has a free eligible agent".
    (5) Each contact has at most one open offer, and the router's open offers are
        exactly those the event stream says are open, none past its deadline.
    (7) A queued callback keeps its queued_at and is a phone contact; it is offered
        only from its due instant on (its window's start, or its retry after a failed
        dial) and, before it, is in no queue and held by nobody; it is dialled at most
        callback_attempts times; it ends UNREACHED after its last failed dial, at once
        on a wrong number, or when its window closes while it waits; and only the agent
        dialling it may report a dial.
    (8) Hours of operation (reloaded at random, see CALENDARS): a call outside its
        hours is refused unless its gateway asks, changing nothing; chats and emails
        are queued; a reload drops and moves nothing, and (1)-(5) hold while closed
        (routing does not stop); a queued contact waits for reason CLOSED exactly
        when its hours say closed; a wait that ends counts its closed seconds.
    """

    reserve = 0
    decline_exclusion = 30.0
    channels: Mapping[Channel, ChannelPolicy] = RoutingPolicy().channels

    def __init__(self) -> None:
        super().__init__()
        self.policy = RoutingPolicy(
            channels=self.channels,
            phone_reserve=self.reserve,
            offer_timeout=15.0,
            decline_exclusion=self.decline_exclusion,
            callback_attempts=2,
            callback_retry_delay=60.0,
        )
        self.ids = SequentialIds()
        self.router = Router(self.policy, self.ids)
        self.now = T0
        self.submitted = 0
        self.active: set[str] = set()
        self.channel_of: dict[str, Channel] = {}
        self.agents: dict[str, _AgentModel] = {}
        self.capacities: dict[str, dict[Channel, int]] = {}
        self.held: dict[str, dict[str, Channel]] = {}
        self.open_offers: dict[str, str] = {}
        self.declined: dict[tuple[str, str], datetime] = {}
        # A contact transferred to a named agent: that agent's colleague chose them.
        self.named_for: dict[str, str] = {}
        self.past_offers: list[Offer] = []
        self.transferred: set[str] = set()
        self.completions: list[tuple[str, str]] = []  # (customer, agent), in order
        self.answers: list[tuple[str, Channel, datetime]] = []  # (agent, channel, when)
        self.quiet_until = T0  # after a restart, agents have a grace to come back
        self.callbacks: dict[str, _CallbackModel] = {}
        self.calendar = ALWAYS_OPEN  # the hours of operation in force

    # ------------------------------------------------------------ event replay

    def _apply(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, AgentEvent):
                self._apply_agent(event)
            elif isinstance(event, OfferWithdrawn):
                self._drop(event.offer)
            else:
                self._apply_contact(event)

    def _apply_agent(self, event: AgentEvent) -> None:
        if event.kind is AgentEventKind.SIGNED_OUT:
            assert not self.held.pop(event.agent_id), "signed out while holding contacts"
            del self.agents[event.agent_id]
            return
        self.agents[event.agent_id] = _AgentModel(
            event.status, event.connected, event.skills, self.capacities[event.agent_id]
        )
        self.held.setdefault(event.agent_id, {})

    def _drop(self, offer: Offer) -> None:
        self.held.get(offer.agent_id, {}).pop(offer.contact_id, None)
        if self.open_offers.get(offer.contact_id) == offer.id:
            del self.open_offers[offer.contact_id]

    def _apply_contact(self, event: ContactEvent) -> None:
        contact, kind = event.contact, event.kind
        if kind is ContactEventKind.OFFERED:
            self._check_offer(event)
        elif kind in (ContactEventKind.DECLINED, ContactEventKind.OFFER_TIMED_OUT):
            assert event.offer is not None
            self._drop(event.offer)
            if kind is ContactEventKind.DECLINED:
                self.declined[(contact.id, event.offer.agent_id)] = event.at
        elif kind in (ContactEventKind.ANSWERED, ContactEventKind.DIALLED):
            # A callback is dialled until a dial reaches its customer; once reached (then
            # transferred), its next agent answers it as any contact.
            callback = self.callbacks.get(contact.id)
            dialled = callback is not None and not callback.reached
            assert (kind is ContactEventKind.DIALLED) == dialled
            assert event.offer is not None
            assert self.open_offers.pop(contact.id) == event.offer.id
            # An answer starts a new leg: earlier declines and naming no longer hold.
            for key in [k for k in self.declined if k[0] == contact.id]:
                del self.declined[key]
            self.named_for.pop(contact.id, None)
            assert event.agent_id is not None
            self.answers.append((event.agent_id, contact.channel, event.at))
            if contact.answered_at == event.at:  # its first answer: the wait ends
                self._check_closed_wait(contact, event.at)
        elif kind is ContactEventKind.COMPLETED:
            assert event.agent_id is not None
            del self.held[event.agent_id][contact.id]
            self.completions.append((contact.customer_id, event.agent_id))
            self.active.remove(contact.id)
        elif kind in (ContactEventKind.ABANDONED, ContactEventKind.CANCELLED):
            assert contact.id not in self.open_offers, f"{kind.value} with an open offer"
            assert all(contact.id not in held for held in self.held.values())
            self.active.remove(contact.id)
            if kind is ContactEventKind.ABANDONED:  # a cancelled contact's wait counts nowhere
                # Answered before (transferred back, then left): its wait ended then.
                self._check_closed_wait(contact, contact.answered_at or event.at)
        elif kind is ContactEventKind.ASSIGNED:
            # A supervisor named the agent: it takes it, reserve or exclusion or not.
            assert event.agent_id is not None
            self.named_for[contact.id] = event.agent_id
            self.declined.pop((contact.id, event.agent_id), None)
        elif kind is ContactEventKind.TRANSFERRED:
            assert event.agent_id is not None
            assert contact.state is ContactState.QUEUED
            del self.held[event.agent_id][contact.id]
            # The transferring agent is kept from it like a decliner.
            self.declined[(contact.id, event.agent_id)] = event.at
        elif kind is ContactEventKind.REQUEUED:
            assert contact.state is ContactState.QUEUED
            if event.reason == SIGNED_OUT_BY_SUPERVISOR:
                # A forced sign-out: its conversation goes back, keeping its first answer
                # (a callback being dialled, not reached yet, has none).
                assert event.agent_id is not None
                assert contact.answered_at is not None or contact.id in self.callbacks
                del self.held[event.agent_id][contact.id]
                self.transferred.add(contact.id)
            assert all(contact.id not in held for held in self.held.values())
        elif kind in _CALLBACK_KINDS:
            self._apply_callback(event)
        elif kind is ContactEventKind.REROUTED:
            rule = self.policy.of(contact.channel)
            assert contact.state is ContactState.QUEUED
            assert event.agent_id is None
            assert rule.fallback_after is not None
            assert contact.required_skills == rule.fallback_skills
            assert event.at >= contact.queued_at + timedelta(seconds=rule.fallback_after)
            event_label("moved to the fallback skills")

    def _apply_callback(self, event: ContactEvent) -> None:
        """Property (7), replayed from the callbacks' own events."""
        contact, kind = event.contact, event.kind
        callback = contact.callback
        assert callback is not None
        assert contact.channel is PHONE
        if kind is ContactEventKind.CALLBACK_REQUESTED:
            assert contact.id not in self.callbacks
            assert callback.requested_from is self.channel_of[contact.id]
            assert contact.state is ContactState.QUEUED or contact.state is ContactState.OFFERED
            self.channel_of[contact.id] = PHONE
            self.callbacks[contact.id] = _CallbackModel(callback.not_before, callback.not_after)
            event_label(f"callback requested from {callback.requested_from.value}")
            return
        model = self.callbacks[contact.id]
        if kind is ContactEventKind.REACHED:
            model.attempts += 1
            model.reached = True
            assert callback.reached_at == event.at
            assert contact.answered_at is not None
            if contact.answered_at == event.at:  # reaching the customer ends the wait
                self._check_closed_wait(contact, event.at)
            assert event.agent_id is not None
            assert contact.id in self.held[event.agent_id]
            event_label("callback reached")
        elif kind is ContactEventKind.DIAL_FAILED:
            model.attempts += 1
            assert event.agent_id is not None
            del self.held[event.agent_id][contact.id]
            assert callback.last_outcome is not DialOutcome.CONNECTED
            if contact.state is ContactState.QUEUED:
                retry = event.at + timedelta(seconds=self.policy.callback_retry_delay)
                assert callback.retry_at == retry
                assert model.attempts < self.policy.callback_attempts
                model.due = retry
                event_label("callback to be retried")
        elif kind is ContactEventKind.UNREACHED:
            assert contact.state is ContactState.UNREACHED
            assert contact.id not in self.open_offers
            assert all(contact.id not in held for held in self.held.values())
            if event.reason == "attempts":
                assert model.attempts == self.policy.callback_attempts
            elif event.reason == "wrong_number":
                assert callback.last_outcome is DialOutcome.WRONG_NUMBER
            else:
                assert event.reason == "window_ended"
                assert model.not_after is not None
                assert event.at + timedelta(seconds=self.policy.callback_retry_delay) >= (
                    model.not_after
                )
            event_label(f"callback unreached: {event.reason}")
            self.active.remove(contact.id)
        assert callback.attempts == model.attempts <= self.policy.callback_attempts

    def _scheduled(self, contact: Contact) -> bool:
        """A queued callback waiting for its due instant: in no queue until then."""
        model = self.callbacks.get(contact.id)
        return (
            model is not None
            and contact.state is ContactState.QUEUED
            and model.due is not None
            and model.due > self.now
        )

    def _check_closed_wait(self, contact: Contact, end: datetime) -> None:
        """(8) A wait that ends counts as closed the seconds its hours (those in force
        now) said closed, and never more than the wait."""
        wait = (end - contact.queued_at).total_seconds()
        open_seconds = self.calendar.open_seconds_between(
            contact.channel, contact.required_skills, contact.queued_at, end
        )
        assert contact.closed_wait == pytest.approx(wait - open_seconds, abs=1e-6)
        assert 0 <= contact.closed_wait <= wait + 1e-6
        if contact.closed_wait:
            event_label("a wait with closed time")

    def _check_offer(self, event: ContactEvent) -> None:
        """Property (2) and (5) at the moment of each offer."""
        contact, offer = event.contact, event.offer
        assert offer is not None
        assert (offer.contact_id, offer.agent_id) == (contact.id, event.agent_id)
        assert contact.id in self.active
        assert contact.id not in self.open_offers, "a second open offer for one contact"
        assert all(contact.id not in held for held in self.held.values())
        agent = self.agents[offer.agent_id]
        assert agent.status is AgentStatus.READY, "offered to an agent not READY"
        assert agent.connected, "offered to an agent without an offer stream"
        assert contact.required_skills <= agent.skills, "offered to an agent without skills"
        held = list(self.held[offer.agent_id].values())
        channel = contact.channel
        assert held.count(channel) < agent.capacities[channel], "offered beyond capacity"
        assert PHONE not in held, "offered alongside a call"
        assert channel is not PHONE or not held, "call offered alongside other work"
        callback = self.callbacks.get(contact.id)
        if callback is not None:
            assert callback.due is None or callback.due <= event.at, "a callback offered early"
            assert channel is PHONE
            event_label("callback offered")
        declined_at = self.declined.get((contact.id, offer.agent_id))
        if declined_at is not None:
            assert declined_at + timedelta(seconds=self.decline_exclusion) <= event.at
            event_label("offered again to a former decliner")
        phone_ready = self._phone_ready()
        if self.named_for.get(contact.id) == offer.agent_id:
            # A transfer to a named agent goes to that agent, reserve or not.
            event_label("transferred to the named agent")
        elif channel is not PHONE and offer.agent_id in phone_ready:
            due = answer_deadline(contact, self.policy) <= event.at.timestamp()
            if len(phone_ready) > self.reserve:
                event_label("reserve agent released to other work")
            else:
                assert due, "the phone reserve was given other work within its target"
                event_label("reserve agent gave way to a contact past its deadline")
        self.held[offer.agent_id][contact.id] = channel
        self.open_offers[contact.id] = offer.id
        self.past_offers.append(offer)

    def _phone_ready(self) -> set[str]:
        """Agents who could take a call now, by the replayed model."""
        return {
            agent_id
            for agent_id, agent in self.agents.items()
            if agent.status is AgentStatus.READY
            and agent.connected
            and agent.capacities[PHONE] > 0
            and not self.held[agent_id]
        }

    def _excluded(self, contact_id: str, agent_id: str) -> bool:
        declined_at = self.declined.get((contact_id, agent_id))
        exclusion = timedelta(seconds=self.decline_exclusion)
        return declined_at is not None and declined_at + exclusion > self.now

    def _at_cap(self, agent_id: str, channel: Channel) -> bool:
        """Answers in the last hour and open offers reach the channel's hourly cap."""
        cap = self.policy.of(channel).max_per_hour
        if not cap:
            return False
        hour_ago = self.now - timedelta(hours=1)
        answered = sum(
            1 for a, c, t in self.answers if (a, c) == (agent_id, channel) and t > hour_ago
        )
        offered = sum(
            1
            for contact_id, offer_id in self.open_offers.items()
            if self.channel_of[contact_id] is channel
            and (offer := self.router.offer(offer_id)) is not None
            and offer.agent_id == agent_id
        )
        return answered + offered >= cap

    def _contacts_in(self, *states: ContactState) -> list[str]:
        return sorted(c.id for c in self.router.contacts() if c.state in states)

    # ------------------------------------------------------------------ rules

    @initialize(staff=st.lists(st.tuples(agent_skills, capacities), min_size=2, max_size=3))
    def staff(self, staff: list[tuple[frozenset[str], dict[Channel, int]]]) -> None:
        """Start with two or three agents ready and connected."""
        for agent_id, (skills, caps) in zip(AGENTS, staff, strict=False):
            self.capacities[agent_id] = caps
            self._apply(self.router.sign_in(agent_id, skills, caps, AgentStatus.READY, self.now))
            self._apply(self.router.connect(agent_id, self.now))

    @rule(
        channel=st.sampled_from(Channel),
        skills=contact_skills,
        boost=st.sampled_from([1.0, 1.0, 2.0]),
        preferred=st.sampled_from([(), (), ("es",), ("vip", "es")]),
        customer=st.sampled_from(["ann", "ann", "bob", "new"]),
        agent=st.sampled_from([None, None, None, *AGENTS]),
        queue_when_closed=st.booleans(),
    )
    def submit(
        self,
        channel: Channel,
        skills: frozenset[str],
        boost: float,
        preferred: tuple[str, ...],
        customer: str,
        agent: str | None,
        queue_when_closed: bool,
    ) -> None:
        """A contact, often of a returning customer, sometimes naming an agent; a call
        outside its hours is refused (changing nothing) unless its gateway asks."""
        self.submitted += 1
        contact_id = f"c{self.submitted:04d}"
        contact = build_contact(contact_id, channel, self.now, skills, boost)
        closed = not self.calendar.is_open(channel, skills, self.now)
        if closed and channel is PHONE and not queue_when_closed:
            before = fingerprint(self.router, self.now)
            with pytest.raises(ChannelClosed):
                self.router.hours.check_open(contact, self.now, queue_when_closed=False)
            assert fingerprint(self.router, self.now) == before
            event_label("a call refused: closed")
            return
        self.router.hours.check_open(contact, self.now, queue_when_closed=queue_when_closed)
        if closed:
            event_label(f"a {channel.value} queued while closed")
        self.active.add(contact_id)
        self.channel_of[contact_id] = channel
        if customer != "new":
            contact = replace(contact, customer_id=customer)
        contact = replace(contact, preferred_skills=preferred, preferred_agent_id=agent)
        contact = self.router.with_preference(contact)
        previous = [a for c, a in self.completions if c == contact.customer_id]
        if agent is None and previous and self.policy.of(channel).prefer_previous_agent:
            assert contact.preferred_agent_id == previous[-1]
            event_label("a returning customer")
        elif agent is None:
            assert contact.preferred_agent_id is None
        self._apply(self.router.submit(contact, self.now))

    @rule(data=st.data(), to=transfer_targets)
    def transfer(self, data: st.DataObject, to: dict[str, Any]) -> None:
        """Transfer a connected contact to skills or to an agent by name (or be refused,
        changing nothing)."""
        candidates = self._contacts_in(ContactState.CONNECTED)
        if not candidates:
            return
        contact = self.router.contact(data.draw(st.sampled_from(candidates)))
        assert contact.agent_id is not None
        before = fingerprint(self.router, self.now)
        try:
            moved, events = self.router.transfer(contact.agent_id, contact.id, self.now, **to)
        except DomainError:
            assert fingerprint(self.router, self.now) == before
            event_label("transfer refused")
            return
        assert (moved.queued_at, moved.answered_at) == (contact.queued_at, contact.answered_at)
        self.transferred.add(contact.id)
        event_label("transferred")
        # Record the named agent before the offer it may get in these same events.
        if "to_agent" in to:
            self.named_for[contact.id] = to["to_agent"]
        self._apply(events)

    @rule(
        agent=st.sampled_from(AGENTS),
        skills=agent_skills,
        caps=capacities,
        ready=st.booleans(),
        stream=st.sampled_from([True, True, False]),
    )
    def sign_in(
        self,
        agent: str,
        skills: frozenset[str],
        caps: dict[Channel, int],
        ready: bool,
        stream: bool,
    ) -> None:
        """Sign in (or update skills and capacities), usually opening the offer stream."""
        self.capacities[agent] = caps
        status = AgentStatus.READY if ready else AgentStatus.AWAY
        self._apply(self.router.sign_in(agent, skills, caps, status, self.now))
        if stream:
            self._apply(self.router.connect(agent, self.now))

    @rule(
        agent=st.sampled_from(AGENTS),
        change=st.sampled_from(["connect", "disconnect", "ready", "ready", "away", "sign_out"]),
    )
    def presence(self, agent: str, change: str) -> None:
        """Open or lose the offer stream, set READY / AWAY, or sign out."""
        if change == "disconnect":
            self._apply(self.router.disconnect(agent, self.now))
            return
        if change == "sign_out":
            self._sign_out(agent)
            return
        if agent not in self.agents:
            with pytest.raises(NotFound):
                self.router.connect(agent, self.now)
            return
        if change == "connect":
            self._apply(self.router.connect(agent, self.now))
        else:
            status = AgentStatus.READY if change == "ready" else AgentStatus.AWAY
            self._apply(self.router.set_status(agent, status, "lunch", self.now))

    @rule(data=st.data(), answer=st.sampled_from(["accept", "accept", "decline"]))
    def respond(self, data: st.DataObject, answer: str) -> None:
        """An agent accepts (and retries the accept) or declines an open offer."""
        if not self.open_offers:
            return
        contact_id = data.draw(st.sampled_from(sorted(self.open_offers)))
        offer = self.router.offer(self.open_offers[contact_id])
        assert offer is not None
        if answer == "decline":
            queued_at = self.router.contact(contact_id).queued_at
            contact, events = self.router.decline(offer.agent_id, offer.id, self.now)
            assert contact.queued_at == queued_at
            self._apply(events)
            return
        contact, events = self.router.accept(offer.agent_id, offer.id, self.now)
        assert contact.state is ContactState.CONNECTED
        # A transferred contact keeps its first answer: the customer's wait counts once.
        # A callback is answered when a dial reaches the customer, not when accepted.
        if contact.callback is None:
            assert contact.answered_at == self.now or contact.id in self.transferred
        else:
            assert contact.answered_at is None or contact.id in self.transferred
        self._apply(events)
        assert self.router.accept(offer.agent_id, offer.id, self.now) == (contact, [])

    @rule(data=st.data())
    def finish(self, data: st.DataObject) -> None:
        """End a connected contact, or complete one in wrap-up."""
        candidates = self._contacts_in(*ANSWERED)
        if not candidates:
            return
        contact = self.router.contact(data.draw(st.sampled_from(candidates)))
        assert contact.agent_id is not None
        if being_dialled(contact):
            # A callback being dialled: its dial's outcome comes first.
            before = fingerprint(self.router, self.now)
            with pytest.raises(WrongState):
                self.router.end(contact.agent_id, contact.id, self.now)
            assert fingerprint(self.router, self.now) == before
            return
        if contact.state is ContactState.CONNECTED:
            ended, events = self.router.end(contact.agent_id, contact.id, self.now)
            assert ended.state is ContactState.WRAP_UP
        else:
            _, events = self.router.complete(contact.agent_id, contact.id, "done", self.now)
        self._apply(events)

    @rule(calendar=st.sampled_from(CALENDARS))
    def new_hours(self, calendar: Calendar) -> None:
        """The hours of operation are reloaded: nothing waiting is dropped or moved,
        and routing goes on (the invariants after this step say so)."""
        before = fingerprint(self.router, self.now)
        self.router.hours.use(calendar)
        self.calendar = calendar
        after = fingerprint(self.router, self.now)
        assert after[1:] == before[1:]

    @rule(data=st.data())
    def abandon(self, data: st.DataObject) -> None:
        candidates = self._contacts_in(ContactState.QUEUED, ContactState.OFFERED)
        if not candidates:
            return
        contact = self.router.contact(data.draw(st.sampled_from(candidates)))
        event_label(f"abandon {contact.state.value}")
        self._apply(self.router.abandon(contact.id, self.now))

    @rule(
        data=st.data(),
        window=st.sampled_from(["none", "none", "later", "ends", "both", "bad"]),
        number=st.sampled_from(["+14155550123", "+14155550123", "+442071838750"]),
    )
    def request_callback(self, data: st.DataObject, window: str, number: str) -> None:
        """Any active contact asks for a callback: a waiting one becomes one in place
        (or answers a repeat unchanged); anything else is refused, changing nothing."""
        everyone = sorted(c.id for c in self.router.contacts())
        waiting = [c for c in everyone if self.router.contact(c).state.is_waiting]
        # Mostly a waiting contact (the case that converts), sometimes any (refusals).
        any_contact = data.draw(st.integers(0, 3)) == 0
        candidates = waiting if waiting and not any_contact else everyone
        if not candidates:
            return
        contact = self.router.contact(data.draw(st.sampled_from(candidates)))
        minutes = timedelta(minutes=data.draw(st.integers(1, 90)))
        not_before = self.now + minutes if window in ("later", "both") else None
        not_after = {"ends": self.now + minutes, "both": self.now + 2 * minutes}.get(window)
        if window == "bad":
            not_before, not_after = self.now + minutes, self.now + minutes / 2
        known = contact.callback
        repeat = known is not None and (known.number, known.not_before, known.not_after) == (
            number,
            not_before,
            not_after,
        )
        before = fingerprint(self.router, self.now)
        if window == "bad" or (not repeat and (known is not None or not contact.state.is_waiting)):
            with pytest.raises(DomainError):
                self.router.request_callback(contact.id, number, (not_before, not_after), self.now)
            assert fingerprint(self.router, self.now) == before
            event_label("callback request refused")
            return
        became, events = self.router.request_callback(
            contact.id, number, (not_before, not_after), self.now
        )
        assert (became.queued_at, became.id, became.channel) == (
            contact.queued_at,
            contact.id,
            PHONE,
        )
        if repeat:
            assert (became, events) == (contact, [])
            assert fingerprint(self.router, self.now) == before
            return
        self._apply(events)

    @rule(
        data=st.data(),
        outcome=st.sampled_from(
            [
                DialOutcome.CONNECTED,
                DialOutcome.NO_ANSWER,
                DialOutcome.BUSY,
                DialOutcome.BUSY,
                DialOutcome.WRONG_NUMBER,
            ]
        ),
        intruder=st.sampled_from(AGENTS),
    )
    def dial(self, data: st.DataObject, outcome: DialOutcome, intruder: str) -> None:
        """The agent dialling a callback reports its outcome (accepting an open offer of
        one first, if none is being dialled); another agent's report, or a second report,
        is refused and changes nothing."""
        offered = sorted(c for c in self.open_offers if c in self.callbacks)
        if offered:
            offer = self.router.offer(self.open_offers[data.draw(st.sampled_from(offered))])
            assert offer is not None
            self._apply(self.router.accept(offer.agent_id, offer.id, self.now)[1])
        dialling = [
            c.id
            for c in self.router.contacts()
            if c.callback is not None
            and c.state is ContactState.CONNECTED
            and c.callback.reached_at is None
        ]
        if not dialling:
            return
        event_label(f"dial reported: {outcome.value}")
        contact = self.router.contact(data.draw(st.sampled_from(sorted(dialling))))
        assert contact.agent_id is not None
        if intruder != contact.agent_id:
            before = fingerprint(self.router, self.now)
            with pytest.raises(DomainError):
                self.router.report_dial(intruder, contact.id, outcome, self.now)
            assert fingerprint(self.router, self.now) == before
        after, events = self.router.report_dial(contact.agent_id, contact.id, outcome, self.now)
        assert after.queued_at == contact.queued_at
        self._apply(events)
        before = fingerprint(self.router, self.now)
        try:
            again = self.router.report_dial(contact.agent_id, contact.id, outcome, self.now)
        except DomainError:
            pass
        else:
            assert again == (after, []), "only a repeated CONNECTED is answered"
        assert fingerprint(self.router, self.now) == before

    @rule(data=st.data(), outcome=st.sampled_from(list(DialOutcome)))
    def call_back_at_once(self, data: st.DataObject, outcome: DialOutcome) -> None:
        """A whole dial in one step, so that runs reach retries and their ends: a waiting
        contact becomes a callback; if it is offered at once, it is accepted and its
        dial reported."""
        waiting = sorted(
            c.id for c in self.router.contacts() if c.state.is_waiting and c.callback is None
        )
        if not waiting:
            return
        contact_id = data.draw(st.sampled_from(waiting))
        self._apply(
            self.router.request_callback(contact_id, "+14155550123", (None, None), self.now)[1]
        )
        offer_id = self.open_offers.get(contact_id)
        if offer_id is None:
            return
        offer = self.router.offer(offer_id)
        assert offer is not None
        self._apply(self.router.accept(offer.agent_id, offer.id, self.now)[1])
        event_label(f"dial reported: {outcome.value}")
        self._apply(self.router.report_dial(offer.agent_id, contact_id, outcome, self.now)[1])

    def _sign_out(self, agent: str) -> None:
        """Sign out; refused (changing nothing) while holding answered contacts."""
        if agent not in self.agents:
            with pytest.raises(NotFound):
                self.router.sign_out(agent, self.now)
            return
        answered = [c for c in self.router.agent(agent).contact_ids if c not in self.open_offers]
        if not answered:
            self._apply(self.router.sign_out(agent, self.now))
            return
        before = fingerprint(self.router, self.now)
        with pytest.raises(WrongState):
            self.router.sign_out(agent, self.now)
        assert fingerprint(self.router, self.now) == before

    @rule(data=st.data(), decline=st.booleans())
    def stale_offer_call(self, data: st.DataObject, decline: bool) -> None:
        """Accepting or declining an offer that is no longer open changes nothing."""
        if not self.past_offers:
            return
        offer = data.draw(st.sampled_from(self.past_offers))
        if self.open_offers.get(offer.contact_id) == offer.id:
            return
        before = fingerprint(self.router, self.now)
        try:
            if decline:
                self.router.decline(offer.agent_id, offer.id, self.now)
                raise AssertionError("declined an offer that is not open")
            contact, events = self.router.accept(offer.agent_id, offer.id, self.now)
            assert (events, contact.offer_id) == ([], offer.id), "only a retry may succeed"
        except DomainError:
            pass
        assert fingerprint(self.router, self.now) == before

    @rule(
        data=st.data(),
        action=st.sampled_from(["cancel", "priority", "skills", "assign", "assign"]),
        waiting=st.sampled_from([True, True, True, False]),
        boost=st.sampled_from([1.0, 2.0, 5.0]),
        skills=contact_skills,
        agent=st.sampled_from(AGENTS),
    )
    def supervise_contact(
        self,
        data: st.DataObject,
        action: str,
        waiting: bool,
        boost: float,
        skills: frozenset[str],
        agent: str,
    ) -> None:
        """A supervisor cancels, reprioritises, reskills or assigns a waiting contact,
        queued or offered (an offered one is moved: its offer withdrawn when it may not
        keep it); an answered one is refused, changing nothing."""
        states = (ContactState.QUEUED, ContactState.OFFERED) if waiting else ANSWERED
        candidates = self._contacts_in(*states)
        if not candidates:
            return
        contact = self.router.contact(data.draw(st.sampled_from(candidates)))
        supervision = self.router.supervision
        before = fingerprint(self.router, self.now)
        try:
            if action == "cancel":
                changed, events = supervision.cancel(contact.id, SUPERVISOR, self.now)
            elif action == "priority":
                changed, events = supervision.set_priority(contact.id, boost, SUPERVISOR, self.now)
            elif action == "skills":
                changed, events = supervision.set_skills(contact.id, skills, SUPERVISOR, self.now)
            else:
                changed, events = supervision.assign(contact.id, agent, SUPERVISOR, self.now)
        except DomainError:
            assert fingerprint(self.router, self.now) == before
            assert action == "assign" or not waiting
            event_label(f"supervisor's {action} refused")
            return
        assert waiting, "an answered contact was moved"
        first = next(e for e in events if isinstance(e, ContactEvent))
        assert first.kind in SUPERVISED
        assert first.intervention == SUPERVISOR
        assert changed.queued_at == contact.queued_at
        assert sum(1 for e in events if isinstance(e, ContactEvent) and e.intervention) == 1
        event_label(f"supervisor's {action} of a contact {contact.state.value}")
        if any(isinstance(e, OfferWithdrawn) for e in events):
            event_label(f"supervisor's {action} withdrew an offer")
        self._apply(events)

    @rule(
        agent=st.sampled_from(AGENTS),
        action=st.sampled_from(["ready", "away", "sign_out", "force_out", "skills"]),
        skills=agent_skills,
        caps=capacities,
    )
    def supervise_agent(
        self, agent: str, action: str, skills: frozenset[str], caps: dict[Channel, int]
    ) -> None:
        """A supervisor forces an agent's status or sign-out (refused without force while it
        holds answered contacts), or changes its skills and capacities."""
        if agent not in self.agents:
            with pytest.raises(NotFound):
                self.router.supervision.set_status(
                    agent, AgentStatus.READY, "", SUPERVISOR, self.now
                )
            return
        supervision = self.router.supervision
        before = fingerprint(self.router, self.now)
        try:
            if action in ("ready", "away"):
                status = AgentStatus.READY if action == "ready" else AgentStatus.AWAY
                _, events = supervision.set_status(agent, status, "", SUPERVISOR, self.now)
            elif action == "skills":
                self.capacities[agent] = caps
                _, events = supervision.change_agent(agent, skills, caps, SUPERVISOR, self.now)
            else:
                force = action == "force_out"
                _, events = supervision.sign_out(agent, force, SUPERVISOR, self.now)
        except WrongState:
            assert action == "sign_out"
            assert fingerprint(self.router, self.now) == before
            event_label("supervisor's sign-out refused")
            return
        acted = [e for e in events if isinstance(e, AgentEvent) and e.intervention]
        assert len(acted) == 1
        assert acted[0].intervention == SUPERVISOR
        if action == "force_out" and isinstance(events[0], ContactEvent):
            event_label("forced sign-out of an agent holding answered contacts")
        if action == "skills" and any(isinstance(e, OfferWithdrawn) for e in events):
            event_label("new skills or capacities withdrew an offer")
        self._apply(events)

    @rule(
        ms=st.one_of(
            st.integers(0, 5_000),
            st.integers(0, 5_000),
            st.integers(0, 5_000),
            st.sampled_from([15_000, 30_000, 600_000, 3_600_000]),
        )
    )
    def advance(self, ms: int) -> None:
        """Move the clock, running expire() at every deadline passed on the way."""
        target = self.now + timedelta(milliseconds=ms)
        while (deadline := self.router.next_deadline()) is not None and deadline <= target:
            self.now = max(self.now, deadline)
            self._apply(self.router.expire(self.now))
        self.now = target
        self.no_unserved_contact_past_its_fallback()

    @rule()
    def reads_change_nothing(self) -> None:
        """Queries (position, estimated wait, snapshot, offers) leave the router as it was."""
        before = fingerprint(self.router, self.now)
        for contact in list(self.router.contacts()):
            position = self.router.position(contact.id, self.now)
            in_line = self.router.line_position(contact.id, self.now)
            estimate = self.router.estimated_wait(contact.id, self.now)
            why = self.router.wait_reason(contact.id, self.now)
            waits = contact.state is ContactState.QUEUED and not self._scheduled(contact)
            assert (position > 0) == waits
            assert 0 < in_line <= position or in_line == position == 0
            assert estimate is None or (position > 0 and estimate >= 0)
            assert (why is None) == (position == 0 and not self._scheduled(contact))
            if why is not None and self._scheduled(contact):
                assert why.reason is WaitReason.CALLBACK_SCHEDULED
            elif why is not None:
                event_label(f"waits: {why.reason}")
                closed = not self.calendar.is_open(
                    contact.channel, contact.required_skills, self.now
                )
                assert (why.reason is WaitReason.CLOSED) == closed
                assert not closed or why.detail.startswith("closed ")
        snapshot = self.router.snapshot(self.now)
        for unserved in snapshot.unserved_contacts:
            why = self.router.wait_reason(unserved.contact_id, self.now)
            assert why is not None
            assert unserved.reason.unserved
            # Outside its hours the customer hears "closed until ..." first.
            assert why.reason in (unserved.reason, WaitReason.CLOSED)
        assert sum(snapshot.unserved.values()) >= len(snapshot.unserved_contacts)
        assert fingerprint(self.router, self.now) == before

    @rule(reconnect=st.sampled_from([True, True, False]), now=st.integers(0, 2))
    def restart(self, reconnect: bool, now: int) -> None:
        """Rebuild a new Router from the surviving contacts (only one time in three);
        agents sign in again and, if `reconnect`, reopen the streams they had open."""
        if now:
            return
        saved = list(self.router.contacts())
        agents = [(a.id, a.skills, a.status, a.connected) for a in self.router.agents()]
        self.router = Router(self.policy, self.ids)
        self.router.hours.use(self.calendar)
        self.declined.clear()
        # A transfer by name is recorded: the hold may outlive the restart.
        self.open_offers.clear()
        self.held, self.agents = {}, {}
        self.quiet_until = self.now + timedelta(seconds=self.policy.reconnect_grace)
        hour_ago = self.now - timedelta(hours=1)
        recent = [a for a in self.answers if a[2] > hour_ago]
        self._apply(self.router.restore(saved, self.now, self.completions, recent))
        for agent_id, skills, status, connected in agents:
            self.held[agent_id] = {
                c.id: c.channel for c in saved if c.state in ANSWERED and c.agent_id == agent_id
            }
            capacities = self.capacities[agent_id]
            self._apply(self.router.sign_in(agent_id, skills, capacities, status, self.now))
            if connected and reconnect:
                self._apply(self.router.connect(agent_id, self.now))

    # ------------------------------------------------------------- invariants

    def no_unserved_contact_past_its_fallback(self) -> None:
        """(6) Once agents had their grace after a restart, a queued contact that no
        signed-in agent could serve has not waited its channel's fallback_after. The
        router's timer moves it, so this holds after each advance of the clock (a call
        may leave a contact due until the timer runs, at once)."""
        if self.now < self.quiet_until:
            return
        views = self.router.agents()
        for contact_id in self._contacts_in(ContactState.QUEUED):
            contact = self.router.contact(contact_id)
            if self._scheduled(contact):
                continue
            rule = self.policy.of(contact.channel)
            if rule.fallback_after is None or contact.required_skills == rule.fallback_skills:
                continue
            if contact.queued_at + timedelta(seconds=rule.fallback_after) > self.now:
                continue
            assert any(
                v.capacities.get(contact.channel, 0) > 0 and contact.required_skills <= v.skills
                for v in views
            ), f"{contact_id} waits past its fallback with nobody to serve it"

    @invariant()
    def each_contact_in_exactly_one_place(self) -> None:
        """(1) active = submitted - abandoned - completed; each queued xor held once."""
        contacts = {c.id: c for c in self.router.contacts()}
        assert set(contacts) == self.active
        views = self.router.agents()
        assert {v.id for v in views} == set(self.agents) == set(self.held)
        holders: dict[str, list[str]] = {}
        for view in views:
            assert set(view.contact_ids) == set(self.held[view.id]), "events disagree"
            model = self.agents[view.id]
            assert (view.status, view.connected, view.skills) == (
                model.status,
                model.connected,
                model.skills,
            )
            for contact_id in view.contact_ids:
                holders.setdefault(contact_id, []).append(view.id)
        queued = 0
        for contact_id, contact in contacts.items():
            in_queue = self.router.position(contact_id, self.now) > 0
            owners = holders.get(contact_id, [])
            if self._scheduled(contact):
                assert not in_queue, f"{contact_id} queued before its callback is due"
                assert not owners
                assert (contact.agent_id, contact.offer_id) == (None, None)
                continue
            assert int(in_queue) + len(owners) == 1, f"{contact_id}: {in_queue=} {owners=}"
            if contact.state is ContactState.QUEUED:
                assert in_queue
                assert (contact.agent_id, contact.offer_id) == (None, None)
                queued += 1
            else:
                assert owners == [contact.agent_id]
        assert sum(self.router.snapshot(self.now).waiting.values()) == queued

    @invariant()
    def at_most_one_open_offer_per_contact(self) -> None:
        """(5) open offers are unique per contact, match the events and are not overdue."""
        offers = [o for view in self.router.agents() for o in self.router.offers_for(view.id)]
        assert len({o.contact_id for o in offers}) == len(offers)
        assert {o.contact_id: o.id for o in offers} == self.open_offers
        for offer in offers:
            contact = self.router.contact(offer.contact_id)
            assert contact.state is ContactState.OFFERED
            assert (contact.offer_id, contact.agent_id) == (offer.id, offer.agent_id)
            assert offer.expires_at > self.now
        assert len(self._contacts_in(ContactState.OFFERED)) == len(offers)

    @invariant()
    def nothing_waits_for_a_free_agent(self) -> None:
        """(4) see the class docstring for the exact statement with a phone reserve."""
        free: dict[str, tuple[frozenset[str], set[Channel]]] = {}
        for view in self.router.agents():
            if view.status is not AgentStatus.READY or not view.connected:
                continue
            held = [self.channel_of[c] for c in view.contact_ids]
            channels = {
                channel
                for channel in Channel
                if held.count(channel) < view.capacities.get(channel, 0)
                and PHONE not in held
                and (channel is not PHONE or not held)
                and not self._at_cap(view.id, channel)
            }
            free[view.id] = (view.skills, channels)
        phone_ready = {a for a, (_, channels) in free.items() if PHONE in channels}
        for contact_id in self._contacts_in(ContactState.QUEUED):
            contact = self.router.contact(contact_id)
            if self._scheduled(contact):
                continue
            wanted = self.router.waiting_for(contact_id)
            assert wanted is not None
            assert contact.required_skills <= wanted
            held_for = set()
            if contact.preferred_agent_id is not None:
                held_for.add(AGENT_TOKEN + contact.preferred_agent_id)
            assert wanted <= contact.required_skills | set(contact.preferred_skills) | held_for
            named = {s.removeprefix(AGENT_TOKEN) for s in wanted if s.startswith(AGENT_TOKEN)}
            wanted = frozenset(s for s in wanted if not s.startswith(AGENT_TOKEN))
            eligible = {
                agent_id
                for agent_id, (skills, channels) in free.items()
                if contact.channel in channels
                and wanted <= skills
                and named <= {agent_id}
                and not self._excluded(contact_id, agent_id)
            }
            due = answer_deadline(contact, self.policy) <= self.now.timestamp()
            if contact.channel is PHONE or len(phone_ready) > self.reserve or due:
                assert not eligible, f"{contact_id} waits while {eligible} are free"
            else:
                assert eligible <= phone_ready, f"{contact_id} waits for {eligible - phone_ready}"


_CALLBACK_KINDS = frozenset(
    {
        ContactEventKind.CALLBACK_REQUESTED,
        ContactEventKind.REACHED,
        ContactEventKind.DIAL_FAILED,
        ContactEventKind.UNREACHED,
    }
)


class RouterMachineWithReserve(RouterMachine):
    """The same properties with a phone reserve of one agent."""

    reserve = 1


class RouterMachineWithCapsAndFallback(RouterMachine):
    """The same properties with hourly caps (chat 2, email 1) and fallback rules (chat to
    any agent after 2 minutes, email to "es" after 10)."""

    reserve = 1
    channels = MappingProxyType(
        {
            PHONE: ChannelPolicy(20.0, 1, 1, exclusive=True),
            CHAT: ChannelPolicy(
                60.0, 3, 20, max_per_hour=2, fallback_after=120.0, prefer_previous_agent=False
            ),
            EMAIL: ChannelPolicy(
                3600.0,
                1,
                20,
                max_per_hour=1,
                fallback_after=600.0,
                fallback_skills=frozenset({"es"}),
            ),
        }
    )


class RouterMachineWithLargeReserve(RouterMachine):
    """The same properties with a phone reserve of two and no decline exclusion."""

    reserve = 2
    decline_exclusion = 0.0


# Derandomized: CI runs the same examples every time, so it never turns red by luck.
# Other seeds are worth running by hand: set derandomize=False and run
# pytest --hypothesis-seed=N. Seed 4 found a transfer that reached the phone reserve
# through a stale roster place (TestTransfer.test_a_transfer_respects_the_phone_reserve).
_STATEFUL = settings(
    max_examples=100, stateful_step_count=50, deadline=None, derandomize=True, database=None
)
TestRouterMachine = RouterMachine.TestCase
TestRouterMachine.settings = _STATEFUL
TestRouterMachineWithReserve = RouterMachineWithReserve.TestCase
TestRouterMachineWithReserve.settings = _STATEFUL
TestRouterMachineWithLargeReserve = RouterMachineWithLargeReserve.TestCase
TestRouterMachineWithLargeReserve.settings = _STATEFUL
TestRouterMachineWithCapsAndFallback = RouterMachineWithCapsAndFallback.TestCase
TestRouterMachineWithCapsAndFallback.settings = _STATEFUL


# ------------------------------------------------------------ direct properties

EXACT_BOOSTS = (1.0, 1.5, 2.0, 3.0)  # exact in binary, so the oracle below is exact too


@st.composite
def _queued(draw: st.DrawFn) -> list[Contact]:
    entries = draw(
        st.lists(
            st.tuples(
                st.sampled_from(Channel),
                st.integers(0, 4000),
                st.sampled_from(EXACT_BOOSTS),
                skill_sets,
            ),
            min_size=1,
            max_size=12,
        )
    )
    return [
        build_contact(f"c{i:02d}", channel, T0 + timedelta(seconds=offset), skills, boost)
        for i, (channel, offset, boost, skills) in enumerate(entries)
    ]


class TestQueueOrderProperties:
    @settings(max_examples=150, deadline=None)
    @given(wait=st.floats(0, 100_000), email_boost=st.floats(1.0, 10.0))
    def test_phone_before_email_at_equal_waits(self, wait: float, email_boost: float) -> None:
        """(3) A call and an email that have waited equally: the call goes first."""
        queue = ContactQueue(RoutingPolicy())
        queue.add(build_contact("email", EMAIL, T0, boost=round(email_boost, 1)), 1)
        queue.add(build_contact("call", PHONE, T0), 2)
        now = T0 + timedelta(seconds=wait)
        assert queue.best_for(ALL_SKILLS, list(Channel), now) == "call"
        assert (queue.position("call", now), queue.position("email", now)) == (1, 2)

    @settings(max_examples=100, deadline=None)
    @given(wait=st.integers(0, 10_000), first=st.sampled_from([EMAIL, CHAT]))
    def test_agent_is_offered_the_call_first(self, wait: int, first: Channel) -> None:
        """(3) Through the Router: an agent arriving after equal waits is offered the call."""
        router = Router(RoutingPolicy(phone_reserve=0), SequentialIds())
        router.submit(build_contact("other", first, T0), T0)
        router.submit(build_contact("call", PHONE, T0), T0)
        now = T0 + timedelta(seconds=wait)
        router.sign_in("ann", frozenset(), {}, AgentStatus.READY, now)
        (event,) = router.connect("ann", now)[1:]
        assert isinstance(event, ContactEvent)
        assert (event.kind, event.contact.id) == (ContactEventKind.OFFERED, "call")

    @settings(max_examples=150, deadline=None)
    @given(contacts=_queued(), extra=st.integers(0, 4000))
    def test_order_and_position_match_an_exact_oracle(
        self, contacts: list[Contact], extra: int
    ) -> None:
        """best_for serves, and position() reports, the order of exact urgency, then oldest,
        then favoured channel, then arrival."""
        policy = RoutingPolicy()
        now = T0 + timedelta(seconds=4000 + extra)

        def rank(seq: int, c: Contact) -> tuple[Fraction, datetime, int, int]:
            waited = Fraction(int((now - c.queued_at).total_seconds()))
            target = Fraction(policy.of(c.channel).answer_target)
            urgency = waited * Fraction(c.priority_boost) / target
            return (-urgency, c.queued_at, c.channel.rank, seq)

        expected = [c.id for _, c in sorted(enumerate(contacts), key=lambda p: rank(*p))]
        queue = ContactQueue(policy)
        for seq, contact in enumerate(contacts):
            queue.add(contact, seq)
        assert [queue.position(c, now) for c in expected] == list(range(1, len(expected) + 1))
        served = []
        while (best := queue.best_for(ALL_SKILLS, list(Channel), now)) is not None:
            served.append(best)
            queue.remove(best)
        assert served == expected
