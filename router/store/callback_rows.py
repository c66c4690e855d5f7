"""A callback's row (the callbacks table, migration 0011) beside its model: the write
after each of its transitions, and the rows read back onto their contacts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from uuid import UUID

import asyncpg

from router.domain import Callback, Channel, Contact, DialOutcome
from router.store.group_commit import Write


def callback_upsert(contact: Contact) -> Write:
    callback = contact.callback
    assert callback is not None
    return (
        "upsert_callback",
        (
            UUID(contact.id),
            contact.channel.value,
            callback.number,
            callback.requested_from.value,
            callback.requested_at,
            callback.not_before,
            callback.not_after,
            callback.attempts,
            callback.placed_at,
            callback.reached_at,
            callback.retry_at,
            callback.unreached_at,
            None if callback.last_outcome is None else callback.last_outcome.value,
        ),
    )


def with_callbacks(contacts: list[Contact], rows: Iterable[asyncpg.Record]) -> list[Contact]:
    """`contacts` with their callbacks (rows of the callbacks table) attached."""
    callbacks = {str(row["contact_id"]): callback_from_row(row) for row in rows}
    if not callbacks:
        return contacts
    return [c if c.id not in callbacks else replace(c, callback=callbacks[c.id]) for c in contacts]


def callback_from_row(row: asyncpg.Record) -> Callback:
    outcome = row["last_outcome"]
    return Callback(
        number=row["number"],
        requested_from=Channel(row["requested_from"]),
        requested_at=row["requested_at"],
        not_before=row["not_before"],
        not_after=row["not_after"],
        attempts=row["attempts"],
        placed_at=row["placed_at"],
        reached_at=row["reached_at"],
        retry_at=row["retry_at"],
        unreached_at=row["unreached_at"],
        last_outcome=None if outcome is None else DialOutcome(outcome),
    )
