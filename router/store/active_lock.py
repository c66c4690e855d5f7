"""Which router process is the active one: a PostgreSQL advisory lock.

Several routers may run against one database (active and standby); exactly one holds
this session-level advisory lock and serves. The lock is held by the very connection
the group commit writes on, which fences a router that lost it: if its session died
(PostgreSQL restarted, the network dropped, an operator ended it), the lock died with
it, and so did every write it could still make. Before writing again it must take the
lock again in a new session; if another router took it meanwhile, it has stopped being
the active one (`ActiveLockLost`) and must not write anything more.

Advisory locks belong to one database, so routers of different databases (the
tests' for instance) never contend.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import structlog

from router.errors import ActiveLockLost, StoreUnavailable
from router.store.queries import QUERIES

log = structlog.get_logger(__name__)

LOCK_KEY = 0x726F75746572  # "router"

# The server side notices a router host that vanished (no FIN, no RST) within about
# 5 + 2 * 3 = 11 s and ends its session, releasing the lock for the standby. Over a
# Unix socket these settings do not apply and are not needed.
_SESSION_SETTINGS = {
    "application_name": "contact-router",
    "tcp_keepalives_idle": "5",
    "tcp_keepalives_interval": "2",
    "tcp_keepalives_count": "3",
    "timezone": "UTC",
}
_CONNECT_TIMEOUT = 5.0
# A batch commits in milliseconds; a statement stuck this long means the network or
# the server is gone, and the writer treats it as an outage.
_COMMAND_TIMEOUT = 3.0


class ActiveLock:
    """Takes and keeps the active router's lock; hands out the connection holding it."""

    def __init__(self, dsn: str, *, key: int = LOCK_KEY) -> None:
        self._dsn = dsn
        self._key = key
        self._connection: asyncpg.Connection | None = None
        # A standby asks again and again on one session, not a new one each time.
        self._waiting: asyncpg.Connection | None = None
        self._last_pid: int | None = None
        self.held = False

    async def try_acquire(self) -> bool:
        """Take the lock if it is free now; False if another router holds it.
        StoreUnavailable if PostgreSQL cannot be reached."""
        if await self._try():
            log.info("active_lock_acquired", backend_pid=self._last_pid)
            return True
        return False

    async def acquire(self, poll_seconds: float = 0.5) -> None:
        """Wait until this process holds the lock (a standby waits here, asking every
        `poll_seconds`: the takeover waits for the next question after the active
        router's session ends).

        Outages while waiting are waited out, quietly after the first log line.
        """
        waiting_logged = False
        while True:
            try:
                if await self._try():
                    log.info("active_lock_acquired", backend_pid=self._last_pid)
                    return
            except StoreUnavailable as error:
                if not waiting_logged:
                    log.warning("active_lock_unreachable", error=str(error))
                    waiting_logged = True
            else:
                if not waiting_logged:
                    log.info("standby_waiting_for_active_lock")
                    waiting_logged = True
            await asyncio.sleep(poll_seconds)

    async def connection(self) -> asyncpg.Connection:
        """The connection holding the lock, reconnecting and retaking it if its session
        died. StoreUnavailable while PostgreSQL cannot be reached (try again later);
        ActiveLockLost once another router holds the lock."""
        if self._connection is not None:
            if not self._connection.is_closed():
                return self._connection
            self.drop_connection()
        if not self.held:
            raise ActiveLockLost("this router does not hold the active lock")
        if await self._try():
            log.info("active_lock_retaken", backend_pid=self._last_pid)
            assert self._connection is not None
            return self._connection
        self.held = False
        raise ActiveLockLost("another router took the active lock")

    def drop_connection(self) -> None:
        """The connection failed: abandon it (its session, and the lock, may be gone)."""
        if self._connection is not None:
            self._connection.terminate()
            self._connection = None

    async def release(self) -> None:
        """Close the session, which releases the lock."""
        if self._waiting is not None:
            self._waiting.terminate()
            self._waiting = None
        connection, self._connection = self._connection, None
        self.held = False
        if connection is not None and not connection.is_closed():
            try:
                await asyncio.wait_for(connection.close(), 2.0)
            except Exception:
                connection.terminate()

    async def _try(self) -> bool:
        """One attempt, in the session of the previous unsuccessful one if it is still
        open, else in a fresh one; keeps the session if the lock was taken."""
        connection, self._waiting = self._waiting, None
        if connection is None or connection.is_closed():
            connection = await self._connect()
        try:
            taken = await connection.fetchval(QUERIES["try_active_lock"], self._key)
            if not taken and self._last_pid is not None:
                # Our own previous session may still hold the lock, if its network
                # connection died without PostgreSQL noticing yet: end it, retry once.
                holder = await connection.fetchval(QUERIES["active_lock_holder"], self._key)
                if holder == self._last_pid:
                    log.warning("ending_stale_session", backend_pid=holder)
                    await connection.fetchval(QUERIES["end_backend"], holder)
                    taken = await self._retry_after_end(connection)
        except BaseException as error:
            connection.terminate()
            if isinstance(error, asyncpg.PostgresError | OSError | asyncpg.InterfaceError):
                raise StoreUnavailable(f"PostgreSQL unavailable: {error}") from error
            raise
        if not taken:
            self._waiting = connection
            return False
        self._connection = connection
        self._last_pid = connection.get_server_pid()
        self.held = True
        return True

    async def _retry_after_end(self, connection: asyncpg.Connection) -> bool:
        """pg_terminate_backend returns before the session is gone: poll briefly."""
        for _ in range(20):
            if await connection.fetchval(QUERIES["try_active_lock"], self._key):
                return True
            await asyncio.sleep(0.05)
        return False

    async def _connect(self) -> asyncpg.Connection:
        try:
            connection: Any = await asyncpg.connect(
                self._dsn,
                timeout=_CONNECT_TIMEOUT,
                command_timeout=_COMMAND_TIMEOUT,
                server_settings=_SESSION_SETTINGS,
            )
        except (TimeoutError, OSError, asyncpg.PostgresError) as error:
            raise StoreUnavailable(f"cannot connect to PostgreSQL: {error}") from error
        return connection  # type: ignore[no-any-return]
