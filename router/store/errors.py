"""Storage errors, already translated from the driver's: nothing above the store
catches an asyncpg exception."""


class StoreUnavailable(Exception):
    """PostgreSQL could not take the write (down, unreachable, overloaded)."""


class DuplicateKey(Exception):
    """A row with this unique key (a submission's idempotency key) already exists."""


class ActiveLockLost(Exception):
    """Another router became the active one: this one must stop writing and serving."""
