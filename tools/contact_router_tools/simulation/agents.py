"""The agent side of a run: each synthetic agent signs in at the start of its shift,
holds an offer stream, accepts (or now and then declines) offers, talks for a drawn
time, ends the contact, wraps up and completes it with a disposition, and signs out
after its shift once its contacts are done. A callback's offer (Offer.dial_number) is
dialled first: the agent reports the dial's outcome, drawn from the scenario's
[callbacks] shares, and talks only when it connected."""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import TYPE_CHECKING

import grpc
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc

from contact_router_tools.proto_values import CHANNELS, channel_name
from contact_router_tools.scenario import AgentGroup
from contact_router_tools.simulation.context import HELD_RETRY, RPC_TIMEOUT, RunContext
from contact_router_tools.simulation.records import AgentRecord, ContactRecord

if TYPE_CHECKING:
    from contact_router_tools.simulation.customers import Customers

DISPOSITIONS = ("order-status", "return", "billing", "other")
DIAL_OUTCOMES = {
    "connected": pb.DIAL_OUTCOME_CONNECTED,
    "no_answer": pb.DIAL_OUTCOME_NO_ANSWER,
    "busy": pb.DIAL_OUTCOME_BUSY,
    "wrong_number": pb.DIAL_OUTCOME_WRONG_NUMBER,
}


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


def make_agents(run: RunContext) -> list[SimAgent]:
    """The scenario's agent groups, one SimAgent per agent, each with its own draws."""
    agents = []
    for group in run.scenario.agents:
        for i in range(group.count):
            agent_id = f"sim-{run.run_id}-{group.name}-{i:03d}"
            rng = random.Random(f"{run.seed}:agent:{group.name}:{i}")
            agents.append(SimAgent(agent_id, group, rng, i))
    return agents


