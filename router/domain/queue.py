"""The unified queue of waiting contacts, indexed for O(log n) routing decisions.

Urgency of a waiting contact at time t is (t - queued_at) / answer_target x boost.
Contacts that share a channel, required skills and boost (a *class*) keep their
relative order forever: the oldest is always the most urgent. So each class is a
sorted list by (queued_at, seq), and the most urgent contact an agent can serve is
the most urgent among the heads of the classes it is eligible for. The number of
classes depends on the configuration of the center (channels x distinct skill
requirements x boosts), not on how many contacts wait, so each decision costs
O(classes x log n).

Each waiting contact also has an answer deadline: the instant its urgency reaches 1,
when it has used its whole answer target (queued_at + answer_target / boost). The
phone reserve holds a chat or email back only until that deadline (see Router).

A contact held for one agent (its preferred agent, see Router) is in a class of that
agent's: only that agent's own decisions look at it, so holds for many agents do not
slow the decisions of the others. A hold is `firm` when an agent chose the holder (a
transfer by name): the phone reserve does not apply to it. Other holds end by the
contact's answer deadline, so a held contact is never due (next_deadline, fell_due).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

from sortedcontainers import SortedList

from router.domain.channel import Channel, RoutingPolicy
from router.domain.contact import Contact

Entry = tuple[float, int, str]  # (queued_at as epoch seconds, seq, contact id)
Rank = tuple[float, float, int, int]


@dataclass(frozen=True, slots=True)
class Hold:
    """A contact is held for `agent_id`; `firm` when an agent transferred it by name."""

    agent_id: str
    firm: bool = False


# (channel, skills waited for, required skills among them, boost, hold)
ClassKey = tuple[Channel, frozenset[str], frozenset[str], float, Hold | None]
# What ContactQueue.add takes: (contact, seq, skills waited for, hold).
Queued = tuple[Contact, int, frozenset[str], Hold | None]
# Which classes count towards a position: given (channel, skills, hold).
Among = Callable[[Channel, frozenset[str], Hold | None], bool]


def answer_deadline(contact: Contact, policy: RoutingPolicy) -> float:
    """Epoch seconds at which the contact has used its whole answer target (urgency 1)."""
    return _deadline(
        contact.queued_at.timestamp(),
        policy.of(contact.channel).answer_target,
        contact.priority_boost,
    )


def _deadline(queued_at: float, target: float, boost: float) -> float:
    return queued_at + target / boost


@dataclass(slots=True)
class _Class:
    channel: Channel
    skills: frozenset[str]
    required: frozenset[str]
    boost: float
    hold: Hold | None
    target: float  # the channel's answer_target
    entries: SortedList = field(default_factory=SortedList)

    def urgency(self, entry: Entry, now: float) -> float:
        # waited x boost / target, in this order: a precomputed rate (boost / target)
        # adds a rounding that splits exact ties (7 s of 20 vs 21 s of 60).
        return (now - entry[0]) * self.boost / self.target

    def rank(self, entry: Entry, now: float) -> Rank:
        """Routing order: most urgent, then oldest, then favoured channel, then seq."""
        return (-self.urgency(entry, now), entry[0], self.channel.rank, entry[1])

    def deadline(self, entry: Entry) -> float:
        return _deadline(entry[0], self.target, self.boost)

    def first_due_after(self, after: float) -> int:
        """Index of the first entry whose answer deadline is later than `after`."""
        entries = self.entries
        i: int = entries.bisect_left((after - self.target / self.boost, math.inf, ""))
        # The bisect key rounds differently from deadline(): settle on deadline() itself.
        while i > 0 and self.deadline(entries[i - 1]) > after:
            i -= 1
        while i < len(entries) and self.deadline(entries[i]) <= after:
            i += 1
        return i


class ContactQueue:
    """Waiting contacts in routing order; no clock reads, `now` is always given."""

    def __init__(self, policy: RoutingPolicy) -> None:
        self._policy = policy
        self._classes: dict[ClassKey, _Class] = {}  # every class
        self._open: dict[ClassKey, _Class] = {}  # classes not held for an agent
        self._held: dict[str, dict[ClassKey, _Class]] = {}  # by the agent held for
        self._entries: dict[str, tuple[ClassKey, Entry]] = {}
        self._per_channel: Counter[Channel] = Counter()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, contact_id: object) -> bool:
        return contact_id in self._entries

    def add(
        self,
        contact: Contact,
        seq: int,
        skills: frozenset[str] | None = None,
        hold: Hold | None = None,
    ) -> None:
        """Queue a contact at its original place: its order is fixed by queued_at. It
        waits for agents with `skills` (default: its required skills), or only for the
        agent of `hold`."""
        if contact.id in self._entries:
            raise ValueError(f"contact {contact.id} is already queued")
        skills = contact.required_skills if skills is None else skills
        key = (contact.channel, skills, contact.required_skills, contact.priority_boost, hold)
        entry: Entry = (contact.queued_at.timestamp(), seq, contact.id)
        self._class(key).entries.add(entry)
        self._entries[contact.id] = (key, entry)
        self._per_channel[contact.channel] += 1

    def add_all(self, queued: Iterable[Queued]) -> dict[ClassKey, list[Entry]]:
        """add() each of `queued`, each class's sorted list extended in one step (a
        contact already queued is refused as by add(), after those before it): a
        restart queues every waiting contact at once. Returns the entries added, by
        class, in the order given."""
        indexed = self._entries
        # Each class's key (one tuple, which its contacts' index entries share: not one
        # per contact, 40 MB at 500,000) and the entries added to it.
        added: dict[ClassKey, tuple[ClassKey, list[Entry]]] = {}
        try:
            for contact, seq, skills, hold in queued:
                contact_id = contact.id
                boost = contact.priority_boost
                key = (contact.channel, skills, contact.required_skills, boost, hold)
                of_class = added.get(key)
                if of_class is None:
                    of_class = added[key] = (key, [])
                entry: Entry = (contact.queued_at.timestamp(), seq, contact_id)
                # Indexed and checked in one lookup: one already there stays as it was.
                indexing = (of_class[0], entry)
                if indexed.setdefault(contact_id, indexing) is not indexing:
                    raise ValueError(f"contact {contact_id} is already queued")
                of_class[1].append(entry)
        finally:
            for key, entries in added.values():
                cls = self._class(key)
                cls.entries.update(entries)
                self._per_channel[cls.channel] += len(entries)
        return dict(added.values())

    def _class(self, key: ClassKey) -> _Class:
        """The class of `key`, made if new."""
        cls = self._classes.get(key)
        if cls is None:
            channel, skills, required, boost, hold = key
            target = self._policy.of(channel).answer_target
            cls = _Class(channel, skills, required, boost, hold, target)
            self._classes[key] = cls
            if hold is None:
                self._open[key] = cls
            else:
                self._held.setdefault(hold.agent_id, {})[key] = cls
        return cls

    def skills_of(self, contact_id: str) -> frozenset[str]:
        """The skills a queued contact waits for now."""
        return self._entries[contact_id][0][1]

    def hold_of(self, contact_id: str) -> Hold | None:
        """The agent a queued contact is held for, if any."""
        return self._entries[contact_id][0][4]

    def held_for(self, agent_id: str) -> list[str]:
        """The contacts held for `agent_id`."""
        classes = self._held.get(agent_id, {}).values()
        return [entry[2] for cls in classes for entry in cls.entries]

    def remove(self, contact_id: str) -> int:
        """Take a queued contact out; its seq (what it was added with)."""
        key, entry = self._entries.pop(contact_id)
        cls = self._classes[key]
        cls.entries.remove(entry)
        self._per_channel[cls.channel] -= 1
        if not cls.entries:
            del self._classes[key]
            if cls.hold is None:
                del self._open[key]
            else:
                held = self._held[cls.hold.agent_id]
                del held[key]
                if not held:
                    del self._held[cls.hold.agent_id]
        return entry[1]

    def best_for(
        self,
        skills: frozenset[str],
        channels: Iterable[Channel],
        now: datetime,
        excluded: Callable[[str], bool] = lambda _: False,
        due_only: frozenset[Channel] = frozenset(),
        agent_id: str | None = None,
    ) -> str | None:
        """The most urgent contact on `channels` whose required skills `skills` cover,
        among the open ones and those held for `agent_id`.

        Ties in urgency go to the oldest, then to the favoured channel. Contacts for
        which `excluded(contact_id)` is true are skipped (an agent's recent declines).
        On `due_only` channels only contacts past their answer deadline qualify,
        except those held firmly for this agent.
        """
        allowed = set(channels)
        t = now.timestamp()
        best: Rank | None = None
        best_id: str | None = None
        classes: Iterable[_Class] = self._open.values()
        if agent_id is not None and agent_id in self._held:
            classes = [*classes, *self._held[agent_id].values()]
        for cls in classes:
            if cls.channel not in allowed or not cls.skills <= skills:
                continue
            firm = cls.hold is not None and cls.hold.firm
            for entry in cls.entries:
                if excluded(entry[2]):
                    continue
                if cls.channel in due_only and not firm and cls.deadline(entry) > t:
                    break  # the later entries of the class are younger still
                rank = cls.rank(entry, t)
                if best is None or rank < best:
                    best, best_id = rank, entry[2]
                break
        return best_id

    def position(self, contact_id: str, now: datetime, among: Among | None = None) -> int:
        """1-based place in the global routing order (how many are more urgent, + 1);
        with `among`, counting only the contacts ahead in classes it accepts (and in
        the contact's own class)."""
        key, entry = self._entries[contact_id]
        t = now.timestamp()
        mine = self._classes[key]
        rank = mine.rank(entry, t)
        ahead = 0
        for cls in self._classes.values():
            if (
                cls is not mine
                and among is not None
                and not among(cls.channel, cls.skills, cls.hold)
            ):
                continue
            if cls is mine:
                ahead += cls.entries.index(entry)
                continue
            # Ranks rise along a class's entries (an older entry is never less urgent), so
            # the entries that best_for serves before this one are a prefix: bisect on the
            # rank itself, which keeps ties exactly as best_for breaks them.
            ahead += bisect_left(cls.entries, rank, key=partial(cls.rank, now=t))
        return ahead + 1

    def next_deadline(self, after: float, channels: frozenset[Channel]) -> float | None:
        """The earliest answer deadline later than `after` among open contacts on
        `channels` (a held contact is never due while held, see above)."""
        deadlines = []
        for cls in self._open.values():
            if cls.channel in channels:
                i = cls.first_due_after(after)
                if i < len(cls.entries):
                    deadlines.append(cls.deadline(cls.entries[i]))
        return min(deadlines) if deadlines else None

    def fell_due(self, after: float, until: float, channels: frozenset[Channel]) -> list[str]:
        """Open contacts on `channels` whose answer deadline is in (after, until], by
        deadline."""
        due = []
        for cls in self._open.values():
            if cls.channel not in channels:
                continue
            for entry in cls.entries.islice(cls.first_due_after(after)):
                deadline = cls.deadline(entry)
                if deadline > until:
                    break
                due.append((deadline, entry[1], entry[2]))
        return [contact_id for _, _, contact_id in sorted(due)]

    def oldest(self, channel: Channel) -> float | None:
        """queued_at (epoch seconds) of the oldest waiting contact of `channel`."""
        heads = [c.entries[0][0] for c in self._classes.values() if c.channel is channel]
        return min(heads) if heads else None

    def count(self, channel: Channel) -> int:
        """Contacts of `channel` waiting: asked on every submission (the queue cap)."""
        return self._per_channel[channel]

    def open_classes(self) -> list[tuple[Channel, frozenset[str], Sequence[Entry]]]:
        """(channel, required skills, entries oldest first) of each class not held for
        an agent, to find the contacts nobody could serve. The entries are the queue's
        own: read them before changing the queue."""
        return [(cls.channel, cls.required, cls.entries) for cls in self._open.values()]
