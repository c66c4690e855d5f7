"""Admission of a new contact: whether the queue has room for it, and whom it prefers.

Both are asked before a submission is recorded: a recorded contact always enters the
queue, and a restart holds it for the same preferred agent.
"""

from __future__ import annotations

from dataclasses import replace

from router.domain.channel import Channel
from router.domain.contact import Contact, PreferenceSource
from router.domain.state import RoutingState
from router.errors import ContactTooLarge, QueueFull, QueueMemoryFull


class Admission:
    def __init__(self, state: RoutingState) -> None:
        self._state = state

    def check_room(
        self, channel: Channel, size: int = 0, *, submitting: int = 0, submitting_bytes: int = 0
    ) -> None:
        """Refuse a new contact of `channel` holding `size` bytes (Contact.size) that the
        queue has no room for: the channel holds its maximum of waiting contacts, or the
        waiting contacts their maximum of bytes, counting `submitting` contacts of the
        channel (`submitting_bytes` of any channel) accepted for recording but not yet
        queued."""
        policy = self._state.policy
        if size > policy.max_contact_bytes:
            raise ContactTooLarge(
                f"the contact holds {size} bytes of ids, attributes and skills, more than "
                f"the limit of {policy.max_contact_bytes}; send less in attributes",
                size=size,
                limit=policy.max_contact_bytes,
            )
        limit = policy.of(channel).max_queue
        waiting = self._state.queue.count(channel) + submitting
        if waiting >= limit:
            raise QueueFull(
                f"the {channel.value} queue is full ({waiting} waiting, limit {limit}); "
                "try again later or offer the customer another channel",
                channel=channel.value,
                limit=limit,
                waiting=waiting,
            )
        held = self._state.queued_bytes + submitting_bytes
        if held + size > policy.max_queue_bytes:
            raise QueueMemoryFull(
                f"the waiting contacts hold {held} bytes, and this one would pass the limit "
                f"of {policy.max_queue_bytes}; try again later",
                held=held,
                limit=policy.max_queue_bytes,
            )

    def with_preference(self, contact: Contact) -> Contact:
        """A new contact with its preferred agent: the one its gateway named, or else,
        on a channel that prefers it, the agent who last completed a contact for the
        same customer."""
        if contact.preferred_agent_id is not None:
            return replace(contact, preferred_agent_source=PreferenceSource.GATEWAY)
        if not self._state.policy.of(contact.channel).prefer_previous_agent:
            return contact
        previous = self._state.previous.of(contact.customer_id)
        if previous is None:
            return contact
        return replace(
            contact,
            preferred_agent_id=previous,
            preferred_agent_source=PreferenceSource.PREVIOUS_AGENT,
        )
