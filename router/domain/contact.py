"""A customer contact and its lifecycle."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, make_dataclass
from datetime import datetime
from enum import StrEnum
from operator import attrgetter
from types import MappingProxyType
from typing import Any, cast

from router.domain.channel import Channel


class PreferenceSource(StrEnum):
    """Where a contact's preferred agent came from."""

    GATEWAY = "gateway"  # named at submission
    PREVIOUS_AGENT = "previous_agent"  # who last completed a contact for the customer
    TRANSFER = "transfer"  # named by the agent who transferred it
    SUPERVISOR = "supervisor"  # a supervisor assigned it to this agent


class ContactState(StrEnum):
    QUEUED = "queued"
    OFFERED = "offered"
    CONNECTED = "connected"
    WRAP_UP = "wrap_up"
    COMPLETED = "completed"
    ABANDONED = "abandoned"
    UNREACHED = "unreached"  # a callback that ended without reaching the customer
    CANCELLED = "cancelled"  # a supervisor removed it: not a customer (spam)

    @property
    def is_waiting(self) -> bool:
        """Not yet answered and not abandoned: the customer is still waiting."""
        return self in (ContactState.QUEUED, ContactState.OFFERED)

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATES


FINAL_STATES = frozenset(
    {
        ContactState.COMPLETED,
        ContactState.ABANDONED,
        ContactState.UNREACHED,
        ContactState.CANCELLED,
    }
)
"""The states a contact never leaves (it is then in PostgreSQL only)."""


class DialOutcome(StrEnum):
    """What an agent's dial of a callback's number gave (see callbacks.py)."""

    CONNECTED = "connected"  # the customer answered: the conversation goes on
    NO_ANSWER = "no_answer"  # tried again after the retry delay, within the attempts
    BUSY = "busy"  # the same
    WRONG_NUMBER = "wrong_number"  # ends the callback at once: UNREACHED


@dataclass(frozen=True, slots=True)
class Callback:
    """What makes a contact a queued callback: an agent calls the customer back.

    requested_from is the channel the customer first came on (phone when a caller
    pressed 1; chat or email when such a customer asked for a call). The window
    (not_before, not_after) bounds when it may be offered; retry_at, after a dial
    that found no answer or a busy line, when it may be offered again. placed_at is
    the first dial (the first accepted offer), reached_at the dial that reached the
    customer, unreached_at when it ended without (UNREACHED).
    """

    number: str
    requested_from: Channel
    requested_at: datetime
    not_before: datetime | None = None
    not_after: datetime | None = None
    attempts: int = 0
    placed_at: datetime | None = None
    reached_at: datetime | None = None
    retry_at: datetime | None = None
    unreached_at: datetime | None = None
    last_outcome: DialOutcome | None = None

    @property
    def due_at(self) -> datetime | None:
        """Not offered before this instant (the window's start, a pending retry)."""
        instants = [at for at in (self.not_before, self.retry_at) if at is not None]
        return max(instants) if instants else None


