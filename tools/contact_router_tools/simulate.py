"""The `simulate` command: synthetic gateways and agents drive a router over gRPC
(contact_router_tools.simulation), and a report of the run is printed.

Two ways to say what to simulate:

* a scenario file (`contact-router simulate scenarios/phone_only.toml`; the examples
  are in scenarios/, the format in tools/contact_router_tools/scenario.py): traffic per
  channel, agents with skills, capacities and shifts, and a time scale. Unless --router
  names a running router, the simulator starts its own (`contact-router serve` as a
  child process on a free port) with the scenario's policy divided by the time scale,
  so a 20 s target is 1/3 s of real time at 60x;
* flags only (`--rate`, `--talk`, ...): a quick run against --router at real time.

A run lasts its arrivals (`--duration`), then up to `--drain` more for the work to
finish, then a few seconds to close: `--duration 20` with the default drain of 30 s runs
about 51 real seconds.
"""

from __future__ import annotations

import argparse
import math
import re
import secrets
import sys
from pathlib import Path

from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc

from contact_router_tools.connection import (
    DEFAULT_ROUTER,
    RouterConnection,
    add_format_argument,
    add_router_arguments,
)
from contact_router_tools.proto_values import CHANNELS
from contact_router_tools.scenario import (
    DEFAULT_TIME_SCALE,
    ROUTER_DEFAULTS,
    AgentGroup,
    ChannelLoad,
    Distribution,
    Scenario,
    ScenarioError,
    SkillMix,
)
from contact_router_tools.scenario import load as load_scenario
from contact_router_tools.simulation import text
from contact_router_tools.simulation.report import SimulationReport
from contact_router_tools.simulation.router_process import started_router
from contact_router_tools.simulation.run import KnownPolicy, Simulation
from contact_router_tools.tables import render_csv, render_json
from router.errors import ConfigError

# The defaults of a run without a scenario file, each said once here: --help quotes
# them. About 70% occupancy for the default 10 agents: phone 4 erlangs, chat 4 (at 3 per
# agent), email 2, so a newcomer sees a center that keeps its service level.
DEFAULT_AGENTS = 10
DEFAULT_RATES = {"phone": 12.0, "chat": 6.0, "email": 4.0}  # contacts per minute
DEFAULT_TALK = {"phone": 20.0, "chat": 40.0, "email": 30.0}  # mean seconds, answered -> ended
DEFAULT_NUMBERS = {"wrap_up": 3.0, "spanish_share": 0.1, "decline_probability": 0.02}
DEFAULT_DURATION = 60.0
DEFAULT_DRAIN = 30.0
SPANISH = "lang:es"
SPANISH_AGENT_SHARE = 0.3  # of agents, whenever some contacts need Spanish
CHAT_AGENT_EVERY = 3  # one agent in three takes chats (capacity 3); all take phone and email


def _channel_value(text: str) -> tuple[str, float]:
    name, sep, number = text.partition("=")
    name = name.strip().lower()
    if not sep or name not in CHANNELS:
        raise argparse.ArgumentTypeError(f"expected CHANNEL=NUMBER (phone, chat, email): {text!r}")
    return name, _non_negative(number)


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"not a finite number >= 0: {text!r}")
    return value


def _positive(text: str) -> float:
    value = _non_negative(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"not a number > 0: {text!r}")
    return value


def _run_id(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,40}", text):
        raise argparse.ArgumentTypeError("1 to 40 characters of [A-Za-z0-9_.-]")
    return text


def _pairs(values: dict[str, float]) -> str:
    """Per-channel defaults as --help says them: "phone=12 chat=6 email=4"."""
    return " ".join(f"{channel}={value:g}" for channel, value in values.items())


