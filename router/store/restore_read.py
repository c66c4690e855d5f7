"""A cold start's read of the open contacts: the rows in pages, each page's contacts
built while PostgreSQL writes the next one.

A restart restores every open contact (500,000 at a large center). PostgreSQL spends
about as long writing the rows as the router spends decoding them, on the other core:
read whole, the router waits for the last row before building the first contact, and
holds every row (half a million records and their values) until the end. Paged through
a cursor, the next page is asked for before this one's contacts are built, so the two
overlap, and a page's rows are freed once built.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterable
from datetime import UTC, datetime

import asyncpg

from router.domain import Channel, Contact, ContactState, PreferenceSource
from router.domain.contact import NO_ATTRIBUTES, contact_of
from router.errors import StoreUnavailable
from router.store.callback_rows import with_callbacks
from router.store.outage import OUTAGE
from router.store.queries import QUERIES

PAGE_ROWS = 25_000
"""Rows per page: small enough that PostgreSQL writes a whole page into the socket's
buffers while the router builds the one before (about 5 MB), large enough that the
round trips do not count (20 for 500,000 contacts)."""


async def open_contacts(pool: asyncpg.Pool, page_rows: int = PAGE_ROWS) -> list[Contact]:
    """The open contacts (Store.open_contacts) and their callbacks, read in one
    snapshot. StoreUnavailable during an outage."""
    contacts, _ = await open_contacts_and_seq(pool, page_rows)
    return contacts


async def open_contacts_and_seq(
    pool: asyncpg.Pool, page_rows: int = PAGE_ROWS
) -> tuple[list[Contact], int]:
    """The open contacts and the highest event number committed, in one snapshot: the
    events numbered above it are the changes these contacts do not show yet (a hot
    standby's start, router/store/follow.py). StoreUnavailable during an outage."""
    contacts: list[Contact] = []
    try:
        async with (
            pool.acquire() as connection,
            connection.transaction(isolation="repeatable_read", readonly=True),
        ):
            cursor = await connection.cursor(QUERIES["open_contacts"])
            page = await cursor.fetch(page_rows)
            while page:
                following = asyncio.ensure_future(cursor.fetch(page_rows))
                try:
                    await asyncio.sleep(0)  # the next page is asked for now, then built
                    contacts.extend(contacts_from_rows(page))
                except BaseException:
                    following.cancel()
                    with contextlib.suppress(BaseException):
                        await following
                    raise
                page = await following
            callbacks = await connection.fetch(QUERIES["open_callbacks"])
            seq = await connection.fetchval(QUERIES["last_committed_event_seq"])
    except OUTAGE as error:
        raise StoreUnavailable(f"PostgreSQL unavailable: {error}") from error
    return with_callbacks(contacts, callbacks), int(seq)


_CHANNELS = {channel.value: channel for channel in Channel}
_STATES = {state.value: state for state in ContactState}
_SOURCES: dict[str | None, PreferenceSource | None] = {
    None: None,
    **{source.value: source for source in PreferenceSource},
}


def contacts_from_rows(rows: Iterable[asyncpg.Record]) -> list[Contact]:
    """Contacts from rows of `open_contacts` (a Contact's fields, in order).

    The same as contact_from_row for each row, at a fraction of its cost, which counts
    when a restart restores 500,000 contacts: fields by position, in the forms the
    query chooses (see queries.sql), enum members and skill sets looked up (contacts
    share them), empty attributes shared, and each built without a frozen dataclass's
    __init__ (contact_of)."""
    skill_sets: dict[tuple[str, ...], frozenset[str]] = {}
    contacts: list[Contact] = []
    append = contacts.append
    from_epoch = datetime.fromtimestamp
    for (
        contact_id,
        key,
        channel,
        customer_id,
        queued_at,
        attributes,
        required,
        boost,
        preferred,
        preferred_agent_id,
        source,
        state,
        offered_at,
        answered_at,
        ended_at,
        completed_at,
        abandoned_at,
        agent_id,
        offer_id,
        disposition,
        offer_count,
    ) in rows:
        skills_key = tuple(required)
        skills = skill_sets.get(skills_key)
        if skills is None:
            skills = skill_sets[skills_key] = frozenset(required)
        append(
            contact_of(
                contact_id,
                key,
                _CHANNELS[channel],
                customer_id,
                from_epoch(queued_at, UTC),
                NO_ATTRIBUTES if attributes is None else json.loads(attributes),
                skills,
                boost,
                () if preferred is None else tuple(preferred),
                preferred_agent_id,
                _SOURCES[source],
                _STATES[state],
                offered_at,
                answered_at,
                ended_at,
                completed_at,
                abandoned_at,
                agent_id,
                offer_id,
                disposition,
                offer_count,
                None,  # a callback's row is attached afterwards (with_callbacks)
                # Not read: an answered wait's closed seconds are in its row already, and
                # a wait that ends after the restore counts them then (record_closed_wait
                # never writes a 0 over them).
                0.0,
                None,  # cancelled_at: an open contact is never cancelled
            )
        )
    return contacts
