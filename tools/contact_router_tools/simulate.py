"""The `simulate` command: synthetic gateways and agents drive a router over gRPC.

Two ways to say what to simulate:

* a scenario file (`contact-router simulate scenarios/phone_only.toml`, see
  router/scenario.py): traffic per channel, agents with skills, capacities and shifts,
  and a time scale. Unless --target names a running router, the simulator starts its
  own (`contact-router serve` as a child process on a free port) with the scenario's
  policy divided by the time scale, so a 20 s target is 1/3 s of real time at 60x;
* flags only (`--rate`, `--handle`, ...): the original quick run against --target at
  real time.

Gateways submit contacts per channel as Poisson arrivals; agents sign in at the start of
their shift, hold an offer stream, accept (or now and then decline) offers, talk for a
random time, end the contact, wrap up and complete it with a disposition, and sign out
after their shift once their contacts are done. After the arrivals the work drains for
up to `drain`, then the run closes: streams are cancelled, contacts still in progress
are ended and completed at once, this run's contacts still waiting are abandoned (so
they do not linger in the router's queue), agents sign out, and a report is printed.
Every figure is in simulated seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import random
import re
import secrets
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, TypeVar

import grpc
from contactrouter.client import connect
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from contact_router_tools.scenario import (
    CHANNELS,
    ROUTER_DEFAULTS,
    AgentGroup,
    ChannelLoad,
    Distribution,
    Scenario,
    ScenarioError,
    SkillMix,
)
from contact_router_tools.scenario import load as load_scenario
from contact_router_tools.simulation_report import (
    CHANNEL_ENUMS,
    PREFERENCE_SOURCES,
    WAIT_REASONS,
    AgentRecord,
    ContactRecord,
    RunCounters,
    SimulationReport,
    channel_name,
)

Req = TypeVar("Req")
Resp = TypeVar("Resp")

# About 70% occupancy for the default 10 agents: phone 4 erlangs, chat 4 (at 3 per
# agent), email 2, so a newcomer sees a center that keeps its service level.
DEFAULT_RATES = {"phone": 12.0, "chat": 6.0, "email": 4.0}  # contacts per minute
DEFAULT_HANDLE = {"phone": 20.0, "chat": 40.0, "email": 30.0}  # mean talk seconds
DISPOSITIONS = ("order-status", "return", "billing", "other")
SPANISH = "lang:es"
SPANISH_AGENT_SHARE = 0.3  # of agents, whenever some contacts need Spanish
CHAT_AGENT_EVERY = 3  # one agent in three takes chats (capacity 3); all take phone and email
RPC_TIMEOUT = 10.0
ATTEMPTS = 6  # backing off 0.5, 1, 2, 4, 4 s between attempts
RETRY = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
# After a router restart an agent is unknown (NOT_FOUND) until its client signs in again,
# which the agent's stream task does; ending or completing a held contact waits for that.
HELD_RETRY = (*RETRY, grpc.StatusCode.NOT_FOUND)
FAILED_PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
WAITING = (pb.CONTACT_STATE_QUEUED, pb.CONTACT_STATE_OFFERED)
NAMES = ("Ana", "Ben", "Chloe", "Diego", "Emma", "Farid", "Grace", "Hugo", "Ines", "Jun")
ROUTER_START_TIMEOUT = 60.0


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


_PAIRS = {  # repeatable CHANNEL=NUMBER options: metavar, help
    "--rate": ("CHANNEL=PER_MINUTE", "Poisson arrivals (defaults phone=12 chat=6 email=4)"),
    "--handle": ("CHANNEL=MEAN_SECONDS", "mean talk, exponential (phone=20 chat=40 email=30)"),
    "--patience": ("CHANNEL=MEAN_SECONDS", "mean patience, exponential (default: no abandons)"),
}
_NUMBERS = {  # options taking one number >= 0: metavar, default, help
    "--wrap-up": ("MEAN_SECONDS", 3.0, "mean after-contact work, exponential"),
    "--spanish-share": (
        "FRACTION",
        0.1,
        f"of contacts requiring {SPANISH}; 30%% of agents have it",
    ),
    "--decline-probability": ("P", 0.02, "chance that an agent declines an offer"),
}
_LEGACY = ("rate", "handle", "patience", "wrap_up", "spanish_share", "decline_probability")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the simulate options to a (sub)parser."""
    add = parser.add_argument
    add(
        "scenario",
        nargs="?",
        type=Path,
        help="scenario file (TOML, see scenarios/); without it the flags below describe "
        "the run, at real time, against --target",
    )
    add("--target", help="router address; with a scenario, default: start a router")
    add(
        "--database-url",
        help="database of the router a scenario run starts (default ROUTER_DATABASE_URL, "
        "else an embedded PostgreSQL in .data/simulation); no other router may use it",
    )
    add("--time-scale", type=_positive, help="simulated seconds per real second")
    add("--phone-reserve", type=int, metavar="K", help="override the scenario's phone reserve")
    add("--agents", type=int, default=None, metavar="N", help="synthetic agents (default 10)")
    add("--duration", type=_non_negative, metavar="SECONDS", help="seconds of arrivals")
    add("--drain", type=_non_negative, metavar="SECONDS", help="time to finish after arrivals")
    for flag, (metavar, default, text) in _NUMBERS.items():
        described = f"{text} (default {default:g}; no scenario file only)"
        add(flag, type=_non_negative, default=None, metavar=metavar, help=described)
    for flag, (metavar, text) in _PAIRS.items():
        add(flag, action="append", type=_channel_value, metavar=metavar, help=f"{text}; repeatable")
    add("--seed", type=int, help="random seed (default: the scenario's, else random)")
    add("--run-id", type=_run_id, help="prefix of idempotency keys and agent ids (default random)")
    add("--json", action="store_true", help="print the final report as JSON")
    add("--quiet", action="store_true", help="no progress line on stderr")


