"""The fallback rule for contacts nobody signed in could serve.

A waiting contact is *unserved* when no signed-in agent could ever serve it: nobody is
signed in, or no signed-in agent takes its channel with its required skills. It waits
(nothing is dropped); on a channel with a fallback rule (ChannelPolicy.fallback_after,
fallback_skills), once it has waited fallback_after seconds and is still unserved, it
moves to the fallback skills (a `rerouted` event). After a restart that found open
contacts, agents have the reconnect grace to sign back in: no contact moves before the
grace ends (`quiet_until`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from router.domain.channel import RoutingPolicy
from router.domain.contact import Contact
from router.domain.coverage import Coverage
from router.domain.wait_reason import WaitReason


def unserved_reason(contact: Contact, coverage: Coverage) -> WaitReason | None:
    """Why no signed-in agent could ever serve the contact; None if one could."""
    if not coverage.signed_in:
        return WaitReason.NO_AGENT_SIGNED_IN
    if not coverage.could_serve(contact.channel, contact.required_skills):
        return WaitReason.NO_AGENT_WITH_SKILLS
    return None


def fallback_time(
    contact: Contact, policy: RoutingPolicy, quiet_until: datetime
) -> datetime | None:
    """When the channel's fallback rule would move the contact (never before
    `quiet_until`); None without a rule, or when it already needs the fallback skills."""
    rule = policy.of(contact.channel)
    if rule.fallback_after is None or contact.required_skills == rule.fallback_skills:
        return None
    return max(contact.queued_at + timedelta(seconds=rule.fallback_after), quiet_until)


def fallback_reason(contact: Contact, policy: RoutingPolicy, now: datetime) -> str:
    """The `rerouted` event's reason, in words."""
    rule = policy.of(contact.channel)
    return (
        f"fallback from {skill_names(contact.required_skills)} to "
        f"{skill_names(rule.fallback_skills)} after {contact.wait_seconds(now):.0f} s: "
        "no signed-in agent could serve it"
    )


def skill_names(skills: frozenset[str]) -> str:
    """Skills in words: "skill x", "skills x, y", or "any skills"."""
    if not skills:
        return "any skills"
    return ("skill " if len(skills) == 1 else "skills ") + ", ".join(sorted(skills))
