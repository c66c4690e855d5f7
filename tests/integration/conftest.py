"""Fixtures for the store against a real PostgreSQL."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime

import asyncpg
import pytest

from router.domain import Channel, Contact, ContactState
from router.store import Store
from router.store.database_url import with_database
from tests.conftest import Graveyard, created_database


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    """The store on the test's migrated database."""
    opened = await Store.open(database_url)
    await opened.become_active()
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def empty_database_url(server_url: str, graveyard: Graveyard) -> AsyncIterator[str]:
    """A database with no schema at all, for migration tests."""
    async with created_database(server_url, "router_empty", graveyard=graveyard) as name:
        yield with_database(server_url, name)


def make_contact(
    key: str,
    queued_at: datetime,
    channel: Channel = Channel.PHONE,
    *,
    attributes: dict[str, str] | None = None,
    required_skills: frozenset[str] = frozenset(),
    priority_boost: float = 1.0,
) -> Contact:
    """A queued contact with a fresh id."""
    return Contact(
        id=str(uuid.uuid4()),
        idempotency_key=key,
        channel=channel,
        customer_id=f"customer-{key}",
        queued_at=queued_at,
        attributes=attributes or {},
        required_skills=required_skills,
        priority_boost=priority_boost,
    )


async def insert_history(
    db: asyncpg.Connection,
    channel: Channel,
    queued_at: datetime,
    *,
    offered_at: datetime | None = None,
    answered_at: datetime | None = None,
    ended_at: datetime | None = None,
    completed_at: datetime | None = None,
    abandoned_at: datetime | None = None,
    state: ContactState | None = None,
) -> str:
    """Write one contact row with hand-built timestamps straight into the table."""
    if state is None:
        if abandoned_at is not None:
            state = ContactState.ABANDONED
        elif completed_at is not None:
            state = ContactState.COMPLETED
        elif ended_at is not None:
            state = ContactState.WRAP_UP
        elif answered_at is not None:
            state = ContactState.CONNECTED
        elif offered_at is not None:
            state = ContactState.OFFERED
        else:
            state = ContactState.QUEUED
    contact_id = uuid.uuid4()
    await db.execute(
        """
        INSERT INTO contacts (
            id, idempotency_key, channel, customer_id, attributes, state, queued_at,
            offered_at, answered_at, ended_at, completed_at, abandoned_at, agent_id,
            offer_count, updated_at
        ) VALUES ($1, $2, $3, 'c', $4::jsonb, $5, $6, $7, $8, $9, $10, $11, $12, $13, $6)
        """,
        contact_id,
        f"key-{contact_id}",
        channel.value,
        json.dumps({}),
        state.value,
        queued_at,
        offered_at or answered_at,
        answered_at,
        ended_at,
        completed_at,
        abandoned_at,
        "alice" if answered_at is not None else None,
        1 if (offered_at or answered_at) is not None else 0,
    )
    return str(contact_id)
