"""Channels and the routing policy that says how each is served."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from router.domain.time_zones import is_time_zone


class Channel(StrEnum):
    """The medium a contact arrived on, in the order routing favours them."""

    PHONE = "phone"
    CHAT = "chat"
    EMAIL = "email"

    @property
    def rank(self) -> int:
        """Lower is favoured: breaks exact urgency ties in favour of phone."""
        return _RANK[self]


_RANK = {Channel.PHONE: 0, Channel.CHAT: 1, Channel.EMAIL: 2}

CHANNELS: tuple[Channel, ...] = tuple(Channel)
"""Every channel, in routing order: for loops the core runs on every change of an
agent (iterating the enum itself runs Python code for each member)."""


@dataclass(frozen=True, slots=True)
class ChannelPolicy:
    """How one channel is served.

    answer_target: seconds within which a contact should be answered; it is both the
        service-level threshold and the scale of urgency (waited / answer_target).
    default_capacity: contacts of this channel an agent holds at once when its
        sign-in does not say.
    max_capacity: the most an agent may declare.
    exclusive: a contact of this channel is the only work its agent holds.
    max_queue: the most contacts of this channel that may wait at once; a submission
        beyond it is refused (nothing grows without bound), give or take the
        submissions already in flight.
    prefer_previous_agent: a contact whose gateway names no preferred agent is held
        first for the agent who last completed a contact for the same customer.
    preferred_agent_wait: seconds a contact is held for its preferred agent (named or
        previous) before anyone eligible may take it; None means half the answer
        target. Never beyond the contact's answer deadline.
    max_per_hour: the most contacts of this channel an agent answers in any rolling
        hour (0: no cap), so that no one agent takes a whole backlog.
    fallback_after: seconds after which a waiting contact that no signed-in agent
        could serve moves to `fallback_skills` (None: never; the contact waits).
    fallback_skills: the required skills it moves to (empty: any agent of the channel).
    service_level_goal: the share of contacts to answer within answer_target (0.8 for
        "80% within 20 s"); reports and charts read the service level against it.
    service_level_alarm: a rolling service level below this is an alarm.
    callback_offer_after: GetContact offers a queued callback to a waiting contact of
        this channel whose estimated wait is over this many seconds (None: never).
    """

    answer_target: float
    default_capacity: int
    max_capacity: int
    exclusive: bool = False
    max_queue: int = 100_000
    prefer_previous_agent: bool = True
    preferred_agent_wait: float | None = None
    max_per_hour: int = 0
    fallback_after: float | None = None
    fallback_skills: frozenset[str] = frozenset()
    service_level_goal: float = 0.8
    service_level_alarm: float = 0.7
    callback_offer_after: float | None = None

    def __post_init__(self) -> None:
        if self.answer_target <= 0:
            raise ValueError("answer_target must be positive")
        if not 0 <= self.default_capacity <= self.max_capacity:
            raise ValueError("default_capacity must be between 0 and max_capacity")
        if self.exclusive and self.max_capacity > 1:
            raise ValueError("an exclusive channel has a capacity of at most 1")
        if self.max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        if self.preferred_agent_wait is not None and self.preferred_agent_wait < 0:
            raise ValueError("preferred_agent_wait must be >= 0")
        if self.max_per_hour < 0:
            raise ValueError("max_per_hour must be >= 0")
        if self.fallback_after is not None and self.fallback_after < 0:
            raise ValueError("fallback_after must be >= 0")
        if not 0 < self.service_level_goal <= 1:
            raise ValueError("service_level_goal must be in (0, 1]")
        if not 0 <= self.service_level_alarm <= self.service_level_goal:
            raise ValueError("service_level_alarm must be between 0 and service_level_goal")
        if self.callback_offer_after is not None and self.callback_offer_after < 0:
            raise ValueError("callback_offer_after must be >= 0")

    @property
    def hold_for_preferred(self) -> float:
        """Seconds a contact waits for its preferred agent."""
        wait = self.preferred_agent_wait
        return self.answer_target / 2 if wait is None else wait


def _default_channels() -> Mapping[Channel, ChannelPolicy]:
    return MappingProxyType(
        {
            Channel.PHONE: ChannelPolicy(20.0, 1, 1, exclusive=True),
            Channel.CHAT: ChannelPolicy(60.0, 3, 20),
            Channel.EMAIL: ChannelPolicy(3600.0, 1, 20),
        }
    )


@dataclass(frozen=True, slots=True)
class RoutingPolicy:
    """Every tunable of the routing core.

    phone_reserve: the last K idle phone-capable agents are never given chat or email,
        so that a call that rings is answered at once.
    offer_timeout: seconds an agent has to accept an offer before it returns to the
        queue and the agent is set away ("missed").
    decline_exclusion: seconds during which a contact is not offered again to an agent
        who declined it; afterwards that agent may get it again, so nothing waits
        forever when that agent is the only one who can serve it.
    short_abandon: customers who leave within this many seconds are excluded from
        service level.
    reconnect_grace: after a restart or a takeover, seconds an agent has to sign in
        again and take back the contacts it had answered; then a conversation it left
        goes back to the queue at its original place, and a wrap-up is completed.
    skill_relax: seconds a contact waits for an agent with all its preferred skills
        before the least wanted is dropped, and so on, one per period (the bullseye:
        the pool of agents widens step by step); 0 routes on required skills only.
    remembered_customers: how many customers' previous agents are kept (the most
        recent), for ChannelPolicy.prefer_previous_agent.
    max_contact_bytes: the most bytes one waiting contact may hold in its variable
        fields (attributes, skills, ids, as UTF-8); a larger submission is refused.
    max_queue_bytes: the most bytes all waiting contacts may hold together; a
        submission beyond it is refused until the queue drains.
    time_zone: the center's IANA time zone: reports' days, weeks, months and years
        begin at local midnight there, and their clock intervals follow its clock.
    teams: agent id -> team, for agents whose sign-in gives none (ROUTER_TEAMS_FILE).
    callback_retry_delay: seconds after a dial that found no answer or a busy line
        before the callback may be offered again.
    callback_attempts: dials a callback gets; after the last failed one it ends
        UNREACHED.
    callback_target: seconds from a callback's start (queued_at, or not_before) within
        which its first dial meets the callbacks' service level (reports only).
    """

    channels: Mapping[Channel, ChannelPolicy] = field(default_factory=_default_channels)
    phone_reserve: int = 1
    offer_timeout: float = 15.0
    decline_exclusion: float = 30.0
    short_abandon: float = 5.0
    reconnect_grace: float = 120.0
    skill_relax: float = 30.0
    remembered_customers: int = 100_000
    max_contact_bytes: int = 16 * 1024
    max_queue_bytes: int = 256 * 1024 * 1024
    time_zone: str = "UTC"
    teams: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    callback_retry_delay: float = 300.0
    callback_attempts: int = 3
    callback_target: float = 900.0

    def __post_init__(self) -> None:
        missing = set(Channel) - set(self.channels)
        if missing:
            raise ValueError(f"no policy for channels {sorted(missing)}")
        if self.phone_reserve < 0:
            raise ValueError("phone_reserve must be >= 0")
        if self.offer_timeout <= 0:
            raise ValueError("offer_timeout must be positive")
        if self.decline_exclusion < 0 or self.short_abandon < 0 or self.reconnect_grace < 0:
            raise ValueError("decline_exclusion, short_abandon, reconnect_grace must be >= 0")
        if self.skill_relax < 0:
            raise ValueError("skill_relax must be >= 0")
        if self.remembered_customers < 0:
            raise ValueError("remembered_customers must be >= 0")
        if self.max_contact_bytes < 1 or self.max_queue_bytes < self.max_contact_bytes:
            raise ValueError("max_contact_bytes must be >= 1 and max_queue_bytes >= it")
        if self.callback_target <= 0:
            raise ValueError("callback_target must be positive")
        if self.callback_retry_delay < 0 or self.callback_attempts < 1:
            raise ValueError("callback_retry_delay must be >= 0 and callback_attempts >= 1")
        if not is_time_zone(self.time_zone):
            raise ValueError(f"time_zone {self.time_zone!r} is not an IANA time zone")

    def of(self, channel: Channel) -> ChannelPolicy:
        return self.channels[channel]
