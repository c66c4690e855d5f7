"""What the core reports after each change: records to persist and messages to push."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from router.domain.agent import Agent, AgentStatus
from router.domain.contact import Contact
from router.domain.offer import Offer


class ContactEventKind(StrEnum):
    SUBMITTED = "submitted"
    OFFERED = "offered"
    DECLINED = "declined"
    OFFER_TIMED_OUT = "offer_timed_out"
    ANSWERED = "answered"
    ENDED = "ended"
    COMPLETED = "completed"
    ABANDONED = "abandoned"
    REQUEUED = "requeued"
    TRANSFERRED = "transferred"  # a connected contact went back to the queue for others
    REROUTED = "rerouted"  # nobody signed in could serve it: moved to the fallback skills
    CALLBACK_REQUESTED = "callback_requested"  # became a queued callback (reason: from what)
    DIALLED = "dialled"  # an agent accepted a callback's offer and dials its number
    REACHED = "reached"  # a callback's dial reached the customer: the conversation begins
    DIAL_FAILED = "dial_failed"  # a dial found no answer, a busy line or a wrong number
    UNREACHED = "unreached"  # a callback ended without reaching the customer (final)
    # A supervisor's actions (each with its Intervention):
    PRIORITY_CHANGED = "priority_changed"  # reason: "priority 1.0 -> 3.0"
    SKILLS_CHANGED = "skills_changed"  # reason: "skills es -> billing,es"
    ASSIGNED = "assigned"  # to agent_id, by name
    CANCELLED = "cancelled"  # not a customer (spam): final, neither answered nor abandoned


@dataclass(frozen=True, slots=True)
class Intervention:
    """Who acted on the live operation and why: a supervisor's action, recorded with the
    event it caused (the first event of the action; what follows from it, an offer made
    or withdrawn, is the router's own doing)."""

    supervisor: str
    """The supervisor's token name (router/api/access.py, caller_name)."""
    reason: str


@dataclass(frozen=True, slots=True)
class ContactEvent:
    """A contact changed; `contact` is the contact as this change left it."""

    kind: ContactEventKind
    contact: Contact
    at: datetime
    agent_id: str | None = None
    offer: Offer | None = None
    reason: str | None = None
    intervention: Intervention | None = None


class AgentEventKind(StrEnum):
    SIGNED_IN = "signed_in"
    SIGNED_OUT = "signed_out"
    STATUS_CHANGED = "status_changed"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"


@dataclass(frozen=True, slots=True)
class AgentEvent:
    """An agent's status or presence changed (the agent status log)."""

    kind: AgentEventKind
    agent_id: str
    status: AgentStatus
    reason: str
    connected: bool
    at: datetime
    skills: frozenset[str] = frozenset()
    team: str = ""
    """The team given at sign-in (SIGNED_IN only; "" for none)."""
    intervention: Intervention | None = None


def agent_event(
    agent: Agent, kind: AgentEventKind, now: datetime, intervention: Intervention | None = None
) -> AgentEvent:
    """The agent as it stands now, as an event of `kind`."""
    return AgentEvent(
        kind,
        agent.id,
        agent.status,
        agent.away_reason,
        agent.connected,
        now,
        agent.skills,
        agent.team,
        intervention,
    )


@dataclass(frozen=True, slots=True)
class OfferWithdrawn:
    """Tell an agent that an offer it holds is void (nothing to persist)."""

    offer: Offer
    reason: str


Event = ContactEvent | AgentEvent | OfferWithdrawn
