"""The newcomer's `make run`, as a terminal shows it: one progress line while the first
install runs, then the router's own lines only, and a clean stop on Ctrl-C.

Issue 14, item 10: the first `make run` printed the Makefile's commands and, for each
editable install, setuptools' warning block; the install's output now goes to a log
shown only when the install fails.

The first test installs into a fresh virtualenv from the package index (about a minute
on an idle machine).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sys
from pathlib import Path

import pytest

from tests.acceptance.test_embedded_postgres import scratch_folder

ROOT = Path(__file__).parents[2]
PROGRESS = "installing contact-router into {venv} (about a minute the first time)..."

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")


async def make(
    *targets: str, env: dict[str, str] | None = None, within: float = 600
) -> tuple[int, str, str]:
    """Run make in the repository: its exit status, stdout and stderr."""
    process = await asyncio.create_subprocess_exec(
        "make",
        "--no-print-directory",
        *targets,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), within)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def run_until_ctrl_c(venv: Path, scratch: Path) -> None:
    """`make run` on the embedded PostgreSQL in `scratch` until router_active, then
    Ctrl-C: only the router's JSON lines on the terminal, from start to stop."""
    process = await asyncio.create_subprocess_exec(
        "make",
        "--no-print-directory",
        f"VENV={venv}",
        "run",
        cwd=ROOT,
        env={
            **os.environ,
            "ROUTER_DATABASE_URL": "",
            "ROUTER_DATA_DIR": str(scratch / "data"),
            "ROUTER_PORT": "0",
            "ROUTER_METRICS_PORT": "off",
            "ROUTER_LOG_FORMAT": "json",
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        # Its own process group, so that the test can press Ctrl-C as a terminal does.
        start_new_session=True,
    )
    assert process.stderr is not None
    lines: list[str] = []
    try:
        while '"router_active"' not in "".join(lines):
            line = await asyncio.wait_for(process.stderr.readline(), 60)
            assert line, "make run ended before router_active:\n" + "".join(lines)
            lines.append(line.decode())
    finally:
        os.killpg(process.pid, signal.SIGINT)
        rest, more = await asyncio.wait_for(process.communicate(), 60)
    lines += more.decode().splitlines(keepends=True)
    # make itself ends by the SIGINT it received (as on a terminal), after the
    # router has stopped cleanly.
    assert process.returncode in (0, -signal.SIGINT), "".join(lines)
    assert rest == b""
    events = [json.loads(line)["event"] for line in lines]
    assert events[0] == "embedded_postgres_started"
    assert events[-1] == "embedded_postgres_stopped"


class TestMakeRun:
    @pytest.mark.timeout(900)
    async def test_first_install_then_run_shows_the_routers_lines_only(
        self, tmp_path: Path
    ) -> None:
        """A first install prints one progress line (the install's output is in the
        log); `make run` then shows only the router's JSON lines, through Ctrl-C."""
        venv = tmp_path / "venv"
        status, out, err = await make(
            f"VENV={venv}", f"PYTHON={sys.executable}", f"{venv}/.runtime"
        )
        assert status == 0, out + err
        assert (out + err).splitlines() == [PROGRESS.format(venv=venv)]
        assert (venv / "install.log").read_text().strip(), "the install's output is kept"

        with scratch_folder() as scratch:
            await run_until_ctrl_c(venv, scratch)

    async def test_a_failed_install_shows_its_output(self, tmp_path: Path) -> None:
        """When the install fails, the terminal shows what it printed and where the log
        is, and make fails."""
        venv = tmp_path / "venv"
        status, _, err = await make(
            f"VENV={venv}", "PYTHON=/nonexistent/python3", f"{venv}/.runtime", within=60
        )
        assert status != 0
        assert "/nonexistent/python3" in err
        assert f"install failed (the output above is in {venv}/install.log)" in err
        assert not (venv / ".runtime").exists()
