"""Settings from environment variables and an optional TOML file, checked at start."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from router.config import Settings, setting_names
from router.domain import Channel
from router.errors import ConfigError


class TestSettings:
    def test_defaults(self) -> None:
        """With nothing set: loopback, port 50051, metrics 9464, the brief's targets."""
        settings = Settings.from_env({})
        assert (settings.host, settings.port, settings.metrics_port) == ("127.0.0.1", 50051, 9464)
        assert settings.database_url is None
        assert settings.policy.of(Channel.PHONE).answer_target == 20.0
        assert settings.policy.of(Channel.EMAIL).answer_target == 3600.0
        assert settings.policy.of(Channel.CHAT).default_capacity == 3
        assert settings.policy.phone_reserve == 1

    def test_environment_sets_routing(self) -> None:
        """Targets, capacities and the reserve come from ROUTER_* variables."""
        settings = Settings.from_env(
            {
                "ROUTER_PHONE_TARGET_SECONDS": "15",
                "ROUTER_CHAT_CAPACITY": "5",
                "ROUTER_PHONE_RESERVE": "3",
                "ROUTER_METRICS_PORT": "off",
            }
        )
        assert settings.policy.of(Channel.PHONE).answer_target == 15.0
        assert settings.policy.of(Channel.CHAT).default_capacity == 5
        assert settings.policy.phone_reserve == 3
        assert settings.metrics_port is None

    @pytest.mark.parametrize(
        ("name", "raw"),
        [
            ("ROUTER_PORT", "http"),
            ("ROUTER_PORT", "70000"),
            ("ROUTER_CHAT_CAPACITY", "21"),
            ("ROUTER_PHONE_TARGET_SECONDS", "0"),
            ("ROUTER_LOG_FORMAT", "xml"),
            ("ROUTER_LOG_LEVEL", "loud"),
        ],
    )
    def test_malformed_value_names_the_variable(self, name: str, raw: str) -> None:
        """A bad value stops the start with a message naming the variable."""
        with pytest.raises(ConfigError, match=name):
            Settings.from_env({name: raw})

    def test_toml_file_with_environment_overriding(self, tmp_path: Path) -> None:
        """The file supplies settings; a variable in the environment wins."""
        file = tmp_path / "router.toml"
        file.write_text('phone_reserve = 2\nchat_target_seconds = 45\nhost = "0.0.0.0"\n')
        settings = Settings.from_env({"ROUTER_CONFIG_FILE": str(file), "ROUTER_PHONE_RESERVE": "4"})
        assert settings.policy.phone_reserve == 4
        assert settings.policy.of(Channel.CHAT).answer_target == 45.0
        assert settings.host == "0.0.0.0"

    def test_toml_unknown_key_is_refused(self, tmp_path: Path) -> None:
        """A misspelt key is an error naming it, not silently ignored."""
        file = tmp_path / "router.toml"
        file.write_text("phone_reserv = 2\n")
        with pytest.raises(ConfigError, match="phone_reserv"):
            Settings.from_env({"ROUTER_CONFIG_FILE": str(file)})

    def test_toml_malformed_or_missing_file(self, tmp_path: Path) -> None:
        """An unreadable or invalid file is an error naming ROUTER_CONFIG_FILE."""
        with pytest.raises(ConfigError, match="ROUTER_CONFIG_FILE"):
            Settings.from_env({"ROUTER_CONFIG_FILE": str(tmp_path / "missing.toml")})
        bad = tmp_path / "bad.toml"
        bad.write_text("phone_reserve = = 2\n")
        with pytest.raises(ConfigError, match="ROUTER_CONFIG_FILE"):
            Settings.from_env({"ROUTER_CONFIG_FILE": str(bad)})

    def test_readme_table_lists_every_setting(self) -> None:
        """The README's configuration table and the settings read here are the same set."""
        readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
        documented = set(re.findall(r"^\| `(ROUTER_[A-Z_]+)` \|", readme, re.MULTILINE))
        assert documented == setting_names() | {"ROUTER_CONFIG_FILE"}
