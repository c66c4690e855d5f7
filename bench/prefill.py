"""Rows written straight into a scratch database before a server starts: a backlog of
queued contacts (the router restores them into memory on start) or a history of
completed ones (what a center has recorded by the time it is measured)."""

from __future__ import annotations

import asyncpg

from router.store.migrations import migrate

_BACKLOG = """
INSERT INTO contacts (
    id, idempotency_key, channel, customer_id, required_skills, priority_boost, state,
    queued_at, updated_at
)
SELECT gen_random_uuid(), 'backlog-' || $1::text || '-' || n, 'email', 'customer-' || n,
       ARRAY[$2::text], 1.0, 'queued',
       now() - interval '1 hour' + n * interval '1 microsecond', now()
FROM generate_series(1, $3::int) AS n
"""

_HISTORY_CONTACTS = """
INSERT INTO contacts (
    id, idempotency_key, channel, customer_id, state, queued_at, offered_at, answered_at,
    ended_at, completed_at, agent_id, offer_id, disposition, offer_count, updated_at
)
SELECT gen_random_uuid(), 'history-' || $1::text || '-' || n,
       (ARRAY['phone', 'chat', 'email'])[1 + n % 3], 'customer-' || n, 'completed',
       t, t + interval '2 s', t + interval '3 s', t + interval '4 min', t + interval '5 min',
       'agent-' || n % 500, gen_random_uuid(), 'history', 1, t + interval '5 min'
FROM generate_series(1, $2::int) AS n,
     LATERAL (SELECT now() - interval '30 days' + n * interval '1 ms' AS t) AS times
"""

_HISTORY_EVENTS = """
INSERT INTO contact_events (contact_id, kind, at, agent_id, offer_id)
SELECT c.id, e.kind, e.at, c.agent_id, CASE WHEN e.kind = 'offered' THEN c.offer_id END
FROM contacts AS c,
     LATERAL (VALUES ('submitted', c.queued_at), ('offered', c.offered_at),
                     ('answered', c.answered_at), ('ended', c.ended_at),
                     ('completed', c.completed_at)) AS e(kind, at)
WHERE c.idempotency_key LIKE 'history-' || $1::text || '-%'
"""


async def migrated(db_url: str) -> None:
    connection = await asyncpg.connect(db_url)
    try:
        await migrate(connection)
    finally:
        await connection.close()


async def add_backlog(db_url: str, count: int, skill: str, label: str) -> None:
    """`count` queued email contacts that need `skill`, queued over the last hour."""
    connection = await asyncpg.connect(db_url)
    try:
        await connection.execute(_BACKLOG, label, skill, count)
        await connection.execute("ANALYZE contacts")
    finally:
        await connection.close()


async def add_history(db_url: str, count: int, label: str) -> None:
    """`count` completed contacts with their five events each, over the last 30 days."""
    connection = await asyncpg.connect(db_url)
    try:
        async with connection.transaction():
            await connection.execute(_HISTORY_CONTACTS, label, count)
            await connection.execute(_HISTORY_EVENTS, label)
        await connection.execute("ANALYZE contacts")
        await connection.execute("ANALYZE contact_events")
    finally:
        await connection.close()


async def recorded_contacts(db_url: str) -> int:
    connection = await asyncpg.connect(db_url)
    try:
        return int(await connection.fetchval("SELECT count(*) FROM contacts"))
    finally:
        await connection.close()
