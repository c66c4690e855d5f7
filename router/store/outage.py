"""What the driver raises when PostgreSQL is out of reach: an outage, not a bad statement.

The store turns these into StoreUnavailable for its callers (a refused call is
UNAVAILABLE: retry it), and the group commit keeps its writes and retries them.
"""

from __future__ import annotations

import asyncio

import asyncpg

from router.errors import StoreUnavailable

OUTAGE = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    # What asyncpg raises when the server terminates a connection mid-query.
    asyncpg.InternalClientError,
    # The active lock's session could not be opened again (yet).
    StoreUnavailable,
)