@dataclass(frozen=True, slots=True)
class Contact:
    """One customer interaction on one channel, as a value.

    The core replaces a contact with an updated copy at each transition, so an event
    can carry the contact exactly as that transition left it.
    """

    id: str
    idempotency_key: str
    channel: Channel
    customer_id: str
    queued_at: datetime
    attributes: Mapping[str, str] = field(default_factory=dict)
    required_skills: frozenset[str] = frozenset()
    priority_boost: float = 1.0
    # Skills wanted but not required, most wanted first: the contact waits for an agent
    # with all of them, then (see RoutingPolicy.skill_relax) for one with fewer, the
    # least wanted dropped first, until only the required skills are left.
    preferred_skills: tuple[str, ...] = ()
    # The agent it is held for first (see Router: the preferred agent), and why.
    preferred_agent_id: str | None = None
    preferred_agent_source: PreferenceSource | None = None
    state: ContactState = ContactState.QUEUED
    offered_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    completed_at: datetime | None = None
    abandoned_at: datetime | None = None
    agent_id: str | None = None
    offer_id: str | None = None
    disposition: str | None = None
    offer_count: int = 0
    # Set when the contact is a queued callback (see callbacks.py); always a phone one.
    callback: Callback | None = None
    # Seconds of its wait (queued_at to its first answer, or to abandoned_at) during
    # which its hours of operation said closed; set when the wait ends
    # (closed_channels.closed_seconds). Service level counts the wait without them.
    closed_wait: float = 0.0
    # When a supervisor cancelled it (CANCELLED); None for every open contact.
    cancelled_at: datetime | None = None

    def wait_seconds(self, now: datetime) -> float:
        """answered_at (or abandoned_at, cancelled_at, or now) minus queued_at."""
        until = self.answered_at or self.abandoned_at or self.cancelled_at or now
        return max(0.0, (until - self.queued_at).total_seconds())

    def open_wait_seconds(self, now: datetime) -> float:
        """wait_seconds without its closed seconds: what service level counts."""
        return max(0.0, self.wait_seconds(now) - self.closed_wait)

    def size(self) -> int:
        """Bytes of its variable fields (ids, attributes, skills) in UTF-8: what holding it
        costs beyond a fixed overhead (RoutingPolicy.max_contact_bytes bounds it)."""
        text = self.id + self.idempotency_key + self.customer_id + "".join(self.required_skills)
        if self.preferred_agent_id is not None:
            text += self.preferred_agent_id
        if self.attributes:
            text += "".join(self.attributes.keys()) + "".join(self.attributes.values())
        if self.preferred_skills:
            text += "".join(self.preferred_skills)
        # One string measured once (a restart measures every open contact): in ASCII a
        # character is a byte, and UTF-8 of a concatenation is the concatenation of UTF-8.
        return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


# Contact's slots in the same order, without its frozen __setattr__: built by plain
# attribute stores, where a frozen dataclass's __init__ calls object.__setattr__ once per
# field (21 calls: most of the time of building the 500,000 contacts a restart reads).
# Each is given Contact's class at once (same slots, same layout) and is from then on a
# Contact like any other, frozen.
# Its fields keep Contact's defaults, so a caller that gives the leading fields only (a
# field added to Contact later, say) still builds a whole contact.
_Unfrozen = make_dataclass(
    "_Unfrozen",
    [
        (f.name, f.type, field(default=f.default, default_factory=f.default_factory))
        for f in fields(Contact)
    ],
    slots=True,
    eq=False,
    repr=False,
)

NO_ATTRIBUTES: Mapping[str, str] = MappingProxyType({})
"""Empty attributes, one shared read-only mapping for every contact that has none."""


def contact_of(*values: Any) -> Contact:
    """Contact(*values), every field given in order, at a fourth of the cost: for
    building many at once (a restart reads 500,000)."""
    contact = _Unfrozen(*values)
    contact.__class__ = Contact
    return cast(Contact, contact)


_VALUES = attrgetter(*(f.name for f in fields(Contact)))


def changed(contact: Contact, **changes: Any) -> Contact:
    """dataclasses.replace(contact, **changes) at a fourth of the cost: the core copies
    a contact at each step of its life (offered, answered, ended, completed). A name
    that is not a field raises AttributeError."""
    copy = _Unfrozen(*_VALUES(contact))
    for name, value in changes.items():
        setattr(copy, name, value)
    copy.__class__ = Contact
    return cast(Contact, copy)


def skill_token(skill: str, level: int) -> str:
    """The skill as routing matches it: `skill` for any proficiency, `skill@level` for a
    proficiency of at least `level` (2 to 5). '@' is never part of a skill's name."""
    return skill if level <= 1 else f"{skill}@{level}"


def proficiency_tokens(skill: str, level: int) -> frozenset[str]:
    """What an agent with `skill` at `level` offers: the skill at every level up to it,
    so that a contact asking for level 3 matches agents at 3, 4 and 5."""
    return frozenset(skill_token(skill, n) for n in range(1, max(1, level) + 1))


AGENT_TOKEN = "@agent:"


def agent_token(agent_id: str) -> str:
    """The skill that only `agent_id` holds, for a transfer to that agent by name."""
    return AGENT_TOKEN + agent_id
