"""Settings, read once from the environment and checked at start."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from router.domain import Channel, ChannelPolicy, RoutingPolicy


class ConfigError(Exception):
    """A setting is malformed; the message names the variable."""


@dataclass(frozen=True, slots=True)
class Settings:
    host: str
    port: int
    database_url: str | None
    data_dir: Path
    log_format: str
    log_level: str
    policy: RoutingPolicy
    shutdown_grace: float
    metrics_port: int | None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Every variable is documented in the README's configuration table.

        ROUTER_CONFIG_FILE may name a TOML file whose keys are the variables' names
        without the ROUTER_ prefix, in lower case (`phone_reserve = 2`); a variable set
        in the environment wins over the file.
        """
        env = os.environ if env is None else env
        path = env.get("ROUTER_CONFIG_FILE")
        if path:
            env = {**_read_toml(Path(path)), **env}
        reader = _Reader(env)
        defaults = RoutingPolicy()
        channels = {}
        for channel in Channel:
            base = defaults.of(channel)
            name = channel.value.upper()
            target = reader.number(f"ROUTER_{name}_TARGET_SECONDS", base.answer_target, 0.001)
            if base.exclusive:
                channels[channel] = ChannelPolicy(target, 1, 1, exclusive=True)
                continue
            capacity = int(reader.number(f"ROUTER_{name}_CAPACITY", base.default_capacity, 0))
            if capacity > base.max_capacity:
                raise ConfigError(f"ROUTER_{name}_CAPACITY must be at most {base.max_capacity}")
            channels[channel] = ChannelPolicy(target, capacity, base.max_capacity)
        policy = RoutingPolicy(
            channels=MappingProxyType(channels),
            phone_reserve=int(reader.number("ROUTER_PHONE_RESERVE", defaults.phone_reserve, 0)),
            offer_timeout=reader.number(
                "ROUTER_OFFER_TIMEOUT_SECONDS", defaults.offer_timeout, 0.1
            ),
            decline_exclusion=reader.number(
                "ROUTER_DECLINE_EXCLUSION_SECONDS", defaults.decline_exclusion, 0
            ),
            short_abandon=reader.number("ROUTER_SHORT_ABANDON_SECONDS", defaults.short_abandon, 0),
        )
        log_format = env.get("ROUTER_LOG_FORMAT", "auto")
        if log_format not in ("auto", "json", "console"):
            raise ConfigError("ROUTER_LOG_FORMAT must be auto, json or console")
        log_level = env.get("ROUTER_LOG_LEVEL", "info").lower()
        if log_level not in ("debug", "info", "warning", "error"):
            raise ConfigError("ROUTER_LOG_LEVEL must be debug, info, warning or error")
        return cls(
            host=env.get("ROUTER_HOST", "127.0.0.1"),
            port=int(reader.number("ROUTER_PORT", 50051, 0, 65535)),
            database_url=env.get("ROUTER_DATABASE_URL") or None,
            data_dir=Path(env.get("ROUTER_DATA_DIR", ".data")).absolute(),
            log_format=log_format,
            log_level=log_level,
            policy=policy,
            shutdown_grace=reader.number("ROUTER_SHUTDOWN_GRACE_SECONDS", 10.0, 0),
            metrics_port=(
                None
                if env.get("ROUTER_METRICS_PORT", "").lower() == "off"
                else int(reader.number("ROUTER_METRICS_PORT", 9464, 0, 65535))
            ),
        )


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def number(
        self, name: str, default: float, minimum: float, maximum: float = float("inf")
    ) -> float:
        raw = self._env.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {raw!r}") from None
        if not minimum <= value <= maximum:
            raise ConfigError(f"{name} must be between {minimum} and {maximum}, got {raw}")
        return value


KNOWN = frozenset(
    {
        "ROUTER_DATABASE_URL",
        "ROUTER_DATA_DIR",
        "ROUTER_HOST",
        "ROUTER_PORT",
        "ROUTER_METRICS_PORT",
        "ROUTER_LOG_FORMAT",
        "ROUTER_LOG_LEVEL",
        "ROUTER_PHONE_RESERVE",
        "ROUTER_OFFER_TIMEOUT_SECONDS",
        "ROUTER_DECLINE_EXCLUSION_SECONDS",
        "ROUTER_SHORT_ABANDON_SECONDS",
        "ROUTER_SHUTDOWN_GRACE_SECONDS",
        *(f"ROUTER_{c.value.upper()}_TARGET_SECONDS" for c in Channel),
        *(f"ROUTER_{c.value.upper()}_CAPACITY" for c in Channel if c is not Channel.PHONE),
    }
)
"""Every setting; the README's configuration table lists the same names."""


def _read_toml(path: Path) -> dict[str, str]:
    """The file's settings as ROUTER_* variables; unknown keys are refused by name."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"ROUTER_CONFIG_FILE: cannot read {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"ROUTER_CONFIG_FILE: {path} is not valid TOML: {error}") from None
    settings = {}
    for key, value in data.items():
        name = f"ROUTER_{key.upper()}"
        if name not in KNOWN or isinstance(value, dict | list):
            raise ConfigError(f"{path}: unknown setting {key!r}")
        settings[name] = str(value).lower() if isinstance(value, bool) else str(value)
    return settings
