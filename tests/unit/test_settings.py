"""The settings schema: every policy field has its setting, and what derives from it
(defaults, parsing, the policy, the documentation page) agrees with the core."""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime
from pathlib import Path

import pytest

from router.config import Settings
from router.domain import Channel, ChannelPolicy, RoutingPolicy
from router.errors import ConfigError
from router.retention import RetentionSettings, cutoffs, months_before
from router.settings import SETTINGS, Kind
from router.settings_doc import document
from router.variables import BY_KEY, VARIABLES, Variable, routing_policy

PAGE = Path(__file__).parents[2] / "docs" / "configuration.md"
WITH_DEFAULT = sorted(name for name, v in VARIABLES.items() if v.default is not None)
WITHOUT_DEFAULT = sorted(name for name, v in VARIABLES.items() if v.default is None)


def held(settings: Settings, variable: Variable) -> object:
    """What `settings` holds for `variable`: its policy field (an empty set of skills
    is None, as the variable names one skill), or the server setting it fills."""
    field = variable.setting.field
    if field is not None:
        policy = settings.policy
        value = getattr(policy if variable.channel is None else policy.of(variable.channel), field)
        return None if value == frozenset() else value
    server: dict[str, object] = {
        "ROUTER_CONFIG_FILE": None,  # read at start, not kept (the file's values are)
        "ROUTER_DATABASE_URL": settings.database_url,
        "ROUTER_REPORTING_DATABASE_URL": settings.reporting_database_url,
        "ROUTER_TOKENS_FILE": settings.tokens,
        # The teams file's agents, kept in the policy; none without a file.
        "ROUTER_TEAMS_FILE": dict(settings.policy.teams) or None,
        "ROUTER_HOURS_FILE": settings.hours_file,
        "ROUTER_TLS_CERT_FILE": settings.tls,
        "ROUTER_TLS_KEY_FILE": settings.tls,
        "ROUTER_TLS_CLIENT_CA_FILE": settings.tls,
    }
    return server[variable.name]


class TestSchema:
    def test_every_policy_field_has_one_setting(self) -> None:
        """A field added to the policy without a setting (or with two) fails here; a
        channel's nature (exclusive, the most an agent may declare) is no setting, nor
        are the teams (read from the file ROUTER_TEAMS_FILE names)."""
        routing = [s.field or "" for s in SETTINGS if s.routing and not s.per_channel]
        channel = [s.field or "" for s in SETTINGS if s.per_channel]
        assert sorted(routing) == sorted(
            f.name for f in dataclasses.fields(RoutingPolicy) if f.name not in ("channels", "teams")
        )
        assert sorted(channel) == sorted(
            f.name
            for f in dataclasses.fields(ChannelPolicy)
            if f.name not in ("exclusive", "max_capacity")
        )

    def test_one_name_per_setting(self) -> None:
        """The file and scenario key is the variable's name without ROUTER_, lower case."""
        assert len(VARIABLES) == len(BY_KEY)
        for name, variable in VARIABLES.items():
            assert name == f"ROUTER_{variable.key.upper()}"
            assert BY_KEY[variable.key] is variable

    def test_defaults_are_the_cores(self) -> None:
        """With nothing set, the policy read is the core's default policy."""
        assert routing_policy({}) == RoutingPolicy()
        assert Settings.from_env({}).policy == RoutingPolicy()

    def test_capacity_bounds_are_the_channels(self) -> None:
        """The capacity setting's bound is what the channel lets an agent declare."""
        capacity = BY_KEY["chat_capacity"].setting
        for channel in capacity.channels:
            assert capacity.maximum == RoutingPolicy().of(channel).max_capacity

    def test_only_the_policys_times_are_scaled(self) -> None:
        """The simulator scales seconds of the routing policy, nothing else."""
        scaled = {s.key for s in SETTINGS if s.scaled}
        assert scaled == {s.key for s in SETTINGS if s.routing and s.kind is Kind.SECONDS}
        assert "max_per_hour" not in scaled
        assert "shutdown_grace_seconds" not in scaled

    @pytest.mark.parametrize("name", WITH_DEFAULT)
    def test_default_written_and_read_back(self, name: str) -> None:
        """Each default, written as an environment variable, reads back as itself."""
        variable = VARIABLES[name]
        assert variable.default is not None
        assert variable.parse_text(variable.text(variable.default)) == variable.default

    @pytest.mark.parametrize("name", WITHOUT_DEFAULT)
    def test_a_setting_without_default_is_unset_when_empty(self, name: str) -> None:
        """A variable without a default, left empty, is unset: the settings are those of
        an empty environment, and what it would fill holds None (no file, plain gRPC,
        the embedded PostgreSQL, no fallback...)."""
        unset = Settings.from_env({})
        assert Settings.from_env({name: ""}) == unset
        assert held(unset, VARIABLES[name]) is None

    def test_the_page_is_current(self) -> None:
        """docs/configuration.md is what `make config-docs` renders from the schema."""
        assert PAGE.read_text(encoding="utf-8") == document(), "run make config-docs"


