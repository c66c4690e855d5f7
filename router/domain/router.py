"""The routing state machine: every lifecycle transition, and who gets what.

Each public method takes `now`, validates first (raising a DomainError before
changing anything), then applies the change and returns the events it caused, in
order. The caller persists the events and pushes offers; the core never waits.

Invariant kept after every call: no waiting contact has an eligible agent who is
free to take it (with a phone-reserve agent counting as free for chat and email
only while more than K agents could take a call, or once the chat or email is past
its answer deadline).

The phone reserve yields at the answer deadline: it keeps the last K idle
phone-capable agents for calls that may ring, but a chat or email that has used its
whole answer target (urgency 1, see queue.answer_deadline) is more urgent than a call
that has not rung yet. Without this, a center whose only agents for chat are the last
K idle phone-capable ones would never answer a chat.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from uuid import uuid4

from router.domain.agent import Agent, AgentStatus, AgentView
from router.domain.channel import Channel, RoutingPolicy
from router.domain.contact import Contact, ContactState, PreferenceSource, agent_token
from router.domain.coverage import Coverage
from router.domain.events import (
    AgentEvent,
    AgentEventKind,
    ContactEvent,
    ContactEventKind,
    Event,
    OfferWithdrawn,
)
from router.domain.hourly_cap import AnswersPerHour
from router.domain.offer import Offer
from router.domain.previous_agents import PreviousAgents
from router.domain.queue import ContactQueue, Hold, answer_deadline
from router.domain.roster import Roster
from router.domain.wait_reason import UnservedContact, WaitExplanation, WaitReason
from router.errors import InvalidArgument, NotFound, QueueFull, WrongState

_RATE_WINDOW = 50  # recent answers kept to estimate the answer rate
_HELD_BACK = frozenset({Channel.CHAT, Channel.EMAIL})  # what the phone reserve holds back
_UNSERVED_LISTED = 100  # unserved contacts listed in the live queue, oldest first


@dataclass(frozen=True, slots=True)
class QueueSnapshot:
    """The live queue: per channel waiting, offered and oldest wait; agents by activity."""

    waiting: Mapping[Channel, int]
    offered: Mapping[Channel, int]
    oldest_wait: Mapping[Channel, float]
    agents_idle: int
    agents_busy: int
    agents_away: int
    agents_disconnected: int
    agents_signed_in: int
    unserved: Mapping[Channel, int]  # waiting contacts no signed-in agent could serve
    unserved_contacts: tuple[UnservedContact, ...]  # the oldest of them


class Router:
    """All routing state of one center, in memory."""

    def __init__(
        self, policy: RoutingPolicy, new_id: Callable[[], str] = lambda: str(uuid4())
    ) -> None:
        self.policy = policy
        self._new_id = new_id
        self._contacts: dict[str, Contact] = {}
        self._keys: dict[str, str] = {}  # idempotency key -> id, for active contacts
        self._agents: dict[str, Agent] = {}
        self._offers: dict[str, Offer] = {}
        self._queue = ContactQueue(policy)
        self._roster = Roster(policy)
        self._coverage = Coverage()
        self._previous = PreviousAgents(policy.remembered_customers)
        self._answers_per_hour = AnswersPerHour()
        self._cap_deadlines: list[tuple[datetime, str, Channel]] = []
        self._cap_timer: dict[tuple[str, Channel], datetime] = {}  # last pushed, per cap
        self._fallback_deadlines: list[tuple[datetime, str]] = []
        # Waiting contacts whose preferred agent was not signed in when they were queued:
        # a hold starts if that agent signs in within the wait (after a restart too).
        self._awaiting: dict[str, set[str]] = {}
        # No fallback before this: after a restart, agents have the grace to come back.
        self._quiet_until = datetime.min.replace(tzinfo=UTC)
        self._seq = 0
        self._contact_seq: dict[str, int] = {}
        self._offer_deadlines: list[tuple[datetime, str]] = []
        self._declined: dict[str, dict[str, datetime]] = {}
        self._decline_deadlines: list[tuple[datetime, str, str]] = []
        self._held_for: dict[str, set[str]] = {}
        self._reclaim_deadlines: list[tuple[datetime, str]] = []
        # When a contact's skills or hold change next (preferences relax, a hold ends).
        self._relax_deadlines: list[tuple[datetime, str]] = []
        self._relax_from: dict[str, datetime] = {}  # transferred contacts: when, for relaxing
        self._answers: deque[datetime] = deque(maxlen=_RATE_WINDOW)
        # Per channel: seconds between answers while its queue stayed non-empty, and
        # the last answer (with whether contacts of the channel were still waiting).
        self._answer_gaps = {c: deque[float](maxlen=_RATE_WINDOW) for c in Channel}
        self._last_answer: dict[Channel, tuple[datetime, bool]] = {}
        # Answer deadlines up to this instant (epoch seconds) have been acted on.
        self._deadlines_seen = -math.inf

    # ----------------------------------------------------------------- reading

    def contact(self, contact_id: str) -> Contact:
        """An active (not yet completed or abandoned) contact."""
        try:
            return self._contacts[contact_id]
        except KeyError:
            raise NotFound(f"no active contact {contact_id}") from None

    def contact_with_key(self, idempotency_key: str) -> Contact | None:
        """The active contact a gateway submitted with this key, if any."""
        contact_id = self._keys.get(idempotency_key)
        return None if contact_id is None else self._contacts[contact_id]

    def contacts(self) -> Iterable[Contact]:
        return self._contacts.values()

    def agent(self, agent_id: str) -> AgentView:
        return self._agent(agent_id).view()

    def agents(self) -> list[AgentView]:
        return [agent.view() for agent in self._agents.values()]

    def offer(self, offer_id: str) -> Offer | None:
        return self._offers.get(offer_id)

    def offers_for(self, agent_id: str) -> list[Offer]:
        agent = self._agent(agent_id)
        return [self._offers[offer_id] for offer_id in agent.offers]

    def position(self, contact_id: str, now: datetime) -> int:
        """1-based place in routing order among waiting contacts; 0 if not queued."""
        if contact_id not in self._queue:
            return 0
        return self._queue.position(contact_id, now)

    def line_position(self, contact_id: str, now: datetime) -> int:
        """1-based place in line for the customer: among the waiting contacts that the
        agents who could serve this one could also serve (its preferred agent alone
        while held for it); with no such agent signed in, among those of its channel
        needing the same skills. 0 if not queued."""
        if contact_id not in self._queue:
            return 0
        channel = self._contacts[contact_id].channel
        skills = self._queue.skills_of(contact_id)
        hold = self._queue.hold_of(contact_id)
        if hold is not None:
            profile = self._coverage.profile_of(hold.agent_id)
            profiles = [] if profile is None else [profile]
        else:
            profiles = self._coverage.serving(channel, skills)
        if not profiles:
            return self._queue.position(
                contact_id, now, lambda c, k, h: c is channel and k == skills and h is None
            )

        def competes(other: Channel, needs: frozenset[str], held: Hold | None) -> bool:
            if held is not None:
                profile = self._coverage.profile_of(held.agent_id)
                return profile is not None and profile in profiles and profile.serves(other, needs)
            return any(p.serves(other, needs) for p in profiles)

        return self._queue.position(contact_id, now, competes)

    def waiting_for(self, contact_id: str) -> frozenset[str] | None:
        """The skills a queued contact waits for now (its required skills and the
        preferred ones not yet relaxed, or with the token of the agent it is held for);
        None if not queued."""
        if contact_id not in self._queue:
            return None
        hold = self._queue.hold_of(contact_id)
        skills = self._queue.skills_of(contact_id)
        return skills if hold is None else skills | {agent_token(hold.agent_id)}

    def wait_reason(self, contact_id: str, now: datetime) -> WaitExplanation | None:
        """Why a queued contact is still waiting, and what happens next; None if it is
        not queued."""
        if contact_id not in self._queue:
            return None
        contact = self._contacts[contact_id]
        channel = contact.channel
        hold = self._queue.hold_of(contact_id)
        _, _, until = self._waits_for(contact, now)
        if hold is not None and until is not None:
            return WaitExplanation(
                WaitReason.PREFERRED_AGENT,
                f"held for agent {hold.agent_id} until {_iso(until)}; then any eligible agent",
            )
        unserved = self._unserved_reason(contact)
        if unserved is not None:
            return WaitExplanation(unserved, self._unserved_detail(contact, unserved))
        skills = self._queue.skills_of(contact_id)
        serving = self._coverage.serving(channel, skills)
        if not serving:
            wanted = ", ".join(sorted(skills - contact.required_skills))
            step = f"; the least wanted is dropped at {_iso(until)}" if until else ""
            return WaitExplanation(
                WaitReason.PREFERRED_SKILLS,
                f"no signed-in agent has the preferred skills {wanted}{step}",
            )
        deadline = answer_deadline(contact, self.policy)
        if self._roster.best_for(channel, skills, past_deadline=True) is not None:
            declined = self._declined.get(contact_id, {})
            if (
                self._roster.best_for(
                    channel, skills, lambda a: declined.get(a, now) > now, past_deadline=True
                )
                is None
            ):
                return WaitExplanation(
                    WaitReason.DECLINED,
                    "the free agents who could serve it declined it or transferred it away "
                    f"in the last {self.policy.decline_exclusion:g} s",
                )
            return WaitExplanation(
                WaitReason.PHONE_RESERVE,
                "the free agents who could serve it are kept for calls until its answer "
                f"deadline, {_iso(_instant_at_or_after(deadline))}",
            )
        if not self._coverage.any_routable(serving):
            return WaitExplanation(
                WaitReason.AGENTS_AWAY,
                "every signed-in agent who could serve it is away or has no offer stream",
            )
        capped = " or at their hourly cap" if self.policy.of(channel).max_per_hour else ""
        return WaitExplanation(
            WaitReason.AGENTS_BUSY, f"the agents who could serve it are busy{capped}"
        )

    def estimated_wait(self, contact_id: str, now: datetime) -> float | None:
        """Seconds until answer: place among waiting contacts of its channel x the mean
        time between that channel's recent answers while its queue was not empty.

        Only gaps that start with contacts still waiting count: they measure how fast
        the agents free up for the queue. Gaps after the queue emptied measure how often
        customers arrive instead, and would make the estimate too long by about
        1 / occupancy. Without such gaps yet (a start, a quiet channel), the center's
        answer rate over its last answers stands in."""
        if contact_id not in self._queue:
            return None
        contact = self._contacts[contact_id]
        gaps = self._answer_gaps[contact.channel]
        position = self._queue.position(
            contact_id, now, lambda channel, _skills, _hold: channel is contact.channel
        )
        if len(gaps) >= 2:
            return position * sum(gaps) / len(gaps)
        if len(self._answers) < 2:
            return None
        span = (now - self._answers[0]).total_seconds()
        if span <= 0:
            return None
        return position * span / len(self._answers)

    def snapshot(self, now: datetime) -> QueueSnapshot:
        waiting = {c: self._queue.count(c) for c in Channel}
        offered = dict.fromkeys(Channel, 0)
        oldest: dict[Channel, float] = dict.fromkeys(Channel, 0.0)
        for offer in self._offers.values():
            contact = self._contacts[offer.contact_id]
            offered[contact.channel] += 1
            oldest[contact.channel] = max(oldest[contact.channel], contact.wait_seconds(now))
        for channel in Channel:
            first = self._queue.oldest(channel)
            if first is not None:
                oldest[channel] = max(oldest[channel], now.timestamp() - first)
        idle = busy = away = disconnected = 0
        for agent in self._agents.values():
            if agent.holding:
                busy += 1
            elif not agent.connected:
                disconnected += 1
            elif agent.status is AgentStatus.AWAY:
                away += 1
            else:
                idle += 1
        unserved, unserved_contacts = self._unserved(now)
        return QueueSnapshot(
            waiting,
            offered,
            oldest,
            idle,
            busy,
            away,
            disconnected,
            len(self._agents),
            unserved,
            tuple(unserved_contacts),
        )

    def next_deadline(self) -> datetime | None:
        """The next instant at which `expire` has something to do."""
        self._drop_stale_deadlines()
        times = [
            h[0][0]
            for h in (
                self._offer_deadlines,
                self._decline_deadlines,
                self._reclaim_deadlines,
                self._relax_deadlines,
                self._cap_deadlines,
                self._fallback_deadlines,
            )
            if h
        ]
        if self.policy.phone_reserve:
            due = self._queue.next_deadline(self._deadlines_seen, _HELD_BACK)
            if due is not None:
                times.append(_instant_at_or_after(due))
        return min(times) if times else None

    # -------------------------------------------------------------- contacts

    def check_room(self, channel: Channel) -> None:
        """QueueFull if `channel` already has its maximum of contacts waiting. Asked
        before a submission is recorded: a recorded contact always enters the queue."""
        limit = self.policy.of(channel).max_queue
        waiting = self._queue.count(channel)
        if waiting >= limit:
            raise QueueFull(
                f"the {channel.value} queue is full ({waiting} waiting, limit {limit}); "
                "try again later or offer the customer another channel"
            )

    def with_preference(self, contact: Contact) -> Contact:
        """A new contact with its preferred agent: the one its gateway named, or else,
        on a channel that prefers it, the agent who last completed a contact for the
        same customer. Asked before the contact is recorded, so that a restart holds
        it for the same agent."""
        if contact.preferred_agent_id is not None:
            return replace(contact, preferred_agent_source=PreferenceSource.GATEWAY)
        if not self.policy.of(contact.channel).prefer_previous_agent:
            return contact
        previous = self._previous.of(contact.customer_id)
        if previous is None:
            return contact
        return replace(
            contact,
            preferred_agent_id=previous,
            preferred_agent_source=PreferenceSource.PREVIOUS_AGENT,
        )

    def submit(self, contact: Contact, now: datetime) -> list[Event]:
        """Queue a durably recorded contact and route it."""
        if contact.id in self._contacts:
            raise WrongState(f"contact {contact.id} is already active")
        if contact.state is not ContactState.QUEUED:
            raise InvalidArgument("state", "a submitted contact must be queued")
        events: list[Event] = []
        self._enqueue(contact, now)
        self._place(contact.id, now, events)
        return events

    def restore(
        self,
        contacts: Iterable[Contact],
        now: datetime,
        previous_agents: Iterable[tuple[str, str]] = (),
        recent_answers: Iterable[tuple[str, Channel, datetime]] = (),
    ) -> list[Event]:
        """Rebuild from the durable record after a start: waiting contacts go back in
        the queue at their original place; answered ones wait for their agent, for
        `policy.reconnect_grace` seconds (see `expire`). `previous_agents` are
        (customer, agent) completions, oldest first; `recent_answers` (agent, channel,
        when) the answers of the last hour, for the hourly caps.

        With open contacts restored, agents were at work: no fallback rule moves a
        contact within the reconnect grace, while they sign back in. An empty queue
        (a first start) has nobody to wait for."""
        contacts = sorted(contacts, key=lambda c: (c.queued_at, c.id))
        if any(not c.state.is_final for c in contacts):
            self._quiet_until = now + timedelta(seconds=self.policy.reconnect_grace)
        for customer_id, agent_id in previous_agents:
            self._previous.remember(customer_id, agent_id)
        for agent_id, channel, at in recent_answers:
            if self.policy.of(channel).max_per_hour:
                self._answers_per_hour.note(agent_id, channel, at)
        events: list[Event] = []
        waiting = []
        for contact in contacts:
            if contact.state.is_final or contact.id in self._contacts:
                continue
            if contact.state is ContactState.OFFERED:
                contact = replace(contact, state=ContactState.QUEUED, agent_id=None, offer_id=None)
                events.append(
                    ContactEvent(ContactEventKind.REQUEUED, contact, now, reason="restart")
                )
            if contact.state is ContactState.QUEUED:
                self._enqueue(contact, now)
                waiting.append(contact.id)
            else:
                self._contacts[contact.id] = contact
                self._keys[contact.idempotency_key] = contact.id
                assert contact.agent_id is not None
                if contact.agent_id not in self._held_for:
                    until = now + timedelta(seconds=self.policy.reconnect_grace)
                    heapq.heappush(self._reclaim_deadlines, (until, contact.agent_id))
                self._held_for.setdefault(contact.agent_id, set()).add(contact.id)
        for contact_id in waiting:
            if contact_id in self._queue:
                self._place(contact_id, now, events)
        return events

    def abandon(self, contact_id: str, now: datetime) -> list[Event]:
        """The customer left before being answered."""
        contact = self.contact(contact_id)
        if not contact.state.is_waiting:
            raise WrongState(
                f"contact {contact_id} is {contact.state.value}: "
                "only a waiting contact can be abandoned"
            )
        events: list[Event] = []
        agent = None
        if contact.state is ContactState.OFFERED:
            assert contact.offer_id is not None
            offer = self._offers[contact.offer_id]
            agent = self._agents[offer.agent_id]
            self._drop_offer(offer, agent, now)
            events.append(OfferWithdrawn(offer, "abandoned"))
        else:
            self._queue.remove(contact_id)
        abandoned = replace(contact, state=ContactState.ABANDONED, abandoned_at=now)
        self._retire(abandoned)
        events.append(ContactEvent(ContactEventKind.ABANDONED, abandoned, now))
        if agent is not None:
            self._fill(agent, now, events)
        return events

    # ---------------------------------------------------------------- agents

    def sign_in(
        self,
        agent_id: str,
        skills: frozenset[str],
        capacities: Mapping[Channel, int],
        status: AgentStatus,
        now: datetime,
    ) -> list[Event]:
        """Sign an agent in, or update the skills and capacities of a signed-in one."""
        if status is AgentStatus.OFFLINE:
            raise InvalidArgument("initial_status", "must be READY or AWAY")
        full = {c: self.policy.of(c).default_capacity for c in Channel}
        for channel, capacity in capacities.items():
            limit = self.policy.of(channel).max_capacity
            if not 0 <= capacity <= limit:
                raise InvalidArgument(
                    "capacities", f"{channel.value} capacity must be between 0 and {limit}"
                )
            full[channel] = capacity
        events: list[Event] = []
        agent = self._agents.get(agent_id)
        if agent is None:
            self._seq += 1
            agent = Agent(agent_id, skills, full, now, now, self._seq, status=status)
            self._agents[agent_id] = agent
            for contact_id in self._held_for.pop(agent_id, set()):
                contact = self._contacts.get(contact_id)
                if contact is not None and contact.agent_id == agent_id:
                    agent.holding[contact_id] = contact.channel
            for channel in Channel:
                self._update_cap(agent, channel, now)
            for contact_id in sorted(self._awaiting.pop(agent_id, ())):
                if contact_id in self._queue:
                    self._queue.remove(contact_id)
                    self._enqueue(self._contacts[contact_id], now)
        else:
            agent.skills, agent.capacities = skills, full
            if agent.status is not status:
                agent.status = status
                agent.away_reason = ""
                if status is AgentStatus.READY:
                    agent.since = now
        events.append(self._agent_event(agent, AgentEventKind.SIGNED_IN, now))
        self._index(agent)
        # Skills or channels may have changed: holds for this agent and contacts that
        # only it could serve are looked at again.
        self._recheck_holds(agent_id, now, events)
        self._fall_back_unserved(now, events)
        self._fill(agent, now, events)
        return events

    def sign_out(self, agent_id: str, now: datetime) -> list[Event]:
        """Sign out; offers not yet answered go back to the queue."""
        agent = self._agent(agent_id)
        answered = [c for c in agent.holding if c not in agent.offers.values()]
        if answered:
            raise WrongState(
                f"agent {agent_id} still holds {len(answered)} answered contact(s): "
                "end and complete them before signing out"
            )
        events: list[Event] = []
        requeued = self._return_offers(agent, "agent_signed_out", now, events)
        self._roster.remove(agent_id)
        self._coverage.remove(agent_id)
        del self._agents[agent_id]
        agent.status, agent.connected = AgentStatus.OFFLINE, False
        events.append(self._agent_event(agent, AgentEventKind.SIGNED_OUT, now))
        for contact_id in requeued:
            if contact_id in self._queue:
                self._place(contact_id, now, events)
        self._recheck_holds(agent_id, now, events)
        self._fall_back_unserved(now, events)
        return events

    def set_status(
        self, agent_id: str, status: AgentStatus, reason: str, now: datetime
    ) -> list[Event]:
        """READY or AWAY. Offers already made stand; AWAY only stops new ones."""
        agent = self._agent(agent_id)
        if status is AgentStatus.OFFLINE:
            raise InvalidArgument("status", "use SignOut to go offline; status is READY or AWAY")
        reason = reason if status is AgentStatus.AWAY else ""
        if agent.status is status and agent.away_reason == reason:
            return []
        if status is AgentStatus.READY and agent.status is not AgentStatus.READY:
            agent.since = now
        agent.status, agent.away_reason = status, reason
        events: list[Event] = [self._agent_event(agent, AgentEventKind.STATUS_CHANGED, now)]
        self._fill(agent, now, events)
        return events

    def connect(self, agent_id: str, now: datetime) -> list[Event]:
        """The agent's offer stream opened: it is present and can be offered work."""
        agent = self._agent(agent_id)
        if agent.connected:
            return []
        agent.connected = True
        events: list[Event] = [self._agent_event(agent, AgentEventKind.CONNECTED, now)]
        self._fill(agent, now, events)
        return events

    def disconnect(self, agent_id: str, now: datetime) -> list[Event]:
        """The agent's offer stream is gone: unanswered offers go back to the queue;
        answered contacts stay with the agent (the conversation may go on)."""
        agent = self._agents.get(agent_id)
        if agent is None or not agent.connected:
            return []
        agent.connected = False
        events: list[Event] = [self._agent_event(agent, AgentEventKind.DISCONNECTED, now)]
        requeued = self._return_offers(agent, "agent_lost", now, events)
        self._index(agent)
        for contact_id in requeued:
            self._place(contact_id, now, events)
        return events

    # ---------------------------------------------------------------- offers

    def accept(self, agent_id: str, offer_id: str, now: datetime) -> tuple[Contact, list[Event]]:
        """Accept an offer: the contact is connected and its wait ends now."""
        agent = self._agent(agent_id)
        offer = self._offers.get(offer_id)
        if offer is None or offer.agent_id != agent_id:
            contact = self._contact_of_answered_offer(agent, offer_id)
            if contact is not None:
                return contact, []
            raise WrongState(
                f"offer {offer_id} is not open for agent {agent_id}: it expired, "
                "was withdrawn or belongs to another agent"
            )
        if now >= offer.expires_at:
            raise WrongState(f"offer {offer_id} expired at {offer.expires_at.isoformat()}")
        del self._offers[offer_id]
        del agent.offers[offer_id]
        waiting = self._contacts[offer.contact_id]
        # A contact answered before (whose agent never came back) keeps its first answer:
        # its wait ended then.
        contact = replace(
            waiting, state=ContactState.CONNECTED, answered_at=waiting.answered_at or now
        )
        self._contacts[contact.id] = contact
        self._answers.append(now)
        self._note_answer(contact.channel, now)
        self._declined.pop(contact.id, None)
        if self.policy.of(contact.channel).max_per_hour:
            self._answers_per_hour.note(agent_id, contact.channel, now)
            self._update_cap(agent, contact.channel, now)
        return contact, [ContactEvent(ContactEventKind.ANSWERED, contact, now, agent_id, offer)]

    def decline(self, agent_id: str, offer_id: str, now: datetime) -> tuple[Contact, list[Event]]:
        """Decline an offer: the contact goes back to its place and to someone else first."""
        agent = self._agent(agent_id)
        offer = self._offers.get(offer_id)
        if offer is None or offer.agent_id != agent_id:
            raise WrongState(f"offer {offer_id} is not open for agent {agent_id}")
        events: list[Event] = []
        self._drop_offer(offer, agent, now)
        # Excluded first: a contact held for this agent is held no longer.
        self._exclude(offer.contact_id, agent_id, now)
        contact = self._requeue(offer, ContactEventKind.DECLINED, "declined", now, events)
        self._place(contact.id, now, events)
        self._fill(agent, now, events)
        return self._contacts[contact.id], events

    def expire(self, now: datetime) -> list[Event]:
        """Widen the skills of contacts whose preferences relaxed, time out offers past
        their deadline, lift decline exclusions that ended, release contacts whose agent
        did not come back after a restart, and open the phone reserve to chats and
        emails that reached their answer deadline."""
        events: list[Event] = []
        self._relax(now, events)
        while self._fallback_deadlines and self._fallback_deadlines[0][0] <= now:
            _, contact_id = heapq.heappop(self._fallback_deadlines)
            if contact_id in self._queue:
                self._fall_back(contact_id, now, events)
        while self._cap_deadlines and self._cap_deadlines[0][0] <= now:
            _, agent_id, channel = heapq.heappop(self._cap_deadlines)
            self._cap_timer.pop((agent_id, channel), None)
            capped_agent = self._agents.get(agent_id)
            if capped_agent is not None and self._update_cap(capped_agent, channel, now):
                self._fill(capped_agent, now, events)
        if self.policy.phone_reserve:
            t = now.timestamp()
            for contact_id in self._queue.fell_due(self._deadlines_seen, t, _HELD_BACK):
                if contact_id in self._queue:
                    self._place(contact_id, now, events)
            self._deadlines_seen = max(self._deadlines_seen, t)
        while self._reclaim_deadlines and self._reclaim_deadlines[0][0] <= now:
            _, agent_id = heapq.heappop(self._reclaim_deadlines)
            for contact_id in sorted(self._held_for.pop(agent_id, set())):
                self._release_unclaimed(contact_id, agent_id, now, events)
        while self._offer_deadlines and self._offer_deadlines[0][0] <= now:
            _, offer_id = heapq.heappop(self._offer_deadlines)
            offer = self._offers.get(offer_id)
            if offer is None:
                continue
            agent = self._agents[offer.agent_id]
            self._drop_offer(offer, agent, now)
            events.append(OfferWithdrawn(offer, "timed_out"))
            contact = self._requeue(
                offer, ContactEventKind.OFFER_TIMED_OUT, "offer_timed_out", now, events
            )
            agent.status, agent.away_reason = AgentStatus.AWAY, "missed"
            self._index(agent)
            events.append(self._agent_event(agent, AgentEventKind.STATUS_CHANGED, now))
            self._place(contact.id, now, events)
        while self._decline_deadlines and self._decline_deadlines[0][0] <= now:
            _, contact_id, agent_id = heapq.heappop(self._decline_deadlines)
            declined = self._declined.get(contact_id, {})
            if declined.get(agent_id, now) > now:
                continue
            declined.pop(agent_id, None)
            if not declined:
                self._declined.pop(contact_id, None)
            if contact_id in self._queue:
                self._place(contact_id, now, events)
        return events

    # -------------------------------------------------------- conversations

    def end(self, agent_id: str, contact_id: str, now: datetime) -> tuple[Contact, list[Event]]:
        """The conversation ended; after-contact work starts (no time limit)."""
        contact = self._held_contact(agent_id, contact_id)
        if contact.state is ContactState.WRAP_UP:
            return contact, []
        if contact.state is not ContactState.CONNECTED:
            raise WrongState(f"contact {contact_id} is {contact.state.value}, not connected")
        contact = replace(contact, state=ContactState.WRAP_UP, ended_at=now)
        self._contacts[contact_id] = contact
        return contact, [ContactEvent(ContactEventKind.ENDED, contact, now, agent_id)]

    def complete(
        self, agent_id: str, contact_id: str, disposition: str, now: datetime
    ) -> tuple[Contact, list[Event]]:
        """After-contact work is done: record the disposition and free the agent."""
        contact = self._held_contact(agent_id, contact_id)
        if contact.state is not ContactState.WRAP_UP:
            raise WrongState(
                f"contact {contact_id} is {contact.state.value}: end it before completing"
            )
        agent = self._agents[agent_id]
        contact = replace(
            contact, state=ContactState.COMPLETED, completed_at=now, disposition=disposition
        )
        del agent.holding[contact_id]
        agent.since = now
        self._retire(contact)
        self._previous.remember(contact.customer_id, agent_id)
        events: list[Event] = [ContactEvent(ContactEventKind.COMPLETED, contact, now, agent_id)]
        self._fill(agent, now, events)
        return contact, events

    def transfer(
        self,
        agent_id: str,
        contact_id: str,
        now: datetime,
        *,
        to_skills: frozenset[str] | None = None,
        to_agent: str | None = None,
    ) -> tuple[Contact, list[Event]]:
        """A connected contact leaves its agent for an agent with `to_skills` (these
        become its required skills) or for the agent `to_agent` by name.

        The customer's clock is not reset: queued_at keeps the contact's original place
        (it is among the most urgent, as a transferred customer should be) and answered_at
        stays the first answer, so its wait and service level count once. Each leg is in
        the events: TRANSFERRED (from whom, to what), then the next OFFERED and ANSWERED.
        A named agent is waited for skill_relax seconds (the bullseye again), then anyone
        with the contact's required skills takes it, so nobody is forgotten when that
        agent stays busy. The transferring agent is free at once (no wrap-up for its leg)
        and, like a decliner, is not offered the contact again for decline_exclusion
        seconds: a transfer to skills the agent has must not come straight back.
        """
        contact = self._held_contact(agent_id, contact_id)
        if contact.state is not ContactState.CONNECTED:
            raise WrongState(
                f"contact {contact_id} is {contact.state.value}: only a connected contact "
                "can be transferred"
            )
        if (to_skills is None) == (to_agent is None):
            raise InvalidArgument("target", "give either skills or an agent to transfer to")
        if to_agent is not None:
            if to_agent == agent_id:
                raise InvalidArgument("target.agent_id", "cannot transfer to oneself")
            if to_agent not in self._agents:
                raise WrongState(f"agent {to_agent} is not signed in")
            moved = replace(
                contact,
                preferred_agent_id=to_agent,
                preferred_agent_source=PreferenceSource.TRANSFER,
            )
            reason = f"to agent {to_agent}"
        else:
            assert to_skills is not None
            moved = replace(
                contact,
                required_skills=to_skills,
                preferred_agent_id=None,
                preferred_agent_source=None,
            )
            reason = "to skills " + ",".join(sorted(to_skills))
        agent = self._agents[agent_id]
        del agent.holding[contact_id]
        agent.since = now
        # Re-index the agent now: a stale placement (from before the contact was
        # answered) could hand the contact straight back, even from the phone reserve.
        self._index(agent)
        self._exclude(contact_id, agent_id, now)
        self._relax_from[contact_id] = now
        events: list[Event] = []
        self._back_to_queue(
            replace(moved, preferred_skills=()),
            ContactEventKind.TRANSFERRED,
            agent_id,
            reason,
            now,
            events,
        )
        self._fill(agent, now, events)
        return self._contacts[contact_id], events

    def _release_unclaimed(
        self, contact_id: str, agent_id: str, now: datetime, events: list[Event]
    ) -> None:
        """The agent of an answered contact did not sign in again within the grace."""
        contact = self._contacts.get(contact_id)
        if contact is None or contact.agent_id != agent_id:
            return
        if contact.state is ContactState.CONNECTED:
            # The customer may still be there: back to the queue, at the original place.
            self._back_to_queue(
                contact, ContactEventKind.REQUEUED, agent_id, "agent_not_back", now, events
            )
        elif contact.state is ContactState.WRAP_UP:
            contact = replace(contact, state=ContactState.COMPLETED, completed_at=now)
            self._retire(contact)
            events.append(
                ContactEvent(
                    ContactEventKind.COMPLETED, contact, now, agent_id, reason="agent_not_back"
                )
            )

    def _fall_back(self, contact_id: str, now: datetime, events: list[Event]) -> None:
        """Move a waiting contact that no signed-in agent could serve to its channel's
        fallback skills, if it has waited the channel's fallback_after."""
        contact = self._contacts[contact_id]
        at = self._fallback_time(contact)
        if at is None or at > now or self._unserved_reason(contact) is None:
            return
        rule = self.policy.of(contact.channel)
        waited = contact.wait_seconds(now)
        reason = (
            f"fallback from {_names(contact.required_skills)} to "
            f"{_names(rule.fallback_skills)} after {waited:.0f} s: no signed-in agent "
            f"could serve it"
        )
        self._queue.remove(contact_id)
        self._back_to_queue(
            replace(contact, required_skills=rule.fallback_skills, preferred_skills=()),
            ContactEventKind.REROUTED,
            None,
            reason,
            now,
            events,
        )

    def _fall_back_unserved(self, now: datetime, events: list[Event]) -> None:
        """After agents left or changed skills: contacts now unserved that waited past
        their channel's fallback_after move at once (the timer covers the others)."""
        if now < self._quiet_until:
            return
        due = []
        for channel, required, entries in self._queue.open_classes():
            after = self.policy.of(channel).fallback_after
            if after is None or self._coverage.could_serve(channel, required):
                continue
            for queued_at, _, contact_id in entries:
                if queued_at + after > now.timestamp():
                    break
                due.append(contact_id)
        for contact_id in due:
            self._fall_back(contact_id, now, events)

    # -------------------------------------------------------------- routing

    def _place(self, contact_id: str, now: datetime, events: list[Event]) -> bool:
        """Offer a queued contact to the longest-idle eligible agent, if any is free."""
        contact = self._contacts[contact_id]
        skills = self._queue.skills_of(contact_id)
        hold = self._queue.hold_of(contact_id)
        past_deadline = answer_deadline(contact, self.policy) <= now.timestamp()
        if hold is not None:
            agent_id = self._holder_if_free(contact, skills, hold, past_deadline, now)
        else:
            declined = self._declined.get(contact_id, {})
            agent_id = self._roster.best_for(
                contact.channel,
                skills,
                lambda a: declined.get(a, now) > now,
                past_deadline=past_deadline,
            )
        if agent_id is None:
            return False
        agent = self._agents[agent_id]
        from_reserve = contact.channel is not Channel.PHONE and agent.can_take(
            Channel.PHONE, self.policy
        )
        self._make_offer(contact, agent, now, events)
        if from_reserve:
            # The agent left the phone reserve for this contact and is out of it while it
            # holds work: give it the rest of what the reserve was holding it back from.
            self._fill(agent, now, events)
        return True

    def _holder_if_free(
        self,
        contact: Contact,
        skills: frozenset[str],
        hold: Hold,
        past_deadline: bool,
        now: datetime,
    ) -> str | None:
        """The agent a contact is held for, when it is free for it. The phone reserve
        applies unless an agent chose the holder (a firm hold: a transfer by name)."""
        agent = self._agents.get(hold.agent_id)
        if agent is None or self._is_declined(contact.id, agent_id=agent.id, now=now):
            return None
        if not agent.can_take(contact.channel, self.policy) or not skills <= agent.skills:
            return None
        in_reserve = (
            contact.channel is not Channel.PHONE
            and agent.can_take(Channel.PHONE, self.policy)
            and not self._roster.reserve_allows_other_work()
        )
        if in_reserve and not hold.firm and not past_deadline:
            return None
        return agent.id

    def _fill(self, agent: Agent, now: datetime, events: list[Event]) -> None:
        """Give an agent who may have free capacity the most urgent work it can take.

        Each contact found goes to the longest-idle agent eligible for it, which may
        be another agent (one the phone reserve was holding back), so the loop goes
        on until this agent is full or nothing it can take is waiting.
        """
        self._index(agent)
        while True:
            channels = [c for c in Channel if agent.can_take(c, self.policy)]
            if not channels:
                break
            held_back: frozenset[Channel] = frozenset()
            if Channel.PHONE in channels and not self._roster.reserve_allows_other_work():
                held_back = _HELD_BACK  # in the reserve: other work only past its deadline
            contact_id = self._queue.best_for(
                agent.skills,
                channels,
                now,
                partial(self._is_declined, agent_id=agent.id, now=now),
                held_back,
                agent.id,
            )
            if contact_id is None or not self._place(contact_id, now, events):
                break
        self._release_reserve(now, events)

    def _release_reserve(self, now: datetime, events: list[Event]) -> None:
        """When exactly K+1 agents could take a call, one of them may take other work:
        try each (there are K+1) so that no chat or email waits for nothing."""
        if self._roster.phone_ready != self.policy.phone_reserve + 1 or not len(self._queue):
            return
        for agent_id in self._roster.phone_ready_agents():
            if not self._roster.reserve_allows_other_work():
                return
            agent = self._agents[agent_id]
            others = [
                c for c in Channel if c is not Channel.PHONE and agent.can_take(c, self.policy)
            ]
            contact_id = self._queue.best_for(
                agent.skills,
                others,
                now,
                partial(self._is_declined, agent_id=agent_id, now=now),
                agent_id=agent_id,
            )
            if contact_id is not None:
                self._place(contact_id, now, events)

    def _make_offer(
        self, contact: Contact, agent: Agent, now: datetime, events: list[Event]
    ) -> None:
        offer = Offer(
            self._new_id(),
            contact.id,
            agent.id,
            now,
            now + timedelta(seconds=self.policy.offer_timeout),
        )
        self._queue.remove(contact.id)
        contact = replace(
            contact,
            state=ContactState.OFFERED,
            offered_at=now,
            agent_id=agent.id,
            offer_id=offer.id,
            offer_count=contact.offer_count + 1,
        )
        self._contacts[contact.id] = contact
        self._offers[offer.id] = offer
        agent.offers[offer.id] = contact.id
        agent.holding[contact.id] = contact.channel
        self._update_cap(agent, contact.channel, now)
        self._index(agent)
        heapq.heappush(self._offer_deadlines, (offer.expires_at, offer.id))
        events.append(ContactEvent(ContactEventKind.OFFERED, contact, now, agent.id, offer))

    # ------------------------------------------------------ waiting contacts

    def _enqueue(self, contact: Contact, now: datetime) -> None:
        """Put a contact in the queue at its original place, waiting for what it waits
        for now (see _waits_for), with timers for when that changes."""
        self._seq += 1
        seq = self._contact_seq.setdefault(contact.id, self._seq)
        self._contacts[contact.id] = contact
        self._keys[contact.idempotency_key] = contact.id
        skills, hold, until = self._waits_for(contact, now)
        self._queue.add(contact, seq, skills, hold)
        preferred = contact.preferred_agent_id
        if hold is None and preferred is not None and preferred not in self._agents:
            self._awaiting.setdefault(preferred, set()).add(contact.id)
        if until is not None:
            heapq.heappush(self._relax_deadlines, (until, contact.id))
        fallback_at = self._fallback_time(contact)
        if fallback_at is not None:
            # One entry per time queued (a few per contact); _fall_back is idempotent.
            heapq.heappush(self._fallback_deadlines, (fallback_at, contact.id))

    def _back_to_queue(
        self,
        contact: Contact,
        kind: ContactEventKind,
        agent_id: str | None,
        reason: str,
        now: datetime,
        events: list[Event],
    ) -> None:
        """A contact leaves its agent (or its place) for the queue, keeping queued_at:
        record why (`kind`, from `agent_id`, `reason`) and route it."""
        contact = replace(contact, state=ContactState.QUEUED, agent_id=None, offer_id=None)
        self._enqueue(contact, now)
        events.append(ContactEvent(kind, contact, now, agent_id, reason=reason))
        self._place(contact.id, now, events)

    def _waits_for(
        self, contact: Contact, now: datetime
    ) -> tuple[frozenset[str], Hold | None, datetime | None]:
        """What a contact waits for now, and until when: its preferred agent (while the
        hold lasts and that agent could serve it), else its required skills and the
        preferred ones not yet relaxed."""
        preferred = contact.preferred_agent_id
        if preferred is not None:
            until = self._hold_until(contact)
            agent = self._agents.get(preferred)
            if (
                now < until
                and agent is not None
                and agent.could_serve(contact.channel, contact.required_skills)
                and not self._is_declined(contact.id, agent_id=preferred, now=now)
            ):
                firm = contact.preferred_agent_source is PreferenceSource.TRANSFER
                return contact.required_skills, Hold(preferred, firm), until
        kept = self._preferences_kept(contact, now)
        skills = contact.required_skills.union(contact.preferred_skills[:kept])
        if not kept:
            return skills, None, None
        dropped = len(contact.preferred_skills) - kept
        step = timedelta(seconds=self.policy.skill_relax * (dropped + 1))
        return skills, None, self._relax_origin(contact) + step

    def _hold_until(self, contact: Contact) -> datetime:
        """When the hold for a preferred agent ends: skill_relax after a transfer by
        name; otherwise the channel's preferred-agent wait, but never past the answer
        deadline (so the phone reserve never holds back a due contact by a hold)."""
        if contact.preferred_agent_source is PreferenceSource.TRANSFER:
            return self._relax_origin(contact) + timedelta(seconds=self.policy.skill_relax)
        wait = self.policy.of(contact.channel).hold_for_preferred
        deadline = answer_deadline(contact, self.policy) - contact.queued_at.timestamp()
        return contact.queued_at + timedelta(seconds=min(wait, deadline))

    def _preferences_kept(self, contact: Contact, now: datetime) -> int:
        """How many of the contact's preferred skills still hold: one is dropped, least
        wanted first, per skill_relax seconds waited (the bullseye widening)."""
        wanted = len(contact.preferred_skills)
        if not wanted or self.policy.skill_relax <= 0:
            return 0
        waited = (now - self._relax_origin(contact)).total_seconds()
        return max(0, wanted - int(waited // self.policy.skill_relax))

    def _relax_origin(self, contact: Contact) -> datetime:
        """Preferences relax from submission, or from the transfer that set them."""
        return self._relax_from.get(contact.id, contact.queued_at)

    def _relax(self, now: datetime, events: list[Event]) -> None:
        """Widen the pool of contacts whose hold ended or whose next preferred skill is
        dropped by now."""
        while self._relax_deadlines and self._relax_deadlines[0][0] <= now:
            _, contact_id = heapq.heappop(self._relax_deadlines)
            self._rewait(contact_id, now, events)

    def _recheck_holds(self, agent_id: str, now: datetime, events: list[Event]) -> None:
        """The agent signed out or changed: contacts held for it may be held no more."""
        for contact_id in self._queue.held_for(agent_id):
            self._rewait(contact_id, now, events)

    def _rewait(self, contact_id: str, now: datetime, events: list[Event]) -> None:
        """Queue a contact again if what it waits for changed, and route it."""
        if contact_id not in self._queue:
            return
        contact = self._contacts[contact_id]
        skills, hold, _ = self._waits_for(contact, now)
        if (skills, hold) == (self._queue.skills_of(contact_id), self._queue.hold_of(contact_id)):
            return  # a stale deadline: the contact was queued again since
        self._queue.remove(contact_id)
        self._enqueue(contact, now)
        self._place(contact_id, now, events)

    # ------------------------------------------------------- unserved contacts

    def _unserved_reason(self, contact: Contact) -> WaitReason | None:
        """Why no signed-in agent could ever serve the contact; None if one could."""
        if not self._coverage.signed_in:
            return WaitReason.NO_AGENT_SIGNED_IN
        if not self._coverage.could_serve(contact.channel, contact.required_skills):
            return WaitReason.NO_AGENT_WITH_SKILLS
        return None

    def _unserved_detail(self, contact: Contact, reason: WaitReason) -> str:
        if reason is WaitReason.NO_AGENT_SIGNED_IN:
            text = "no agent is signed in"
        else:
            text = (
                f"no signed-in agent takes {contact.channel.value} with "
                f"{_names(contact.required_skills)}"
            )
        at = self._fallback_time(contact)
        if at is not None:
            rule = self.policy.of(contact.channel)
            text += f"; moves to {_names(rule.fallback_skills)} at {_iso(at)}"
        return text + "; it waits, nothing is dropped"

    def _fallback_time(self, contact: Contact) -> datetime | None:
        """When the channel's fallback rule would move the contact (never within the
        reconnect grace after a restart); None without a rule."""
        rule = self.policy.of(contact.channel)
        if rule.fallback_after is None or contact.required_skills == rule.fallback_skills:
            return None
        return max(contact.queued_at + timedelta(seconds=rule.fallback_after), self._quiet_until)

    def _unserved(self, now: datetime) -> tuple[dict[Channel, int], list[UnservedContact]]:
        """How many waiting contacts per channel no signed-in agent could serve, and
        the oldest of them. A class at a time: its contacts share channel and required
        skills, so whether anyone could serve them; held contacts have their agent."""
        counts = dict.fromkeys(Channel, 0)
        oldest: list[UnservedContact] = []
        for channel, _, entries in self._queue.open_classes():
            if not entries:
                continue
            first = self._contacts[entries[0][2]]
            reason = self._unserved_reason(first)
            if reason is None:
                continue
            counts[channel] += len(entries)
            for _, _, contact_id in entries[:_UNSERVED_LISTED]:
                contact = self._contacts[contact_id]
                oldest.append(
                    UnservedContact(
                        contact_id,
                        channel,
                        contact.required_skills,
                        contact.wait_seconds(now),
                        reason,
                        self._fallback_time(contact),
                    )
                )
        oldest.sort(key=lambda u: -u.wait_seconds)
        return counts, oldest[:_UNSERVED_LISTED]

    # -------------------------------------------------------------- agents

    def _index(self, agent: Agent) -> None:
        """Re-index a signed-in agent after any change to its state."""
        self._roster.place(agent)
        self._coverage.update(agent)

    def _update_cap(self, agent: Agent, channel: Channel, now: datetime) -> bool:
        """Set whether the agent is at its hourly cap for `channel` (answers in the last
        hour plus open offers); True when that lifted a cap."""
        cap = self.policy.of(channel).max_per_hour
        if not cap:
            return False
        taken = self._answers_per_hour.count(agent.id, channel, now) + agent.offered(channel)
        was_capped = channel in agent.capped
        if taken >= cap:
            agent.capped.add(channel)
            # Look again when the oldest answer leaves the hour (open offers settle by
            # themselves: an answer or a drop comes back here).
            frees_at = self._answers_per_hour.frees_at(agent.id, channel)
            if frees_at is not None and self._cap_timer.get((agent.id, channel)) != frees_at:
                self._cap_timer[(agent.id, channel)] = frees_at
                heapq.heappush(self._cap_deadlines, (frees_at, agent.id, channel))
        else:
            agent.capped.discard(channel)
        if was_capped != (channel in agent.capped):
            self._index(agent)
        return was_capped and channel not in agent.capped

    # -------------------------------------------------------------- helpers

    def _note_answer(self, channel: Channel, now: datetime) -> None:
        last = self._last_answer.get(channel)
        if last is not None and last[1]:
            self._answer_gaps[channel].append((now - last[0]).total_seconds())
        self._last_answer[channel] = (now, self._queue.count(channel) > 0)

    def _agent(self, agent_id: str) -> Agent:
        try:
            return self._agents[agent_id]
        except KeyError:
            raise NotFound(f"agent {agent_id} is not signed in") from None

    def _retire(self, contact: Contact) -> None:
        """A final contact leaves memory; Postgres keeps it."""
        self._contacts.pop(contact.id, None)
        self._keys.pop(contact.idempotency_key, None)
        self._contact_seq.pop(contact.id, None)
        self._declined.pop(contact.id, None)
        self._relax_from.pop(contact.id, None)
        if contact.preferred_agent_id in self._awaiting:
            self._awaiting[contact.preferred_agent_id].discard(contact.id)

    def _drop_offer(self, offer: Offer, agent: Agent, now: datetime) -> None:
        del self._offers[offer.id]
        del agent.offers[offer.id]
        channel = agent.holding.pop(offer.contact_id)
        self._update_cap(agent, channel, now)
        self._index(agent)

    def _requeue(
        self,
        offer: Offer,
        cause: ContactEventKind | None,
        reason: str,
        now: datetime,
        events: list[Event],
    ) -> Contact:
        """An offer's contact goes back to the queue (routed by the caller)."""
        contact = replace(
            self._contacts[offer.contact_id],
            state=ContactState.QUEUED,
            agent_id=None,
            offer_id=None,
        )
        self._enqueue(contact, now)
        if cause is not None:
            events.append(ContactEvent(cause, contact, now, offer.agent_id, offer))
        events.append(
            ContactEvent(ContactEventKind.REQUEUED, contact, now, offer.agent_id, reason=reason)
        )
        return contact

    def _return_offers(
        self, agent: Agent, reason: str, now: datetime, events: list[Event]
    ) -> list[str]:
        requeued = []
        for offer_id in list(agent.offers):
            offer = self._offers[offer_id]
            self._drop_offer(offer, agent, now)
            events.append(OfferWithdrawn(offer, reason))
            requeued.append(self._requeue(offer, None, reason, now, events).id)
        return requeued

    def _exclude(self, contact_id: str, agent_id: str, now: datetime) -> None:
        """Keep the contact from this agent for decline_exclusion seconds: the agent
        declined it, or transferred it away."""
        if self.policy.decline_exclusion <= 0:
            return
        until = now + timedelta(seconds=self.policy.decline_exclusion)
        self._declined.setdefault(contact_id, {})[agent_id] = until
        heapq.heappush(self._decline_deadlines, (until, contact_id, agent_id))

    def _is_declined(self, contact_id: str, *, agent_id: str, now: datetime) -> bool:
        declined = self._declined.get(contact_id)
        return declined is not None and declined.get(agent_id, now) > now

    def _held_contact(self, agent_id: str, contact_id: str) -> Contact:
        agent = self._agent(agent_id)
        contact = self.contact(contact_id)
        if contact_id not in agent.holding or contact.state is ContactState.OFFERED:
            raise WrongState(f"contact {contact_id} is not connected to agent {agent_id}")
        return contact

    def _contact_of_answered_offer(self, agent: Agent, offer_id: str) -> Contact | None:
        """For a retried AcceptOffer: the contact that this agent answered with it."""
        for contact_id in agent.holding:
            contact = self._contacts[contact_id]
            if contact.offer_id == offer_id and contact.state is not ContactState.OFFERED:
                return contact
        return None

    def _drop_stale_deadlines(self) -> None:
        while self._relax_deadlines and self._relax_deadlines[0][1] not in self._queue:
            heapq.heappop(self._relax_deadlines)
        while self._fallback_deadlines and self._fallback_deadlines[0][1] not in self._queue:
            # Offered or gone: if it comes back to the queue, _enqueue sets the timer again.
            heapq.heappop(self._fallback_deadlines)
        while self._cap_deadlines and self._cap_deadlines[0][1] not in self._agents:
            _, agent_id, channel = heapq.heappop(self._cap_deadlines)
            self._cap_timer.pop((agent_id, channel), None)
        while self._offer_deadlines and self._offer_deadlines[0][1] not in self._offers:
            heapq.heappop(self._offer_deadlines)
        while self._decline_deadlines:
            until, contact_id, agent_id = self._decline_deadlines[0]
            if self._declined.get(contact_id, {}).get(agent_id) == until:
                break
            heapq.heappop(self._decline_deadlines)

    def _agent_event(self, agent: Agent, kind: AgentEventKind, now: datetime) -> AgentEvent:
        return AgentEvent(
            kind, agent.id, agent.status, agent.away_reason, agent.connected, now, agent.skills
        )


def _instant_at_or_after(epoch: float) -> datetime:
    """The first datetime (microsecond resolution) whose timestamp is not before `epoch`,
    so that expire() at that instant finds the deadline passed."""
    instant = datetime.fromtimestamp(epoch, UTC)
    while instant.timestamp() < epoch:
        instant += timedelta(microseconds=1)
    return instant


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _names(skills: frozenset[str]) -> str:
    """Skills in words: "skill x", "skills x, y", or "any agent of the channel"."""
    if not skills:
        return "any skills"
    return ("skill " if len(skills) == 1 else "skills ") + ", ".join(sorted(skills))
