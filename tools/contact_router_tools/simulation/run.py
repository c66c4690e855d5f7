"""One simulation run over gRPC: the customers (customers.py) and the agents
(agents.py) of a scenario drive a router, then a report is made.

The backlog is submitted and the first agents sign in before the clock starts. After
the arrivals the work drains for up to the scenario's `drain`, then the run closes:
streams are cancelled, contacts still in progress are ended and completed at once, this
run's contacts still waiting are abandoned (so they do not linger in the router's
queue), agents sign out, and the report is read. Every figure is in simulated seconds.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import grpc
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc

from contact_router_tools.proto_values import CHANNELS, INTERVALS, channel_name, stamp
from contact_router_tools.scenario import Scenario
from contact_router_tools.simulation.agents import Desks, make_agents
from contact_router_tools.simulation.context import RPC_TIMEOUT, RunContext, settle
from contact_router_tools.simulation.customers import Customers
from contact_router_tools.simulation.report import SimulationReport


def run_clock(
    phase: str, now: float, duration: float, drain: float, arrivals_end: float | None
) -> str:
    """Where the run is, for the progress line: the arrivals against the scenario's
    duration, then the drain against its limit (a run lasts up to duration + drain
    simulated seconds, and a few real seconds to close)."""
    if phase == "arrivals":
        return f"arrivals {now:.0f}/{duration:.0f} s, then drain up to {drain:.0f} s"
    if phase == "draining" and arrivals_end is not None:
        return f"draining {now - arrivals_end:.0f}/{drain:.0f} s"
    return phase


@dataclass(frozen=True, slots=True)
class KnownPolicy:
    """What the simulator knows of the router's policy, in simulated seconds: the whole
    scenario policy for a router it started with it; for a router at --router only what
    that router says of itself."""

    thresholds: dict[str, float]  # each channel's answer threshold
    callback_target: float | None  # None: the router's own report says it
    short_abandon: float | None  # None: the router's own report says it
    phone_reserve: int | None  # None: unknown (no RPC says it)

    @classmethod
    def of_scenario(cls, scenario: Scenario) -> KnownPolicy:
        policy = scenario.policy
        thresholds = {ch: scenario.threshold(ch) for ch in CHANNELS}
        return cls(thresholds, policy.callback_target, policy.short_abandon, policy.phone_reserve)

    @classmethod
    def of_goals(cls, scenario: Scenario, goals: Iterable[pb.ServiceLevelGoal]) -> KnownPolicy:
        """A router the simulator did not start: the thresholds of its goals (real
        seconds, times the time scale), the scenario's for a channel they leave out."""
        thresholds = {ch: scenario.threshold(ch) for ch in CHANNELS}
        for goal in goals:
            name = channel_name(goal.channel)
            if name in thresholds:
                thresholds[name] = goal.threshold_seconds * scenario.time_scale
        return cls(thresholds, None, None, None)


