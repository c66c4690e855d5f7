"""The hours-of-operation file: read whole, refused by key, reloaded without a restart."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from router.config import Settings
from router.domain.channel import Channel
from router.domain.opening_hours import Calendar
from router.errors import ConfigError
from router.hours_file import HoursFile, read_calendar

EXAMPLE = Path(__file__).parents[2] / "deploy" / "hours.example.toml"
NONE: frozenset[str] = frozenset()

GOOD = """
[hours.phone]
weekdays = ["08:00-20:00"]
saturday = ["09:00-13:00"]

[skills."lang:de"]
channels = ["phone"]
weekdays = ["09:00-18:00"]

[[holidays]]
date = 2026-12-25

[[closures]]
from = 2026-12-24T14:00:00
to = 2026-12-24T18:00:00
channels = ["phone"]
reason = "staff party"
"""


CLOSURE = "[[closures]]\nfrom = 2026-12-24T14:00:00\nto = 2026-12-24T15:00:00\n"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hours.toml"
    path.write_text(text, encoding="utf-8")
    return path


class TestReading:
    def test_a_whole_file(self, tmp_path: Path) -> None:
        """Weekly hours with a group and a day, a skill's hours, a holiday, a closure."""
        calendar = read_calendar(write(tmp_path, GOOD), "Europe/Paris")
        monday_evening = datetime(2026, 6, 1, 18, 30, tzinfo=UTC)  # 20:30 in Paris
        assert not calendar.is_open(Channel.PHONE, NONE, monday_evening)
        saturday = datetime(2026, 6, 6, 10, 0, tzinfo=UTC)  # 12:00
        assert calendar.is_open(Channel.PHONE, NONE, saturday)
        assert not calendar.is_open(Channel.PHONE, frozenset({"lang:de"}), saturday)
        assert not calendar.is_open(Channel.CHAT, NONE, datetime(2026, 12, 25, 12, tzinfo=UTC))
        party = datetime(2026, 12, 24, 14, 0, tzinfo=UTC)  # 15:00 in Paris
        assert not calendar.is_open(Channel.PHONE, NONE, party)
        assert calendar.is_open(Channel.CHAT, NONE, party)

    def test_the_example_file_reads(self) -> None:
        """deploy/hours.example.toml, which the docs point to, is a valid file."""
        calendar = read_calendar(EXAMPLE, "Europe/Paris")
        assert calendar.channels

    @pytest.mark.parametrize(
        ("text", "named"),
        [
            ("[hours.fax]\nmonday = []", "hours.fax (line 1)"),
            ('[hours.phone]\nmonday = ["8:00-20:00"]', "hours.phone.monday[0] (line 2)"),
            ('[hours.phone]\nmonday = ["20:00-08:00"]', "hours.phone.monday[0] (line 2)"),
            (
                '[hours.phone]\nmonday = ["08:00-12:00", "11:00-13:00"]',
                "hours.phone.monday (line 2)",
            ),
            ('[hours.phone]\nmondays = ["08:00-12:00"]', "hours.phone.mondays (line 2)"),
            ('[skills."Not A Skill"]\nmonday = []', "skills.Not A Skill (line 1)"),
            ('[[holidays]]\ndate = "2026-12-25"', "holidays[0].date (line 2)"),
            (
                "[[closures]]\nfrom = 2026-12-24T14:00:00\nto = 2026-12-24T13:00:00",
                "closures[0].to (line 3)",
            ),
            (
                "[[closures]]\nfrom = 2026-12-24T14:00:00Z\nto = 2026-12-24T18:00:00",
                "closures[0].from (line 2)",
            ),
            (CLOSURE + 'channels = ["fax"]', "closures[0].channels[0] (line 4)"),
            ("opening = 1", "opening (line 1)"),
            # Inline tables have no line of their own: the key alone.
            ('hours = { phone = { monday = ["9-5"] } }', "hours.phone.monday[0]"),
        ],
    )
    def test_a_fault_names_its_key_and_line(self, tmp_path: Path, text: str, named: str) -> None:
        """Each malformed part is refused naming the key that holds it, and its line."""
        with pytest.raises(ConfigError, match=re.escape(f": {named}: ")) as raised:
            read_calendar(write(tmp_path, text), "UTC")
        assert str(tmp_path) in str(raised.value)

    def test_the_line_of_the_right_entry_of_an_array(self, tmp_path: Path) -> None:
        """The second closure's fault is on the second closure's line, past comments."""
        text = f"{CLOSURE}\n[[closures]]\n# moved\nfrom = 2026-12-24T14:00:00\nto = 1\n"
        with pytest.raises(ConfigError, match=re.escape(": closures[1].to (line 8): ")):
            read_calendar(write(tmp_path, text), "UTC")

    def test_a_syntax_error_names_its_line(self, tmp_path: Path) -> None:
        """TOML that does not parse: the message says the line."""
        with pytest.raises(ConfigError, match="line 3"):
            read_calendar(write(tmp_path, "[hours.phone]\nmonday = []\nfriday = 08:00-\n"), "UTC")


