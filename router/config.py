"""Settings, read once at start from the `serve` options, the environment and an optional
TOML file, and checked against the schema in router/settings.py."""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

from router.api.access import Tokens
from router.domain import InvalidArgument, RoutingPolicy, validation
from router.errors import ConfigError, TokenError
from router.hours_file import read_calendar
from router.live_feed import FeedSettings
from router.retention import RetentionSettings
from router.settings import Value
from router.toml_file import TomlFileError, read_toml
from router.variables import VARIABLES, Variable, routing_policy

CONFIG_FILE = "ROUTER_CONFIG_FILE"


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
    watch: FeedSettings
    tokens: Tokens | None = None
    tls: ServerTls | None = None
    reporting_database_url: str | None = None
    max_event_streams: int = 100
    event_loop: str = "uvloop"
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    hours_file: Path | None = None
    """The hours-of-operation file, checked whole at start (router/hours_file.py)."""

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, options: Mapping[str, str] | None = None
    ) -> Settings:
        """The settings of `options` (values of `serve` options, by variable name), then
        of `env` (default: the process environment), then of the TOML file that
        ROUTER_CONFIG_FILE (or --config) names, whose keys are the variables' names
        without ROUTER_ in lower case (`phone_reserve = 2`). docs/configuration.md lists
        every variable. An empty value counts as unset."""
        env = os.environ if env is None else env
        raw: dict[str, tuple[object, str]] = {}  # variable name -> (raw value, its label)
        for name, value in (options or {}).items():
            if value != "":
                raw[name] = (value, VARIABLES[name].setting.option or name)
        for name, value in env.items():
            if name in VARIABLES and value != "":
                raw.setdefault(name, (value, name))
        if CONFIG_FILE in raw:
            path, label = raw[CONFIG_FILE]
            for name, entry in _read_file(Path(str(path)), label).items():
                raw.setdefault(name, entry)
        labels = {name: label for name, (_, label) in raw.items()}
        values = {name: _parse(VARIABLES[name], *entry) for name, entry in raw.items()}
        return cls._build(values, lambda variable: labels.get(variable.name, variable.name))

    @classmethod
    def _build(
        cls, values: Mapping[str, Value | None], label: Callable[[Variable], str]
    ) -> Settings:
        def get(name: str) -> Value | None:
            return values.get(name, VARIABLES[name].default)

        def text(name: str) -> str:
            value = get(name)
            return "" if value is None else str(value)

        port, metrics_port = get("ROUTER_PORT"), get("ROUTER_METRICS_PORT")
        grace = get("ROUTER_SHUTDOWN_GRACE_SECONDS")
        event_streams = get("ROUTER_MAX_EVENT_STREAMS")
        assert isinstance(port, int)
        assert isinstance(event_streams, int)
        assert isinstance(grace, int | float)
        assert metrics_port is None or isinstance(metrics_port, int)
        interval, watchers = get("ROUTER_WATCH_INTERVAL_SECONDS"), get("ROUTER_MAX_WATCHERS")
        assert isinstance(interval, int | float)
        assert isinstance(watchers, int)
        policy = replace(
            routing_policy(values, label),
            teams=_teams(text("ROUTER_TEAMS_FILE"), label(VARIABLES["ROUTER_TEAMS_FILE"])),
        )
        hours_file = text("ROUTER_HOURS_FILE")
        if hours_file:
            try:
                read_calendar(Path(hours_file), policy.time_zone)
            except ConfigError as error:
                raise ConfigError(f"{label(VARIABLES['ROUTER_HOURS_FILE'])}: {error}") from None
        return cls(
            retention=_retention(get, label),
            hours_file=Path(hours_file).absolute() if hours_file else None,
            host=text("ROUTER_HOST"),
            port=port,
            database_url=text("ROUTER_DATABASE_URL") or None,
            reporting_database_url=text("ROUTER_REPORTING_DATABASE_URL") or None,
            data_dir=Path(text("ROUTER_DATA_DIR")).absolute(),
            log_format=text("ROUTER_LOG_FORMAT"),
            log_level=text("ROUTER_LOG_LEVEL"),
            event_loop=text("ROUTER_EVENT_LOOP"),
            policy=policy,
            shutdown_grace=float(grace),
            metrics_port=metrics_port,
            watch=FeedSettings(float(interval), watchers),
            max_event_streams=event_streams,
            tokens=_tokens(text("ROUTER_TOKENS_FILE"), label(VARIABLES["ROUTER_TOKENS_FILE"])),
            tls=_tls(
                *(
                    (text(name), label(VARIABLES[name]))
                    for name in (
                        "ROUTER_TLS_CERT_FILE",
                        "ROUTER_TLS_KEY_FILE",
                        "ROUTER_TLS_CLIENT_CA_FILE",
                    )
                )
            ),
        )