def scenario_from_args(args: argparse.Namespace) -> Scenario:
    """The scenario a command line describes: a file with overrides, or the flags."""
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
    agents = 10 if args.agents is None else args.agents
    if not 1 <= agents <= 1000:
        raise ScenarioError("--agents must be between 1 and 1000")
    rates = DEFAULT_RATES | dict(args.rate or [])
    handle = DEFAULT_HANDLE | dict(args.handle or [])
    patience = dict(args.patience or [])
    if any(v <= 0 for v in [*handle.values(), *patience.values()]):
        raise ScenarioError("--handle and --patience means must be positive")
    spanish_share = 0.1 if args.spanish_share is None else args.spanish_share
    decline = 0.02 if args.decline_probability is None else args.decline_probability
    if spanish_share > 1 or decline > 1:
        raise ScenarioError("--spanish-share and --decline-probability must be at most 1")
    wrap_up = Distribution("exponential", 3.0 if args.wrap_up is None else args.wrap_up)
    mix = (SkillMix(frozenset({SPANISH}), spanish_share),) if spanish_share > 0 else ()
    channels = {
        ch: ChannelLoad(
            rates_per_hour=(rates[ch] * 60,),
            handle=Distribution("exponential", handle[ch]),
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
        duration=60.0,
        drain=30.0,
        time_scale=1.0,
        seed=None,
        channels=channels,
        agents=groups,
        router=dict(ROUTER_DEFAULTS),
        decline_probability=decline,
    )


class SimAgent:
    """One synthetic agent and what the report needs about it."""

    def __init__(self, agent_id: str, group: AgentGroup, rng: random.Random, index: int) -> None:
        self.agent_id = agent_id
        self.group = group
        self.rng = rng
        self.shift_start, self.shift_end = group.shift_of(index)
        self.held = 0
        self.free = asyncio.Event()  # set while it holds nothing
        self.free.set()
        self.off_shift = asyncio.Event()
        self.record = AgentRecord(agent_id=agent_id, group=group.name)


class Simulation:
    def __init__(
        self, scenario: Scenario, channel: grpc.aio.Channel, target: str, run_id: str, seed: int
    ) -> None:
        self.s = scenario
        self.target = target
        self.run_id = run_id
        self.seed = seed
        self.contact_api = pb_grpc.ContactServiceStub(channel)
        self.agent_api = pb_grpc.AgentServiceStub(channel)
        self.reporting_api = pb_grpc.ReportingServiceStub(channel)
        self.records: dict[str, ContactRecord] = {}  # by idempotency key
        self.by_contact: dict[str, ContactRecord] = {}  # by contact id
        # Returning customers: per channel, the customers whose last contact was completed
        # and who have none open now; and who completed each customer's last contact.
        self.past_customers: dict[str, list[str]] = {ch: [] for ch in CHANNELS}
        self.last_agent: dict[str, str] = {}
        self.counters = RunCounters()
        self.agents: list[SimAgent] = []
        self.closing = asyncio.Event()
        self.streams: set[asyncio.Task[None]] = set()
        self.handlers: set[asyncio.Task[None]] = set()
        self.customers: set[asyncio.Task[None]] = set()
        self.started = time.monotonic()
        self.phase = "starting"

    def now(self) -> float:
        """Simulated seconds since the arrivals began."""
        return (time.monotonic() - self.started) * self.s.time_scale

    # -- plumbing -------------------------------------------------------------------

    async def _rpc(
        self,
        method: grpc.aio.UnaryUnaryMultiCallable[Req, Resp],
        request: Req,
        expected: tuple[grpc.StatusCode, ...] = (),
        attempts: int = ATTEMPTS,
        retry: tuple[grpc.StatusCode, ...] = RETRY,
        deadline: float = RPC_TIMEOUT,
    ) -> Resp | None:
        """Make one RPC, retrying UNAVAILABLE and DEADLINE_EXCEEDED (every call this
        simulator makes is safe to repeat); on failure count it, as refused when its code
        is expected, and return None. The channel (contactrouter.client.connect) already retries
        UNAVAILABLE a few times within each attempt; this loop outlasts a router restart."""
        name = type(request).__name__.removesuffix("Request")
        for attempt in range(1, attempts + 1):
            try:
                return await method(request, timeout=deadline)
            except grpc.aio.AioRpcError as err:
                if err.code() in retry and attempt < attempts:
                    self.counters.retries += 1
                    await asyncio.sleep(min(4.0, 0.25 * 2**attempt))
                    continue
                bucket = self.counters.refused if err.code() in expected else self.counters.errors
                bucket[f"{name} {err.code().name}"] += 1
                break
        return None

    def _spawn(self, coro: Coroutine[Any, Any, None], group: set[asyncio.Task[None]]) -> None:
        task = asyncio.create_task(coro)
        group.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        for group in (self.streams, self.handlers, self.customers):
            group.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            # A bug or an unexpected answer in one task must not end the run.
            self.counters.errors[f"task {type(exc).__name__}: {exc}"[:120]] += 1

    async def _pause(self, simulated: float) -> bool:
        """Sleep a simulated duration; True when cut short because the run is closing."""
        try:
            await asyncio.wait_for(self.closing.wait(), timeout=self.s.real(simulated))
        except TimeoutError:
            return False
        return True

    async def _until(self, simulated_time: float) -> None:
        await asyncio.sleep(max(0.0, self.s.real(simulated_time - self.now())))

    # -- gateways -------------------------------------------------------------------

    async def _gateway(self, channel: str, load: ChannelLoad) -> None:
        """Poisson arrivals on one channel until the scenario's duration has passed; an
        hourly rate is followed by thinning a process at the peak rate."""
        rng = random.Random(f"{self.seed}:gateway:{channel}")
        peak = load.peak_rate
        if peak <= 0:
            return
        who = random.Random(f"{self.seed}:customers:{channel}")  # apart: same arrivals
        at, n = rng.expovariate(peak), load.backlog
        while at < self.s.duration:
            if rng.random() * peak <= load.rate_at(at):
                await self._until(at)
                n += 1
                self._submit_one(channel, load, rng, n, who)
            at += rng.expovariate(peak)

    async def _preload(self) -> list[ContactRecord]:
        """Submit every channel's backlog before agents sign in and the clock starts, a
        few at a time: a burst of thousands would stall the router for what is minutes
        of simulated time, and the backlog is meant to be already waiting at time 0."""
        gate = asyncio.Semaphore(32)
        records: list[ContactRecord] = []

        async def submit(rec: ContactRecord, request: pb.SubmitContactRequest) -> None:
            async with gate:
                response = await self._rpc(self.contact_api.SubmitContact, request)
            if response is None:
                rec.failed = True
            else:
                self._submitted(rec, response.contact)

        jobs = []
        for channel, load in self.s.channels.items():
            rng = random.Random(f"{self.seed}:backlog:{channel}")
            for n in range(1, load.backlog + 1):
                rec, request = self._contact(channel, load, rng, f"b{n:06d}")
                records.append(rec)
                jobs.append(submit(rec, request))
        await asyncio.gather(*jobs)
        return records

    def _submit_one(
        self,
        channel: str,
        load: ChannelLoad,
        rng: random.Random,
        n: int,
        who: random.Random,
    ) -> None:
        rec, request = self._contact(channel, load, rng, f"{n:06d}", who)
        patience = None if load.patience is None else load.patience.sample(rng)
        self._spawn(self._customer(rec, request, patience), self.customers)

    def _contact(
        self,
        channel: str,
        load: ChannelLoad,
        rng: random.Random,
        number: str,
        who: random.Random | None = None,
    ) -> tuple[ContactRecord, pb.SubmitContactRequest]:
        """A new contact. Without `who`, one of the backlog, from a new customer; with
        it, an arrival whose customer may be a returning one (drawn from the channel's
        past customers) or have an agent named by the gateway."""
        key = f"sim-{self.run_id}-{channel}-{number}"
        name = rng.choice(NAMES)
        drawn = {
            "phone": f"+1555{rng.randrange(10**7):07d}",
            "chat": f"web-{rng.randrange(16**8):08x}",
            "email": f"{name.lower()}.{rng.randrange(1000)}@example.com",
        }[channel]
        # Unique per run and contact: a customer returns only when the scenario says so
        # (the router prefers a returning customer's previous agent).
        customer = f"{drawn}#{self.run_id}.{number}"
        skills = load.skills(rng)
        required = skills.required_skills
        previous = named = ""
        if who is not None:
            kind = load.customer_kind(who)
            past = self.past_customers[channel]
            if kind == "returning" and past:
                index = who.randrange(len(past))
                past[index], past[-1] = past[-1], past[index]
                customer = past.pop()
                previous = self.last_agent[customer]
            elif kind == "named":
                able = [
                    a.agent_id
                    for a in self.agents
                    if a.group.capacities[channel] > 0 and required <= a.group.skills
                ]
                named = who.choice(able) if able else ""
        request = pb.SubmitContactRequest(
            idempotency_key=key,
            channel=CHANNEL_ENUMS[channel],
            customer_id=customer,
            attributes={"name": name, "order": f"Z{rng.randrange(10**6):06d}"},
            required_skills=sorted(required),
            preferred_skills=[pb.SkillLevel(skill=s) for s in skills.preferred_skills],
            preferred_agent_id=named,
        )
        rec = ContactRecord(
            key=key,
            channel=channel,
            required_skills=required,
            preferred_skills=frozenset(skills.preferred_skills),
            customer_id=customer,
            previous_agent=previous,
            named_agent=named,
            backlog=who is None,
        )
        self.records[key] = rec
        return rec, request

    def _submitted(self, rec: ContactRecord, contact: pb.Contact) -> None:
        """SubmitContact acknowledged: what the router made of the contact."""
        rec.contact_id = contact.contact_id
        rec.router_preferred = contact.preferred_agent_id
        rec.router_preference = PREFERENCE_SOURCES.get(contact.preferred_agent_source, "")
        self.by_contact[contact.contact_id] = rec

    def _customer_free(self, rec: ContactRecord, agent_id: str | None) -> None:
        """The customer's contact is over: completed by `agent_id`, or not answered
        (None). A customer with a completed contact may return."""
        if agent_id is not None:
            self.last_agent[rec.customer_id] = agent_id
        if rec.customer_id in self.last_agent and not rec.returned_to_pool:
            rec.returned_to_pool = True  # once per contact
            self.past_customers[rec.channel].append(rec.customer_id)

    async def _customer(
        self, rec: ContactRecord, request: pb.SubmitContactRequest, patience: float | None
    ) -> None:
        """Submit one contact (retries reuse its idempotency key); ask for its estimated
        wait when it has to queue; abandon it if the customer's patience runs out before
        an agent answers."""
        response = await self._rpc(self.contact_api.SubmitContact, request)
        if response is None:
            rec.failed = True
            self._customer_free(rec, None)
            return
        self._submitted(rec, response.contact)
        rec.submitted = self.now()
        if response.contact.state == pb.CONTACT_STATE_QUEUED:
            get = pb.GetContactRequest(contact_id=rec.contact_id)
            found = await self._rpc(self.contact_api.GetContact, get)
            if found is not None and found.queue_position:
                rec.sampled_at = self.now()
                rec.queue_position = found.queue_position
                rec.routing_position = found.routing_position
                rec.wait_reason = WAIT_REASONS.get(found.wait_reason, "")
                rec.last_skills = frozenset(found.contact.required_skills)
                if found.HasField("estimated_wait_seconds"):
                    # The router's estimate is in its (real) seconds.
                    rec.estimated_wait = found.estimated_wait_seconds * self.s.time_scale
        if patience is None or rec.answered is not None:
            return
        if await self._pause(patience - (self.now() - rec.submitted)) or rec.answered is not None:
            return
        get = pb.GetContactRequest(contact_id=rec.contact_id)
        found = await self._rpc(self.contact_api.GetContact, get)
        if found is not None and found.contact.state in WAITING:
            rec.last_skills = frozenset(found.contact.required_skills)
            await self._abandon(rec, "patience")

    async def _abandon(self, rec: ContactRecord, reason: str) -> None:
        request = pb.AbandonContactRequest(contact_id=rec.contact_id)
        done = await self._rpc(self.contact_api.AbandonContact, request, (FAILED_PRECONDITION,))
        if done is not None and done.contact.state == pb.CONTACT_STATE_ABANDONED:
            rec.abandoned, rec.abandon_reason = self.now(), reason
            rec.last_skills = frozenset(done.contact.required_skills)
            self._customer_free(rec, None)

    # -- agents ---------------------------------------------------------------------

    def _make_agents(self) -> list[SimAgent]:
        agents = []
        for group in self.s.agents:
            for i in range(group.count):
                agent_id = f"sim-{self.run_id}-{group.name}-{i:03d}"
                rng = random.Random(f"{self.seed}:agent:{group.name}:{i}")
                agents.append(SimAgent(agent_id, group, rng, i))
        return agents

    async def _sign_in(self, agent: SimAgent) -> bool:
        capacities = [
            pb.ChannelCapacity(channel=CHANNEL_ENUMS[ch], capacity=agent.group.capacities[ch])
            for ch in CHANNELS
        ]
        request = pb.SignInRequest(
            agent_id=agent.agent_id,
            skills=sorted(agent.group.skills),
            capacities=capacities,
            initial_status=pb.AGENT_STATUS_READY,
        )
        return await self._rpc(self.agent_api.SignIn, request) is not None

    async def _shift(self, agent: SimAgent, signed_in: bool | None) -> None:
        """Sign in at the shift's start (unless already signed in), hold the offer
        stream, and at its end go AWAY, finish what is held and sign out."""
        if signed_in is None:
            await self._until(agent.shift_start)
            signed_in = await self._sign_in(agent)
        agent.record.on_shift_from = self.now()
        stream = asyncio.create_task(self._stream(agent, signed_in))
        try:
            if agent.shift_end is None:
                await self.closing.wait()
            else:
                await self._pause(agent.shift_end - self.now())
            agent.record.on_shift_until = self.now()
            if not self.closing.is_set():
                away = pb.SetStatusRequest(
                    agent_id=agent.agent_id, status=pb.AGENT_STATUS_AWAY, away_reason="end-of-shift"
                )
                await self._rpc(self.agent_api.SetStatus, away)
                agent.off_shift.set()
                done = asyncio.create_task(agent.free.wait())
                closing = asyncio.create_task(self.closing.wait())
                await asyncio.wait({done, closing}, return_when=asyncio.FIRST_COMPLETED)
                done.cancel()
                closing.cancel()
        finally:
            stream.cancel()  # an offer not yet answered goes back to the queue
            with contextlib.suppress(asyncio.CancelledError):
                await stream
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(agent.free.wait(), RPC_TIMEOUT * 3)
        await self._sign_out(agent)

    async def _stream(self, agent: SimAgent, signed_in: bool) -> None:
        """Hold the agent's offer stream until cancelled, reconnecting after failures."""
        while True:
            if signed_in:
                request = pb.StreamOffersRequest(agent_id=agent.agent_id)
                try:
                    async for event in self.agent_api.StreamOffers(request):
                        self._on_event(agent, event)
                    self.counters.errors["StreamOffers ended by server"] += 1
                except grpc.aio.AioRpcError as err:
                    self.counters.errors[f"StreamOffers {err.code().name}"] += 1
            await asyncio.sleep(1.0)
            signed_in = await self._sign_in(agent)

    def _on_event(self, agent: SimAgent, event: pb.StreamOffersResponse) -> None:
        if event.HasField("offer"):
            self.counters.offers += 1
            self._spawn(self._work(agent, event.offer), self.handlers)
        elif event.HasField("offer_withdrawn"):
            reason = event.offer_withdrawn.reason or "unknown"
            self.counters.withdrawn[reason] += 1
            if reason == "timed_out" and not agent.off_shift.is_set():
                # The router set the agent AWAY ("missed"); it comes back at once.
                ready = pb.SetStatusRequest(agent_id=agent.agent_id, status=pb.AGENT_STATUS_READY)
                self._spawn(self._call(self.agent_api.SetStatus, ready), self.handlers)

    async def _call(self, method: grpc.aio.UnaryUnaryMultiCallable[Req, Resp], req: Req) -> None:
        await self._rpc(method, req)

    async def _work(self, agent: SimAgent, offer: pb.Offer) -> None:
        """Answer one offer and, when accepted, handle the contact to completion."""
        api, agent_id, contact = self.agent_api, agent.agent_id, offer.contact
        rec = self.records.get(contact.idempotency_key)
        if self.closing.is_set() or agent.rng.random() < self.s.decline_probability:
            decline = pb.DeclineOfferRequest(agent_id=agent_id, offer_id=offer.offer_id)
            if await self._rpc(api.DeclineOffer, decline, (FAILED_PRECONDITION,)) is not None:
                self.counters.declined += 1
            return
        agent.held += 1
        agent.free.clear()
        try:
            accept = pb.AcceptOfferRequest(agent_id=agent_id, offer_id=offer.offer_id)
            if await self._rpc(api.AcceptOffer, accept, (FAILED_PRECONDITION,)) is None:
                return  # expired or withdrawn meanwhile
            answered = self.now()
            if rec is None:
                self.counters.foreign += 1
            else:
                rec.answered, rec.agent_id = answered, agent_id
                rec.matched = rec.preferred_skills <= agent.group.skills
                rec.last_skills = frozenset(contact.required_skills)  # as offered
            load = self.s.channels.get(channel_name(contact.channel))
            handle = load.handle.sample(agent.rng) if load is not None else 0.0
            if rec is not None:
                rec.handle_drawn = handle
            cut = await self._pause(handle)
            end = pb.EndContactRequest(agent_id=agent_id, contact_id=contact.contact_id)
            if await self._rpc(api.EndContact, end, retry=HELD_RETRY) is None:
                return
            if rec is not None:
                rec.ended = self.now()
            wrap_up = load.wrap_up.sample(agent.rng) if load is not None else 0.0
            cut = (wrap_up > 0 and await self._pause(wrap_up)) or cut
            complete = pb.CompleteContactRequest(
                agent_id=agent_id,
                contact_id=contact.contact_id,
                disposition=agent.rng.choice(DISPOSITIONS),
            )
            done = await self._rpc(api.CompleteContact, complete, retry=HELD_RETRY)
            if done is not None:
                agent.record.handled += 1
                agent.record.busy.append((answered, self.now()))
                if rec is not None:
                    rec.completed, rec.cut_short = self.now(), cut
                    self._customer_free(rec, agent_id)
        finally:
            agent.held -= 1
            if not agent.held:
                agent.free.set()

    # -- progress -------------------------------------------------------------------

    async def _progress(self) -> None:
        tty = sys.stderr.isatty()
        while True:
            await asyncio.sleep(1.0 if tty else 5.0)
            status = await self._rpc(
                self.reporting_api.GetQueueStatus,
                pb.GetQueueStatusRequest(),
                attempts=1,
                deadline=2,
            )
            waiting = "?" if status is None else str(sum(c.waiting for c in status.channels))
            recs = self.records.values()
            line = (
                f"[sim {self.now():8.0f}s {self.phase:9}] "
                f"submitted {sum(r.submitted is not None for r in recs)}  "
                f"answered {sum(r.answered is not None for r in recs)}  "
                f"abandoned {sum(r.abandoned is not None for r in recs)}  "
                f"waiting {waiting} (server, all)  "
                f"busy {sum(a.held > 0 for a in self.agents)}/{len(self.agents)} agents  "
                f"errors {sum(self.counters.errors.values())}"
            )
            sys.stderr.write(f"\r{line}\x1b[K" if tty else f"{line}\n")
            sys.stderr.flush()

    async def _watch_queue(self) -> None:
        """Poll the live queue: which of this run's contacts it lists as unserved."""
        while True:
            await asyncio.sleep(self.s.real(self.s.queue_status_every))
            status = await self._rpc(
                self.reporting_api.GetQueueStatus, pb.GetQueueStatusRequest(), attempts=1
            )
            if status is None:
                continue
            self.counters.queue_polls += 1
            self.counters.unserved_peak = max(self.counters.unserved_peak, status.unserved_total)
            for unserved in status.unserved:
                rec = self.by_contact.get(unserved.contact_id)
                if rec is not None:
                    rec.listed_unserved = True

    # -- the run --------------------------------------------------------------------

    async def execute(self, quiet: bool) -> SimulationReport:
        self.agents = self._make_agents()
        backlog = await self._preload()
        first = [a for a in self.agents if a.shift_start <= 0]
        signed = dict(zip(first, await asyncio.gather(*map(self._sign_in, first)), strict=True))
        self.started, wall_start = time.monotonic(), datetime.now(UTC)
        shifts = [asyncio.create_task(self._shift(a, signed.get(a))) for a in self.agents]
        for rec in backlog:
            if rec.contact_id:
                rec.submitted = 0.0
        progress = None if quiet else asyncio.create_task(self._progress())
        watch = None
        if self.s.queue_status_every > 0:
            watch = asyncio.create_task(self._watch_queue())
        self.phase = "arrivals"
        await asyncio.gather(*(self._gateway(ch, load) for ch, load in self.s.channels.items()))
        await self._until(self.s.duration)
        arrivals_end = self.now()
        self.phase = "draining"
        while self.now() < arrivals_end + self.s.drain:
            if all(r.final for r in self.records.values()):
                break
            await asyncio.sleep(0.05)
        drain = self.now() - arrivals_end
        self.phase = "closing"
        self.closing.set()
        # Shifts cancel their streams (unanswered offers go back to the queue) and sign out
        # once their contacts in progress are ended and completed.
        await asyncio.sleep(0)
        await _settle(self.handlers, limit=RPC_TIMEOUT * 3)
        await _settle(self.customers, limit=RPC_TIMEOUT * 3)
        left = [r for r in self.records.values() if r.contact_id and r.answered is None]
        left = [r for r in left if not r.final]
        await asyncio.gather(*(self._abandon(r, "end-of-run") for r in left))
        await asyncio.gather(*shifts, return_exceptions=True)
        if watch is not None:
            await _settle({watch}, cancel=True)
        if progress is not None:
            await _settle({progress}, cancel=True)
            sys.stderr.write("\n" if sys.stderr.isatty() else "")
        return await self._report(wall_start, arrivals_end, drain)

    async def _sign_out(self, agent: SimAgent) -> None:
        request = pb.SignOutRequest(agent_id=agent.agent_id)
        await self._rpc(self.agent_api.SignOut, request, (FAILED_PRECONDITION,))

    async def _report(
        self, wall_start: datetime, arrivals: float, drain: float
    ) -> SimulationReport:
        start = wall_start.replace(second=0, microsecond=0)
        end = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1)
        request = pb.GetServiceLevelRequest(interval=pb.INTERVAL_LENGTH_DAY)
        request.start.FromDatetime(start)
        request.end.FromDatetime(end)
        server = await self._rpc(self.reporting_api.GetServiceLevel, request)
        contacts = None
        if any(load.returning > 0 for load in self.s.channels.values()):
            # The server's own count of returning customers who reached their previous agent.
            asked = pb.GetContactReportRequest(interval=pb.INTERVAL_LENGTH_DAY)
            asked.start.FromDatetime(start)
            asked.end.FromDatetime(end)
            contacts = await self._rpc(self.reporting_api.GetContactReport, asked)
        note = self.s.cap_note()
        return SimulationReport(
            run_id=self.run_id,
            scenario=self.s.name,
            seed=self.seed,
            target=self.target,
            agents=len(self.agents),
            time_scale=self.s.time_scale,
            arrivals_seconds=arrivals,
            drain_seconds=drain,
            warm_up=self.s.warm_up,
            thresholds={ch: self.s.threshold(ch) for ch in CHANNELS},
            short_abandon_limit=self.s.policy.short_abandon,
            phone_reserve=self.s.policy.phone_reserve,
            window=(start.isoformat(), end.isoformat()),
            records=list(self.records.values()),
            agent_records=[a.record for a in self.agents],
            counters=self.counters,
            server=server,
            contact_report=contacts,
            notes=[] if note is None else [note],
        )


