"""Logging configuration: JSON lines off a terminal, ids carried on every line."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import structlog

from router import logs


@pytest.fixture(autouse=True)
def _reset_structlog() -> object:
    yield None
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


class TestConfigure:
    def test_json_lines_carry_bound_ids(self, capsys: pytest.CaptureFixture[str]) -> None:
        """In JSON mode each line is one object with the contact and agent ids bound."""
        logs.configure("json", "info")
        with structlog.contextvars.bound_contextvars(contact_id="c-1", agent_id="a-1"):
            structlog.get_logger("t").info("contact_offered", channel="phone")
        line = capsys.readouterr().err.strip().splitlines()[-1]
        record = json.loads(line)
        assert record["event"] == "contact_offered"
        assert record["contact_id"] == "c-1"
        assert record["agent_id"] == "a-1"
        assert record["level"] == "info"
        assert record["timestamp"].endswith("Z")

    def test_auto_is_json_when_not_a_terminal(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Under a pipe (as in production) `auto` writes JSON."""
        logs.configure("auto", "info")
        structlog.get_logger("t").info("router_started", port=1)
        assert json.loads(capsys.readouterr().err.strip())["port"] == 1

    def test_level_filters(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Below the configured level nothing is written."""
        logs.configure("json", "warning")
        structlog.get_logger("t").info("quiet")
        structlog.get_logger("t").warning("loud")
        lines = capsys.readouterr().err.strip().splitlines()
        assert [json.loads(line)["event"] for line in lines] == ["loud"]

    def test_console_is_readable(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Console mode renders key=value text, not JSON."""
        logs.configure("console", "info")
        structlog.get_logger("t").info("agent_connected", agent_id="bob")
        out = capsys.readouterr().err
        assert "agent_connected" in out
        assert "agent_id=bob" in out
        assert not out.lstrip().startswith("{")


# Run in a fresh interpreter: records GRPC_VERBOSITY as it is when grpc is first
# imported (gRPC core reads it then, once), then imports the command's module.
_GRPC_IMPORT_WATCH = """
import os, sys

class Watch:
    def find_spec(self, name, path=None, target=None):
        if name == "grpc" and "seen" not in Watch.__dict__:
            Watch.seen = os.environ.get("GRPC_VERBOSITY")
        return None

sys.meta_path.insert(0, Watch())
import router.cli
print(getattr(Watch, "seen", "grpc never imported"))
"""


def _grpc_verbosity_at_import(env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-c", _GRPC_IMPORT_WATCH],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip()


class TestGrpcCoreLines:
    def test_grpc_core_says_errors_only(self) -> None:
        """gRPC core's own stderr lines (not JSON: `I1204 ... fork_posix.cc:71] ...`)
        are limited to errors before grpc is first imported by `contact-router`."""
        env = {k: v for k, v in os.environ.items() if k != "GRPC_VERBOSITY"}
        assert _grpc_verbosity_at_import(env) == "ERROR"

    def test_the_operator_may_ask_for_more(self) -> None:
        """A GRPC_VERBOSITY the operator set is kept."""
        assert _grpc_verbosity_at_import({**os.environ, "GRPC_VERBOSITY": "debug"}) == "debug"
