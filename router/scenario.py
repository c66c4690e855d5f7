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
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from router.toml_file import TomlFileError, read_toml

CHANNELS = ("phone", "chat", "email")
DISTRIBUTIONS = ("exponential", "lognormal", "fixed")

# Router settings a scenario may set, in simulated seconds where they are times, with
# the router's defaults. Times are divided by time_scale when the simulator starts the
# router; the offer timeout is kept at least MIN_REAL_OFFER_TIMEOUT real seconds, since
# simulated agents accept at once and a short stall of the machine must not look like
# an agent who let an offer ring out.
ROUTER_DEFAULTS: Mapping[str, float] = {
    "phone_target": 20.0,
    "chat_target": 60.0,
    "email_target": 3600.0,
    "phone_reserve": 1.0,
    "chat_capacity": 3.0,
    "email_capacity": 1.0,
    "offer_timeout": 15.0,
    "decline_exclusion": 30.0,
    "short_abandon": 5.0,
    "skill_relax": 30.0,
}
_UNSCALED = frozenset({"phone_reserve", "chat_capacity", "email_capacity"})
MIN_REAL_OFFER_TIMEOUT = 2.0


class ScenarioError(ValueError):
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


@dataclass(frozen=True, slots=True)
class AgentGroup:
    """`count` agents alike: skills, capacity per channel, shift (simulated seconds)."""

    name: str
    count: int
    skills: frozenset[str]
    capacities: Mapping[str, int]
    shift_start: float = 0.0
    shift_end: float | None = None  # None: until the run closes


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

    def threshold(self, channel: str) -> float:
        return self.router[f"{channel}_target"]

    def with_overrides(self, **changes: Any) -> Scenario:
        return replace(self, **changes)

    def with_router(self, **settings: float) -> Scenario:
        unknown = set(settings) - set(ROUTER_DEFAULTS)
        if unknown:
            raise ScenarioError(f"unknown router setting(s): {', '.join(sorted(unknown))}")
        return replace(self, router={**self.router, **settings})

    def real(self, simulated: float) -> float:
        """Real seconds for a simulated duration."""
        return simulated / self.time_scale

    def server_env(self) -> dict[str, str]:
        """ROUTER_* settings for a router that runs this scenario's policy at its scale."""
        env = {}
        for key, value in self.router.items():
            if key in _UNSCALED:
                env[_ENV_NAMES[key]] = str(int(value))
                continue
            real = value / self.time_scale
            if key == "offer_timeout":
                real = max(real, MIN_REAL_OFFER_TIMEOUT)
            env[_ENV_NAMES[key]] = repr(real)
        return env


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
}


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
        | {"channels", "agents", "decline_probability", "warm_up"},
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
    _known(router_data, "router.", set(ROUTER_DEFAULTS))
    router = dict(ROUTER_DEFAULTS)
    for key, value in router_data.items():
        router[key] = _number(value, f"router.{key}", minimum=0.0)
        if key.endswith("_target") and router[key] <= 0:
            raise ScenarioError(f"router.{key} must be positive")
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
    )
    if sum(g.count for g in agents) > 2000:
        raise ScenarioError("agents: at most 2000 in all")
    return scenario


def _channel(data: Mapping[str, Any], where: str) -> ChannelLoad:
    _known(data, f"{where}.", {"rate_per_hour", "handle", "wrap_up", "patience", "mix", "backlog"})
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
    _known(data, f"{where}.", {"group", "count", "skills", "capacities", "shift"})
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
    return AgentGroup(name, count, _skills(data.get("skills", []), where), capacities, start, end)


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
