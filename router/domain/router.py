"""The routing state machine: every lifecycle transition of contacts and agents.

Each public method takes `now`, validates first (raising a DomainError before
changing anything), then applies the change and returns the events it caused, in
order. The caller persists the events and pushes offers; the core never waits.

Invariant kept after every call: no waiting contact has an eligible agent who is
free to take it, except for a while, each ended by a timer: an agent kept from a
contact it declined (exclusions), a contact held for its preferred agent or waiting
for its preferred skills (waiting), a chat or email the phone reserve keeps from the
last K idle phone-capable agents until its answer deadline (placement), an agent at
its hourly cap (hourly_cap).

The modules beside this one: state (the data and what must change together),
placement (who gets what), waiting (what a queued contact waits for), exclusions,
fallback (contacts nobody could serve), hourly_cap, answer_rate and explanation
(read-only answers: place in line, estimated wait, why a contact waits). Every timer
is in one queue (timers); `expire` hands each that is due to its `_on_<kind>` handler.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from datetime import datetime
from typing import cast
from uuid import uuid4

from router.domain.admission import Admission
from router.domain.agent import Agent, AgentStatus, AgentView, full_capacities
from router.domain.callbacks import Callbacks, Window, being_dialled
from router.domain.channel import Channel, RoutingPolicy
from router.domain.closed_channels import ClosedChannels
from router.domain.contact import Contact, ContactState, DialOutcome, changed
from router.domain.events import (
    AgentEventKind,
    ContactEvent,
    ContactEventKind,
    Event,
    OfferWithdrawn,
    agent_event,
)
from router.domain.explanation import Explanations, QueueSnapshot
from router.domain.offer import Offer
from router.domain.placement import Placement
from router.domain.restart import Restart
from router.domain.state import OTHER_WORK, RoutingState
from router.domain.supervision import Supervision
from router.domain.timers import Timer
from router.domain.transfer import Transfer
from router.domain.wait_reason import WaitExplanation
from router.domain.warm import WarmCore
from router.errors import (
    InvalidArgument,
    NotFound,
    WrongState,
)


class Router:
    """All routing state of one center, in memory."""

    def __init__(
        self, policy: RoutingPolicy, new_id: Callable[[], str] = lambda: str(uuid4())
    ) -> None:
        self.policy = policy
        self._state = RoutingState(policy)
        self._placement = Placement(self._state, new_id)
        self._admission = Admission(self._state)
        self._restart = Restart(self._state, self._placement)
        self._transfer = Transfer(self._state, self._placement)
        self._explain = Explanations(self._state)
        self.hours = ClosedChannels(self._state)  # hours of operation: in force, refusals
        self._callbacks = Callbacks(self._state, self._placement)
        self.supervision = Supervision(self._state, self._placement, self)
        """A supervisor's actions on the live operation (see supervision.py)."""
        self.warm = WarmCore(self._state, self.restore)
        """A standby's restore done ahead of its takeover (see warm.py)."""
        self._handlers: dict[Timer, Callable[[Hashable, datetime, list[Event]], None]] = {
            kind: getattr(self, f"_on_{kind.value}") for kind in Timer
        }

    # ----------------------------------------------------------------- reading

    def contact(self, contact_id: str) -> Contact:
        """An active (not yet completed or abandoned) contact."""
        try:
            return self._state.contacts[contact_id]
        except KeyError:
            raise NotFound(f"no active contact {contact_id}") from None

    def contact_with_key(self, idempotency_key: str) -> Contact | None:
        """The active contact a gateway submitted with this key, if any."""
        contact_id = self._state.keys.get(idempotency_key)
        return None if contact_id is None else self._state.contacts[contact_id]

    def contacts(self) -> Iterable[Contact]:
        return self._state.contacts.values()

    def forget_customer(self, customer_id: str) -> None:
        """Forget the customer (their data is being erased): their previous agent goes.
        WrongState while a contact of theirs is active (the core holds its customer id
        and attributes until it ends); a scan, as erasures are rare."""
        contacts = self._state.contacts.values()
        open_contacts = sum(1 for c in contacts if c.customer_id == customer_id)
        if open_contacts:
            raise WrongState(
                f"the customer has {open_contacts} contact(s) not yet completed or abandoned: "
                "erase once they end"
            )
        self._state.previous.forget(customer_id)

    def agent(self, agent_id: str) -> AgentView:
        return self._agent(agent_id).view()

    def agents(self) -> list[AgentView]:
        return [agent.view() for agent in self._state.agents.values()]

    def offer(self, offer_id: str) -> Offer | None:
        return self._state.offers.get(offer_id)

    def offers_for(self, agent_id: str) -> list[Offer]:
        agent = self._agent(agent_id)
        return [self._state.offers[offer_id] for offer_id in agent.offers]

    def position(self, contact_id: str, now: datetime) -> int:
        """1-based place in routing order among waiting contacts; 0 if not queued."""
        return self._explain.position(contact_id, now)

    def line_position(self, contact_id: str, now: datetime) -> int:
        """1-based place in line for the customer (see Explanations.line_position)."""
        return self._explain.line_position(contact_id, now)

    def waiting_for(self, contact_id: str) -> frozenset[str] | None:
        """The skills a queued contact waits for now; None if not queued."""
        return self._explain.waiting_for(contact_id)

    def wait_reason(self, contact_id: str, now: datetime) -> WaitExplanation | None:
        """Why a queued contact still waits; None if it is not queued."""
        return self._explain.wait_reason(contact_id, now)

    def estimated_wait(self, contact_id: str, now: datetime) -> float | None:
        """Seconds until answer, from the channel's recent answer rate."""
        return self._explain.estimated_wait(contact_id, now)

    def snapshot(self, now: datetime) -> QueueSnapshot:
        return self._explain.snapshot(now)

    def next_deadline(self) -> datetime | None:
        """The next instant at which `expire` has something to do."""
        return self._state.timers.next()

    # -------------------------------------------------------------- contacts

    def check_room(
        self, channel: Channel, size: int = 0, *, submitting: int = 0, submitting_bytes: int = 0
    ) -> None:
        """Refuse a new contact the queue has no room for (see Admission.check_room)."""
        self._admission.check_room(
            channel, size, submitting=submitting, submitting_bytes=submitting_bytes
        )

    def with_preference(self, contact: Contact) -> Contact:
        """A new contact with its preferred agent (see Admission.with_preference)."""
        return self._admission.with_preference(contact)

    def submit(self, contact: Contact, now: datetime) -> list[Event]:
        """Queue a durably recorded contact and route it."""
        if contact.id in self._state.contacts:
            raise WrongState(f"contact {contact.id} is already active")
        if contact.state is not ContactState.QUEUED:
            raise InvalidArgument("state", "a submitted contact must be queued")
        events: list[Event] = []
        self._state.enqueue(contact, now)
        if not self._placement.place(contact.id, now, events):
            # It has to wait: its place now and the wait that follows teach the estimate.
            place = self._explain.wait_place(contact.id, now)
            self._state.answer_rate.entered(contact.id, place, now)
        return events

    def restore(
        self,
        contacts: Iterable[Contact],
        now: datetime,
        previous_agents: Iterable[tuple[str, str]] = (),
        recent_answers: Iterable[tuple[str, Channel, datetime]] = (),
    ) -> list[Event]:
        """Rebuild from the durable record after a start (see Restart.restore)."""
        contacts = list(contacts)
        self._callbacks.restore(contacts, now)
        return self._restart.restore(contacts, now, previous_agents, recent_answers)

    def abandon(self, contact_id: str, now: datetime) -> list[Event]:
        """The customer left before being answered."""
        contact = self.contact(contact_id)
        if not contact.state.is_waiting:
            raise WrongState(
                f"contact {contact_id} is {contact.state.value}: "
                "only a waiting contact can be abandoned"
            )
        events: list[Event] = []
        agent = self._placement.take_out(contact, "abandoned", now, events)
        abandoned = self.hours.abandoned(contact, now)
        self._state.retire(abandoned)
        events.append(ContactEvent(ContactEventKind.ABANDONED, abandoned, now))
        if agent is not None:
            self._placement.fill(agent, now, events)
        return events

    # ---------------------------------------------------------------- agents

    def sign_in(
        self,
        agent_id: str,
        skills: frozenset[str],
        capacities: Mapping[Channel, int],
        status: AgentStatus,
        now: datetime,
        team: str = "",
    ) -> list[Event]:
        """Sign an agent in, or update the skills, capacities and team of a signed-in
        one."""
        if status is AgentStatus.OFFLINE:
            raise InvalidArgument("initial_status", "must be READY or AWAY")
        full = full_capacities(self.policy, capacities)
        state = self._state
        events: list[Event] = []
        agent = state.agents.get(agent_id)
        if agent is None:
            agent = Agent(agent_id, skills, full, now, now, state.next_seq(), status=status)
            state.agents[agent_id] = agent
            self._restart.reclaim(agent)
            for channel in Channel:
                state.caps.update(agent, channel, now)
            for contact_id in sorted(state.preferred_absent.pop(agent_id, ())):
                if contact_id in state.queue:
                    state.dequeue(contact_id)
                    state.enqueue(state.contacts[contact_id], now)
        else:
            agent.skills, agent.capacities = skills, full
            if agent.status is not status:
                agent.status = status
                agent.away_reason = ""
                if status is AgentStatus.READY:
                    agent.since = now
        agent.team = team or self.policy.teams.get(agent_id, "")
        events.append(agent_event(agent, AgentEventKind.SIGNED_IN, now))
        state.index(agent)
        # Skills or channels may have changed: holds for this agent and contacts that
        # only it could serve are looked at again.
        self._placement.recheck_holds(agent_id, now, events)
        self._placement.fall_back_unserved(now, events)
        self._placement.fill(agent, now, events)
        return events

    def sign_out(self, agent_id: str, now: datetime) -> list[Event]:
        """Sign out; offers not yet answered go back to the queue."""
        agent = self._agent(agent_id)
        answered = [c for c in agent.assigned if c not in agent.offers.values()]
        if answered:
            raise WrongState(
                f"agent {agent_id} still holds {len(answered)} answered contact(s): "
                "end and complete them before signing out"
            )
        state = self._state
        events: list[Event] = []
        requeued = self._placement.return_offers(
            agent, list(agent.offers), "agent_signed_out", now, events
        )
        state.roster.remove(agent_id)
        state.coverage.remove(agent_id)
        state.caps.forget(agent_id)
        del state.agents[agent_id]
        agent.status, agent.connected = AgentStatus.OFFLINE, False
        events.append(agent_event(agent, AgentEventKind.SIGNED_OUT, now))
        for contact_id in requeued:
            if contact_id in state.queue:
                self._placement.place(contact_id, now, events)
        self._placement.recheck_holds(agent_id, now, events)
        self._placement.fall_back_unserved(now, events)
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
        events: list[Event] = [agent_event(agent, AgentEventKind.STATUS_CHANGED, now)]
        self._placement.fill(agent, now, events)
        return events

    def connect(self, agent_id: str, now: datetime) -> list[Event]:
        """The agent's offer stream opened: it is present and can be offered work."""
        agent = self._agent(agent_id)
        if agent.connected:
            return []
        agent.connected = True
        events: list[Event] = [agent_event(agent, AgentEventKind.CONNECTED, now)]
        self._placement.fill(agent, now, events)
        return events

    def disconnect(self, agent_id: str, now: datetime) -> list[Event]:
        """The agent's offer stream is gone: unanswered offers go back to the queue;
        answered contacts stay with the agent (the conversation may go on)."""
        agent = self._state.agents.get(agent_id)
        if agent is None or not agent.connected:
            return []
        agent.connected = False
        events: list[Event] = [agent_event(agent, AgentEventKind.DISCONNECTED, now)]
        requeued = self._placement.return_offers(
            agent, list(agent.offers), "agent_lost", now, events
        )
        self._state.index(agent)
        for contact_id in requeued:
            self._placement.place(contact_id, now, events)
        return events

    def disconnect_all(self, now: datetime) -> list[Event]:
        """The router is stopping: every offer stream ends at once. All agents leave
        first, then their unanswered offers go back to the queue, so that none is
        offered again to an agent whose stream is ending too."""
        state = self._state
        leaving = [agent for agent in state.agents.values() if agent.connected]
        events: list[Event] = []
        for agent in leaving:
            agent.connected = False
            state.index(agent)
            events.append(agent_event(agent, AgentEventKind.DISCONNECTED, now))
        for agent in leaving:
            self._placement.return_offers(agent, list(agent.offers), "router_stopping", now, events)
        return events

    # ---------------------------------------------------------------- offers

    def accept(self, agent_id: str, offer_id: str, now: datetime) -> tuple[Contact, list[Event]]:
        """Accept an offer: the contact is connected and its wait ends now."""
        state = self._state
        agent = self._agent(agent_id)
        offer = state.offers.get(offer_id)
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
        del state.offers[offer_id]
        del agent.offers[offer_id]
        state.timers.cancel(Timer.OFFER_EXPIRES, offer_id)
        waiting = state.contacts[offer.contact_id]
        # A contact answered before (whose agent never came back) keeps its first answer:
        # its wait ended then.
        contact = self.hours.answered(waiting, now)
        kind = ContactEventKind.ANSWERED
        if contact.callback is not None and contact.callback.reached_at is None:  # a dial
            contact = self._callbacks.dialling(contact, waiting.answered_at, now)
            kind = ContactEventKind.DIALLED
        state.contacts[contact.id] = contact
        still_waiting = state.queue.count(contact.channel) > 0
        state.answer_rate.note(contact.id, contact.channel, now, still_waiting=still_waiting)
        state.exclusions.clear(contact.id)
        state.caps.note_answer(agent_id, contact.channel, now)
        if state.caps.update(agent, contact.channel, now)[0]:
            state.index(agent)
        return contact, [ContactEvent(kind, contact, now, agent_id, offer)]

    def decline(self, agent_id: str, offer_id: str, now: datetime) -> tuple[Contact, list[Event]]:
        """Decline an offer: the contact goes back to its place and to someone else first."""
        agent = self._agent(agent_id)
        offer = self._state.offers.get(offer_id)
        if offer is None or offer.agent_id != agent_id:
            raise WrongState(f"offer {offer_id} is not open for agent {agent_id}")
        events: list[Event] = []
        self._placement.drop_offer(offer, agent, now)
        # Excluded first: a contact held for this agent is held no longer.
        self._state.exclusions.add(offer.contact_id, agent_id, now)
        self._state.passed_on(self._state.contacts[offer.contact_id], agent_id)
        contact = self._placement.requeue(offer, ContactEventKind.DECLINED, "declined", now, events)
        self._placement.place(contact.id, now, events)
        self._placement.fill(agent, now, events)
        return self._state.contacts[contact.id], events

    # -------------------------------------------------------- conversations

    def end(self, agent_id: str, contact_id: str, now: datetime) -> tuple[Contact, list[Event]]:
        """The conversation ended; after-contact work starts (no time limit)."""
        contact = self._assigned_contact(agent_id, contact_id)
        if contact.state is ContactState.WRAP_UP:
            return contact, []
        if contact.state is not ContactState.CONNECTED or being_dialled(contact):
            raise WrongState(f"contact {contact_id} is not connected (a callback: not reached)")
        contact = changed(contact, state=ContactState.WRAP_UP, ended_at=now)
        self._state.contacts[contact_id] = contact
        return contact, [ContactEvent(ContactEventKind.ENDED, contact, now, agent_id)]

    def complete(
        self, agent_id: str, contact_id: str, disposition: str, now: datetime
    ) -> tuple[Contact, list[Event]]:
        """After-contact work is done: record the disposition and free the agent."""
        contact = self._assigned_contact(agent_id, contact_id)
        if contact.state is not ContactState.WRAP_UP:
            raise WrongState(
                f"contact {contact_id} is {contact.state.value}: end it before completing"
            )
        agent = self._state.agents[agent_id]
        contact = changed(
            contact, state=ContactState.COMPLETED, completed_at=now, disposition=disposition
        )
        del agent.assigned[contact_id]
        agent.since = now
        self._state.retire(contact)
        self._state.previous.remember(contact.customer_id, agent_id)
        events: list[Event] = [ContactEvent(ContactEventKind.COMPLETED, contact, now, agent_id)]
        self._placement.fill(agent, now, events)
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
        become its required skills) or for the agent `to_agent` by name (see
        transfer.py)."""
        contact = self._assigned_contact(agent_id, contact_id)
        return self._transfer.transfer(
            contact, agent_id, now, to_skills=to_skills, to_agent=to_agent
        )

    # ------------------------------------------------------------- callbacks

    def request_callback(
        self, contact_id: str, number: str, window: Window, now: datetime
    ) -> tuple[Contact, list[Event]]:
        """A waiting contact becomes a queued callback to `number` (see callbacks.py)."""
        return self._callbacks.request(self.contact(contact_id), number, window, now)

    def report_dial(
        self, agent_id: str, contact_id: str, outcome: DialOutcome, now: datetime
    ) -> tuple[Contact, list[Event]]:
        """What the agent's dial of the callback it holds gave (see callbacks.py)."""
        contact = self._assigned_contact(agent_id, contact_id)
        return self._callbacks.outcome(self._state.agents[agent_id], contact, outcome, now)

    # ---------------------------------------------------------------- timers

    def expire(self, now: datetime) -> list[Event]:
        """Act on every timer due by `now`, earliest first (see timers.Timer)."""
        events: list[Event] = []
        timers = self._state.timers
        while (due := timers.pop_due(now)) is not None:
            kind, key = due
            self._handlers[kind](key, now, events)
        # Answer deadlines up to now are behind us: a contact queued again past its
        # deadline is placed as such at once, and needs no timer.
        self._state.due_seen = max(self._state.due_seen, now.timestamp())
        return events

    def _on_wait_changes(self, key: Hashable, now: datetime, events: list[Event]) -> None:
        """A contact's hold ended or its next preferred skill is dropped."""
        assert isinstance(key, str)
        self._placement.rewait(key, now, events)

    def _on_fallback(self, key: Hashable, now: datetime, events: list[Event]) -> None:
        """A contact nobody could serve may move to its channel's fallback skills."""
        assert isinstance(key, str)
        if key in self._state.queue:
            self._placement.fall_back(key, now, events)

    def _on_cap_lifts(self, key: Hashable, now: datetime, events: list[Event]) -> None:
        """An agent's oldest answer left the hour: it may be under its cap again."""
        agent_id, channel = cast(tuple[str, Channel], key)
        agent = self._state.agents.get(agent_id)
        if agent is None:
            return
        changed, lifted = self._state.caps.update(agent, channel, now)
        if changed:
            self._state.index(agent)
        if lifted:
            self._placement.fill(agent, now, events)

    def _on_answer_due(self, key: Hashable, now: datetime, events: list[Event]) -> None:
        """Chats and emails reached their answer deadline: the phone reserve yields."""
        state = self._state
        t = now.timestamp()
        for contact_id in state.queue.fell_due(state.due_seen, t, OTHER_WORK):
            if contact_id in state.queue:
                self._placement.place(contact_id, now, events)
        state.due_seen = max(state.due_seen, t)
        state.arm_answer_due()

    def _on_reclaim_ends(self, key: Hashable, now: datetime, events: list[Event]) -> None:
        """An agent did not sign in again within the reconnect grace after a restart."""
        assert isinstance(key, str)
        self._restart.release(key, now, events)

    def _on_offer_expires(self, key: Hashable, now: datetime, events: list[Event]) -> None:
        """An offer rang out: back to the queue; the agent is set away ("missed")."""
        state = self._state
        offer = state.offers.get(str(key))
        if offer is None:
            return
        agent = state.agents[offer.agent_id]
        self._placement.drop_offer(offer, agent, now)
        state.passed_on(state.contacts[offer.contact_id], offer.agent_id)
        events.append(OfferWithdrawn(offer, "timed_out"))
        contact = self._placement.requeue(
            offer, ContactEventKind.OFFER_TIMED_OUT, "offer_timed_out", now, events
        )
        agent.status, agent.away_reason = AgentStatus.AWAY, "missed"
        state.index(agent)
        events.append(agent_event(agent, AgentEventKind.STATUS_CHANGED, now))
        self._placement.place(contact.id, now, events)

    def _on_exclusion_ends(self, key: Hashable, now: datetime, events: list[Event]) -> None:
        """An agent may be offered a contact it declined (or transferred away) again."""
        contact_id, agent_id = cast(tuple[str, str], key)
        self._state.exclusions.end(contact_id, agent_id)
        if contact_id in self._state.queue:
            self._placement.place(contact_id, now, events)

    def _on_callback_due(self, key: Hashable, now: datetime, events: list[Event]) -> None:
        self._callbacks.on_due(str(key), now, events)

    def _on_callback_window_ends(self, key: Hashable, now: datetime, events: list[Event]) -> None:
        self._callbacks.on_window_ends(str(key), now, events)

    # ------------------------------------------------------------- helpers

    def _agent(self, agent_id: str) -> Agent:
        try:
            return self._state.agents[agent_id]
        except KeyError:
            raise NotFound(f"agent {agent_id} is not signed in") from None

    def _assigned_contact(self, agent_id: str, contact_id: str) -> Contact:
        agent = self._agent(agent_id)
        contact = self.contact(contact_id)
        if contact_id not in agent.assigned or contact.state is ContactState.OFFERED:
            raise WrongState(f"contact {contact_id} is not connected to agent {agent_id}")
        return contact

    def _contact_of_answered_offer(self, agent: Agent, offer_id: str) -> Contact | None:
        """For a retried AcceptOffer: the contact that this agent answered with it."""
        for contact_id in agent.assigned:
            contact = self._state.contacts[contact_id]
            if contact.offer_id == offer_id and contact.state is not ContactState.OFFERED:
                return contact
        return None
