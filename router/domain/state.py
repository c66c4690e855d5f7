"""The routing state of one center, and the invariants that tie its parts together.

The router (the transitions), placement (who gets what) and explanation (read-only
answers) all work on one RoutingState. What must change together changes here, in one
place: a contact entering or leaving the queue sets or cancels the timers that concern
it and counts its bytes; an agent whose state changed is indexed again in the roster
(who is free) and in the coverage (who could ever serve what).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from itertools import repeat
from operator import add, itemgetter

from router.domain.agent import Agent
from router.domain.answer_rate import AnswerRate
from router.domain.channel import Channel, RoutingPolicy
from router.domain.contact import Contact
from router.domain.coverage import Coverage
from router.domain.exclusions import Exclusions
from router.domain.fallback import fallback_time
from router.domain.hourly_cap import HourlyCaps
from router.domain.offer import Offer
from router.domain.opening_hours import ALWAYS_OPEN, Calendar
from router.domain.previous_agents import PreviousAgents
from router.domain.queue import ContactQueue, Queued, answer_deadline
from router.domain.roster import Roster
from router.domain.timers import Timer, Timers
from router.domain.waiting import WaitingFor, waiting_for

OTHER_WORK = frozenset({Channel.CHAT, Channel.EMAIL})
"""What the phone reserve keeps its agents from (until the contact's answer deadline)."""

RESERVE = "reserve"
"""The key of the one Timer.ANSWER_DUE: the next answer deadline of an open chat or
email, when the phone reserve must yield to it. One timer, re-armed from the queue's
classes, rather than one per contact: a queue of 500,000 emails costs no heap."""


class RoutingState:
    """Everything the core knows about one center, in memory."""

    def __init__(self, policy: RoutingPolicy) -> None:
        self.policy = policy
        self.timers = Timers()
        self.contacts: dict[str, Contact] = {}  # active: not yet completed or abandoned
        self.keys: dict[str, str] = {}  # idempotency key -> id, for active contacts
        self.agents: dict[str, Agent] = {}  # signed in
        self.offers: dict[str, Offer] = {}  # open
        self.queue = ContactQueue(policy)
        self.roster = Roster(policy)
        self.coverage = Coverage()
        self.exclusions = Exclusions(self.timers, policy.decline_exclusion)
        self.caps = HourlyCaps(policy, self.timers)
        self.answer_rate = AnswerRate()
        self.previous = PreviousAgents(policy.remembered_customers)
        # Contacts waiting for their preferred agent, who was not signed in when they
        # were queued: a hold starts if that agent signs in within the wait.
        self.preferred_absent: dict[str, set[str]] = {}
        # After a restart: answered contacts whose agent has not signed in again yet.
        self.unclaimed: dict[str, set[str]] = {}
        # Contacts whose preferred agent passed on them (declined, or let the offer ring
        # out): no longer held for that agent, whatever the decline exclusion.
        self.passed_by_preferred: set[str] = set()
        # Transferred contacts: when the transfer set their new preferences (they relax
        # from then, not from queued_at).
        self.transferred_at: dict[str, datetime] = {}
        # No fallback before this: after a restart, agents have the grace to come back.
        self.quiet_until = datetime.min.replace(tzinfo=UTC)
        # Answer deadlines up to this instant (epoch seconds) have been acted on.
        self.due_seen = -math.inf
        # Hours of operation (opening_hours, closed_channels); replaced whole on a reload.
        self.calendar: Calendar = ALWAYS_OPEN
        self.queued_bytes = 0
        self._sizes: dict[str, int] = {}
        self._seq = 0
        # The seq of each contact that was queued and is not now: queued again, it
        # keeps its place among contacts queued at the same instant. A queued contact's
        # is in its queue entry (a restart of 500,000 contacts fills no dict of them).
        self._contact_seq: dict[str, int] = {}

    # ---------------------------------------------------------------- sequence

    def next_seq(self) -> int:
        """A counter shared by agents (ties among equally idle agents) and contacts
        (ties among contacts queued at the same instant)."""
        self._seq += 1
        return self._seq

    # ---------------------------------------------------------------- contacts

    def activate(self, contact: Contact) -> None:
        """Remember an active contact (submitted, restored, or changed)."""
        self.contacts[contact.id] = contact
        self.keys[contact.idempotency_key] = contact.id
        if contact.id not in self._sizes:
            self._sizes[contact.id] = contact.size()

    def retire(self, contact: Contact) -> None:
        """A final contact leaves memory; PostgreSQL keeps it."""
        self.contacts.pop(contact.id, None)
        self.keys.pop(contact.idempotency_key, None)
        self._contact_seq.pop(contact.id, None)
        self._sizes.pop(contact.id, None)
        self.exclusions.clear(contact.id)
        self.answer_rate.forget(contact.id)
        self.transferred_at.pop(contact.id, None)
        self.passed_by_preferred.discard(contact.id)
        if contact.preferred_agent_id in self.preferred_absent:
            self.preferred_absent[contact.preferred_agent_id].discard(contact.id)

    def relax_from(self, contact: Contact) -> datetime:
        """Preferences relax from submission, or from the transfer that set them."""
        return self.transferred_at.get(contact.id, contact.queued_at)

    def passed_on(self, contact: Contact, agent_id: str) -> None:
        """`agent_id` declined the contact or let its offer ring out: if it was the
        contact's preferred agent, the contact is held for it no more."""
        if agent_id == contact.preferred_agent_id:
            self.passed_by_preferred.add(contact.id)

    def waiting_for(self, contact: Contact, now: datetime) -> WaitingFor:
        preferred = contact.preferred_agent_id
        if preferred is None and not contact.preferred_skills:
            # Nothing to hold it for or to relax: what waiting_for answers, without the
            # cost of its arguments (a restart asks for each of 500,000 contacts).
            return WaitingFor(contact.required_skills, None, None)
        return waiting_for(
            contact,
            self.policy,
            now,
            relax_from=self.relax_from(contact),
            preferred=None if preferred is None else self.agents.get(preferred),
            preferred_excluded=(
                preferred is not None
                and (
                    contact.id in self.passed_by_preferred
                    or self.exclusions.excludes(contact.id, preferred, now)
                )
            ),
        )

    # ------------------------------------------------------------------- queue

    def enqueue(self, contact: Contact, now: datetime, later: list[Queued] | None = None) -> None:
        """Put a contact in the queue at its original place (its order is fixed by
        queued_at), waiting for what it waits for now, with the timers for when that
        changes.

        With `later`, its queue entry is appended there instead, for the caller to add
        with every other at once (`queue.add_all`), before anything reads the queue: a
        restart queues each open contact, and a sorted list is built faster whole."""
        fresh = self.next_seq()
        seq = self._contact_seq.pop(contact.id, fresh)
        self.activate(contact)
        wait = self.waiting_for(contact, now)
        if later is None:
            self.queue.add(contact, seq, wait.skills, wait.hold)
        else:
            later.append((contact, seq, wait.skills, wait.hold))
        self.queued_bytes += self._sizes[contact.id]
        preferred = contact.preferred_agent_id
        if wait.hold is None and preferred is not None and preferred not in self.agents:
            self.preferred_absent.setdefault(preferred, set()).add(contact.id)
        if wait.until is not None:
            self.timers.set(Timer.WAIT_CHANGES, contact.id, wait.until)
        fallback_at = fallback_time(contact, self.policy, self.quiet_until)
        if fallback_at is not None:
            self.timers.set(Timer.FALLBACK, contact.id, fallback_at)
        if wait.hold is None and self._reserve_watches(contact):
            deadline = answer_deadline(contact, self.policy)
            armed = self.timers.at(Timer.ANSWER_DUE, RESERVE)
            if deadline > self.due_seen and (armed is None or deadline < armed.timestamp()):
                self.timers.set(Timer.ANSWER_DUE, RESERVE, instant_at_or_after(deadline))

    def enqueue_all(self, contacts: Iterable[Contact], now: datetime) -> None:
        """enqueue() each of `contacts` in turn, in one pass: a restart queues every
        waiting contact (500,000 at a large center, where enqueue's calls per contact
        were most of the restore's time).

        A contact that prefers nothing (no preferred agent or skills: most of them)
        takes the short way, the same steps without the calls: it waits for its
        required skills for ever, so it has no hold and no WAIT_CHANGES timer. The
        reserve's timer is set once, to the earliest deadline, which is where enqueue()
        of each leaves it. The queue is built in one step (queue.add_all)."""
        policy = self.policy
        fallbacks = {
            channel: (timedelta(seconds=rule.fallback_after), rule.fallback_skills)
            for channel, rule in policy.channels.items()
            if rule.fallback_after is not None
        }
        reserve = OTHER_WORK if policy.phone_reserve else frozenset()
        targets = {channel: rule.answer_target for channel, rule in policy.channels.items()}
        set_timer = self.timers.set
        known, keys, sizes, seqs = self.contacts, self.keys, self._sizes, self._contact_seq
        queued: list[Queued] = []
        earliest = math.inf
        # Counters kept in locals (a restart counts 500,000 contacts), stored back
        # around enqueue() and at the end.
        seq, queued_bytes = self._seq, self.queued_bytes
        for contact in contacts:
            if contact.preferred_agent_id is not None or contact.preferred_skills:
                self._seq, self.queued_bytes = seq, queued_bytes
                self.enqueue(contact, now, later=queued)
                seq, queued_bytes = self._seq, self.queued_bytes
                continue
            contact_id = contact.id
            seq += 1  # as next_seq() in enqueue(), used or not
            contact_seq = seqs.pop(contact_id, seq) if seqs else seq
            known[contact_id] = contact
            keys[contact.idempotency_key] = contact_id
            # Measured once, at its first activation (as activate()).
            size = sizes.get(contact_id)
            if size is None:
                size = sizes[contact_id] = contact.size()
            queued.append((contact, contact_seq, contact.required_skills, None))
            queued_bytes += size
            channel = contact.channel
            fallback = fallbacks.get(channel)
            if fallback is not None and contact.required_skills != fallback[1]:
                at = max(contact.queued_at + fallback[0], self.quiet_until)
                set_timer(Timer.FALLBACK, contact_id, at)
        self._seq, self.queued_bytes = seq, queued_bytes
        added = self.queue.add_all(queued)
        # The earliest answer deadline after due_seen among the contacts added (held
        # ones excepted), each class's at once: queued_at + target / boost of each entry
        # (answer_deadline), where entries hold the epoch seconds of queued_at already.
        for (channel, _, _, boost, hold), entries in added.items():
            if hold is None and channel in reserve:
                deadlines = map(add, map(itemgetter(0), entries), repeat(targets[channel] / boost))
                later = filter(self.due_seen.__lt__, deadlines)
                earliest = min(earliest, min(later, default=earliest))
        if earliest < math.inf:
            armed = self.timers.at(Timer.ANSWER_DUE, RESERVE)
            if armed is None or earliest < armed.timestamp():
                set_timer(Timer.ANSWER_DUE, RESERVE, instant_at_or_after(earliest))

    def dequeue(self, contact_id: str) -> None:
        """Take a contact out of the queue (offered, abandoned, or about to be queued
        again), with its timers."""
        contact = self.contacts[contact_id]
        held = self.queue.hold_of(contact_id) is not None
        self._contact_seq[contact_id] = self.queue.remove(contact_id)
        self.queued_bytes -= self._sizes[contact_id]
        self.timers.cancel(Timer.WAIT_CHANGES, contact_id)
        self.timers.cancel(Timer.FALLBACK, contact_id)
        if not held and self._reserve_watches(contact):
            deadline = instant_at_or_after(answer_deadline(contact, self.policy))
            if self.timers.at(Timer.ANSWER_DUE, RESERVE) == deadline:
                self.arm_answer_due()

    def arm_answer_due(self) -> None:
        """Set the reserve's timer to the next answer deadline after `due_seen`."""
        due = self.queue.next_deadline(self.due_seen, OTHER_WORK)
        if due is None:
            self.timers.cancel(Timer.ANSWER_DUE, RESERVE)
        else:
            self.timers.set(Timer.ANSWER_DUE, RESERVE, instant_at_or_after(due))

    def _reserve_watches(self, contact: Contact) -> bool:
        return bool(self.policy.phone_reserve) and contact.channel in OTHER_WORK

    # ------------------------------------------------------------------ agents

    def index(self, agent: Agent) -> None:
        """Re-index a signed-in agent after any change to its state."""
        self.roster.place(agent)
        self.coverage.update(agent)


def instant_at_or_after(epoch: float) -> datetime:
    """The first datetime (microsecond resolution) whose timestamp is not before `epoch`,
    so that a timer set for it finds the deadline passed."""
    instant = datetime.fromtimestamp(epoch, UTC)
    while instant.timestamp() < epoch:
        instant += timedelta(microseconds=1)
    return instant
