"""The `simulate` command: synthetic gateways and agents drive a running router over gRPC.

Gateways submit contacts per channel as Poisson arrivals; agents sign in, hold an offer
stream, accept (or now and then decline) offers, talk for an exponential time, end the
contact, wrap up and complete it with a disposition. After --duration seconds arrivals
stop, work drains for up to --drain seconds, then the run closes: streams are cancelled,
contacts still in progress are ended and completed at once, this run's contacts still
waiting are abandoned (so they do not linger in the router's queue), agents sign out,
and a service-level report is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import re
import secrets
import sys
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import grpc

from router._proto.contactrouter.v1 import contact_router_pb2 as pb
from router._proto.contactrouter.v1 import contact_router_pb2_grpc as pb_grpc
from router.client import connect
from router.simulation_report import (
    CHANNEL_ENUMS,
    CHANNEL_NAMES,
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


def _channel_value(text: str) -> tuple[str, float]:
    name, sep, number = text.partition("=")
    name = name.strip().lower()
    if not sep or name not in CHANNEL_NAMES:
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
    "--duration": ("SECONDS", 60.0, "seconds of arrivals"),
    "--wrap-up": ("MEAN_SECONDS", 3.0, "mean after-contact work, exponential"),
    "--spanish-share": (
        "FRACTION",
        0.1,
        f"of contacts requiring {SPANISH}; 30%% of agents have it",
    ),
    "--decline-probability": ("P", 0.02, "chance that an agent declines an offer"),
    "--drain": ("SECONDS", 30.0, "time for work to finish after arrivals stop"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the simulate options to a (sub)parser."""
    add = parser.add_argument
    add("--target", default="127.0.0.1:50051", help="router address (default %(default)s)")
    add("--agents", type=int, default=10, metavar="N", help="synthetic agents (default 10)")
    for flag, (metavar, default, text) in _NUMBERS.items():
        described = f"{text} (default {default:g})"
        add(flag, type=_non_negative, default=default, metavar=metavar, help=described)
    for flag, (metavar, text) in _PAIRS.items():
        add(flag, action="append", type=_channel_value, metavar=metavar, help=f"{text}; repeatable")
    add("--seed", type=int, help="random seed (default: random, printed in the report)")
    add("--run-id", type=_run_id, help="prefix of idempotency keys and agent ids (default random)")
    add("--json", action="store_true", help="print the final report as JSON")
    add("--quiet", action="store_true", help="no progress line on stderr")


@dataclass(frozen=True)
class Settings:
    target: str
    duration: float
    agents: int
    rates: dict[str, float]
    handle: dict[str, float]
    wrap_up: float
    patience: dict[str, float]
    spanish_share: float
    decline_probability: float
    drain: float
    seed: int
    run_id: str

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Settings:
        handle = DEFAULT_HANDLE | dict(args.handle or [])
        patience = dict(args.patience or [])
        if not 1 <= args.agents <= 1000:
            raise ValueError("--agents must be between 1 and 1000")
        if any(v <= 0 for v in [*handle.values(), *patience.values()]):
            raise ValueError("--handle and --patience means must be positive")
        if args.spanish_share > 1 or args.decline_probability > 1:
            raise ValueError("--spanish-share and --decline-probability must be at most 1")
        return cls(
            target=args.target,
            duration=args.duration,
            agents=args.agents,
            rates=DEFAULT_RATES | dict(args.rate or []),
            handle=handle,
            wrap_up=args.wrap_up,
            patience=patience,
            spanish_share=args.spanish_share,
            decline_probability=args.decline_probability,
            drain=args.drain,
            seed=secrets.randbits(32) if args.seed is None else args.seed,
            run_id=args.run_id or secrets.token_hex(3),
        )


@dataclass
class SimAgent:
    agent_id: str
    skills: list[str]
    chat: bool
    rng: random.Random
    held: int = 0


