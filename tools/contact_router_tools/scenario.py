"""A simulation scenario: the traffic, the agents and the router policy of one run.

A scenario is written in simulated seconds. `time_scale` says how many simulated
seconds pass per real second (60: a simulated hour in a minute), so the simulator
sleeps `t / time_scale` and the router it starts runs with every time setting divided
by the same factor (a 20 s phone target is 1/3 s of real time at 60x). Reports convert
back: every figure the simulator prints is in simulated seconds.

Scenario files are TOML (the standard library reads them; no YAML dependency):

    name = "phone only"
    duration = 3600        # simulated seconds of arrivals
    drain = 600            # simulated seconds for work to finish after arrivals stop
    time_scale = 60        # simulated seconds per real second
    seed = 1

    [router]               # the policy of the router the simulator starts
    phone_target = 20
    phone_reserve = 1

    [channels.phone]
    rate_per_hour = 300    # or 24 values, one per simulated hour of the day
    handle = { distribution = "exponential", mean = 180 }
    wrap_up = { distribution = "fixed", mean = 0 }
    patience = { distribution = "exponential", mean = 120 }   # omit: nobody abandons

    backlog = 0            # contacts already waiting at the start
    returning = 0.4        # share of arrivals from a customer whose earlier contact was
                           # completed (drawn from this channel's past customers)
    named_agent = 0.05     # share of arrivals whose gateway names a preferred agent

    [[channels.phone.mix]]
    required_skills = ["returns"]
    preferred_skills = ["lang:es"]   # most wanted first; relaxed after router.skill_relax
    share = 0.1

    [[agents]]
    group = "phone"
    count = 10
    skills = ["lang:es"]
    capacities = { phone = 1, chat = 0, email = 0 }
    shift = [0, 3600]      # simulated seconds from the start; omit: the whole run
    stagger = 0            # agent i of the group starts (and ends) i x stagger later

Personal routing settings in [router] are per channel (`phone_`, `chat_`, `email_`):
`<channel>_prefer_previous_agent` (true/false), `<channel>_preferred_agent_wait`
(simulated seconds; unset: half the target), `<channel>_max_per_hour` (0: no cap),
`<channel>_fallback_after` (simulated seconds; unset: no fallback) and
`<channel>_fallback_skill` (a skill; unset: any agent), and `remembered_customers`.
The hourly cap is NOT scaled: the router's hour is one real hour, so in a run shorter
than a real hour its window never slides and the cap bounds what each agent answers in
the whole run (see Scenario.cap_note). `queue_status_every` (simulated seconds, 0: off)
polls GetQueueStatus to see which of the run's contacts the live queue lists as unserved.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from router.domain import Channel, RoutingPolicy
from router.domain.validation import SKILL
from router.errors import ConfigError
from router.toml_file import TomlFileError, read_toml

CHANNELS = ("phone", "chat", "email")
DISTRIBUTIONS = ("exponential", "lognormal", "fixed")


# Router settings a scenario may set, in simulated seconds where they are times, with
# the router's defaults (read from RoutingPolicy, so they cannot drift apart). Times are
# divided by time_scale when the simulator starts the router; the offer timeout is kept
# at least MIN_REAL_OFFER_TIMEOUT real seconds, since simulated agents accept at once
# and a short stall of the machine must not look like an agent who let an offer ring
# out. reconnect_grace is scaled like the others: the router holds its fallback rules
# back for this long after it starts (agents may be coming back), which is minutes of a
# scaled run. Flags are 1 (true) or 0 (false); max_per_hour (0: no cap) is per REAL hour.
def _router_defaults() -> dict[str, float]:
    policy = RoutingPolicy()
    of = {ch: policy.of(Channel(ch)) for ch in CHANNELS}
    return {
        **{f"{ch}_target": of[ch].answer_target for ch in CHANNELS},
        "phone_reserve": float(policy.phone_reserve),
        "chat_capacity": float(of["chat"].default_capacity),
        "email_capacity": float(of["email"].default_capacity),
        "offer_timeout": policy.offer_timeout,
        "decline_exclusion": policy.decline_exclusion,
        "short_abandon": policy.short_abandon,
        "skill_relax": policy.skill_relax,
        "reconnect_grace": policy.reconnect_grace,
        "remembered_customers": float(policy.remembered_customers),
        **{f"{ch}_prefer_previous_agent": float(of[ch].prefer_previous_agent) for ch in CHANNELS},
        **{f"{ch}_max_per_hour": float(of[ch].max_per_hour) for ch in CHANNELS},
    }


ROUTER_DEFAULTS: Mapping[str, float] = _router_defaults()
# Settings a scenario may leave unset, and the router then uses its own default: the
# preferred-agent wait (half the channel's target) and the fallback rule (none).
OPTIONAL_ROUTER = frozenset(
    {f"{ch}_preferred_agent_wait" for ch in CHANNELS} | {f"{ch}_fallback_after" for ch in CHANNELS}
)
ROUTER_SKILLS = frozenset(f"{ch}_fallback_skill" for ch in CHANNELS)  # text settings
ROUTER_SETTINGS = tuple(sorted({*ROUTER_DEFAULTS, *OPTIONAL_ROUTER}))  # the numeric ones
_UNSCALED = frozenset(
    {"phone_reserve", "chat_capacity", "email_capacity", "remembered_customers"}
    | {f"{ch}_max_per_hour" for ch in CHANNELS}
)
_FLAGS = frozenset(f"{ch}_prefer_previous_agent" for ch in CHANNELS)
_INTEGERS = _UNSCALED
MIN_REAL_OFFER_TIMEOUT = 2.0
REAL_HOUR = 3600.0  # the router's hourly cap counts answers in one real hour


class ScenarioError(ConfigError):
    """The scenario is malformed; the message names the key."""


@dataclass(frozen=True, slots=True)
class Distribution:
    """A positive random duration in simulated seconds.

    lognormal: `sigma` is the standard deviation of the logarithm; the location is
    chosen so that the mean is `mean`.
    """

    kind: str
    mean: float
    sigma: float = 1.0

    def sample(self, rng: random.Random) -> float:
        if self.mean <= 0:
            return 0.0
        if self.kind == "exponential":
            return rng.expovariate(1.0 / self.mean)
        if self.kind == "lognormal":
            return rng.lognormvariate(math.log(self.mean) - self.sigma**2 / 2, self.sigma)
        return self.mean


@dataclass(frozen=True, slots=True)
class SkillMix:
    """A share of a channel's contacts that require or prefer skills."""

    required_skills: frozenset[str]
    share: float
    preferred_skills: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ChannelLoad:
    """Arrivals and customer behaviour of one channel.

    rates_per_hour: one rate for the whole run, or one per simulated hour of the day
        (index hour mod len): arrivals are a Poisson process with that rate.
    """

    rates_per_hour: tuple[float, ...]
    handle: Distribution
    wrap_up: Distribution = Distribution("fixed", 0.0)
    patience: Distribution | None = None
    mix: tuple[SkillMix, ...] = ()
    backlog: int = 0  # contacts already waiting when the run starts
    returning: float = 0.0  # share of arrivals from a past customer, if there is one
    named_agent: float = 0.0  # share of arrivals whose gateway names a preferred agent

    def rate_at(self, t: float) -> float:
        """Arrivals per simulated second at simulated time t."""
        return self.rates_per_hour[int(t // 3600) % len(self.rates_per_hour)] / 3600.0

    @property
    def peak_rate(self) -> float:
        return max(self.rates_per_hour) / 3600.0

    def skills(self, rng: random.Random) -> SkillMix:
        """Draw the skills of one contact."""
        draw = rng.random()
        for entry in self.mix:
            if draw < entry.share:
                return entry
            draw -= entry.share
        return SkillMix(frozenset(), 1.0)

    def customer_kind(self, rng: random.Random) -> str:
        """Who the next arrival is: "named" (its gateway names an agent), "returning"
        (a past customer of the channel, when there is one) or "new"."""
        draw = rng.random()
        if draw < self.named_agent:
            return "named"
        if draw < self.named_agent + self.returning:
            return "returning"
        return "new"


@dataclass(frozen=True, slots=True)
class AgentGroup:
    """`count` agents alike: skills, capacity per channel, shift (simulated seconds).

    stagger: agent i of the group starts its shift i x stagger after shift_start (and
    ends it as much later), so sign-ins come one by one.
    """

    name: str
    count: int
    skills: frozenset[str]
    capacities: Mapping[str, int]
    shift_start: float = 0.0
    shift_end: float | None = None  # None: until the run closes
    stagger: float = 0.0

    def shift_of(self, index: int) -> tuple[float, float | None]:
        """The shift of agent `index` of the group: (start, end or None)."""
        shift = index * self.stagger
        return self.shift_start + shift, None if self.shift_end is None else self.shift_end + shift


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    duration: float
    drain: float
    time_scale: float
    seed: int | None
    channels: Mapping[str, ChannelLoad]
    agents: tuple[AgentGroup, ...]
    router: Mapping[str, float] = field(default_factory=lambda: dict(ROUTER_DEFAULTS))
    decline_probability: float = 0.0
    warm_up: float = 0.0  # simulated seconds whose arrivals the measured figures skip
    router_skills: Mapping[str, str] = field(default_factory=dict)  # <channel>_fallback_skill
    queue_status_every: float = 0.0  # simulated seconds between GetQueueStatus polls; 0 off

    def threshold(self, channel: str) -> float:
        return self.router[f"{channel}_target"]

    def with_overrides(self, **changes: Any) -> Scenario:
        return replace(self, **changes)

    def with_router(self, **settings: float | None) -> Scenario:
        """The scenario with router settings changed; None unsets an optional one (a
        preferred-agent wait or a fallback rule), so the router's default applies."""
        unknown = set(settings) - set(ROUTER_SETTINGS)
        if unknown:
            raise ScenarioError(f"unknown router setting(s): {', '.join(sorted(unknown))}")
        router = dict(self.router)
        for key, value in settings.items():
            if value is None:
                if key not in OPTIONAL_ROUTER:
                    raise ScenarioError(f"router.{key} cannot be unset: it has a default")
                router.pop(key, None)
            else:
                router[key] = _setting(key, value, f"router.{key}")
        return replace(self, router=router)

    @property
    def real_length(self) -> float:
        """Real seconds from the first arrival to the end of the drain, at most."""
        return self.real(self.duration + self.drain)

    def cap_note(self) -> str | None:
        """What an hourly cap means in this run, or None without a cap.

        The router counts a cap's answers over one REAL hour, which is `time_scale`
        simulated hours: a cap is not scaled like the time settings. In a run shorter
        than one real hour the window never slides, so the cap bounds each agent's
        answers over the whole run; over the first simulated hour that is exactly the
        rule, later it is stricter than a real center's sliding hour."""
        caps = {ch: int(self.router.get(f"{ch}_max_per_hour", 0)) for ch in CHANNELS}
        caps = {ch: cap for ch, cap in caps.items() if cap}
        if not caps:
            return None
        named = ", ".join(f"{ch} {cap}" for ch, cap in caps.items())
        window = _duration(REAL_HOUR * self.time_scale)
        if self.real_length <= REAL_HOUR:
            return (
                f"hourly cap ({named} per agent): the router's hour is one real hour, "
                f"{window} simulated at {self.time_scale:g}x; this run lasts at most "
                f"{self.real_length:.0f} real s, so the cap bounds each agent's answers over "
                "the whole run (the rule exactly for the first simulated hour, stricter after)"
            )
        return (
            f"hourly cap ({named} per agent): the router's hour is one real hour, {window} "
            f"simulated at {self.time_scale:g}x: the cap is per {window} of this run"
        )

    def real(self, simulated: float) -> float:
        """Real seconds for a simulated duration."""
        return simulated / self.time_scale

    def server_env(self) -> dict[str, str]:
        """ROUTER_* settings for a router that runs this scenario's policy at its scale."""
        env = {_env_name(key): skill for key, skill in self.router_skills.items()}
        for key, value in self.router.items():
            if key in _FLAGS:
                env[_env_name(key)] = "true" if value else "false"
                continue
            if key in _UNSCALED:
                env[_env_name(key)] = str(int(value))
                continue
            real = value / self.time_scale
            if key == "offer_timeout":
                real = max(real, MIN_REAL_OFFER_TIMEOUT)
            env[_env_name(key)] = repr(real)
        return env


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:g} h"
    return f"{seconds / 60:g} min"


_ENV_NAMES = {
    "phone_target": "ROUTER_PHONE_TARGET_SECONDS",
    "chat_target": "ROUTER_CHAT_TARGET_SECONDS",
    "email_target": "ROUTER_EMAIL_TARGET_SECONDS",
    "phone_reserve": "ROUTER_PHONE_RESERVE",
    "chat_capacity": "ROUTER_CHAT_CAPACITY",
    "email_capacity": "ROUTER_EMAIL_CAPACITY",
    "offer_timeout": "ROUTER_OFFER_TIMEOUT_SECONDS",
    "decline_exclusion": "ROUTER_DECLINE_EXCLUSION_SECONDS",
    "short_abandon": "ROUTER_SHORT_ABANDON_SECONDS",
    "skill_relax": "ROUTER_SKILL_RELAX_SECONDS",
    "reconnect_grace": "ROUTER_RECONNECT_GRACE_SECONDS",
    "remembered_customers": "ROUTER_REMEMBERED_CUSTOMERS",
}
_PER_CHANNEL = {  # suffix of a per-channel scenario key -> of its variable
    "prefer_previous_agent": "PREFER_PREVIOUS_AGENT",
    "preferred_agent_wait": "PREFERRED_AGENT_WAIT_SECONDS",
    "max_per_hour": "MAX_PER_HOUR",
    "fallback_after": "FALLBACK_AFTER_SECONDS",
    "fallback_skill": "FALLBACK_SKILL",
}


def _env_name(key: str) -> str:
    """The ROUTER_* variable of a scenario's router setting."""
    if key in _ENV_NAMES:
        return _ENV_NAMES[key]
    channel, _, rest = key.partition("_")
    return f"ROUTER_{channel.upper()}_{_PER_CHANNEL[rest]}"


# ------------------------------------------------------------------------ loading


def load(path: Path) -> Scenario:
    """Read and check a TOML scenario file."""
    try:
        data = read_toml(path)
    except TomlFileError as error:
        raise ScenarioError(str(error)) from None
    return parse(data, default_name=path.stem)


def parse(data: Mapping[str, Any], default_name: str = "scenario") -> Scenario:
    """A Scenario from a decoded TOML document; ScenarioError names the bad key."""
    _known(
        data,
        "",
        {"name", "duration", "drain", "time_scale", "seed", "router"}
        | {"channels", "agents", "decline_probability", "warm_up", "queue_status_every"},
    )
    channels_data = _table(data.get("channels", {}), "channels")
    _known(channels_data, "channels.", set(CHANNELS))
    channels = {
        name: _channel(_table(value, f"channels.{name}"), f"channels.{name}")
        for name, value in channels_data.items()
    }
    if not channels:
        raise ScenarioError("channels: at least one channel needs arrivals")
    groups = data.get("agents", [])
    if not isinstance(groups, list) or not groups:
        raise ScenarioError("agents: at least one [[agents]] group")
    agents = tuple(_group(_table(g, f"agents[{i}]"), i) for i, g in enumerate(groups))
    names = [g.name for g in agents]
    if len(set(names)) != len(names):
        raise ScenarioError("agents: group names must differ")
    router_data = _table(data.get("router", {}), "router")
    _known(router_data, "router.", {*ROUTER_SETTINGS, *ROUTER_SKILLS})
    router = dict(ROUTER_DEFAULTS)
    router_skills = {}
    for key, value in router_data.items():
        if key in ROUTER_SKILLS:
            if not isinstance(value, str) or not SKILL.fullmatch(value):
                raise ScenarioError(f"router.{key}: a skill, 1 to 64 characters of [a-z0-9:_.-]")
            router_skills[key] = value
        else:
            router[key] = _setting(key, value, f"router.{key}")
    seed = data.get("seed")
    if seed is not None and not isinstance(seed, int):
        raise ScenarioError("seed must be an integer")
    scenario = Scenario(
        name=str(data.get("name", default_name)),
        duration=_number(data.get("duration", 3600), "duration", minimum=0.0),
        drain=_number(data.get("drain", 600), "drain", minimum=0.0),
        time_scale=_number(data.get("time_scale", 60), "time_scale", minimum=0.01),
        seed=seed,
        channels=channels,
        agents=agents,
        router=router,
        decline_probability=_number(
            data.get("decline_probability", 0.0), "decline_probability", 0.0, 1.0
        ),
        warm_up=_number(data.get("warm_up", 0.0), "warm_up", minimum=0.0),
        router_skills=router_skills,
        queue_status_every=_number(
            data.get("queue_status_every", 0.0), "queue_status_every", minimum=0.0
        ),
    )
    if sum(g.count for g in agents) > 2000:
        raise ScenarioError("agents: at most 2000 in all")
    return scenario


def _setting(key: str, raw: Any, where: str) -> float:
    """A numeric router setting: a flag (true/false, or 1/0), a count, or seconds."""
    if key in _FLAGS:
        if isinstance(raw, bool):
            return 1.0 if raw else 0.0
        if raw in (0, 1):
            return float(raw)
        raise ScenarioError(f"{where}: true or false")
    value = _number(raw, where, minimum=0.0)
    if key in _INTEGERS and value != int(value):
        raise ScenarioError(f"{where}: expected a whole number")
    if key.endswith("_target") and value <= 0:
        raise ScenarioError(f"{where} must be positive")
    return value


def _channel(data: Mapping[str, Any], where: str) -> ChannelLoad:
    _known(
        data,
        f"{where}.",
        {"rate_per_hour", "handle", "wrap_up", "patience", "mix", "backlog"}
        | {"returning", "named_agent"},
    )
    raw = data.get("rate_per_hour")
    rates: Sequence[Any] = raw if isinstance(raw, list) else [raw]
    if not rates or raw is None:
        raise ScenarioError(f"{where}.rate_per_hour: a number or a list of hourly numbers")
    if len(rates) > 24:
        raise ScenarioError(f"{where}.rate_per_hour: at most 24 hourly values")
    parsed = tuple(_number(r, f"{where}.rate_per_hour", minimum=0.0) for r in rates)
    if "handle" not in data:
        raise ScenarioError(f"{where}.handle: required")
    mix = []
    for i, entry in enumerate(data.get("mix", [])):
        entry = _table(entry, f"{where}.mix[{i}]")
        _known(entry, f"{where}.mix[{i}].", {"required_skills", "preferred_skills", "share"})
        share = _number(entry.get("share"), f"{where}.mix[{i}].share", 0.0, 1.0)
        required = _skills(entry.get("required_skills", []), f"{where}.mix[{i}]")
        preferred = entry.get("preferred_skills", [])
        _skills(preferred, f"{where}.mix[{i}].preferred_skills")
        mix.append(SkillMix(required, share, tuple(preferred)))
    if sum(m.share for m in mix) > 1.0 + 1e-9:
        raise ScenarioError(f"{where}.mix: shares add up to more than 1")
    patience = data.get("patience")
    returning = _number(data.get("returning", 0.0), f"{where}.returning", 0.0, 1.0)
    named = _number(data.get("named_agent", 0.0), f"{where}.named_agent", 0.0, 1.0)
    if returning + named > 1.0 + 1e-9:
        raise ScenarioError(f"{where}: returning and named_agent add up to more than 1")
    return ChannelLoad(
        rates_per_hour=parsed,
        handle=_distribution(data["handle"], f"{where}.handle", positive=True),
        wrap_up=_distribution(data.get("wrap_up", {"mean": 0}), f"{where}.wrap_up"),
        patience=(
            None
            if patience is None
            else _distribution(patience, f"{where}.patience", positive=True)
        ),
        mix=tuple(mix),
        backlog=int(_number(data.get("backlog", 0), f"{where}.backlog", 0, 100_000)),
        returning=returning,
        named_agent=named,
    )


def _distribution(raw: Any, where: str, positive: bool = False) -> Distribution:
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        raw = {"distribution": "exponential", "mean": raw}
    data = _table(raw, where)
    _known(data, f"{where}.", {"distribution", "mean", "sigma"})
    kind = data.get("distribution", "exponential" if positive else "fixed")
    if kind not in DISTRIBUTIONS:
        raise ScenarioError(f"{where}.distribution: one of {', '.join(DISTRIBUTIONS)}")
    mean = _number(data.get("mean"), f"{where}.mean", minimum=0.0)
    if positive and mean <= 0:
        raise ScenarioError(f"{where}.mean must be positive")
    return Distribution(kind, mean, _number(data.get("sigma", 1.0), f"{where}.sigma", 0.0, 5.0))


def _group(data: Mapping[str, Any], index: int) -> AgentGroup:
    where = f"agents[{index}]"
    _known(data, f"{where}.", {"group", "count", "skills", "capacities", "shift", "stagger"})
    count = data.get("count", 1)
    if not isinstance(count, int) or not 1 <= count <= 2000:
        raise ScenarioError(f"{where}.count: an integer from 1 to 2000")
    caps = _table(data.get("capacities", {"phone": 1, "chat": 0, "email": 0}), where)
    _known(caps, f"{where}.capacities.", set(CHANNELS))
    capacities = {
        ch: int(_number(caps.get(ch, 0), f"{where}.capacities.{ch}", 0, 20)) for ch in CHANNELS
    }
    shift = data.get("shift")
    start, end = 0.0, None
    if shift is not None:
        if not isinstance(shift, list) or len(shift) != 2:
            raise ScenarioError(f"{where}.shift: [start, end] in simulated seconds")
        start = _number(shift[0], f"{where}.shift", minimum=0.0)
        end = _number(shift[1], f"{where}.shift", minimum=start)
    name = data.get("group", f"g{index}")
    if not isinstance(name, str) or not name.replace("-", "").isalnum() or len(name) > 20:
        raise ScenarioError(f"{where}.group: up to 20 letters, digits and dashes")
    stagger = _number(data.get("stagger", 0.0), f"{where}.stagger", minimum=0.0)
    skills = _skills(data.get("skills", []), where)
    return AgentGroup(name, count, skills, capacities, start, end, stagger)


def _skills(raw: Any, where: str) -> frozenset[str]:
    if not isinstance(raw, list) or not all(isinstance(s, str) and s for s in raw):
        raise ScenarioError(f"{where}: skills are a list of non-empty strings")
    return frozenset(raw)


def _table(raw: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where}: expected a table")
    return raw


def _known(data: Mapping[str, Any], prefix: str, keys: set[str]) -> None:
    unknown = set(data) - keys
    if unknown:
        raise ScenarioError(f"unknown key(s): {', '.join(prefix + k for k in sorted(unknown))}")


def _number(raw: Any, where: str, minimum: float = -math.inf, maximum: float = math.inf) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        raise ScenarioError(f"{where}: expected a number")
    if not minimum <= raw <= maximum:
        raise ScenarioError(f"{where}: must be between {minimum:g} and {maximum:g}")
    return float(raw)