def _retention(
    get: Callable[[str], Value | None], label: Callable[[Variable], str]
) -> RetentionSettings:
    """The retention job's settings; personal data is never kept longer than timings
    (0 is forever, so timings kept for a while need personal data kept no longer)."""
    personal, timings = get("ROUTER_PERSONAL_DATA_MONTHS"), get("ROUTER_TIMINGS_MONTHS")
    interval, batch = get("ROUTER_RETENTION_INTERVAL_SECONDS"), get("ROUTER_RETENTION_BATCH_SIZE")
    pause = get("ROUTER_RETENTION_PAUSE_SECONDS")
    assert isinstance(personal, int)
    assert isinstance(timings, int)
    assert isinstance(batch, int)
    assert isinstance(interval, int | float)
    assert isinstance(pause, int | float)
    if timings and not 0 < personal <= timings:
        raise ConfigError(
            f"{label(VARIABLES['ROUTER_PERSONAL_DATA_MONTHS'])} must be between 1 and "
            f"{label(VARIABLES['ROUTER_TIMINGS_MONTHS'])} ({timings}) when that is set, "
            f"got {personal}: personal data goes no later than the contact's rows"
        )
    return RetentionSettings(personal, timings, float(interval), batch, float(pause))


def setting_names() -> frozenset[str]:
    """Every variable (ROUTER_*), from the schema."""
    return frozenset(VARIABLES)


def _parse(variable: Variable, raw: object, where: str) -> Value | None:
    """Text (the environment, an option, a quoted TOML value) or a typed TOML value."""
    if isinstance(raw, str):
        return variable.parse_text(raw, where)
    return variable.parse_value(raw, where)


def _read_file(path: Path, label: str) -> dict[str, tuple[object, str]]:
    """The file's settings by variable name, each labelled with the file and its key;
    an unknown key is refused by name."""
    try:
        data = read_toml(path)
    except TomlFileError as error:
        raise ConfigError(f"{label}: {error}") from None
    settings: dict[str, tuple[object, str]] = {}
    for key, value in data.items():
        variable = VARIABLES.get(f"ROUTER_{key.upper()}")
        if variable is None or variable.key != key or not variable.setting.in_file:
            raise ConfigError(f"{path}: unknown setting {key!r}")
        if value != "":
            settings[variable.name] = (value, f"{path}: {key}")
    return settings


def _teams(path: str, label: str) -> Mapping[str, str]:
    """Agent id -> team from the teams file (team = [agent ids]); empty without one."""
    if not path:
        return MappingProxyType({})
    try:
        data = read_toml(Path(path))
    except TomlFileError as error:
        raise ConfigError(f"{label}: {error}") from None
    teams: dict[str, str] = {}
    for team, members in data.items():
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            raise ConfigError(f"{label}: team {team!r} must be a list of agent ids")
        try:
            validation.team(team, "team")
            agents = validation.agent_ids(members, "agents", limit=len(members))
        except InvalidArgument as error:
            raise ConfigError(f"{label}: {error.problem}") from None
        for agent in sorted(agents):
            if agent in teams:
                raise ConfigError(f"{label}: {agent} is in {teams[agent]!r} and {team!r}")
            teams[agent] = team
    return MappingProxyType(teams)


def _tokens(path: str, label: str) -> Tokens | None:
    if not path:
        return None
    try:
        return Tokens.load(Path(path))
    except TokenError as error:
        raise ConfigError(f"{label}: {error}") from None


def _tls(
    certificate: tuple[str, str], key: tuple[str, str], client_ca: tuple[str, str]
) -> ServerTls | None:
    """The PEM files, each given as (path, label), checked as gRPC will use them: the
    certificate and the key must be a pair, and the CA file must hold certificates."""
    (cert_path, cert_label), (key_path, key_label), (ca_path, ca_label) = (
        certificate,
        key,
        client_ca,
    )
    if not cert_path and not key_path:
        if ca_path:
            raise ConfigError(f"{ca_label} needs {cert_label} and {key_label}")
        return None
    if not cert_path or not key_path:
        raise ConfigError(f"{cert_label} and {key_label} go together")
    chain, private_key = _file(cert_label, cert_path), _file(key_label, key_path)
    _certificates(cert_label, cert_path, chain)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        # A password callback, so that an encrypted key fails instead of prompting.
        context.load_cert_chain(cert_path, key_path, password=lambda: b"")
    except ssl.SSLError as error:
        if error.reason == "KEY_VALUES_MISMATCH":
            raise ConfigError(
                f"{cert_label} ({cert_path}) and {key_label} ({key_path}) are not a pair: "
                "the key does not match the certificate"
            ) from None
        raise ConfigError(
            f"{key_label}: {key_path} is not an unencrypted PEM private key ({error.reason})"
        ) from None
    ca = None
    if ca_path:
        ca = _file(ca_label, ca_path)
        _certificates(ca_label, ca_path, ca)
    return ServerTls(chain, private_key, ca)


def _certificates(label: str, path: str, pem: bytes) -> None:
    """Refuses a file that holds no PEM certificate."""
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=pem.decode("ascii"))
    except (ssl.SSLError, UnicodeDecodeError):
        raise ConfigError(f"{label}: {path} holds no PEM certificate") from None


def _file(label: str, path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise ConfigError(f"{label}: cannot read {path}: {error.strerror}") from None