class TestValues:
    @pytest.mark.parametrize(
        ("key", "raw", "read"),
        [
            ("port", 50051, 50051),
            ("port", 50051.0, 50051),
            ("phone_prefer_previous_agent", 0, False),
            ("phone_prefer_previous_agent", True, True),
            ("chat_target_seconds", 45, 45.0),
            ("chat_fallback_skill", "general", "general"),
        ],
    )
    def test_typed_values(self, key: str, raw: object, read: object) -> None:
        value = BY_KEY[key].parse_value(raw)
        assert value == read
        assert type(value) is type(read)

    @pytest.mark.parametrize(
        ("key", "raw"),
        [
            ("port", 50051.5),
            ("port", True),
            ("port", "50051"),
            ("phone_prefer_previous_agent", "yes"),
            ("phone_prefer_previous_agent", 0.5),
            ("chat_target_seconds", math.nan),
            ("chat_target_seconds", math.inf),
            ("chat_fallback_skill", "Not A Skill"),
            ("chat_fallback_skill", 3),
            ("phone_service_level_goal", 0),
            ("phone_service_level_goal", 1.01),
        ],
    )
    def test_typed_values_refused_by_name(self, key: str, raw: object) -> None:
        """A program's (or a scenario's) value of the wrong type or out of bounds."""
        with pytest.raises(ConfigError, match=key):
            BY_KEY[key].parse_value(raw, where=key)


class TestNewPolicySettings:
    def test_goal_alarm_and_bytes_are_read(self) -> None:
        """Each channel's goal and alarm, and the byte limits, reach the policy."""
        settings = Settings.from_env(
            {
                "ROUTER_CHAT_SERVICE_LEVEL_GOAL": "0.9",
                "ROUTER_CHAT_SERVICE_LEVEL_ALARM": "0.75",
                "ROUTER_MAX_CONTACT_BYTES": "4096",
                "ROUTER_MAX_QUEUE_BYTES": "1048576",
            }
        )
        chat = settings.policy.of(Channel.CHAT)
        assert (chat.service_level_goal, chat.service_level_alarm) == (0.9, 0.75)
        phone = settings.policy.of(Channel.PHONE)
        assert (phone.service_level_goal, phone.service_level_alarm) == (0.8, 0.7)
        assert settings.policy.max_contact_bytes == 4096
        assert settings.policy.max_queue_bytes == 1048576

    def test_alarm_above_goal_names_both(self) -> None:
        with pytest.raises(
            ConfigError,
            match="ROUTER_EMAIL_SERVICE_LEVEL_ALARM must be at most "
            "ROUTER_EMAIL_SERVICE_LEVEL_GOAL",
        ):
            Settings.from_env({"ROUTER_EMAIL_SERVICE_LEVEL_GOAL": "0.5"})

    def test_queue_bytes_below_contact_bytes_names_both(self) -> None:
        with pytest.raises(
            ConfigError, match="ROUTER_MAX_QUEUE_BYTES must be at least ROUTER_MAX_CONTACT_BYTES"
        ):
            Settings.from_env({"ROUTER_MAX_QUEUE_BYTES": "1024"})


class TestRetentionMonths:
    @pytest.mark.parametrize(
        ("at", "months", "expected"),
        [
            (datetime(2026, 12, 5, 1, 2, tzinfo=UTC), 3, datetime(2026, 9, 5, 1, 2, tzinfo=UTC)),
            (datetime(2026, 3, 31, tzinfo=UTC), 1, datetime(2026, 2, 28, tzinfo=UTC)),
            (datetime(2024, 3, 31, tzinfo=UTC), 1, datetime(2024, 2, 29, tzinfo=UTC)),
            (datetime(2026, 1, 15, tzinfo=UTC), 13, datetime(2024, 12, 15, tzinfo=UTC)),
        ],
    )
    def test_months_before(self, at: datetime, months: int, expected: datetime) -> None:
        """Calendar months back, the day clamped to the shorter month's end."""
        assert months_before(at, months) == expected

    def test_timings_cutoff_is_a_month_start(self) -> None:
        """Timings go a whole month (a partition) at a time: kept M months at least."""
        settings = RetentionSettings(personal_months=2, timings_months=6)
        personal, timings = cutoffs(settings, datetime(2026, 12, 5, 1, 2, tzinfo=UTC))
        assert personal == datetime(2026, 10, 5, 1, 2, tzinfo=UTC)
        assert timings == datetime(2026, 6, 1, tzinfo=UTC)
        assert cutoffs(RetentionSettings(), datetime(2026, 12, 5, tzinfo=UTC)) == (None, None)
