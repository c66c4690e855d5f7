"""One way to run a named read on a pooled connection, for the Store and its Reports."""

from __future__ import annotations

from typing import Any

import asyncpg

from router.errors import StoreUnavailable
from router.store.outage import OUTAGE
from router.store.queries import QUERIES


async def fetch(
    pool: asyncpg.Pool, name: str, *args: Any, settings: str | None = None
) -> list[asyncpg.Record]:
    """The rows of the named statement of queries.sql, run on a connection from `pool`.

    With `settings` (`SET LOCAL ...`), in a transaction that applies them first, so they
    end with it. A connection PostgreSQL lost is StoreUnavailable."""
    try:
        async with pool.acquire() as connection:
            if settings is None:
                return list(await connection.fetch(QUERIES[name], *args))
            async with connection.transaction():
                await connection.execute(settings)
                return list(await connection.fetch(QUERIES[name], *args))
    except OUTAGE as error:
        raise StoreUnavailable(f"PostgreSQL unavailable: {error}") from error
