"""The environment variables that router/settings.py's SETTINGS make (one per setting,
one per channel for a per-channel setting), how each reads its text, and the routing
policy a set of values gives. router/config.py, the `serve` options and the scenarios
read settings through these; SETTINGS stays the one place a setting is declared."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from router.domain.channel import Channel, RoutingPolicy
from router.domain.time_zones import is_time_zone
from router.domain.validation import SKILL
from router.errors import ConfigError
from router.settings import SETTINGS, Kind, Setting, Value, bounds

_FLAG_WORDS = dict.fromkeys(("true", "1", "yes", "on"), True) | dict.fromkeys(
    ("false", "0", "no", "off"), False
)
_WHOLE = re.compile(r"[+-]?[0-9]+")


@dataclass(frozen=True, slots=True)
class Variable:
    """One environment variable: a setting, for one channel if it is per channel."""

    setting: Setting
    channel: Channel | None
    default: Value | None

    @property
    def key(self) -> str:
        """Its key in ROUTER_CONFIG_FILE and in a scenario's [router] table."""
        return self.setting.key if self.channel is None else f"{self.channel}_{self.setting.key}"

    @property
    def name(self) -> str:
        return f"ROUTER_{self.key.upper()}"

    def parse_text(self, raw: str, where: str | None = None) -> Value | None:
        """The value of `raw` as written in the environment or on the command line."""
        where = where or self.name
        setting = self.setting
        text = raw.strip()
        if setting.off is not None and text.lower() == setting.off:
            return None
        if setting.kind is Kind.FLAG:
            if text.lower() not in _FLAG_WORDS:
                raise ConfigError(f"{where} must be true or false, got {raw!r}")
            return _FLAG_WORDS[text.lower()]
        if setting.kind in (Kind.WHOLE, Kind.BYTES):
            if not _WHOLE.fullmatch(text):
                raise ConfigError(f"{where} must be a whole number, got {raw!r}")
            return self._bounded(int(text), where, raw)
        if setting.kind.numeric:
            try:
                number = float(text)
            except ValueError:
                raise ConfigError(f"{where} must be a number, got {raw!r}") from None
            return self._bounded(number, where, raw)
        return self._word(raw, where)

    def parse_value(self, raw: object, where: str | None = None) -> Value | None:
        """The value of `raw` as a TOML file or a program gives it: a flag is a bool (or
        0 or 1), a number is a number, a whole number has no fraction."""
        where = where or self.name
        kind = self.setting.kind
        if kind is Kind.FLAG:
            if isinstance(raw, bool):
                return raw
            if isinstance(raw, int | float) and raw in (0, 1):
                return bool(raw)
            raise ConfigError(f"{where} must be true or false, got {raw!r}")
        if kind.numeric:
            if isinstance(raw, bool) or not isinstance(raw, int | float):
                raise ConfigError(f"{where} must be a number, got {raw!r}")
            if kind in (Kind.WHOLE, Kind.BYTES):
                if isinstance(raw, float) and not raw.is_integer():
                    raise ConfigError(f"{where} must be a whole number, got {raw!r}")
                return self._bounded(int(raw), where, raw)
            return self._bounded(float(raw), where, raw)
        if not isinstance(raw, str):
            raise ConfigError(f"{where} must be text, got {raw!r}")
        return self._word(raw, where)

    def text(self, value: Value) -> str:
        """`value` written as an environment variable holds it."""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, float):
            return repr(value)
        return str(value)

    def _bounded(self, number: float, where: str, raw: object) -> int | float:
        setting = self.setting
        if isinstance(number, float) and not math.isfinite(number):
            raise ConfigError(f"{where} must be a finite number, got {raw!r}")
        low, high = setting.minimum, setting.maximum
        too_low = low is not None and (number <= low if setting.above_minimum else number < low)
        if too_low or (high is not None and number > high):
            raise ConfigError(f"{where} must be {bounds(setting)}, got {raw!r}")
        return number

    def _word(self, raw: str, where: str) -> str:
        setting = self.setting
        if setting.kind is Kind.CHOICE:
            if raw.strip().lower() not in setting.choices:
                choices = ", ".join(setting.choices)
                raise ConfigError(f"{where} must be one of {choices}, got {raw!r}")
            return raw.strip().lower()
        if setting.kind is Kind.SKILL and not SKILL.fullmatch(raw):
            raise ConfigError(f"{where} must be a skill: 1 to 64 characters of [a-z0-9:_.-]")
        if setting.kind is Kind.TIME_ZONE and not is_time_zone(raw.strip()):
            raise ConfigError(
                f"{where} must be an IANA time zone (Europe/Paris, America/New_York, UTC), "
                f"got {raw!r}"
            )
        return raw.strip() if setting.kind is Kind.TIME_ZONE else raw


