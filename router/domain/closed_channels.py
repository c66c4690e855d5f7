"""What the core does outside a channel's hours of operation (see opening_hours).

- A new call (phone) while its hours say closed is refused (ChannelClosed, with the
  next opening), unless its gateway asked to queue it anyway; chats and emails are
  queued. Callbacks are phone contacts and follow the same rule.
- Nothing already waiting is dropped, and routing does not stop: an agent who works
  a closed channel's backlog still gets it. So no timer is needed at opening or
  closing: nothing happens in the core at those instants.
- A waiting contact outside its hours says so (WaitReason.CLOSED, "closed until ...").
- When a contact's wait ends (answered or abandoned) the seconds of it during which
  its hours said closed are counted (`closed_seconds`), so that service level counts
  only open time (docs/reporting.md).

The hours of a contact are those of its channel, or of its required skills that have
hours of their own (the calendar decides); the calendar in force at the instant asked
is the one that answers, including for a wait that began under an earlier one.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from router.domain.channel import Channel
from router.domain.contact import Contact, ContactState, changed
from router.domain.opening_hours import Calendar
from router.domain.state import RoutingState
from router.domain.wait_reason import WaitExplanation, WaitReason
from router.errors import ChannelClosed

NO_SKILLS: frozenset[str] = frozenset()


class ClosedChannels:
    """The core's hours of operation (Router.hours): the calendar in force, the
    refusal of a call outside them, and the closed seconds of a wait that ends."""

    def __init__(self, state: RoutingState) -> None:
        self._state = state

    @property
    def calendar(self) -> Calendar:
        return self._state.calendar

    def use(self, calendar: Calendar) -> None:
        """Hours of operation from now on (a reload replaces them whole); nothing
        waiting moves."""
        self._state.calendar = calendar

    def check_open(self, contact: Contact, now: datetime, *, queue_when_closed: bool) -> None:
        """Refuse a new call outside its hours (ChannelClosed) unless asked to queue it."""
        check_open(self._state.calendar, contact, now, queue_when_closed=queue_when_closed)

    def answered(self, waiting: Contact, now: datetime) -> Contact:
        """The contact answered now: a contact answered before (whose agent never came
        back) keeps its first answer and its closed seconds, as its wait ended then."""
        return changed(
            waiting,
            state=ContactState.CONNECTED,
            answered_at=waiting.answered_at or now,
            closed_wait=closed_wait(self._state.calendar, waiting, now),
        )

    def abandoned(self, contact: Contact, now: datetime) -> Contact:
        """The contact abandoned now, with the closed seconds of its wait."""
        return replace(
            contact,
            state=ContactState.ABANDONED,
            abandoned_at=now,
            closed_wait=closed_wait(self._state.calendar, contact, now),
        )


def check_open(
    calendar: Calendar, contact: Contact, now: datetime, *, queue_when_closed: bool
) -> None:
    """Refuse a new call outside its hours (ChannelClosed) unless asked to queue it."""
    if contact.channel is not Channel.PHONE or queue_when_closed:
        return
    if calendar.is_open(contact.channel, contact.required_skills, now):
        return
    opens = calendar.next_opening(contact.channel, contact.required_skills, now)
    if opens is None:
        raise ChannelClosed(
            f"{contact.channel.value} is closed and has no opening hours ahead",
            channel=contact.channel.value,
        )
    raise ChannelClosed(
        f"{contact.channel.value} is closed until {calendar.local_text(opens)}: play the "
        "closed message, or submit with queue_when_closed to queue the call anyway",
        channel=contact.channel.value,
        opensAt=opens.isoformat(),
    )


def closed_seconds(calendar: Calendar, contact: Contact, until: datetime) -> float:
    """Seconds of the wait from queued_at to `until` during which its hours said closed."""
    if calendar.always_open:
        return 0.0
    waited = (until - contact.queued_at).total_seconds()
    if waited <= 0:
        return 0.0
    open_seconds = calendar.open_seconds_between(
        contact.channel, contact.required_skills, contact.queued_at, until
    )
    return max(0.0, waited - open_seconds)


def closed_wait(calendar: Calendar, contact: Contact, now: datetime) -> float:
    """Contact.closed_wait for a wait that ends now; a contact answered before keeps
    its first answer's (its wait ended then)."""
    if contact.answered_at is not None:
        return contact.closed_wait
    return closed_seconds(calendar, contact, now)


def explain_closed(calendar: Calendar, contact: Contact, now: datetime) -> WaitExplanation | None:
    """WaitReason.CLOSED with when it opens, if the contact is outside its hours now."""
    if calendar.is_open(contact.channel, contact.required_skills, now):
        return None
    opens = calendar.next_opening(contact.channel, contact.required_skills, now)
    until = "no opening hours ahead" if opens is None else f"until {calendar.local_text(opens)}"
    return WaitExplanation(
        WaitReason.CLOSED,
        f"closed {until}; it keeps its place, and an agent working the backlog may still answer it",
    )


def closed_now(calendar: Calendar, now: datetime) -> frozenset[Channel]:
    """The channels closed now for a contact that requires no skill with hours."""
    if calendar.always_open:
        return frozenset()
    return frozenset(c for c in Channel if not calendar.is_open(c, NO_SKILLS, now))
