"""Read-only answers about the queue: place in line, estimated wait, why a contact
still waits, and the live snapshot. Nothing here changes the routing state."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from router.domain.agent import AgentStatus
from router.domain.callbacks import scheduled_callback
from router.domain.channel import Channel
from router.domain.closed_channels import closed_now, explain_closed
from router.domain.contact import Contact, agent_token
from router.domain.fallback import fallback_time, skill_names, unserved_reason
from router.domain.queue import Hold, answer_deadline
from router.domain.state import RoutingState, instant_at_or_after
from router.domain.wait_reason import UnservedContact, WaitExplanation, WaitReason

UNSERVED_LISTED = 100  # unserved contacts listed in the live queue, oldest first


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
    away_reasons: Mapping[str, int] = field(default_factory=dict)
    """The agents_away by the reason they gave ("" when none)."""
    closed: frozenset[Channel] = frozenset()
    """The channels outside their hours of operation now (closed_channels)."""


class Explanations:
    def __init__(self, state: RoutingState) -> None:
        self._state = state

    def position(self, contact_id: str, now: datetime) -> int:
        """1-based place in routing order among waiting contacts; 0 if not queued."""
        if contact_id not in self._state.queue:
            return 0
        return self._state.queue.position(contact_id, now)

    def line_position(self, contact_id: str, now: datetime) -> int:
        """1-based place in line for the customer: among the waiting contacts that the
        agents who could serve this one could also serve (its preferred agent alone
        while held for it); with no such agent signed in, among those of its channel
        needing the same skills. 0 if not queued."""
        return self._place(contact_id, now, same_channel=False)

    def wait_place(self, contact_id: str, now: datetime) -> int:
        """The place the estimated wait counts: as line_position, among contacts of the
        contact's own channel only. Those of other channels ahead now are not really
        ahead: urgency grows at a rate set by each channel's answer target, so a call
        overtakes in seconds the emails ahead of it, and calls arriving later overtake
        a waiting email; how much agents' time other channels take is in the seconds
        per place learned for the channel (see answer_rate). 0 if not queued."""
        return self._place(contact_id, now, same_channel=True)

    def _place(self, contact_id: str, now: datetime, *, same_channel: bool) -> int:
        queue, coverage = self._state.queue, self._state.coverage
        if contact_id not in queue:
            return 0
        channel = self._state.contacts[contact_id].channel
        skills = queue.skills_of(contact_id)
        hold = queue.hold_of(contact_id)
        if hold is not None:
            profile = coverage.profile_of(hold.agent_id)
            profiles = [] if profile is None else [profile]
        else:
            profiles = coverage.serving(channel, skills)
        if not profiles:
            return queue.position(
                contact_id, now, lambda c, k, h: c is channel and k == skills and h is None
            )

        def competes(other: Channel, needs: frozenset[str], held: Hold | None) -> bool:
            if same_channel and other is not channel:
                return False
            if held is not None:
                profile = coverage.profile_of(held.agent_id)
                return profile is not None and profile in profiles and profile.serves(other, needs)
            return any(p.serves(other, needs) for p in profiles)

        return queue.position(contact_id, now, competes)

    def waiting_for(self, contact_id: str) -> frozenset[str] | None:
        """The skills a queued contact waits for now (its required skills and the
        preferred ones not yet relaxed, or with the token of the agent it is held for);
        None if not queued."""
        queue = self._state.queue
        if contact_id not in queue:
            return None
        hold = queue.hold_of(contact_id)
        skills = queue.skills_of(contact_id)
        return skills if hold is None else skills | {agent_token(hold.agent_id)}

    def wait_reason(self, contact_id: str, now: datetime) -> WaitExplanation | None:
        """Why a queued contact is still waiting, and what happens next; None if it is
        not queued."""
        state = self._state
        if contact_id not in state.queue:
            return scheduled_callback(state.contacts.get(contact_id), now)
        contact = state.contacts[contact_id]
        closed = explain_closed(state.calendar, contact, now)
        if closed is not None:
            return closed
        channel = contact.channel
        hold = state.queue.hold_of(contact_id)
        until = state.waiting_for(contact, now).until
        if hold is not None and until is not None:
            return WaitExplanation(
                WaitReason.PREFERRED_AGENT,
                f"held for agent {hold.agent_id} until {iso(until)}; then any eligible agent",
            )
        unserved = unserved_reason(contact, state.coverage)
        if unserved is not None:
            return WaitExplanation(unserved, self._unserved_detail(contact, unserved))
        skills = state.queue.skills_of(contact_id)
        serving = state.coverage.serving(channel, skills)
        if not serving:
            wanted = ", ".join(sorted(skills - contact.required_skills))
            step = f"; the least wanted is dropped at {iso(until)}" if until else ""
            return WaitExplanation(
                WaitReason.PREFERRED_SKILLS,
                f"no signed-in agent has the preferred skills {wanted}{step}",
            )
        if state.roster.best_for(channel, skills, past_deadline=True) is not None:
            excluded = state.exclusions.of(contact_id, now)
            if state.roster.best_for(channel, skills, excluded, past_deadline=True) is None:
                return WaitExplanation(
                    WaitReason.DECLINED,
                    "the free agents who could serve it declined it or transferred it away "
                    f"in the last {state.policy.decline_exclusion:g} s",
                )
            deadline = instant_at_or_after(answer_deadline(contact, state.policy))
            return WaitExplanation(
                WaitReason.PHONE_RESERVE,
                "the free agents who could serve it are kept for calls until its answer "
                f"deadline, {iso(deadline)}",
            )
        if not state.coverage.any_routable(serving):
            return WaitExplanation(
                WaitReason.AGENTS_AWAY,
                "every signed-in agent who could serve it is away or has no offer stream",
            )
        capped = " or at their hourly cap" if state.policy.of(channel).max_per_hour else ""
        return WaitExplanation(
            WaitReason.AGENTS_BUSY, f"the agents who could serve it are busy{capped}"
        )

    def estimated_wait(self, contact_id: str, now: datetime) -> float | None:
        """Seconds until answer: its place among the contacts of its channel that the
        agents who could serve it will serve first x the seconds each place took the
        channel's recent queued contacts (see answer_rate); None if not queued or
        without data."""
        state = self._state
        if contact_id not in state.queue:
            return None
        channel = state.contacts[contact_id].channel
        return state.answer_rate.estimate(
            self.wait_place(contact_id, now), channel, now, state.queue.oldest(channel)
        )

    def snapshot(self, now: datetime) -> QueueSnapshot:
        state = self._state
        waiting = {c: state.queue.count(c) for c in Channel}
        offered = dict.fromkeys(Channel, 0)
        oldest: dict[Channel, float] = dict.fromkeys(Channel, 0.0)
        for offer in state.offers.values():
            contact = state.contacts[offer.contact_id]
            offered[contact.channel] += 1
            oldest[contact.channel] = max(oldest[contact.channel], contact.wait_seconds(now))
        for channel in Channel:
            first = state.queue.oldest(channel)
            if first is not None:
                oldest[channel] = max(oldest[channel], now.timestamp() - first)
        idle = busy = away = disconnected = 0
        away_reasons: dict[str, int] = {}
        for agent in state.agents.values():
            if agent.assigned:
                busy += 1
            elif not agent.connected:
                disconnected += 1
            elif agent.status is AgentStatus.AWAY:
                away += 1
                away_reasons[agent.away_reason] = away_reasons.get(agent.away_reason, 0) + 1
            else:
                idle += 1
        unserved, unserved_contacts = self.unserved(now)
        return QueueSnapshot(
            waiting,
            offered,
            oldest,
            idle,
            busy,
            away,
            disconnected,
            len(state.agents),
            unserved,
            tuple(unserved_contacts),
            away_reasons,
            closed_now(state.calendar, now),
        )

    def unserved(self, now: datetime) -> tuple[dict[Channel, int], list[UnservedContact]]:
        """How many waiting contacts per channel no signed-in agent could serve, and
        the oldest of them. A class at a time: its contacts share channel and required
        skills, so whether anyone could serve them; held contacts have their agent."""
        state = self._state
        counts = dict.fromkeys(Channel, 0)
        oldest: list[UnservedContact] = []
        for channel, _, entries in state.queue.open_classes():
            if not entries:
                continue
            reason = unserved_reason(state.contacts[entries[0][2]], state.coverage)
            if reason is None:
                continue
            counts[channel] += len(entries)
            for _, _, contact_id in entries[:UNSERVED_LISTED]:
                contact = state.contacts[contact_id]
                oldest.append(
                    UnservedContact(
                        contact_id,
                        channel,
                        contact.required_skills,
                        contact.wait_seconds(now),
                        reason,
                        fallback_time(contact, state.policy, state.quiet_until),
                    )
                )
        oldest.sort(key=lambda u: -u.wait_seconds)
        return counts, oldest[:UNSERVED_LISTED]

    def _unserved_detail(self, contact: Contact, reason: WaitReason) -> str:
        if reason is WaitReason.NO_AGENT_SIGNED_IN:
            text = "no agent is signed in"
        else:
            text = (
                f"no signed-in agent takes {contact.channel.value} with "
                f"{skill_names(contact.required_skills)}"
            )
        state = self._state
        at = fallback_time(contact, state.policy, state.quiet_until)
        if at is not None:
            rule = state.policy.of(contact.channel)
            text += f"; moves to {skill_names(rule.fallback_skills)} at {iso(at)}"
        return text + "; it waits, nothing is dropped"


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