class Simulation:
    def __init__(self, settings: Settings, channel: grpc.aio.Channel) -> None:
        self.s = settings
        self.contact_api = pb_grpc.ContactServiceStub(channel)
        self.agent_api = pb_grpc.AgentServiceStub(channel)
        self.reporting_api = pb_grpc.ReportingServiceStub(channel)
        self.records: dict[str, ContactRecord] = {}  # by idempotency key
        self.counters = RunCounters()
        self.agents: list[SimAgent] = []
        self.closing = asyncio.Event()
        self.streams: set[asyncio.Task[None]] = set()
        self.handlers: set[asyncio.Task[None]] = set()
        self.customers: set[asyncio.Task[None]] = set()
        self.started = time.monotonic()
        self.phase = "starting"

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
        is expected, and return None. The channel (router.client.connect) already retries
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

    async def _pause(self, seconds: float) -> bool:
        """Sleep up to seconds; True when cut short because the run is closing."""
        try:
            await asyncio.wait_for(self.closing.wait(), timeout=seconds)
        except TimeoutError:
            return False
        return True

    # -- gateways -------------------------------------------------------------------

    async def _gateway(self, channel: str) -> None:
        """Poisson arrivals on one channel until --duration has passed."""
        per_second = self.s.rates[channel] / 60.0
        if per_second <= 0:
            return
        rng = random.Random(f"{self.s.seed}:gateway:{channel}")
        end = self.started + self.s.duration
        next_at = self.started + rng.expovariate(per_second)
        n = 0
        while next_at < end:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            n += 1
            key = f"sim-{self.s.run_id}-{channel}-{n:05d}"
            name = rng.choice(NAMES)
            customer = {
                "phone": f"+1555{rng.randrange(10**7):07d}",
                "chat": f"web-{rng.randrange(16**8):08x}",
                "email": f"{name.lower()}.{rng.randrange(1000)}@example.com",
            }[channel]
            request = pb.SubmitContactRequest(
                idempotency_key=key,
                channel=CHANNEL_ENUMS[channel],
                customer_id=customer,
                attributes={"name": name, "order": f"Z{rng.randrange(10**6):06d}"},
                required_skills=[SPANISH] if rng.random() < self.s.spanish_share else [],
            )
            mean = self.s.patience.get(channel)
            patience = rng.expovariate(1 / mean) if mean else None
            self.records[key] = ContactRecord(key=key, channel=channel)
            self._spawn(self._customer(self.records[key], request, patience), self.customers)
            next_at += rng.expovariate(per_second)

    async def _customer(
        self, rec: ContactRecord, request: pb.SubmitContactRequest, patience: float | None
    ) -> None:
        """Submit one contact (retries reuse its idempotency key); abandon it if the
        customer's patience runs out before an agent answers."""
        response = await self._rpc(self.contact_api.SubmitContact, request)
        if response is None:
            rec.failed = True
            return
        rec.contact_id = response.contact.contact_id
        rec.submitted = time.monotonic()
        if patience is None or await self._pause(patience) or rec.answered is not None:
            return
        get = pb.GetContactRequest(contact_id=rec.contact_id)
        found = await self._rpc(self.contact_api.GetContact, get)
        if found is not None and found.contact.state in WAITING:
            await self._abandon(rec, "patience")

    async def _abandon(self, rec: ContactRecord, reason: str) -> None:
        request = pb.AbandonContactRequest(contact_id=rec.contact_id)
        done = await self._rpc(self.contact_api.AbandonContact, request, (FAILED_PRECONDITION,))
        if done is not None and done.contact.state == pb.CONTACT_STATE_ABANDONED:
            rec.abandoned, rec.abandon_reason = time.monotonic(), reason

    # -- agents ---------------------------------------------------------------------

    def _make_agents(self) -> list[SimAgent]:
        n = self.s.agents
        spanish = math.ceil(n * SPANISH_AGENT_SHARE) if self.s.spanish_share > 0 else 0
        return [
            SimAgent(
                agent_id=f"sim-{self.s.run_id}-a{i:03d}",
                skills=[SPANISH] if i < spanish else [],
                chat=i % CHAT_AGENT_EVERY == 0,
                rng=random.Random(f"{self.s.seed}:agent:{i}"),
            )
            for i in range(n)
        ]

    async def _sign_in(self, agent: SimAgent) -> bool:
        capacities = [
            pb.ChannelCapacity(channel=pb.CHANNEL_PHONE, capacity=1),
            pb.ChannelCapacity(channel=pb.CHANNEL_CHAT, capacity=3 if agent.chat else 0),
            pb.ChannelCapacity(channel=pb.CHANNEL_EMAIL, capacity=1),
        ]
        request = pb.SignInRequest(
            agent_id=agent.agent_id,
            skills=agent.skills,
            capacities=capacities,
            initial_status=pb.AGENT_STATUS_READY,
        )
        return await self._rpc(self.agent_api.SignIn, request) is not None

    async def _agent(self, agent: SimAgent, signed_in: bool) -> None:
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
            if reason == "timed_out":  # the router set the agent AWAY ("missed")
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
        accept = pb.AcceptOfferRequest(agent_id=agent_id, offer_id=offer.offer_id)
        if await self._rpc(api.AcceptOffer, accept, (FAILED_PRECONDITION,)) is None:
            return  # expired or withdrawn meanwhile
        if rec is None:
            self.counters.foreign += 1
        else:
            rec.answered = time.monotonic()
        agent.held += 1
        try:
            mean = self.s.handle.get(channel_name(contact.channel), DEFAULT_HANDLE["phone"])
            cut = await self._pause(agent.rng.expovariate(1 / mean))
            end = pb.EndContactRequest(agent_id=agent_id, contact_id=contact.contact_id)
            if await self._rpc(api.EndContact, end, retry=HELD_RETRY) is None:
                return
            if rec is not None:
                rec.ended = time.monotonic()
            wrap_up = agent.rng.expovariate(1 / self.s.wrap_up) if self.s.wrap_up > 0 else 0.0
            cut = await self._pause(wrap_up) or cut
            complete = pb.CompleteContactRequest(
                agent_id=agent_id,
                contact_id=contact.contact_id,
                disposition=agent.rng.choice(DISPOSITIONS),
            )
            done = await self._rpc(api.CompleteContact, complete, retry=HELD_RETRY)
            if done is not None and rec is not None:
                rec.completed, rec.cut_short = time.monotonic(), cut
        finally:
            agent.held -= 1

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
                f"[{time.monotonic() - self.started:6.1f}s {self.phase:9}] "
                f"submitted {sum(r.submitted is not None for r in recs)}  "
                f"answered {sum(r.answered is not None for r in recs)}  "
                f"abandoned {sum(r.abandoned is not None for r in recs)}  "
                f"waiting {waiting} (server, all)  "
                f"busy {sum(a.held > 0 for a in self.agents)}/{len(self.agents)} agents  "
                f"errors {sum(self.counters.errors.values())}"
            )
            sys.stderr.write(f"\r{line}\x1b[K" if tty else f"{line}\n")
            sys.stderr.flush()

    # -- the run --------------------------------------------------------------------

    async def execute(self, quiet: bool) -> SimulationReport:
        self.agents = self._make_agents()
        signed = await asyncio.gather(*(self._sign_in(a) for a in self.agents))
        for agent, ok in zip(self.agents, signed, strict=True):
            self._spawn(self._agent(agent, ok), self.streams)
        progress = None if quiet else asyncio.create_task(self._progress())
        self.started, wall_start = time.monotonic(), datetime.now(UTC)
        self.phase = "arrivals"
        await asyncio.gather(*(self._gateway(ch) for ch in CHANNEL_NAMES))
        await asyncio.sleep(max(0.0, self.started + self.s.duration - time.monotonic()))
        arrivals_end = time.monotonic()
        self.phase = "draining"
        while time.monotonic() < arrivals_end + self.s.drain:
            if all(r.final for r in self.records.values()):
                break
            await asyncio.sleep(0.25)
        drain = time.monotonic() - arrivals_end
        self.phase = "closing"
        self.closing.set()
        await _settle(self.streams, cancel=True)  # unanswered offers go back to the queue
        await _settle(self.handlers, limit=RPC_TIMEOUT * 3)  # in progress: end, complete
        await _settle(self.customers, limit=RPC_TIMEOUT * 3)
        left = [r for r in self.records.values() if r.contact_id and r.answered is None]
        left = [r for r in left if not r.final]
        await asyncio.gather(*(self._abandon(r, "end-of-run") for r in left))
        await asyncio.gather(*(self._sign_out(a) for a in self.agents))
        if progress is not None:
            await _settle({progress}, cancel=True)
            sys.stderr.write("\n" if sys.stderr.isatty() else "")
        return await self._report(wall_start, arrivals_end - self.started, drain)

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
        return SimulationReport(
            run_id=self.s.run_id,
            seed=self.s.seed,
            target=self.s.target,
            agents=self.s.agents,
            arrivals_seconds=arrivals,
            drain_seconds=drain,
            window=(start.isoformat(), end.isoformat()),
            records=list(self.records.values()),
            counters=self.counters,
            server=server,
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


async def run(args: argparse.Namespace) -> int:
    """Run the simulation against a running router; print the report; return the exit code."""
    try:
        settings = Settings.from_args(args)
    except ValueError as err:
        print(f"simulate: {err}", file=sys.stderr)
        return 2
    async with connect(settings.target) as channel:
        try:
            await asyncio.wait_for(channel.channel_ready(), timeout=RPC_TIMEOUT)
        except TimeoutError:
            print(f"simulate: no router answering at {settings.target}", file=sys.stderr)
            return 1
        report = await Simulation(settings, channel).execute(args.quiet)
    if args.json:
        import json

        print(json.dumps(report.to_json(), indent=2))
    else:
        print(report.to_text())
    return 0 if report.server is not None and not report.counters.errors else 1