class Simulation:
    """One run of a scenario against the router on `channel` (at `router`)."""

    def __init__(
        self,
        scenario: Scenario,
        channel: grpc.aio.Channel,
        router: str,
        run_id: str,
        seed: int,
        known: KnownPolicy,
    ) -> None:
        self.run = RunContext(scenario, run_id, seed)
        self.router = router
        self.known = known
        self.reporting_api = pb_grpc.ReportingServiceStub(channel)
        self.agents = make_agents(self.run)
        self.customers = Customers(self.run, channel, self.agents)
        self.desks = Desks(self.run, channel, self.agents, self.customers)
        self.phase = "starting"
        self.arrivals_end: float | None = None

    async def execute(self, quiet: bool) -> SimulationReport:
        run, scenario, customers = self.run, self.run.scenario, self.customers
        backlog = await customers.preload()
        first = [a for a in self.agents if a.shift_start <= 0]
        signed_in = await asyncio.gather(*map(self.desks.sign_in, first))
        signed = dict(zip(first, signed_in, strict=True))
        run.start_clock()
        wall_start = datetime.now(UTC)
        shifts = [asyncio.create_task(self.desks.shift(a, signed.get(a))) for a in self.agents]
        for rec in backlog:
            if rec.contact_id:
                rec.submitted = 0.0
        progress = None if quiet else asyncio.create_task(self._progress())
        watch = None
        if scenario.queue_status_every > 0:
            watch = asyncio.create_task(self._watch_queue())
        self.phase = "arrivals"
        loads = scenario.channels.items()
        await asyncio.gather(*(customers.gateway(channel, load) for channel, load in loads))
        await run.until(scenario.duration)
        arrivals_end = self.arrivals_end = run.now()
        self.phase = "draining"
        while run.now() < arrivals_end + scenario.drain:
            if all(r.final for r in customers.records.values()):
                break
            await asyncio.sleep(0.05)
        drain = run.now() - arrivals_end
        self.phase = "closing"
        run.closing.set()
        # Shifts cancel their streams (unanswered offers go back to the queue) and sign out
        # once their contacts in progress are ended and completed.
        await asyncio.sleep(0)
        await settle(run.handlers, limit=RPC_TIMEOUT * 3)
        await settle(run.customers, limit=RPC_TIMEOUT * 3)
        left = [
            r
            for r in customers.records.values()
            if r.contact_id and r.answered is None and r.reached is None
        ]
        left = [r for r in left if not r.final]
        await asyncio.gather(*(customers.abandon(r, "end-of-run") for r in left))
        await asyncio.gather(*shifts, return_exceptions=True)
        if watch is not None:
            await settle({watch}, cancel=True)
        if progress is not None:
            await settle({progress}, cancel=True)
            sys.stderr.write("\n" if sys.stderr.isatty() else "")
        return await self._report(wall_start, arrivals_end, drain)

    async def _progress(self) -> None:
        tty = sys.stderr.isatty()
        run = self.run
        while True:
            await asyncio.sleep(1.0 if tty else 5.0)
            status = await run.rpc(
                self.reporting_api.GetQueueStatus,
                pb.GetQueueStatusRequest(),
                attempts=1,
                deadline=2,
            )
            waiting = "?" if status is None else str(sum(c.waiting for c in status.channels))
            recs = self.customers.records.values()
            now = run.now()
            scenario = run.scenario
            clock = run_clock(self.phase, now, scenario.duration, scenario.drain, self.arrivals_end)
            line = (
                f"[sim {now:.0f}s: {clock}] "
                f"submitted {sum(r.submitted is not None for r in recs)}  "
                f"answered {sum(r.answered is not None for r in recs)}  "
                f"abandoned {sum(r.abandoned is not None for r in recs)}  "
                f"callbacks {sum(r.callback for r in recs)}  "
                f"waiting {waiting} (server, all)  "
                f"busy {sum(a.held > 0 for a in self.agents)}/{len(self.agents)} agents  "
                f"errors {sum(run.counters.errors.values())}"
            )
            sys.stderr.write(f"\r{line}\x1b[K" if tty else f"{line}\n")
            sys.stderr.flush()

    async def _watch_queue(self) -> None:
        """Poll the live queue: which of this run's contacts it lists as unserved."""
        run, counters = self.run, self.run.counters
        while True:
            await asyncio.sleep(run.scenario.real(run.scenario.queue_status_every))
            status = await run.rpc(
                self.reporting_api.GetQueueStatus, pb.GetQueueStatusRequest(), attempts=1
            )
            if status is None:
                continue
            counters.queue_polls += 1
            counters.unserved_peak = max(counters.unserved_peak, status.unserved_total)
            for unserved in status.unserved:
                rec = self.customers.by_contact.get(unserved.contact_id)
                if rec is not None:
                    rec.listed_unserved = True

    def _callback_target(self, server: pb.GetServiceLevelResponse | None) -> float:
        """The callbacks' service-level target, simulated seconds: the policy's when the
        simulator started the router, else what the router's report says."""
        scenario = self.run.scenario
        if self.known.callback_target is not None:
            return self.known.callback_target
        if server is not None and server.callback_target_seconds:
            return server.callback_target_seconds * scenario.time_scale
        return scenario.policy.callback_target

    async def _report(
        self, wall_start: datetime, arrivals: float, drain: float
    ) -> SimulationReport:
        run, scenario = self.run, self.run.scenario
        start = wall_start.replace(second=0, microsecond=0)
        end = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1)
        request = pb.GetServiceLevelRequest(
            start=stamp(start), end=stamp(end), interval=INTERVALS["day"]
        )
        server = await run.rpc(self.reporting_api.GetServiceLevel, request)
        contacts = None
        if any(load.returning > 0 for load in scenario.channels.values()):
            # The server's own count of returning customers who reached their previous agent.
            asked = pb.GetContactReportRequest(
                start=stamp(start), end=stamp(end), interval=INTERVALS["day"]
            )
            contacts = await run.rpc(self.reporting_api.GetContactReport, asked)
        note = scenario.cap_note()
        short_abandon = self.known.short_abandon
        if short_abandon is None:
            short_abandon = (
                scenario.policy.short_abandon
                if server is None
                else server.short_abandon_seconds * scenario.time_scale
            )
        return SimulationReport(
            run_id=run.run_id,
            scenario=scenario.name,
            seed=run.seed,
            router=self.router,
            agents=len(self.agents),
            time_scale=scenario.time_scale,
            arrivals_seconds=arrivals,
            drain_seconds=drain,
            warm_up=scenario.warm_up,
            thresholds=dict(self.known.thresholds),
            short_abandon_limit=short_abandon,
            phone_reserve=self.known.phone_reserve,
            window=(start.isoformat(), end.isoformat()),
            records=list(self.customers.records.values()),
            agent_records=[a.record for a in self.agents],
            counters=run.counters,
            server=server,
            contact_report=contacts,
            notes=[] if note is None else [note],
            callback_target=self._callback_target(server),
        )
