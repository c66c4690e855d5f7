"""Settings, read once from the environment and checked at start."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from router.api.access import Tokens
from router.domain import Channel, ChannelPolicy, RoutingPolicy, validation
from router.errors import ConfigError, TokenError
from router.toml_file import TomlFileError, read_toml


@dataclass(frozen=True, slots=True)
class ServerTls:
    """PEM contents: the server's certificate chain and key, and optionally the CA
    whose client certificates are required (mutual TLS)."""

    certificate_chain: bytes
    private_key: bytes
    client_ca: bytes | None = None


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
    tokens: Tokens | None = None
    tls: ServerTls | None = None

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
        return cls._read(_Reader(env))

    @classmethod
    def _read(cls, reader: _Reader) -> Settings:
        defaults = RoutingPolicy()
        channels = {}
        for channel in Channel:
            base = defaults.of(channel)
            name = channel.value.upper()
            target = reader.number(f"ROUTER_{name}_TARGET_SECONDS", base.answer_target, 0.001)
            fallback_after = reader.number(f"ROUTER_{name}_FALLBACK_AFTER_SECONDS", -1.0, 0)
            fallback_skill = reader.text(f"ROUTER_{name}_FALLBACK_SKILL", "")
            if fallback_skill and not validation.SKILL.fullmatch(fallback_skill):
                raise ConfigError(
                    f"ROUTER_{name}_FALLBACK_SKILL must be 1 to 64 characters of [a-z0-9:_.-]"
                )
            if base.exclusive:
                capacity = maximum = 1
            else:
                capacity = int(reader.number(f"ROUTER_{name}_CAPACITY", base.default_capacity, 0))
                maximum = base.max_capacity
                if capacity > maximum:
                    raise ConfigError(f"ROUTER_{name}_CAPACITY must be at most {maximum}")
            channels[channel] = ChannelPolicy(
                target,
                capacity,
                maximum,
                exclusive=base.exclusive,
                max_queue=int(reader.number(f"ROUTER_{name}_MAX_QUEUE", base.max_queue, 1)),
                prefer_previous_agent=reader.flag(
                    f"ROUTER_{name}_PREFER_PREVIOUS_AGENT", base.prefer_previous_agent
                ),
                preferred_agent_wait=reader.number(
                    f"ROUTER_{name}_PREFERRED_AGENT_WAIT_SECONDS", target / 2, 0
                ),
                max_per_hour=int(reader.number(f"ROUTER_{name}_MAX_PER_HOUR", 0, 0)),
                fallback_after=None if fallback_after < 0 else fallback_after,
                fallback_skills=frozenset({fallback_skill} - {""}),
            )
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
            reconnect_grace=reader.number(
                "ROUTER_RECONNECT_GRACE_SECONDS", defaults.reconnect_grace, 0
            ),
            skill_relax=reader.number("ROUTER_SKILL_RELAX_SECONDS", defaults.skill_relax, 0),
            remembered_customers=int(
                reader.number("ROUTER_REMEMBERED_CUSTOMERS", defaults.remembered_customers, 0)
            ),
        )
        return cls(
            host=reader.text("ROUTER_HOST", "127.0.0.1"),
            port=int(reader.number("ROUTER_PORT", 50051, 0, 65535)),
            database_url=reader.text("ROUTER_DATABASE_URL", "") or None,
            data_dir=Path(reader.text("ROUTER_DATA_DIR", ".data")).absolute(),
            log_format=reader.choice("ROUTER_LOG_FORMAT", "auto", ("auto", "json", "console")),
            log_level=reader.choice(
                "ROUTER_LOG_LEVEL", "info", ("debug", "info", "warning", "error")
            ),
            policy=policy,
            shutdown_grace=reader.number("ROUTER_SHUTDOWN_GRACE_SECONDS", 10.0, 0),
            metrics_port=(
                None
                if reader.text("ROUTER_METRICS_PORT", "").lower() == "off"
                else int(reader.number("ROUTER_METRICS_PORT", 9464, 0, 65535))
            ),
            tokens=_tokens(reader.text("ROUTER_TOKENS_FILE", "")),
            tls=_tls(
                reader.text("ROUTER_TLS_CERT_FILE", ""),
                reader.text("ROUTER_TLS_KEY_FILE", ""),
                reader.text("ROUTER_TLS_CLIENT_CA_FILE", ""),
            ),
        )


class _Reader:
    """Reads settings and remembers every name asked for (see setting_names)."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env
        self.names: set[str] = set()

    def text(self, name: str, default: str) -> str:
        self.names.add(name)
        return self._env.get(name, default)

    def choice(self, name: str, default: str, options: tuple[str, ...]) -> str:
        value = self.text(name, default).lower()
        if value not in options:
            raise ConfigError(f"{name} must be one of {', '.join(options)}, got {value!r}")
        return value

    def flag(self, name: str, default: bool) -> bool:
        value = self.text(name, "").lower()
        if value == "":
            return default
        if value not in _FLAGS:
            raise ConfigError(f"{name} must be true or false, got {value!r}")
        return _FLAGS[value]

    def number(
        self, name: str, default: float, minimum: float, maximum: float = float("inf")
    ) -> float:
        raw = self.text(name, "")
        if raw is None or raw == "":
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {raw!r}") from None
        if not minimum <= value <= maximum:
            raise ConfigError(f"{name} must be between {minimum} and {maximum}, got {raw}")
        return value


_FLAGS = dict.fromkeys(("true", "1", "yes", "on"), True) | dict.fromkeys(
    ("false", "0", "no", "off"), False
)


@functools.cache
def setting_names() -> frozenset[str]:
    """Every setting, as read by Settings: derived from the reads, never listed twice."""
    reader = _Reader({})
    Settings._read(reader)
    return frozenset(reader.names)


def _tokens(path: str) -> Tokens | None:
    if not path:
        return None
    try:
        return Tokens.load(Path(path))
    except TokenError as error:
        raise ConfigError(f"ROUTER_TOKENS_FILE: {error}") from None


def _tls(certificate: str, key: str, client_ca: str) -> ServerTls | None:
    if not certificate and not key:
        if client_ca:
            raise ConfigError("ROUTER_TLS_CLIENT_CA_FILE needs ROUTER_TLS_CERT_FILE and _KEY_FILE")
        return None
    if not certificate or not key:
        raise ConfigError("ROUTER_TLS_CERT_FILE and ROUTER_TLS_KEY_FILE go together")
    return ServerTls(
        _file("ROUTER_TLS_CERT_FILE", certificate),
        _file("ROUTER_TLS_KEY_FILE", key),
        _file("ROUTER_TLS_CLIENT_CA_FILE", client_ca) if client_ca else None,
    )


def _file(name: str, path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise ConfigError(f"{name}: cannot read {path}: {error.strerror}") from None


def _read_toml(path: Path) -> dict[str, str]:
    """The file's settings as ROUTER_* variables; unknown keys are refused by name."""
    try:
        data = read_toml(path)
    except TomlFileError as error:
        raise ConfigError(f"ROUTER_CONFIG_FILE: {error}") from None
    settings = {}
    for key, value in data.items():
        name = f"ROUTER_{key.upper()}"
        if name not in setting_names() or isinstance(value, dict | list):
            raise ConfigError(f"{path}: unknown setting {key!r}")
        settings[name] = str(value).lower() if isinstance(value, bool) else str(value)
    return settings
