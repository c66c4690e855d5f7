"""Every setting of the router, declared once.

A `Setting` says what one setting is: its kind (whole number, seconds, fraction,
flag, text...), bounds, whether each channel has its own, and one line of doc. Its
default is the routing core's own (the `RoutingPolicy` or `ChannelPolicy` field it
fills), or given here for the server's settings. Everything else derives from SETTINGS:

- router/variables.py makes its environment variables (one per channel for a
  per-channel setting), parses their text and builds the routing policy of a set of
  values;

- router/config.py reads them from the environment, the `serve` options and the
  ROUTER_CONFIG_FILE (keys: the variable's name without ROUTER_, in lower case);
- the simulator's scenario `[router]` keys are the same keys, for the settings of
  the routing policy; the simulator divides the times (seconds) by its time scale
  and leaves counts, flags, capacities, fractions and bytes as they are;
- `contact-router serve` takes an option for each setting that declares one;
- docs/configuration.md is rendered from it by `python -m router.settings_doc`
  (`make config-docs`; `make config-check` fails when the committed page is stale).

Adding a setting: declare it here (with `field`, after adding that field to the
policy in router/domain/channel.py, for a routing setting), then `make config-docs`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TypeAlias

from router.domain.channel import Channel
from router.live_feed import MAX_WATCHERS, WATCH_INTERVAL

Value: TypeAlias = bool | int | float | str
"""A setting's value once read: int for whole numbers and bytes, float for seconds and
fractions, bool for flags, str for the rest. None stands for "unset" or "off"."""

LONGEST = 366 * 24 * 3600.0
"""The most seconds any time setting may hold (a year): beyond it a deadline could
leave the calendar, and no center means it."""


class Kind(StrEnum):
    """What a setting's value is, as the documentation names it."""

    WHOLE = "whole number"
    BYTES = "bytes"
    SECONDS = "seconds"
    FRACTION = "fraction"
    FLAG = "flag"
    CHOICE = "choice"
    TEXT = "text"
    PATH = "path"
    SKILL = "skill"
    TIME_ZONE = "time zone"

    @property
    def numeric(self) -> bool:
        return self in (Kind.WHOLE, Kind.BYTES, Kind.SECONDS, Kind.FRACTION)


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting; `channels` non-empty: one variable per channel, ROUTER_<CHANNEL>_<KEY>.

    field: the RoutingPolicy field it fills (the ChannelPolicy field, per channel), which
        also holds its default; None for the server's settings, which carry `default`.
    off: a word that turns the setting off (its value is then None).
    unset: what it means to leave it unset, for a setting without a default.
    option: the `contact-router serve` option that sets it.
    in_file: whether ROUTER_CONFIG_FILE may hold it (not the file's own name).
    """

    key: str
    kind: Kind
    doc: str
    field: str | None = None
    default: Value | None = None
    channels: tuple[Channel, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    above_minimum: bool = False  # the minimum itself is not allowed
    choices: tuple[str, ...] = ()
    off: str | None = None
    unset: str = ""
    option: str | None = None
    in_file: bool = True

    def __post_init__(self) -> None:
        # A routing setting's default is the core's; a per-channel one fills a field.
        if self.field is not None and self.default is not None:
            raise ValueError(f"{self.key}: the default of a routing setting is its field's")
        if self.channels and self.field is None:
            raise ValueError(f"{self.key}: a per-channel setting fills a ChannelPolicy field")
        if (self.kind is Kind.CHOICE) != bool(self.choices):
            raise ValueError(f"{self.key}: choices go with, and only with, Kind.CHOICE")

    @property
    def per_channel(self) -> bool:
        return bool(self.channels)

    @property
    def routing(self) -> bool:
        """A setting of the routing policy: a scenario may set it."""
        return self.field is not None

    @property
    def scaled(self) -> bool:
        """The simulator divides it by its time scale: the routing policy's times."""
        return self.routing and self.kind is Kind.SECONDS

    @property
    def pattern(self) -> str:
        """Its variable's name, with <CHANNEL> for a per-channel setting."""
        return f"ROUTER_{'<CHANNEL>_' if self.per_channel else ''}{self.key.upper()}"


_EVERY = tuple(Channel)

SETTINGS: tuple[Setting, ...] = (
    # ---------------------------------------------------------------- the server
    Setting(
        "config_file",
        Kind.PATH,
        "TOML file of settings keyed by these names without ROUTER_, in lower case",
        option="--config",
        in_file=False,
    ),
    Setting(
        "host",
        Kind.TEXT,
        "address to listen on (0.0.0.0: other machines too, which needs ROUTER_TOKENS_FILE)",
        default="127.0.0.1",
        option="--host",
    ),
    Setting(
        "port",
        Kind.WHOLE,
        "gRPC port (0 picks a free one and logs it)",
        default=50051,
        minimum=0,
        maximum=65535,
        option="--port",
    ),
    Setting(
        "metrics_port",
        Kind.WHOLE,
        "Prometheus metrics at http://HOST:PORT/metrics (0 picks a free port, off serves none)",
        default=9464,
        minimum=0,
        maximum=65535,
        off="off",
        option="--metrics-port",
    ),
    Setting(
        "database_url",
        Kind.TEXT,
        "PostgreSQL URL; unset, an embedded PostgreSQL runs in ROUTER_DATA_DIR/postgres",
        unset="embedded PostgreSQL",
        option="--database-url",
    ),
    Setting(
        "reporting_database_url",
        Kind.TEXT,
        "PostgreSQL URL of a read replica of that database: the reporting RPCs read there "
        "(writes stay on the primary)",
        unset="reports read ROUTER_DATABASE_URL",
        option="--reporting-database-url",
    ),
    Setting(
        "data_dir",
        Kind.PATH,
        "where the embedded PostgreSQL keeps its files",
        default=".data",
        option="--data-dir",
    ),
    Setting(
        "log_format",
        Kind.CHOICE,
        "json, console, or auto (console on a terminal, JSON otherwise)",
        default="auto",
        choices=("auto", "json", "console"),
        option="--log-format",
    ),
    Setting(
        "log_level",
        Kind.CHOICE,
        "the least severe log lines written",
        default="info",
        choices=("debug", "info", "warning", "error"),
        option="--log-level",
    ),
    Setting(
        "event_loop",
        Kind.CHOICE,
        "uvloop (less CPU per RPC, see bench/RESULTS.md) or asyncio (the standard library's)",
        default="uvloop",
        choices=("uvloop", "asyncio"),
        option="--event-loop",
    ),
    Setting(
        "shutdown_grace_seconds",
        Kind.SECONDS,
        doc="time given to calls in flight on shutdown",
        default=10.0,
        minimum=0,
        maximum=LONGEST,
    ),
    Setting(
        "watch_interval_seconds",
        Kind.SECONDS,
        doc="least time between two WatchQueue pictures: changes in between make one picture",
        default=WATCH_INTERVAL,
        minimum=0.01,
        maximum=60,
    ),
    Setting(
        "max_watchers",
        Kind.WHOLE,
        "most WatchQueue streams open at once; beyond: refused (RESOURCE_EXHAUSTED)",
        default=MAX_WATCHERS,
        minimum=0,
    ),
    Setting(
        "personal_data_months",
        Kind.WHOLE,
        "months a finished contact keeps its customer id, attributes and feedback comment; "
        "then anonymised (0: kept as long as the contact)",
        default=0,
        minimum=0,
        maximum=1200,
    ),
    Setting(
        "timings_months",
        Kind.WHOLE,
        "months finished contacts and their events are kept (at least "
        "ROUTER_PERSONAL_DATA_MONTHS); then deleted, a month at a time (0: forever)",
        default=0,
        minimum=0,
        maximum=1200,
    ),
    Setting(
        "retention_interval_seconds",
        Kind.SECONDS,
        doc="time between two runs of the retention job (the first runs at activation)",
        default=86400.0,
        minimum=1,
        maximum=LONGEST,
    ),
    Setting(
        "retention_pause_seconds",
        Kind.SECONDS,
        doc="rest between two of the retention job's batches, leaving PostgreSQL's CPU and "
        "disk to the router's writes (bench/RESULTS.md, Retention)",
        default=0.0,
        minimum=0,
        maximum=60,
    ),
    Setting(
        "retention_batch_size",
        Kind.WHOLE,
        "contacts the retention job changes per transaction",
        default=5000,
        minimum=1,
        maximum=100000,
    ),
    Setting(
        "tokens_file",
        Kind.PATH,
        "TOML file of accepted bearer tokens (digests, a role each); unset: loopback only",
        unset="loopback only",
        option="--tokens-file",
    ),
    Setting(
        "tls_cert_file",
        Kind.PATH,
        "PEM certificate chain: serve gRPC over TLS (with ROUTER_TLS_KEY_FILE)",
        unset="plain gRPC",
        option="--tls-cert-file",
    ),
    Setting(
        "tls_key_file",
        Kind.PATH,
        "PEM private key of that certificate (checked against it at start)",
        option="--tls-key-file",
    ),
    Setting(
        "tls_client_ca_file",
        Kind.PATH,
        "PEM CA: require client certificates signed by it (mutual TLS)",
        unset="no client certificates",
        option="--tls-client-ca-file",
    ),
    Setting(
        "max_event_streams",
        Kind.WHOLE,
        "EventService.StreamEvents streams open at once; more are refused (RESOURCE_EXHAUSTED)",
        default=100,
        minimum=0,
    ),
    # ------------------------------------------------------- the routing policy
    Setting(
        "phone_reserve",
        Kind.WHOLE,
        "idle phone-capable agents kept free of chat and email, so a call is answered at once",
        field="phone_reserve",
        minimum=0,
    ),
    Setting(
        "offer_timeout_seconds",
        Kind.SECONDS,
        doc="time to accept an offer before it returns to the queue (the agent is set away)",
        field="offer_timeout",
        minimum=0.1,
        maximum=LONGEST,
    ),
    Setting(
        "decline_exclusion_seconds",
        Kind.SECONDS,
        doc="how long a declined contact skips the agent who declined it",
        field="decline_exclusion",
        minimum=0,
        maximum=LONGEST,
    ),
    Setting(
        "short_abandon_seconds",
        Kind.SECONDS,
        doc="abandons within this wait are excluded from service level",
        field="short_abandon",
        minimum=0,
        maximum=LONGEST,
    ),
    Setting(
        "reconnect_grace_seconds",
        Kind.SECONDS,
        doc="after a restart, time an agent has to sign in again and keep its answered contacts",
        field="reconnect_grace",
        minimum=0,
        maximum=LONGEST,
    ),
    Setting(
        "skill_relax_seconds",
        Kind.SECONDS,
        doc="each preferred skill holds this long, then the least wanted is dropped (0: off)",
        field="skill_relax",
        minimum=0,
        maximum=LONGEST,
    ),
    Setting(
        "remembered_customers",
        Kind.WHOLE,
        "customers whose previous agent is kept (the most recent), rebuilt on start",
        field="remembered_customers",
        minimum=0,
    ),
    Setting(
        "max_contact_bytes",
        Kind.BYTES,
        "most bytes one waiting contact may hold (attributes, skills, ids); beyond: refused",
        field="max_contact_bytes",
        minimum=1,
    ),
    Setting(
        "max_queue_bytes",
        Kind.BYTES,
        "most bytes all waiting contacts may hold together (at least ROUTER_MAX_CONTACT_BYTES)",
        field="max_queue_bytes",
        minimum=1,
    ),
    Setting(
        "teams_file",
        Kind.PATH,
        'TOML file of teams: `"Returns West" = ["alice", "bob"]`; an agent listed there '
        "whose sign-in gives no team is in that team",
        unset="teams only from sign-in",
    ),
    Setting(
        "hours_file",
        Kind.PATH,
        "TOML file of hours of operation (weekly hours per channel or skill, holidays, "
        "closures; deploy/hours.example.toml), on the ROUTER_TIME_ZONE clock; read again "
        "on SIGHUP and when it changes (a bad one is refused and logged, the old stays)",
        unset="every channel always open",
    ),
    Setting(
        "time_zone",
        Kind.TIME_ZONE,
        "the center's IANA time zone: report days, weeks, months and years begin at local "
        "midnight there, and 15/30/60-minute intervals follow its clock",
        field="time_zone",
    ),
    Setting(
        "callback_retry_seconds",
        Kind.SECONDS,
        doc="after a callback's dial found no answer or a busy line, time before it is "
        "offered again",
        field="callback_retry_delay",
        minimum=0,
        maximum=LONGEST,
    ),
    Setting(
        "callback_attempts",
        Kind.WHOLE,
        "dials a callback gets; after the last failed one it ends UNREACHED",
        field="callback_attempts",
        minimum=1,
        maximum=100,
    ),
    Setting(
        "callback_target_seconds",
        Kind.SECONDS,
        doc="a callback first dialled within this of its start (queued_at, or its window's) "
        "meets the callbacks' service level",
        field="callback_target",
        minimum=0.001,
        maximum=LONGEST,
    ),
    # ------------------------------------------------------------- per channel
    Setting(
        "target_seconds",
        Kind.SECONDS,
        doc="answer target: the service-level threshold and the scale of urgency",
        field="answer_target",
        channels=_EVERY,
        minimum=0.001,
        maximum=LONGEST,
    ),
    Setting(
        "service_level_goal",
        Kind.FRACTION,
        "share of contacts to answer within the target (0.8: 80% within 20 s)",
        field="service_level_goal",
        channels=_EVERY,
        minimum=0,
        above_minimum=True,
        maximum=1,
    ),
    Setting(
        "service_level_alarm",
        Kind.FRACTION,
        "a rolling service level below this is an alarm (at most the goal)",
        field="service_level_alarm",
        channels=_EVERY,
        minimum=0,
        maximum=1,
    ),
    Setting(
        "capacity",
        Kind.WHOLE,
        "contacts an agent holds at once when its sign-in does not say (a call is exclusive)",
        field="default_capacity",
        channels=(Channel.CHAT, Channel.EMAIL),
        minimum=0,
        maximum=20,
    ),
    Setting(
        "max_queue",
        Kind.WHOLE,
        "most contacts waiting at once; a submission beyond it is refused (RESOURCE_EXHAUSTED)",
        field="max_queue",
        channels=_EVERY,
        minimum=1,
    ),
    Setting(
        "prefer_previous_agent",
        Kind.FLAG,
        "hold a contact for the agent who last completed one for the same customer",
        field="prefer_previous_agent",
        channels=_EVERY,
    ),
    Setting(
        "preferred_agent_wait_seconds",
        Kind.SECONDS,
        doc="how long a contact is held for its preferred agent (named or previous)",
        field="preferred_agent_wait",
        channels=_EVERY,
        minimum=0,
        unset="half the target",
        maximum=LONGEST,
    ),
    Setting(
        "max_per_hour",
        Kind.WHOLE,
        "most contacts an agent answers in any rolling (real) hour (0: no cap)",
        field="max_per_hour",
        channels=_EVERY,
        minimum=0,
    ),
    Setting(
        "fallback_after_seconds",
        Kind.SECONDS,
        doc="a contact no signed-in agent could serve moves to the fallback skill after this",
        field="fallback_after",
        channels=_EVERY,
        minimum=0,
        unset="never: the contact waits",
        maximum=LONGEST,
    ),
    Setting(
        "fallback_skill",
        Kind.SKILL,
        "the skill such a contact then requires",
        field="fallback_skills",
        channels=_EVERY,
        unset="any agent of the channel",
    ),
    Setting(
        "callback_offer_after_seconds",
        Kind.SECONDS,
        doc="GetContact offers a callback (callback_offered) when the estimated wait is over this",
        field="callback_offer_after",
        channels=_EVERY,
        minimum=0,
        unset="never offered",
        maximum=LONGEST,
    ),
)


def bounds(setting: Setting) -> str:
    """The allowed values in words, for messages and the table."""
    allowed = _bounds(setting)
    if setting.off is not None:
        return f"{allowed}, or {setting.off}" if allowed else setting.off
    return allowed


def _bounds(setting: Setting) -> str:
    if setting.choices:
        return "one of " + ", ".join(setting.choices)
    low, high = setting.minimum, setting.maximum
    above = "above" if setting.above_minimum else "at least"
    if low is not None and high is not None:
        if setting.above_minimum:
            return f"above {number_text(low)} and at most {number_text(high)}"
        return f"between {number_text(low)} and {number_text(high)}"
    if low is not None:
        return f"{above} {number_text(low)}"
    if setting.kind is Kind.SKILL:
        return "1 to 64 characters of [a-z0-9:_.-]"
    if setting.kind is Kind.FLAG:
        return "true or false"
    if setting.kind is Kind.TIME_ZONE:
        return "an IANA time zone name (Europe/Paris)"
    return ""


def number_text(value: float) -> str:
    """A bound or a default as the documentation writes it."""
    if value == LONGEST:
        return f"{value:.0f} (a year)"
    return f"{value:g}" if value != int(value) else str(int(value))
