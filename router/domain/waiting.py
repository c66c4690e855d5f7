"""What a queued contact waits for now, and until when.

Two rules narrow the agents a waiting contact may go to, each for a while:

- its preferred agent (named by the gateway, the customer's previous agent, or the
  agent a transfer named): the contact is *held* for that agent (a queue.Hold) for
  ChannelPolicy.hold_for_preferred seconds, never past its answer deadline, or for
  skill_relax seconds after a transfer by name or a supervisor's assignment; while
  the agent is signed in (on a break too) and could serve it, and until it declines
  the contact or lets its offer ring out;
- its preferred skills (most wanted first): it waits for an agent with all of them,
  then every skill_relax seconds the least wanted is dropped, until only its required
  skills are left (the bullseye widening).

Pure functions: the router passes the agent and the instants in, and sets a timer
(Timer.WAIT_CHANGES) for `until`, when what the contact waits for changes next.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from router.domain.agent import Agent
from router.domain.channel import RoutingPolicy
from router.domain.contact import Contact, PreferenceSource
from router.domain.queue import Hold, answer_deadline

CHOSEN = frozenset({PreferenceSource.TRANSFER, PreferenceSource.SUPERVISOR})
"""Preferred agents a person chose (a transferring agent, a supervisor): the hold is
firm (the phone reserve does not apply) and lasts skill_relax from the choice."""


@dataclass(frozen=True, slots=True)
class WaitingFor:
    """The skills a queued contact waits for, the agent it is held for (if any), and
    when either changes next (None: never, by time)."""

    skills: frozenset[str]
    hold: Hold | None
    until: datetime | None


def waiting_for(
    contact: Contact,
    policy: RoutingPolicy,
    now: datetime,
    *,
    relax_from: datetime,
    preferred: Agent | None,
    preferred_excluded: bool,
) -> WaitingFor:
    """What `contact` waits for at `now`: its preferred agent (`preferred`, when signed
    in; `preferred_excluded` when that agent declined it lately) while the hold lasts
    and that agent could serve it, else its required skills and the preferred ones not
    yet relaxed. `relax_from` is when its preferences started relaxing (its queued_at,
    or its latest transfer)."""
    if contact.preferred_agent_id is not None:
        until = hold_until(contact, policy, relax_from)
        if (
            now < until
            and preferred is not None
            and preferred.could_serve(contact.channel, contact.required_skills)
            and not preferred_excluded
        ):
            firm = contact.preferred_agent_source in CHOSEN
            return WaitingFor(contact.required_skills, Hold(preferred.id, firm), until)
    kept = preferences_kept(contact, policy, now, relax_from)
    skills = contact.required_skills.union(contact.preferred_skills[:kept])
    if not kept:
        return WaitingFor(skills, None, None)
    dropped = len(contact.preferred_skills) - kept
    step = timedelta(seconds=policy.skill_relax * (dropped + 1))
    return WaitingFor(skills, None, relax_from + step)


def hold_until(contact: Contact, policy: RoutingPolicy, relax_from: datetime) -> datetime:
    """When the hold for a preferred agent ends: skill_relax after a transfer by name;
    otherwise the channel's preferred-agent wait, but never past the answer deadline
    (so the phone reserve never holds back a due contact by a hold)."""
    if contact.preferred_agent_source in CHOSEN:
        return relax_from + timedelta(seconds=policy.skill_relax)
    wait = policy.of(contact.channel).hold_for_preferred
    deadline = answer_deadline(contact, policy) - contact.queued_at.timestamp()
    return contact.queued_at + timedelta(seconds=min(wait, deadline))


def preferences_kept(
    contact: Contact, policy: RoutingPolicy, now: datetime, relax_from: datetime
) -> int:
    """How many of the contact's preferred skills still hold: one is dropped, least
    wanted first, per skill_relax seconds waited."""
    wanted = len(contact.preferred_skills)
    if not wanted or policy.skill_relax <= 0:
        return 0
    waited = (now - relax_from).total_seconds()
    return max(0, wanted - int(waited // policy.skill_relax))
