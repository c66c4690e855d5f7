"""Everything that touches PostgreSQL: schema, migrations, every SQL statement."""

from router.store.group_commit import GroupCommit
from router.store.store import Store

__all__ = ["GroupCommit", "Store"]