async def _settle(
    tasks: set[asyncio.Task[None]], *, cancel: bool = False, limit: float = 5.0
) -> None:
    """Wait for tasks (cancelling them first when asked); cancel what outlives limit seconds."""
    pending = set(tasks)
    if cancel:
        for task in pending:
            task.cancel()
    if pending:
        _, late = await asyncio.wait(pending, timeout=limit)
        for task in late:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


# ------------------------------------------------------------- the router it starts


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def started_router(scenario: Scenario, database_url: str | None) -> AsyncIterator[str]:
    """`contact-router serve` as a child process running the scenario's policy at its time
    scale; yields its address once it is SERVING, and stops it (SIGTERM) afterwards.

    A child process, not a task in this event loop, so that the simulated customers and
    agents do not take the router's time slices (both still share the machine)."""
    port = _free_port()
    env = {
        **os.environ,
        **scenario.server_env(),
        "ROUTER_HOST": "127.0.0.1",
        "ROUTER_PORT": str(port),
        "ROUTER_METRICS_PORT": "off",
        "ROUTER_LOG_FORMAT": "json",
        "ROUTER_LOG_LEVEL": "warning",
    }
    env.pop("ROUTER_CONFIG_FILE", None)
    url = database_url or os.environ.get("ROUTER_DATABASE_URL", "")
    env["ROUTER_DATABASE_URL"] = url
    if not url:
        env["ROUTER_DATA_DIR"] = ".data/simulation"  # the child makes it absolute
    with tempfile.TemporaryFile() as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "router.cli", "serve", env=env, stderr=log
        )
        address = f"127.0.0.1:{port}"
        try:
            await _wait_serving(address, process, log)
            yield address
        finally:
            if process.returncode is None:
                process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), 30)
                except TimeoutError:
                    process.kill()
                    await process.wait()