class TestReloading:
    def test_a_valid_file_replaces_the_calendar(self, tmp_path: Path) -> None:
        """reload() hands the new calendar to every user at once."""
        path = write(tmp_path, GOOD)
        hours = HoursFile(path, "UTC")
        seen: list[Calendar] = []
        hours.use(seen.append)
        path.write_text('[hours.chat]\nevery_day = ["00:00-01:00"]\n', encoding="utf-8")
        assert hours.reload()
        assert seen[-1] is hours.calendar
        assert list(hours.calendar.channels) == [Channel.CHAT]

    def test_the_hours_in_force_at_start_are_logged(self, tmp_path: Path) -> None:
        """An operator sees at start which file is in force, as after a reload."""
        with capture_logs() as logs:
            HoursFile(write(tmp_path, GOOD), "UTC")
        [loaded] = [line for line in logs if line["event"] == "hours_loaded"]
        assert loaded["channels"]

    def test_an_invalid_file_is_refused_and_the_old_stays(self, tmp_path: Path) -> None:
        """A broken edit is logged and changes nothing."""
        path = write(tmp_path, GOOD)
        hours = HoursFile(path, "UTC")
        before = hours.calendar
        path.write_text('[hours.phone]\nmonday = ["25:00-26:00"]\n', encoding="utf-8")
        with capture_logs() as logs:
            assert not hours.reload()
        assert hours.calendar is before
        [refused] = [line for line in logs if line["event"] == "hours_file_refused"]
        assert "hours.phone.monday[0]" in refused["error"]

    def test_a_missing_file_is_refused(self, tmp_path: Path) -> None:
        """The file removed: the calendar in force stays."""
        path = write(tmp_path, GOOD)
        hours = HoursFile(path, "UTC")
        before = hours.calendar
        path.unlink()
        assert not hours.reload()
        assert hours.calendar is before

    async def test_a_changed_file_is_read_again_by_itself(self, tmp_path: Path) -> None:
        """Watching: a change to the file reaches the users without a reload call."""
        import asyncio

        path = write(tmp_path, GOOD)
        hours = HoursFile(path, "UTC", poll=0.01)
        changed = asyncio.Event()
        hours.use(
            lambda calendar: changed.set() if not calendar.channels.get(Channel.PHONE) else None
        )
        hours.start()
        try:
            path.write_text("", encoding="utf-8")
            await asyncio.wait_for(changed.wait(), timeout=10)
        finally:
            await hours.close()
        assert hours.calendar.always_open


class TestSetting:
    def test_a_bad_file_stops_the_start_naming_the_variable(self, tmp_path: Path) -> None:
        """ROUTER_HOURS_FILE is checked whole with the other settings."""
        path = write(tmp_path, '[hours.phone]\nmonday = ["09:00-08:00"]\n')
        with pytest.raises(ConfigError, match=r"ROUTER_HOURS_FILE: .*hours\.phone\.monday\[0\]"):
            Settings.from_env({"ROUTER_HOURS_FILE": str(path)})

    def test_a_good_file_is_named_in_the_settings(self, tmp_path: Path) -> None:
        """Read at start, kept by path for the reloads."""
        path = write(tmp_path, GOOD)
        assert Settings.from_env({"ROUTER_HOURS_FILE": str(path)}).hours_file == path
