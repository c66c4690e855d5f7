"""`contact-router` as an operator runs it: `--version`, `serve` options, one-line
startup failures, and `token` entries that hostile names cannot break out of."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import json
import os
import signal
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from router import cli
from router.api.access import Role, Tokens, digest_of
from router.store.database_url import with_database
from tests.acceptance.ports import free_port
from tests.unit.test_config import write_pair

RUN_TIMEOUT = 30.0


@dataclass(frozen=True)
class Finished:
    status: int
    stdout: str
    stderr: str

    @property
    def plain_lines(self) -> list[str]:
        """stderr lines that are not JSON log events."""
        return [line for line in self.stderr.splitlines() if not line.startswith("{")]


async def run(*args: str, env: dict[str, str] | None = None) -> Finished:
    """`contact-router ARGS` as a child process, run to its end."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "router.cli",
        *args,
        env={**_clean_environment(), "ROUTER_LOG_FORMAT": "json", **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), RUN_TIMEOUT)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return Finished(process.returncode, stdout.decode(), stderr.decode())


def _clean_environment() -> dict[str, str]:
    """This environment without ROUTER_* settings, so only what a test sets applies."""
    return {k: v for k, v in os.environ.items() if not k.startswith("ROUTER_")}


class TestVersion:
    async def test_version_prints_the_package_version(self) -> None:
        """`contact-router --version` prints the installed distribution's version."""
        finished = await run("--version")
        assert finished.status == 0, finished.stderr
        assert finished.stdout.split() == [
            "contact-router",
            importlib.metadata.version("contact-router"),
        ]


class TestServeOptions:
    async def test_flags_win_over_the_environment(self, database_url: str) -> None:
        """--port and --database-url are used even though the environment says otherwise;
        the environment's --port value, unused, is not even read."""
        port = free_port()
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "router.cli",
            "serve",
            "--port",
            str(port),
            "--metrics-port",
            "off",
            "--database-url",
            database_url,
            env={
                **_clean_environment(),
                "ROUTER_LOG_FORMAT": "json",
                "ROUTER_PORT": "not-a-port",
                "ROUTER_DATABASE_URL": with_database(database_url, "no_such_database_here"),
            },
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        assert process.stderr is not None
        lines: list[str] = []
        try:

            async def listening() -> dict[str, object]:
                assert process.stderr is not None
                while line := (await process.stderr.readline()).decode():
                    lines.append(line)
                    with contextlib.suppress(json.JSONDecodeError):
                        event = json.loads(line)
                        if event.get("event") == "router_active":
                            return dict(event)
                raise AssertionError("the server exited:\n" + "".join(lines))

            await asyncio.wait_for(listening(), RUN_TIMEOUT)
            listened = [json.loads(x) for x in lines if '"router_listening"' in x]
            assert listened[0]["port"] == port
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(process.communicate(), RUN_TIMEOUT)
            if process.returncode is None:
                process.kill()
                await process.wait()
        assert process.returncode == 0, "".join(lines)

    def test_serve_options_name_their_settings(self) -> None:
        """Each serve option stands for one ROUTER_* setting; --config for the file."""
        parser = cli.parser()
        args = parser.parse_args(
            [
                "serve",
                "--host",
                "0.0.0.0",
                "--port",
                "50310",
                "--metrics-port",
                "off",
                "--database-url",
                "postgresql://db/router",
                "--config",
                "router.toml",
            ]
        )
        assert cli.serve_options(args) == {
            "ROUTER_HOST": "0.0.0.0",
            "ROUTER_PORT": "50310",
            "ROUTER_METRICS_PORT": "off",
            "ROUTER_DATABASE_URL": "postgresql://db/router",
            "ROUTER_CONFIG_FILE": "router.toml",
        }