def _variables() -> Iterator[Variable]:
    policy = RoutingPolicy()
    for setting in SETTINGS:
        if setting.field is None:
            yield Variable(setting, None, setting.default)
        elif not setting.per_channel:
            yield Variable(setting, None, _from_field(getattr(policy, setting.field)))
        for channel in setting.channels:
            default = getattr(policy.of(channel), setting.field or "")
            yield Variable(setting, channel, _from_field(default))


def _from_field(value: object) -> Value | None:
    """A policy field's default as a setting's value: a set of skills is one skill."""
    if isinstance(value, frozenset):
        return next(iter(sorted(value)), None)
    assert value is None or isinstance(value, bool | int | float | str), value
    return value


VARIABLES: Mapping[str, Variable] = MappingProxyType({v.name: v for v in _variables()})
"""Every variable, by name (ROUTER_PHONE_TARGET_SECONDS)."""

BY_KEY: Mapping[str, Variable] = MappingProxyType({v.key: v for v in VARIABLES.values()})
"""Every variable, by its key in a file or a scenario (phone_target_seconds)."""


def routing_policy(
    values: Mapping[str, Value | None], label: Callable[[Variable], str] | None = None
) -> RoutingPolicy:
    """The routing policy of `values` (by variable name; the rest keep their defaults).

    `label` names a variable in errors (default: its name)."""
    name_of = label or (lambda variable: variable.name)

    def value(variable: Variable) -> object:
        given = values.get(variable.name, variable.default)
        if variable.setting.kind is Kind.SKILL:  # the policy holds a set of skills
            return frozenset() if given is None else frozenset({given})
        return given

    def number(key: str) -> float:
        given = value(BY_KEY[key])
        assert isinstance(given, int | float), key
        return given

    for channel in Channel:
        goal, alarm = f"{channel}_service_level_goal", f"{channel}_service_level_alarm"
        if number(alarm) > number(goal):
            raise ConfigError(f"{name_of(BY_KEY[alarm])} must be at most {name_of(BY_KEY[goal])}")
    if number("max_queue_bytes") < number("max_contact_bytes"):
        raise ConfigError(
            f"{name_of(BY_KEY['max_queue_bytes'])} must be at least "
            f"{name_of(BY_KEY['max_contact_bytes'])}"
        )
    defaults = RoutingPolicy()
    # Any: each value was checked against its setting's kind and bounds when read.
    general: dict[str, Any] = {}
    per_channel: dict[Channel, dict[str, Any]] = {channel: {} for channel in Channel}
    for variable in VARIABLES.values():
        if variable.setting.field is not None:
            fields = general if variable.channel is None else per_channel[variable.channel]
            fields[variable.setting.field] = value(variable)
    try:
        channels = {
            channel: replace(defaults.of(channel), **fields)
            for channel, fields in per_channel.items()
        }
        return replace(defaults, channels=MappingProxyType(channels), **general)
    except ValueError as error:  # a rule of the policy that no bound above expresses
        raise ConfigError(f"routing policy: {error}") from None
