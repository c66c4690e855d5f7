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
    phone_target_seconds = 20
    phone_reserve = 1

    [channels.phone]
    rate_per_hour = 300    # or 24 values, one per simulated hour of the day
    talk = { distribution = "exponential", mean = 180 }      # answered -> ended
    wrap_up = { distribution = "fixed", mean = 0 }           # after-contact work (ACW)
    patience = { distribution = "exponential", mean = 120 }   # omit: nobody abandons

    backlog = 0            # contacts already waiting at the start
    returning = 0.4        # share of arrivals from a customer whose earlier contact was
                           # completed (drawn from this channel's past customers)
    named_agent = 0.05     # share of arrivals whose gateway names a preferred agent

    [[channels.phone.mix]]
    required_skills = ["returns"]
    preferred_skills = ["lang:es"]   # most wanted first; relaxed after skill_relax_seconds
    share = 0.1

    [[agents]]
    group = "phone"
    count = 10
    skills = ["lang:es"]
    capacities = { phone = 1, chat = 0, email = 0 }
    shift = [0, 3600]      # simulated seconds from the start; omit: the whole run
    stagger = 0            # agent i of the group starts (and ends) i x stagger later

The [router] keys are the routing policy's settings, named as in a ROUTER_CONFIG_FILE
(docs/configuration.md; router/settings.py declares them): `phone_target_seconds`,
`chat_capacity`, `skill_relax_seconds`, per channel `<channel>_prefer_previous_agent`
(true/false), `<channel>_preferred_agent_wait_seconds` (unset: half the target),
`<channel>_max_per_hour` (0: no cap), `<channel>_fallback_after_seconds` (unset: no
fallback), `<channel>_fallback_skill` (unset: any agent)... Times are in simulated
seconds; the simulator divides them by time_scale (the table's "scaled" column).
The hourly cap is NOT scaled: the router's hour is one real hour, so in a run shorter
than a real hour its window never slides and the cap bounds what each agent answers in
the whole run (see Scenario.cap_note). `queue_status_every` (simulated seconds, 0: off)
polls GetQueueStatus to see which of the run's contacts the live queue lists as unserved.

Queued callbacks: the router offers them when [router] sets
`<channel>_callback_offer_after_seconds` (and retries with `callback_retry_seconds`,
`callback_attempts`; `callback_target_seconds` is the callbacks' service-level target);
how the simulated customers and agents take them is [callbacks]:

    [callbacks]
    accept = 0.6           # share of customers offered a callback who take it
    check_every = 30       # simulated seconds between a waiting customer's GetContact
    dial_seconds = 20      # an agent's dial, from accepting the offer to its outcome
    no_answer = 0.15       # each dial's outcome: these shares, connected the rest
    busy = 0.05
    wrong_number = 0.01

A customer hears the offer (GetContact's callback_offered) when they queue or at a later
check, decides once, and if they take it never abandons: they hung up. Without
[callbacks] customers ask GetContact only when they queue and never take a callback.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from contact_router_tools.proto_values import CHANNELS
from router.domain import Channel, RoutingPolicy
from router.errors import ConfigError
from router.settings import Value
from router.toml_file import TomlFileError, read_toml
from router.variables import BY_KEY, Variable, routing_policy

DISTRIBUTIONS = ("exponential", "lognormal", "fixed")
DIAL_OUTCOMES = ("no_answer", "busy", "wrong_number")  # connected: the rest


# Router settings a scenario may set: the routing policy's settings, by their keys, with
# the router's defaults (both from router/settings.py, so they cannot drift apart). Times
# are divided by time_scale when the simulator starts the router; the offer timeout is
# kept at least MIN_REAL_OFFER_TIMEOUT real seconds, since simulated agents accept at
# once and a short stall of the machine must not look like an agent who let an offer
# ring out. reconnect_grace_seconds is scaled like the others: the router holds its
# fallback rules back for this long after it starts (agents may be coming back), which
# is minutes of a scaled run. max_per_hour (0: no cap) is per REAL hour.
ROUTER_VARIABLES: Mapping[str, Variable] = {
    key: variable for key, variable in BY_KEY.items() if variable.setting.routing
}
ROUTER_DEFAULTS: Mapping[str, Value] = {
    key: variable.default
    for key, variable in ROUTER_VARIABLES.items()
    if variable.default is not None
}
# Settings without a default may be left unset, and the router then does without: the
# preferred-agent wait (half the channel's target), the fallback rule (none).
ROUTER_SETTINGS = tuple(sorted(ROUTER_VARIABLES))
NUMERIC_ROUTER_SETTINGS = tuple(
    key for key in ROUTER_SETTINGS if ROUTER_VARIABLES[key].setting.kind.numeric
)
MIN_REAL_OFFER_TIMEOUT = 2.0
DEFAULT_TIME_SCALE = 60.0  # of a scenario that says none: a simulated hour in a minute
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
    talk, wrap_up: the two parts of handle time (talk + after-contact work).
    """

    rates_per_hour: tuple[float, ...]
    talk: Distribution
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
class CallbackBehaviour:
    """How simulated customers take the callbacks the router offers, and what the
    agents' dials give (the [callbacks] table)."""

    accept: float = 0.0  # share of the customers offered a callback who take it
    check_every: float = 30.0  # simulated seconds between a waiting customer's checks
    dial_seconds: float = 20.0  # accepting a callback's offer -> reporting its dial
    outcomes: Mapping[str, float] = field(default_factory=dict)  # DIAL_OUTCOMES -> share

    def outcome(self, draw: float) -> str:
        """The outcome of a dial for a uniform draw in [0, 1): "connected" or one of
        DIAL_OUTCOMES."""
        for name in DIAL_OUTCOMES:
            share = self.outcomes.get(name, 0.0)
            if draw < share:
                return name
            draw -= share
        return "connected"


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    duration: float
    drain: float
    time_scale: float
    seed: int | None
    channels: Mapping[str, ChannelLoad]
    agents: tuple[AgentGroup, ...]
    router: Mapping[str, Value] = field(default_factory=lambda: dict(ROUTER_DEFAULTS))
    decline_probability: float = 0.0
    warm_up: float = 0.0  # simulated seconds whose arrivals the measured figures skip
    queue_status_every: float = 0.0  # simulated seconds between GetQueueStatus polls; 0 off
    callbacks: CallbackBehaviour | None = None  # None: customers never take a callback

    def threshold(self, channel: str) -> float:
        return self.policy.of(Channel(channel)).answer_target

    @property
    def policy(self) -> RoutingPolicy:
        """The router's policy in simulated seconds (what server_env scales)."""
        values = {ROUTER_VARIABLES[key].name: value for key, value in self.router.items()}
        try:
            return routing_policy(values, lambda variable: f"router.{variable.key}")
        except ConfigError as error:
            raise ScenarioError(str(error)) from None

    def with_overrides(self, **changes: Any) -> Scenario:
        return replace(self, **changes)

    def with_router(self, **settings: Value | None) -> Scenario:
        """The scenario with router settings changed; None unsets one without a default
        (a preferred-agent wait or a fallback rule), so the router does without."""
        unknown = set(settings) - set(ROUTER_SETTINGS)
        if unknown:
            raise ScenarioError(f"unknown router setting(s): {', '.join(sorted(unknown))}")
        router = dict(self.router)
        for key, value in settings.items():
            if value is None:
                if key in ROUTER_DEFAULTS:
                    raise ScenarioError(f"router.{key} cannot be unset: it has a default")
                router.pop(key, None)
            else:
                router[key] = _setting(key, value)
        changed = replace(self, router=router)
        _ = changed.policy  # refuses settings that contradict each other
        return changed

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
        policy = self.policy
        caps = {ch: policy.of(Channel(ch)).max_per_hour for ch in CHANNELS}
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
        env = {}
        for key, value in self.router.items():
            variable = ROUTER_VARIABLES[key]
            if variable.setting.scaled:
                assert isinstance(value, int | float), key
                real = value / self.time_scale
                if key == "offer_timeout_seconds":
                    real = max(real, MIN_REAL_OFFER_TIMEOUT)
                value = real
            env[variable.name] = variable.text(value)
        return env


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:g} h"
    return f"{seconds / 60:g} min"


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
        | {"channels", "agents", "decline_probability", "warm_up", "queue_status_every"}
        | {"callbacks"},
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
    _known(router_data, "router.", set(ROUTER_SETTINGS))
    router = dict(ROUTER_DEFAULTS)
    for key, value in router_data.items():
        router[key] = _setting(key, value)
    seed = data.get("seed")
    if seed is not None and not isinstance(seed, int):
        raise ScenarioError("seed must be an integer")
    scenario = Scenario(
        name=str(data.get("name", default_name)),
        duration=_number(data.get("duration", 3600), "duration", minimum=0.0),
        drain=_number(data.get("drain", 600), "drain", minimum=0.0),
        time_scale=_number(data.get("time_scale", DEFAULT_TIME_SCALE), "time_scale", minimum=0.01),
        seed=seed,
        channels=channels,
        agents=agents,
        router=router,
        decline_probability=_number(
            data.get("decline_probability", 0.0), "decline_probability", 0.0, 1.0
        ),
        warm_up=_number(data.get("warm_up", 0.0), "warm_up", minimum=0.0),
        queue_status_every=_number(
            data.get("queue_status_every", 0.0), "queue_status_every", minimum=0.0
        ),
        callbacks=None if "callbacks" not in data else _callbacks(data["callbacks"]),
    )
    if sum(g.count for g in agents) > 2000:
        raise ScenarioError("agents: at most 2000 in all")
    _ = scenario.policy  # refuses router settings that contradict each other
    return scenario


def _setting(key: str, raw: object) -> Value:
    """A router setting's value, checked by its kind and bounds: in a scenario a flag
    is true or false (or 1 or 0), a number a number, a skill a string."""
    try:
        value = ROUTER_VARIABLES[key].parse_value(raw, f"router.{key}")
    except ConfigError as error:
        raise ScenarioError(str(error)) from None
    assert value is not None, key  # no routing setting has an "off" word
    return value


def _channel(data: Mapping[str, Any], where: str) -> ChannelLoad:
    if "handle" in data:
        # The key's old name: it drew the talk alone, while handle time is talk + ACW.
        raise ScenarioError(
            f"{where}.handle: the key is now `talk` (the talk alone; handle time is talk + wrap_up)"
        )
    _known(
        data,
        f"{where}.",
        {"rate_per_hour", "talk", "wrap_up", "patience", "mix", "backlog"}
        | {"returning", "named_agent"},
    )
    raw = data.get("rate_per_hour")
    rates: Sequence[Any] = raw if isinstance(raw, list) else [raw]
    if not rates or raw is None:
        raise ScenarioError(f"{where}.rate_per_hour: a number or a list of hourly numbers")
    if len(rates) > 24:
        raise ScenarioError(f"{where}.rate_per_hour: at most 24 hourly values")
    parsed = tuple(_number(r, f"{where}.rate_per_hour", minimum=0.0) for r in rates)
    if "talk" not in data:
        raise ScenarioError(f"{where}.talk: required (the mean talk time, simulated seconds)")
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
        talk=_distribution(data["talk"], f"{where}.talk", positive=True),
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


def _callbacks(raw: Any) -> CallbackBehaviour:
    data = _table(raw, "callbacks")
    _known(
        data,
        "callbacks.",
        {"accept", "check_every", "dial_seconds", *DIAL_OUTCOMES},
    )
    outcomes = {
        name: _number(data.get(name, 0.0), f"callbacks.{name}", 0.0, 1.0) for name in DIAL_OUTCOMES
    }
    if sum(outcomes.values()) > 1.0 + 1e-9:
        raise ScenarioError(
            "callbacks: no_answer, busy and wrong_number add up to more than 1 "
            "(connected is the rest)"
        )
    check_every = _number(data.get("check_every", 30.0), "callbacks.check_every", minimum=0.0)
    if check_every <= 0:
        raise ScenarioError("callbacks.check_every must be positive (simulated seconds)")
    return CallbackBehaviour(
        accept=_number(data.get("accept", 0.0), "callbacks.accept", 0.0, 1.0),
        check_every=check_every,
        dial_seconds=_number(data.get("dial_seconds", 20.0), "callbacks.dial_seconds", 0.0),
        outcomes=outcomes,
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
