"""Why a contact is still waiting, for the customer's gateway and the supervisor."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from router.domain.channel import Channel


class WaitReason(StrEnum):
    AGENTS_BUSY = "agents_busy"  # the normal case: it is answered in turn
    AGENTS_AWAY = "agents_away"  # everyone who could serve it is away or not present
    PHONE_RESERVE = "phone_reserve"  # the free ones are kept for calls until its deadline
    PREFERRED_AGENT = "preferred_agent"  # held for its preferred agent for a while
    PREFERRED_SKILLS = "preferred_skills"  # waits for preferred skills, which relax
    DECLINED = "declined"  # the free ones declined it (or transferred it) just now
    NO_AGENT_WITH_SKILLS = "no_agent_with_skills"  # nobody signed in could serve it
    NO_AGENT_SIGNED_IN = "no_agent_signed_in"
    CLOSED = "closed"  # outside its channel's hours of operation (it is still routed)
    CALLBACK_SCHEDULED = "callback_scheduled"  # a callback before its window or its retry

    @property
    def unserved(self) -> bool:
        """No signed-in agent could ever serve the contact."""
        return self in (WaitReason.NO_AGENT_WITH_SKILLS, WaitReason.NO_AGENT_SIGNED_IN)


@dataclass(frozen=True, slots=True)
class WaitExplanation:
    reason: WaitReason
    detail: str  # the same in words, with what happens next


@dataclass(frozen=True, slots=True)
class UnservedContact:
    """A waiting contact no signed-in agent could serve (the live queue lists them)."""

    contact_id: str
    channel: Channel
    required_skills: frozenset[str]
    wait_seconds: float
    reason: WaitReason
    fallback_at: datetime | None  # when the channel's fallback rule moves it, if it has one
