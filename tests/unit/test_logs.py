"""Logging configuration: JSON lines off a terminal, ids carried on every line."""

from __future__ import annotations

import json

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
