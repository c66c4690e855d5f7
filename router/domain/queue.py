"""The unified queue of waiting contacts, indexed for O(log n) routing decisions.

Urgency of a waiting contact at time t is (t - queued_at) / answer_target x boost.
Contacts that share a channel, required skills and boost (a *class*) keep their
relative order forever: the oldest is always the most urgent. So each class is a
sorted list by (queued_at, seq), and the most urgent contact an agent can serve is
the most urgent among the heads of the classes it is eligible for. The number of
classes depends on the configuration of the center (channels x distinct skill
requirements x boosts), not on how many contacts wait, so each decision costs
O(classes x log n).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from sortedcontainers import SortedList

from router.domain.channel import Channel, RoutingPolicy
from router.domain.contact import Contact

ClassKey = tuple[Channel, frozenset[str], float]
Entry = tuple[float, int, str]  # (queued_at as epoch seconds, seq, contact id)


@dataclass(slots=True)
class _Class:
    channel: Channel
    skills: frozenset[str]
    boost: float
    rate: float  # urgency gained per second waited: boost / answer_target
    entries: SortedList = field(default_factory=SortedList)

    def urgency(self, entry: Entry, now: float) -> float:
        return (now - entry[0]) * self.rate


class ContactQueue:
    """Waiting contacts in routing order; no clock reads, `now` is always given."""

    def __init__(self, policy: RoutingPolicy) -> None:
        self._policy = policy
        self._classes: dict[ClassKey, _Class] = {}
        self._entries: dict[str, tuple[ClassKey, Entry]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, contact_id: object) -> bool:
        return contact_id in self._entries

    def add(self, contact: Contact, seq: int) -> None:
        """Queue a contact at its original place: its order is fixed by queued_at."""
        if contact.id in self._entries:
            raise ValueError(f"contact {contact.id} is already queued")
        key = (contact.channel, contact.required_skills, contact.priority_boost)
        cls = self._classes.get(key)
        if cls is None:
            rate = contact.priority_boost / self._policy.of(contact.channel).answer_target
            cls = _Class(contact.channel, contact.required_skills, contact.priority_boost, rate)
            self._classes[key] = cls
        entry: Entry = (contact.queued_at.timestamp(), seq, contact.id)
        cls.entries.add(entry)
        self._entries[contact.id] = (key, entry)

    def remove(self, contact_id: str) -> None:
        key, entry = self._entries.pop(contact_id)
        cls = self._classes[key]
        cls.entries.remove(entry)
        if not cls.entries:
            del self._classes[key]

    def best_for(
        self,
        skills: frozenset[str],
        channels: Iterable[Channel],
        now: datetime,
        excluded: Callable[[str], bool] = lambda _: False,
    ) -> str | None:
        """The most urgent contact on `channels` whose required skills `skills` cover.

        Ties in urgency go to the oldest, then to the favoured channel. Contacts for
        which `excluded(contact_id)` is true are skipped (an agent's recent declines).
        """
        allowed = set(channels)
        t = now.timestamp()
        best: tuple[float, float, int, int] | None = None
        best_id: str | None = None
        for cls in self._classes.values():
            if cls.channel not in allowed or not cls.skills <= skills:
                continue
            for entry in cls.entries:
                if excluded(entry[2]):
                    continue
                rank = (-cls.urgency(entry, t), entry[0], cls.channel.rank, entry[1])
                if best is None or rank < best:
                    best, best_id = rank, entry[2]
                break
        return best_id

    def position(self, contact_id: str, now: datetime) -> int:
        """1-based place in the global routing order (how many are more urgent, + 1)."""
        key, entry = self._entries[contact_id]
        t = now.timestamp()
        mine = self._classes[key]
        urgency = mine.urgency(entry, t)
        ahead = 0
        for cls in self._classes.values():
            if cls is mine:
                ahead += cls.entries.index(entry)
                continue
            # Entries of cls more urgent than `urgency` were queued before this instant.
            cutoff = t - urgency / cls.rate
            ahead += cls.entries.bisect_left((cutoff,))
        return ahead + 1

    def oldest(self, channel: Channel) -> float | None:
        """queued_at (epoch seconds) of the oldest waiting contact of `channel`."""
        heads = [c.entries[0][0] for c in self._classes.values() if c.channel is channel]
        return min(heads) if heads else None

    def count(self, channel: Channel) -> int:
        return sum(len(c.entries) for c in self._classes.values() if c.channel is channel)

    def ids(self) -> Iterator[str]:
        return iter(self._entries)