class Desks:
    """The agents' desktops: AgentService for every synthetic agent."""

    def __init__(
        self,
        run: RunContext,
        channel: grpc.aio.Channel,
        agents: list[SimAgent],
        customers: Customers,
    ) -> None:
        self.run = run
        self.api = pb_grpc.AgentServiceStub(channel)
        self.agents = agents
        self.customers = customers

    async def sign_in(self, agent: SimAgent) -> bool:
        capacities = [
            pb.ChannelCapacity(channel=value, capacity=agent.group.capacities[ch])
            for ch, value in CHANNELS.items()
        ]
        request = pb.SignInRequest(
            agent_id=agent.agent_id,
            skills=sorted(agent.group.skills),
            capacities=capacities,
            initial_status=pb.AGENT_STATUS_READY,
        )
        return await self.run.rpc(self.api.SignIn, request) is not None

    async def shift(self, agent: SimAgent, signed_in: bool | None) -> None:
        """Sign in at the shift's start (unless already signed in), hold the offer
        stream, and at its end go AWAY, finish what is held and sign out."""
        run = self.run
        if signed_in is None:
            await run.until(agent.shift_start)
            signed_in = await self.sign_in(agent)
        agent.record.on_shift_from = run.now()
        stream = asyncio.create_task(self._stream(agent, signed_in))
        try:
            if agent.shift_end is None:
                await run.closing.wait()
            else:
                await run.pause(agent.shift_end - run.now())
            agent.record.on_shift_until = run.now()
            if not run.closing.is_set():
                away = pb.SetStatusRequest(
                    agent_id=agent.agent_id, status=pb.AGENT_STATUS_AWAY, away_reason="end-of-shift"
                )
                await run.rpc(self.api.SetStatus, away)
                agent.off_shift.set()
                done = asyncio.create_task(agent.free.wait())
                closing = asyncio.create_task(run.closing.wait())
                await asyncio.wait({done, closing}, return_when=asyncio.FIRST_COMPLETED)
                done.cancel()
                closing.cancel()
        finally:
            stream.cancel()  # an offer not yet answered goes back to the queue
            with contextlib.suppress(asyncio.CancelledError):
                await stream
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(agent.free.wait(), RPC_TIMEOUT * 3)
        request = pb.SignOutRequest(agent_id=agent.agent_id)
        await run.rpc(self.api.SignOut, request, (grpc.StatusCode.FAILED_PRECONDITION,))

    async def _stream(self, agent: SimAgent, signed_in: bool) -> None:
        """Hold the agent's offer stream until cancelled, reconnecting after failures.

        Its own loop, not contactrouter.client.AgentDesk.offers(), on purpose: the run's
        report counts each way a stream ends ("StreamOffers ended by server",
        "StreamOffers UNAVAILABLE", ...), which offers() hides by reopening quietly; and
        after any end the agent signs in again through run.rpc (retried and counted),
        where offers() signs in again only after NOT_FOUND and stops when the router
        ends the stream without an error."""
        errors = self.run.counters.errors
        while True:
            if signed_in:
                request = pb.StreamOffersRequest(agent_id=agent.agent_id)
                try:
                    async for event in self.api.StreamOffers(request):
                        self._on_event(agent, event)
                    errors["StreamOffers ended by server"] += 1
                except grpc.aio.AioRpcError as err:
                    errors[f"StreamOffers {err.code().name}"] += 1
            await asyncio.sleep(1.0)
            signed_in = await self.sign_in(agent)

    def _on_event(self, agent: SimAgent, event: pb.StreamOffersResponse) -> None:
        run = self.run
        if event.HasField("offer"):
            run.counters.offers += 1
            run.spawn(self._work(agent, event.offer), run.handlers)
        elif event.HasField("offer_withdrawn"):
            reason = event.offer_withdrawn.reason or "unknown"
            run.counters.withdrawn[reason] += 1
            if reason == "timed_out" and not agent.off_shift.is_set():
                # The router set the agent AWAY ("missed"); it comes back at once.
                ready = pb.SetStatusRequest(agent_id=agent.agent_id, status=pb.AGENT_STATUS_READY)
                run.spawn(run.call(self.api.SetStatus, ready), run.handlers)

    async def _work(self, agent: SimAgent, offer: pb.Offer) -> None:
        """Answer one offer and, when accepted, handle the contact to completion."""
        run, api, agent_id, contact = self.run, self.api, agent.agent_id, offer.contact
        rec = self.customers.records.get(contact.idempotency_key)
        if run.closing.is_set() or agent.rng.random() < run.scenario.decline_probability:
            decline = pb.DeclineOfferRequest(agent_id=agent_id, offer_id=offer.offer_id)
            declined = await run.rpc(
                api.DeclineOffer, decline, (grpc.StatusCode.FAILED_PRECONDITION,)
            )
            if declined is not None:
                run.counters.declined += 1
            return
        agent.held += 1
        agent.free.clear()
        try:
            accept = pb.AcceptOfferRequest(agent_id=agent_id, offer_id=offer.offer_id)
            accepted = await run.rpc(
                api.AcceptOffer, accept, (grpc.StatusCode.FAILED_PRECONDITION,)
            )
            if accepted is None:
                return  # expired or withdrawn meanwhile
            answered = run.now()
            if offer.dial_number and not await self._dial(agent, contact, rec):
                agent.record.busy.append((answered, run.now()))
                return  # not reached: the agent is free at once
            if rec is None:
                run.counters.foreign += 1
            else:
                if not offer.dial_number:
                    rec.answered = answered
                rec.agent_id = agent_id
                rec.matched = rec.preferred_skills <= agent.group.skills
                rec.last_skills = frozenset(contact.required_skills)  # as offered
            load = run.scenario.channels.get(channel_name(contact.channel))
            talk = load.talk.sample(agent.rng) if load is not None else 0.0
            if rec is not None:
                rec.talk_drawn = talk
            cut = await run.pause(talk)
            end = pb.EndContactRequest(agent_id=agent_id, contact_id=contact.contact_id)
            if await run.rpc(api.EndContact, end, retry=HELD_RETRY) is None:
                return
            if rec is not None:
                rec.ended = run.now()
            wrap_up = load.wrap_up.sample(agent.rng) if load is not None else 0.0
            if rec is not None:
                rec.wrap_up_drawn = wrap_up
            cut = (wrap_up > 0 and await run.pause(wrap_up)) or cut
            complete = pb.CompleteContactRequest(
                agent_id=agent_id,
                contact_id=contact.contact_id,
                disposition=agent.rng.choice(DISPOSITIONS),
            )
            done = await run.rpc(api.CompleteContact, complete, retry=HELD_RETRY)
            if done is not None:
                agent.record.handled += 1
                agent.record.busy.append((answered, run.now()))
                if rec is not None:
                    rec.completed, rec.cut_short = run.now(), cut
                    self.customers.customer_free(rec, agent_id)
        finally:
            agent.held -= 1
            if not agent.held:
                agent.free.set()

    async def _dial(self, agent: SimAgent, contact: pb.Contact, rec: ContactRecord | None) -> bool:
        """Dial an accepted callback and report the outcome; True when it reached the
        customer (the conversation goes on). The outcome is drawn per contact and dial,
        so a run's other draws stay as they were."""
        run, callbacks = self.run, self.run.scenario.callbacks
        key = contact.idempotency_key
        if rec is not None and rec.placed is None:
            rec.placed = run.now()
        dials = 0 if rec is None else len(rec.dials)
        draw = random.Random(f"{run.seed}:dial:{key}:{dials}").random()
        outcome = "connected" if callbacks is None else callbacks.outcome(draw)
        if callbacks is not None:
            await run.pause(callbacks.dial_seconds)  # cut short: report it all the same
        request = pb.ReportDialOutcomeRequest(
            agent_id=agent.agent_id, contact_id=contact.contact_id, outcome=DIAL_OUTCOMES[outcome]
        )
        done = await run.rpc(self.api.ReportDialOutcome, request, retry=HELD_RETRY)
        if done is None:
            return False
        if rec is not None:
            rec.dials.append(outcome)
            if outcome == "connected":
                rec.reached = run.now()
            elif done.contact.state == pb.CONTACT_STATE_UNREACHED:
                rec.unreached = run.now()
                self.customers.customer_free(rec, None)
        return outcome == "connected"