async def _wait_serving(address: str, process: asyncio.subprocess.Process, log: IO[bytes]) -> None:
    deadline = time.monotonic() + ROUTER_START_TIMEOUT
    async with grpc.aio.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if process.returncode is not None:
                break
            with contextlib.suppress(grpc.aio.AioRpcError):
                answer = await health.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            await asyncio.sleep(0.2)
    log.seek(0)
    tail = log.read().decode(errors="replace")[-2000:]
    raise RuntimeError(
        f"the router did not start serving at {address} (another router holding the "
        f"database's active lock keeps it a standby); its log ends with:\n{tail}"
    )


async def simulate(
    scenario: Scenario,
    *,
    target: str | None = None,
    database_url: str | None = None,
    run_id: str | None = None,
    quiet: bool = True,
) -> SimulationReport:
    """Run a scenario against `target`, or against a router started for it."""
    seed = secrets.randbits(32) if scenario.seed is None else scenario.seed
    run_id = run_id or secrets.token_hex(3)
    async with contextlib.AsyncExitStack() as stack:
        if target is None:
            target = await stack.enter_async_context(started_router(scenario, database_url))
        channel = await stack.enter_async_context(connect(target))
        try:
            await asyncio.wait_for(channel.channel_ready(), timeout=RPC_TIMEOUT)
        except TimeoutError:
            raise RuntimeError(f"no router answering at {target}") from None
        return await Simulation(scenario, channel, target, run_id, seed).execute(quiet)
    raise AssertionError("unreachable")  # pragma: no cover (mypy: the stack may swallow)


async def run(args: argparse.Namespace) -> int:
    """Run the simulation; print the report; return the exit code."""
    try:
        scenario = scenario_from_args(args)
    except ScenarioError as err:
        print(f"simulate: {err}", file=sys.stderr)
        return 2
    target = args.target
    if target is None and args.scenario is None:
        target = "127.0.0.1:50051"
    try:
        report = await simulate(
            scenario,
            target=target,
            database_url=args.database_url,
            run_id=args.run_id,
            quiet=args.quiet,
        )
    except RuntimeError as err:
        print(f"simulate: {err}", file=sys.stderr)
        return 1
    if args.json:
        import json

        print(json.dumps(report.to_json(), indent=2))
    else:
        print(report.to_text())
    return 0 if report.server is not None and not report.counters.errors else 1