_PAIRS = {  # repeatable CHANNEL=NUMBER options: metavar, help
    "--rate": ("CHANNEL=PER_MINUTE", f"Poisson arrivals (defaults {_pairs(DEFAULT_RATES)})"),
    "--talk": (
        "CHANNEL=MEAN_SECONDS",
        "mean talk time (answered to ended; handle time adds --wrap-up), exponential "
        f"(defaults {_pairs(DEFAULT_TALK)})",
    ),
    "--patience": ("CHANNEL=MEAN_SECONDS", "mean patience, exponential (default: no abandons)"),
}
_NUMBERS = {  # options taking one number >= 0, their defaults in DEFAULT_NUMBERS: metavar, help
    "wrap_up": ("MEAN_SECONDS", "mean after-contact work, exponential"),
    "spanish_share": (
        "FRACTION",
        f"of contacts requiring {SPANISH}; {SPANISH_AGENT_SHARE * 100:g}%% of agents have it",
    ),
    "decline_probability": ("P", "chance that an agent declines an offer"),
}
_LEGACY = ("rate", "talk", "patience", *DEFAULT_NUMBERS)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the simulate options to a (sub)parser."""
    add = parser.add_argument
    add(
        "scenario",
        nargs="?",
        type=Path,
        help="scenario file (TOML, see scenarios/); without it the flags below describe "
        "the run, at real time, against --router",
    )
    add(
        "--database-url",
        help="database of the router a scenario run starts (default ROUTER_DATABASE_URL, "
        "else an embedded PostgreSQL in .data/simulation); no other router may use it",
    )
    add(
        "--time-scale",
        type=_positive,
        metavar="FACTOR",
        help="simulated seconds per real second (default: the scenario's time_scale, "
        f"{DEFAULT_TIME_SCALE:g} when it has none; without a scenario file 1, real time)",
    )
    add(
        "--phone-reserve",
        type=int,
        metavar="K",
        help="phone reserve of the router a scenario run starts (default: the scenario's); "
        "refused when simulate starts none (no scenario file, or --router)",
    )
    add(
        "--agents",
        type=int,
        default=None,
        metavar="N",
        help=f"synthetic agents (default {DEFAULT_AGENTS}; no scenario file only)",
    )
    add(
        "--duration",
        type=_non_negative,
        metavar="SECONDS",
        help=f"simulated seconds of arrivals (default {DEFAULT_DURATION:g}, or the scenario's); "
        "the run then drains for up to --drain seconds and closes, so it lasts up to "
        "duration + drain (simulated; divide by the time scale for real seconds)",
    )
    add(
        "--drain",
        type=_non_negative,
        metavar="SECONDS",
        help=f"simulated seconds for the work to finish after the arrivals (default "
        f"{DEFAULT_DRAIN:g}, or the scenario's); contacts still waiting then are abandoned",
    )
    for name, (metavar, about) in _NUMBERS.items():
        described = f"{about} (default {DEFAULT_NUMBERS[name]:g}; no scenario file only)"
        flag = "--" + name.replace("_", "-")
        add(flag, type=_non_negative, default=None, metavar=metavar, help=described)
    for flag, (metavar, about) in _PAIRS.items():
        described = f"{about}; repeatable"
        add(flag, action="append", type=_channel_value, metavar=metavar, help=described)
    add("--seed", type=int, help="random seed (default: the scenario's, else random)")
    add("--run-id", type=_run_id, help="prefix of idempotency keys and agent ids (default random)")
    add("--quiet", action="store_true", help="no progress line on stderr")
    add_format_argument(parser, "the per-channel table of this run's contacts")
    add_router_arguments(
        parser,
        f"the router's address (with a scenario file, default: start one; without, "
        f"default {DEFAULT_ROUTER})",
    )


def starts_router(args: argparse.Namespace) -> bool:
    """Whether simulate starts its own router: for a scenario file, unless --router."""
    return args.scenario is not None and args.router is None


def _check_router_settings(args: argparse.Namespace) -> None:
    """ConfigError for a flag that sets up the router simulate starts, when it starts
    none: it would be ignored, and the report would claim a setting the router lacks."""
    if starts_router(args):
        return
    why = (
        "without a scenario file simulate starts no router"
        if args.scenario is None
        else "with --router simulate starts none"
    )
    if args.phone_reserve is not None:
        raise ConfigError(
            f"--phone-reserve sets the reserve of the router a scenario run starts; {why} "
            "(the router's own ROUTER_PHONE_RESERVE holds)"
        )
    if args.database_url is not None:
        raise ConfigError(
            f"--database-url is the database of the router a scenario run starts; {why}"
        )


def scenario_from_args(args: argparse.Namespace) -> Scenario:
    """The scenario a command line describes: a file with overrides, or the flags."""
    _check_router_settings(args)
    if args.scenario is not None:
        given = [name for name in _LEGACY if getattr(args, name) is not None]
        if given or args.agents is not None:
            flags = ", ".join("--" + n.replace("_", "-") for n in [*given, "agents"])
            raise ScenarioError(f"{flags}: these describe a run without a scenario file")
        scenario = load_scenario(args.scenario)
    else:
        scenario = _flag_scenario(args)
    if args.duration is not None:
        scenario = scenario.with_overrides(duration=args.duration)
    if args.drain is not None:
        scenario = scenario.with_overrides(drain=args.drain)
    if args.time_scale is not None:
        scenario = scenario.with_overrides(time_scale=args.time_scale)
    if args.seed is not None:
        scenario = scenario.with_overrides(seed=args.seed)
    if args.phone_reserve is not None:
        if args.phone_reserve < 0:
            raise ScenarioError("--phone-reserve must be >= 0")
        scenario = scenario.with_router(phone_reserve=float(args.phone_reserve))
    return scenario


def _flag_scenario(args: argparse.Namespace) -> Scenario:
    """The original flag-driven run: 30% of agents speak Spanish, one in three chats."""
    agents = DEFAULT_AGENTS if args.agents is None else args.agents
    if not 1 <= agents <= 1000:
        raise ScenarioError("--agents must be between 1 and 1000")
    rates = DEFAULT_RATES | dict(args.rate or [])
    talk = DEFAULT_TALK | dict(args.talk or [])
    patience = dict(args.patience or [])
    if any(v <= 0 for v in [*talk.values(), *patience.values()]):
        raise ScenarioError("--talk and --patience means must be positive")
    given = {name: getattr(args, name) for name in DEFAULT_NUMBERS}
    numbers = {name: DEFAULT_NUMBERS[name] if v is None else v for name, v in given.items()}
    spanish_share, decline = numbers["spanish_share"], numbers["decline_probability"]
    if spanish_share > 1 or decline > 1:
        raise ScenarioError("--spanish-share and --decline-probability must be at most 1")
    wrap_up = Distribution("exponential", numbers["wrap_up"])
    mix = (SkillMix(frozenset({SPANISH}), spanish_share),) if spanish_share > 0 else ()
    channels = {
        ch: ChannelLoad(
            rates_per_hour=(rates[ch] * 60,),
            talk=Distribution("exponential", talk[ch]),
            wrap_up=wrap_up,
            patience=Distribution("exponential", patience[ch]) if ch in patience else None,
            mix=mix,
        )
        for ch in CHANNELS
    }
    spanish = math.ceil(agents * SPANISH_AGENT_SHARE) if spanish_share > 0 else 0
    counts: dict[tuple[bool, bool], int] = {}
    for i in range(agents):
        kind = (i < spanish, i % CHAT_AGENT_EVERY == 0)
        counts[kind] = counts.get(kind, 0) + 1
    groups = tuple(
        AgentGroup(
            name=("es" if es else "en") + ("-chat" if chat else ""),
            count=n,
            skills=frozenset({SPANISH}) if es else frozenset(),
            capacities={"phone": 1, "chat": 3 if chat else 0, "email": 1},
        )
        for (es, chat), n in counts.items()
    )
    return Scenario(
        name="flags",
        duration=DEFAULT_DURATION,
        drain=DEFAULT_DRAIN,
        time_scale=1.0,
        seed=None,
        channels=channels,
        agents=groups,
        router=dict(ROUTER_DEFAULTS),
        decline_probability=decline,
    )


async def simulate(
    scenario: Scenario,
    *,
    router: RouterConnection | None = None,
    database_url: str | None = None,
    run_id: str | None = None,
    quiet: bool = True,
) -> SimulationReport:
    """Run a scenario against `router`, or against a router started for it (on
    `database_url`). RouterError when the router cannot be reached or refuses the run."""
    seed = secrets.randbits(32) if scenario.seed is None else scenario.seed
    run_id = run_id or secrets.token_hex(3)
    if router is not None:
        return await _drive(scenario, router, run_id, seed, quiet, started=False)
    async with started_router(scenario, database_url) as address:
        return await _drive(scenario, RouterConnection(address), run_id, seed, quiet, started=True)


async def _drive(
    scenario: Scenario,
    router: RouterConnection,
    run_id: str,
    seed: int,
    quiet: bool,
    *,
    started: bool,
) -> SimulationReport:
    """The run against `router`; `started`: the simulator started it with the scenario's
    policy, so it knows that policy whole."""
    async with router.channel() as channel:
        # The first call says at once whether the router is there and lets this run in.
        stub = pb_grpc.ReportingServiceStub(channel)
        status = await router.call(
            stub.GetQueueStatus, pb.GetQueueStatusRequest(), needs="an admin token"
        )
        known = (
            KnownPolicy.of_scenario(scenario)
            if started
            else KnownPolicy.of_goals(scenario, status.goals)
        )
        simulation = Simulation(scenario, channel, router.address, run_id, seed, known)
        return await simulation.execute(quiet)


def connection_from_args(args: argparse.Namespace) -> RouterConnection | None:
    """The router to drive; None when a scenario run starts its own."""
    if starts_router(args):
        given = [
            f for f in ("tls_ca", "client_cert", "client_key", "token_file") if getattr(args, f)
        ]
        if given:
            flags = ", ".join("--" + f.replace("_", "-") for f in given)
            raise ConfigError(
                f"{flags} go with --router: without it simulate starts its own router, on "
                "loopback, which needs neither"
            )
        return None
    return RouterConnection.from_args(args)


async def run(args: argparse.Namespace) -> int:
    """Run the simulation; print the report; return the exit code (1 when the run met
    gRPC errors or the server report could not be read)."""
    scenario = scenario_from_args(args)
    router = connection_from_args(args)
    report = await simulate(
        scenario,
        router=router,
        database_url=args.database_url,
        run_id=args.run_id,
        quiet=args.quiet,
    )
    if args.format == "json":
        sys.stdout.write(render_json(report.to_json()))
    elif args.format == "csv":
        summaries = report.client
        header = list(vars(summaries[0]))
        sys.stdout.write(render_csv((header, [list(vars(s).values()) for s in summaries])))
    else:
        print(text.render(report))
    return 0 if report.server is not None and not report.counters.errors else 1
