"""A standby's restore, done ahead of the takeover: the core kept warm.

A hot standby follows every change the active router commits (router/store/follow.py).
Rebuilding the core from its copy at takeover cost seconds at 100,000 waiting contacts
(the sorted queues, indexes and timers of each), while nobody was routed. So the
standby keeps the core itself current: each contact it reads is applied at once (its
old version taken out of the queue, the new one queued if it still waits), and the
takeover does only what depends on its instant.

What is kept warm is what does not depend on that instant: the waiting contacts that
prefer nothing and are no callbacks (at a large center nearly all of them), queued at
their original place with their timers as a restore at any instant sets them. A
contact the dead router had offered is kept queued as such too, as the restart will
void its offer (its REQUEUED event is made at the takeover, with the takeover's time).

What waits for the takeover (`take_over`, through Restart.restore): contacts whose
wait depends on the instant (a preferred agent or preferred skills, which relax with
time; a callback, due or not yet), answered contacts (their agents' reconnect grace
starts then), and the grace itself: no fallback rule moves a contact within it, so
fallback timers that would fire sooner are moved to its end.

The result is the core a cold restore of the same contacts at the same instant builds
(tests/unit/test_warm_core.py checks it over generated sequences of changes); only
the tie-break among contacts queued at the same microsecond may differ (the order they
were followed in, not their ids), as it may between the active router and a restore.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime, timedelta
from operator import attrgetter

from router.domain.channel import Channel
from router.domain.contact import Contact, ContactState
from router.domain.events import ContactEvent, ContactEventKind, Event
from router.domain.state import RoutingState
from router.domain.timers import Timer

Restore = Callable[
    [
        Iterable[Contact],
        datetime,
        Iterable[tuple[str, str]],
        Iterable[tuple[str, Channel, datetime]],
    ],
    list[Event],
]
"""Router.restore: what the takeover runs for the contacts kept for it."""

_KEPT_WARM = frozenset({ContactState.QUEUED, ContactState.OFFERED})


def keeps_warm(contact: Contact) -> bool:
    """Whether the standby can queue `contact` now, whatever the takeover's instant."""
    return (
        contact.state in _KEPT_WARM
        and contact.callback is None
        and contact.preferred_agent_id is None
        and not contact.preferred_skills
    )


class WarmCore:
    """The core of a standby, kept restored as the followed changes arrive."""

    def __init__(self, state: RoutingState, restore: Restore) -> None:
        self._state = state
        self._restore = restore
        self._voided: dict[str, None] = {}
        """Contacts queued here whose offer (the dead router's) the takeover voids."""
        self._later: dict[str, Contact] = {}
        """Open contacts the takeover restores (their wait depends on its instant)."""
        self.taken_over = False

    def __len__(self) -> int:
        """Open contacts held: queued here or kept for the takeover."""
        return len(self._state.contacts) + len(self._later)

    def apply(self, contacts: Iterable[Contact], gone: Iterable[str], now: datetime) -> None:
        """The contacts of `gone` are no longer there at all; each of `contacts` is as
        it is now (any state: a final one leaves). `now` is only what the queue's
        bookkeeping asks for: nothing kept here depends on it."""
        if self.taken_over:
            raise RuntimeError("the standby has taken over: its core is the router's now")
        for contact_id in gone:
            self._drop(contact_id)
        waiting: list[Contact] = []
        for contact in contacts:
            self._drop(contact.id)
            if contact.state.is_final:
                continue
            if not keeps_warm(contact):
                self._later[contact.id] = contact
                continue
            if contact.state is ContactState.OFFERED:
                contact = replace(contact, state=ContactState.QUEUED, agent_id=None, offer_id=None)
                self._voided[contact.id] = None
            waiting.append(contact)
        # Queued in the restore's order: equal instants go by id, as there.
        waiting.sort(key=attrgetter("queued_at", "id"))
        self._state.enqueue_all(waiting, now)

    def _drop(self, contact_id: str) -> None:
        """Take out the version of `contact_id` held, if any."""
        if self._later.pop(contact_id, None) is not None:
            return
        state = self._state
        contact = state.contacts.get(contact_id)
        if contact is None:
            return
        state.dequeue(contact_id)
        state.retire(contact)
        self._voided.pop(contact_id, None)

    def take_over(
        self,
        now: datetime,
        previous_agents: Iterable[tuple[str, str]] = (),
        recent_answers: Iterable[tuple[str, Channel, datetime]] = (),
        restored: list[Event] | None = None,
    ) -> tuple[list[ContactEvent], list[Event]]:
        """This router is the active one from `now`: (the REQUEUED events of the offers
        voided, the other events of the restore), as Restart.restore of every open
        contact at `now` makes them. `restored`: the events of a cold restore done
        instead (nothing was kept warm), only split so."""
        if restored is not None:
            self.taken_over = True
            return split_voided(restored)
        state = self._state
        self.taken_over = True
        if state.contacts or self._later:
            grace = now + timedelta(seconds=state.policy.reconnect_grace)
            state.quiet_until = grace
            state.timers.postpone(Timer.FALLBACK, grace)
        voided = [
            ContactEvent(
                ContactEventKind.REQUEUED, state.contacts[contact_id], now, reason="restart"
            )
            for contact_id in self._voided
        ]
        more, events = split_voided(
            self._restore(self._later.values(), now, previous_agents, recent_answers)
        )
        self._voided.clear()
        self._later.clear()
        return [*voided, *more], events


def split_voided(events: list[Event]) -> tuple[list[ContactEvent], list[Event]]:
    """A restore's events as (the REQUEUED of its voided offers, the others): the
    former are written and logged as one (Store.record_voided)."""
    voided: list[ContactEvent] = []
    others: list[Event] = []
    for event in events:
        if (
            isinstance(event, ContactEvent)
            and event.kind is ContactEventKind.REQUEUED
            and event.reason == "restart"
        ):
            voided.append(event)
        else:
            others.append(event)
    return voided, others
