"""Everything that touches PostgreSQL: schema, migrations, every SQL statement."""

from router.store.errors import DuplicateKey, StoreUnavailable
from router.store.group_commit import GroupCommit
from router.store.store import Store

__all__ = ["DuplicateKey", "GroupCommit", "Store", "StoreUnavailable"]
