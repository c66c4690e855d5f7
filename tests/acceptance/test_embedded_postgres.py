"""The embedded PostgreSQL of `make run` (no ROUTER_DATABASE_URL): stopped with the
router that started it, even after an earlier run died without stopping it, and no line
but the router's own on the terminal.

Issue 14, item 20: the embedded server keeps a list of the processes using it and stops
when the last one leaves; a run killed with SIGKILL never left, so no later run was ever
the last one and PostgreSQL outlived every `make run`. Item 10: a platformdirs warning
at start and a gRPC core line at stop landed among the JSON log lines.
"""

from __future__ import annotations

import contextlib
import json
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import psutil
import pytest

from router.errors import StartupError
from router.store.embedded import EmbeddedPostgres
from tests.acceptance.router_process import RouterProcess


def postgres_of(data_dir: Path) -> list[psutil.Process]:
    """The PostgreSQL processes serving `data_dir` (the postmaster names it in its
    command line: postgres -D <folder>)."""
    folder = str(data_dir.resolve())
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        command = process.info["cmdline"] or []
        if process.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if command and Path(command[0]).name == "postgres" and folder in command:
            found.append(process)
    return found


def embedded_env(data: Path) -> dict[str, str]:
    return {"ROUTER_DATABASE_URL": "", "ROUTER_DATA_DIR": str(data)}


@contextlib.contextmanager
def scratch_folder() -> Iterator[Path]:
    """A scratch folder for an embedded PostgreSQL, outside pytest's tmp_path: run as
    root, the package runs PostgreSQL as another user, who must traverse the folder's
    parents, and pytest keeps its tree private (each new pytest session, another
    developer's too, makes it 0700 again, even in the middle of an initdb)."""
    with tempfile.TemporaryDirectory(prefix="router-embedded-", ignore_cleanup_errors=True) as d:
        yield Path(d)


@pytest.fixture
def scratch() -> Iterator[Path]:
    with scratch_folder() as folder:
        yield folder


class TestEmbeddedPostgres:
    async def test_stopped_after_an_earlier_run_was_killed(self, scratch: Path) -> None:
        """Kill one run with SIGKILL (its PostgreSQL stays), start another on the same
        folder and SIGTERM it: no PostgreSQL of that folder is left, and the router said
        embedded_postgres_stopped only because it had stopped."""
        data = scratch / "data"
        killed = await RouterProcess.start(embedded_env(data))
        await killed.kill()
        assert postgres_of(data / "postgres"), "a SIGKILLed run leaves its PostgreSQL"
        second = await RouterProcess.start(embedded_env(data))
        try:
            status = await second.stop(signal.SIGTERM)
        finally:
            left = postgres_of(data / "postgres")
            for process in left:
                process.kill()
        assert status == 0, second.output
        assert left == [], f"PostgreSQL left running: {left}\n{second.output}"
        assert '"embedded_postgres_stopped"' in second.output

    async def test_a_router_still_using_it_keeps_it(self, scratch: Path) -> None:
        """Two routers on one folder (the second a standby): stopping one leaves
        PostgreSQL to the other, and says so; stopping the other stops it."""
        data = scratch / "data"
        first = await RouterProcess.start(embedded_env(data))
        second = await RouterProcess.start(embedded_env(data), until="router_listening")
        try:
            assert await first.stop(signal.SIGTERM) == 0, first.output
            assert postgres_of(data / "postgres"), "PostgreSQL stopped under the other router"
            left_running = first.event("embedded_postgres_left_running")
            assert left_running["used_by"] == [second.process.pid]
            await second.wait_for("router_active")
            assert await second.stop(signal.SIGTERM) == 0, second.output
        finally:
            for process in postgres_of(data / "postgres"):
                process.kill()
            await first.kill()
            await second.kill()
        assert postgres_of(data / "postgres") == []

    async def test_the_terminal_shows_the_routers_lines_only(self, scratch: Path) -> None:
        """From start to stop, every line on stderr is one of the router's JSON lines:
        no platformdirs warning (XDG_RUNTIME_DIR unset, as for root in a container), no
        gRPC core line."""
        process = await RouterProcess.start(
            {**embedded_env(scratch / "data"), "XDG_RUNTIME_DIR": ""}
        )
        status = await process.stop(signal.SIGTERM)
        assert status == 0, process.output
        foreign = []
        for line in process.lines:
            try:
                json.loads(line)
            except json.JSONDecodeError:
                foreign.append(line)
        assert foreign == [], "".join(foreign)
        assert process.events[-1]["event"] == "embedded_postgres_stopped"

    def test_a_folder_it_cannot_use_is_one_line(self, scratch: Path) -> None:
        """A data folder made by another PostgreSQL version: a StartupError naming the
        folder and the way out, not the package's RuntimeError."""
        folder = scratch / "postgres"
        folder.mkdir()
        (folder / "PG_VERSION").write_text("12\n")
        with pytest.raises(StartupError) as refused:
            EmbeddedPostgres(folder).start()
        message = str(refused.value)
        assert str(folder) in message
        assert "--database-url" in message
        assert "\n" not in message

    async def test_started_again_in_the_same_process_it_serves(self, scratch: Path) -> None:
        """Stopped and started again in one process (a router restarted by its host
        program, a test session): the second start serves, instead of handing back the
        stopped server's URL."""
        embedded = EmbeddedPostgres(scratch / "postgres")
        for _ in range(2):
            url = embedded.start()
            connection = await asyncpg.connect(url)
            try:
                assert await connection.fetchval("SELECT 1") == 1
            finally:
                await connection.close()
            embedded.stop()
            assert postgres_of(scratch / "postgres") == []
