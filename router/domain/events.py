"""What the core reports after each change: records to persist and messages to push."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from router.domain.agent import AgentStatus
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


@dataclass(frozen=True, slots=True)
class ContactEvent:
    """A contact changed; `contact` is the contact as this change left it."""

    kind: ContactEventKind
    contact: Contact
    at: datetime
    agent_id: str | None = None
    offer: Offer | None = None
    reason: str | None = None


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


@dataclass(frozen=True, slots=True)
class OfferWithdrawn:
    """Tell an agent that an offer it holds is void (nothing to persist)."""

    offer: Offer
    reason: str


Event = ContactEvent | AgentEvent | OfferWithdrawn