class TestStartupFailures:
    @pytest.mark.parametrize(
        ("args", "env", "named"),
        [
            (["--port", "50051.9"], {}, "--port"),
            ([], {"ROUTER_PORT": "50051.9"}, "ROUTER_PORT"),
            (["--metrics-port", "-1"], {}, "--metrics-port"),
            (["--config", "/nonexistent/router.toml"], {}, "/nonexistent/router.toml"),
        ],
    )
    async def test_configuration_error_is_one_line(
        self, args: list[str], env: dict[str, str], named: str
    ) -> None:
        """A bad setting: exit 2 and one line naming it, no traceback."""
        finished = await run("serve", *args, env=env)
        assert finished.status == 2, finished.stderr
        assert len(finished.plain_lines) == 1, finished.stderr
        assert finished.plain_lines[0].startswith("contact-router: ")
        assert named in finished.plain_lines[0]
        assert "Traceback" not in finished.stderr

    async def test_certificate_with_another_pairs_key_is_one_line(self, tmp_path: Path) -> None:
        """ROUTER_TLS_CERT_FILE of one pair, --tls-key-file of another: exit 2 with one line
        naming both files (it used to be `RuntimeError: Failed to bind to address`)."""
        cert, _ = write_pair(tmp_path, "one")
        _, key = write_pair(tmp_path, "two")
        finished = await run(
            "serve", "--tls-key-file", str(key), env={"ROUTER_TLS_CERT_FILE": str(cert)}
        )
        assert finished.status == 2, finished.stderr
        assert "Traceback" not in finished.stderr
        assert len(finished.plain_lines) == 1, finished.stderr
        line = finished.plain_lines[0]
        assert line.startswith("contact-router: ROUTER_TLS_CERT_FILE")
        assert str(cert) in line
        assert f"--tls-key-file ({key})" in line

    async def test_missing_database_is_one_line(self, server_url: str) -> None:
        """A database that does not exist: exit 1 and one line, no traceback."""
        url = with_database(server_url, "contact_router_no_such_database")
        finished = await run("serve", "--port", "0", "--metrics-port", "off", "--database-url", url)
        assert finished.status == 1, finished.stderr
        assert "Traceback" not in finished.stderr
        assert len(finished.plain_lines) == 1, finished.stderr
        assert finished.plain_lines[0].startswith("contact-router: ")
        assert "contact_router_no_such_database" in finished.plain_lines[0]


HOSTILE = [
    'desk"\nrole = "admin',
    'desk"\n[[token]]\nname = "evil"\nrole = "admin"\nsha256 = "' + "0" * 64 + '"\n#',
    "]",
    "[[token]]",
    "x'''\ny",
    'a\\"b',
    "tab\there",
    "\x1b[31mred\x1b[0m",
    "ünïcödé ✓",
    '"""',
]


class TestTokenCommand:
    @pytest.mark.parametrize("hostile", HOSTILE)
    def test_hostile_name_and_agent_id_stay_values(
        self, hostile: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Whatever --name and --agent-id hold, the entry loads back as exactly one
        agent token with exactly those values."""
        agent_id = hostile[::-1]
        status = cli.main(["token", "--role", "agent", "--name", hostile, "--agent-id", agent_id])
        captured = capsys.readouterr()
        assert status == 0
        token = captured.err.rstrip("\n").rsplit(": ", 1)[1]
        path = tmp_path / "tokens.toml"
        path.write_text(captured.out, encoding="utf-8")
        assert tomllib.loads(captured.out) == {
            "token": [
                {"name": hostile, "role": "agent", "agent_id": agent_id, "sha256": digest_of(token)}
            ]
        }
        principal = Tokens.load(path).principal(token)
        assert principal is not None
        assert (principal.name, principal.role, principal.agent_id) == (
            hostile,
            Role.AGENT,
            agent_id,
        )

    def test_bytes_that_are_not_utf8_are_refused(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A name from bytes that are not UTF-8 (a lone surrogate in Python) cannot be
        written to a TOML file: refused with one line, nothing on stdout."""
        status = cli.main(["token", "--role", "gateway", "--name", "desk\udcff"])
        captured = capsys.readouterr()
        assert status == 2
        assert captured.out == ""
        assert captured.err == "contact-router token: --name must be UTF-8 text\n"

    def test_entries_appended_to_one_file_stay_apart(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Entries appended one after another (as an operator does with >>) load as as
        many tokens, each with its own role."""
        path = tmp_path / "tokens.toml"
        tokens = {}
        for name, role in ((HOSTILE[0], "gateway"), (HOSTILE[1], "reporting")):
            assert cli.main(["token", "--role", role, "--name", name]) == 0
            captured = capsys.readouterr()
            tokens[name] = captured.err.rstrip("\n").rsplit(": ", 1)[1]
            with path.open("a", encoding="utf-8") as file:
                file.write(captured.out)
        loaded = Tokens.load(path)
        assert len(tomllib.loads(path.read_text(encoding="utf-8"))["token"]) == 2
        gateway = loaded.principal(tokens[HOSTILE[0]])
        reporting = loaded.principal(tokens[HOSTILE[1]])
        assert gateway is not None
        assert reporting is not None
        assert (gateway.name, gateway.role) == (HOSTILE[0], Role.GATEWAY)
        assert (reporting.name, reporting.role) == (HOSTILE[1], Role.REPORTING)
