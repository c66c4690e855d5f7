"""The customer side of a run: gateways submit contacts per channel as Poisson arrivals
(and a backlog before the start), customers ask for their estimated wait when they
queue and abandon when their patience runs out; a customer whose contact was completed
may come back (returning) or have an agent named by the gateway. With the scenario's
[callbacks], a waiting customer asks again every check_every seconds, and one offered a
callback may take it (RequestCallback) and hang up: they never abandon then."""

from __future__ import annotations

import asyncio
import math
import random

import grpc
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc

from contact_router_tools.proto_values import CHANNELS, optional
from contact_router_tools.scenario import CallbackBehaviour, ChannelLoad
from contact_router_tools.simulation.agents import SimAgent
from contact_router_tools.simulation.context import RunContext
from contact_router_tools.simulation.records import WAIT_REASONS, ContactRecord

WAITING = (pb.CONTACT_STATE_QUEUED, pb.CONTACT_STATE_OFFERED)
NAMES = ("Ana", "Ben", "Chloe", "Diego", "Emma", "Farid", "Grace", "Hugo", "Ines", "Jun")


class Customers:
    """Every contact this run submits, by idempotency key and by contact id."""

    def __init__(self, run: RunContext, channel: grpc.aio.Channel, agents: list[SimAgent]) -> None:
        self.run = run
        self.api = pb_grpc.ContactServiceStub(channel)
        self.agents = agents  # whom a gateway may name
        self.records: dict[str, ContactRecord] = {}  # by idempotency key
        self.by_contact: dict[str, ContactRecord] = {}  # by contact id
        # Returning customers: per channel, the customers whose last contact was completed
        # and who have none open now; and who completed each customer's last contact.
        self.past_customers: dict[str, list[str]] = {ch: [] for ch in CHANNELS}
        self.last_agent: dict[str, str] = {}

    async def gateway(self, channel: str, load: ChannelLoad) -> None:
        """Poisson arrivals on one channel until the scenario's duration has passed; an
        hourly rate is followed by thinning a process at the peak rate."""
        seed = self.run.seed
        rng = random.Random(f"{seed}:gateway:{channel}")
        peak = load.peak_rate
        if peak <= 0:
            return
        who = random.Random(f"{seed}:customers:{channel}")  # apart: same arrivals
        at, n = rng.expovariate(peak), load.backlog
        while at < self.run.scenario.duration:
            if rng.random() * peak <= load.rate_at(at):
                await self.run.until(at)
                n += 1
                rec, request = self._contact(channel, load, rng, f"{n:06d}", who)
                rec.scheduled = at
                patience = None if load.patience is None else load.patience.sample(rng)
                self.run.spawn(self._customer(rec, request, patience), self.run.customers)
            at += rng.expovariate(peak)

    async def preload(self) -> list[ContactRecord]:
        """Submit every channel's backlog before agents sign in and the clock starts, a
        few at a time: a burst of thousands would stall the router for what is minutes
        of simulated time, and the backlog is meant to be already waiting at time 0."""
        gate = asyncio.Semaphore(32)
        records: list[ContactRecord] = []

        async def submit(rec: ContactRecord, request: pb.SubmitContactRequest) -> None:
            async with gate:
                response = await self.run.rpc(self.api.SubmitContact, request)
            if response is None:
                rec.failed = True
            else:
                self._submitted(rec, response.contact)

        jobs = []
        for channel, load in self.run.scenario.channels.items():
            rng = random.Random(f"{self.run.seed}:backlog:{channel}")
            for n in range(1, load.backlog + 1):
                rec, request = self._contact(channel, load, rng, f"b{n:06d}")
                records.append(rec)
                jobs.append(submit(rec, request))
        await asyncio.gather(*jobs)
        return records

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
        run_id = self.run.run_id
        key = f"sim-{run_id}-{channel}-{number}"
        name = rng.choice(NAMES)
        drawn = {
            "phone": f"+1555{rng.randrange(10**7):07d}",
            "chat": f"web-{rng.randrange(16**8):08x}",
            "email": f"{name.lower()}.{rng.randrange(1000)}@example.com",
        }[channel]
        # Unique per run and contact: a customer returns only when the scenario says so
        # (the router prefers a returning customer's previous agent).
        customer = f"{drawn}#{run_id}.{number}"
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
            channel=CHANNELS[channel],
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
        self.by_contact[contact.contact_id] = rec

    def customer_free(self, rec: ContactRecord, agent_id: str | None) -> None:
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
        run = self.run
        response = await run.rpc(self.api.SubmitContact, request)
        if response is None:
            rec.failed = True
            self.customer_free(rec, None)
            return
        self._submitted(rec, response.contact)
        rec.submitted = run.now()
        if response.contact.state == pb.CONTACT_STATE_QUEUED:
            get = pb.GetContactRequest(contact_id=rec.contact_id)
            found = await run.rpc(self.api.GetContact, get)
            if found is not None and found.queue_position:
                rec.sampled_at = run.now()
                rec.queue_position = found.queue_position
                rec.routing_position = found.routing_position
                rec.wait_reason = WAIT_REASONS.get(found.wait_reason, "")
                rec.last_skills = frozenset(found.contact.required_skills)
                estimate = optional(found, "estimated_wait_seconds")
                if estimate is not None:
                    # The router's estimate is in its (real) seconds.
                    rec.estimated_wait = estimate * run.scenario.time_scale
            if found is not None and await self._offered_callback(rec, found):
                return
        if rec.answered is not None:
            return
        if run.scenario.callbacks is not None:
            await self._wait_hearing_offers(rec, patience, run.scenario.callbacks)
            return
        if patience is None:
            return
        if await run.pause(patience - (run.now() - rec.submitted)) or rec.answered is not None:
            return
        get = pb.GetContactRequest(contact_id=rec.contact_id)
        found = await run.rpc(self.api.GetContact, get)
        if found is not None and found.contact.state in WAITING:
            rec.last_skills = frozenset(found.contact.required_skills)
            await self.abandon(rec, "patience")

    async def _wait_hearing_offers(
        self, rec: ContactRecord, patience: float | None, callbacks: CallbackBehaviour
    ) -> None:
        """Wait as a customer whose gateway may offer a callback: ask GetContact every
        check_every seconds until answered, a callback is taken, or patience runs out."""
        run = self.run
        submitted = rec.submitted or 0.0
        while rec.answered is None:
            left = math.inf if patience is None else patience - (run.now() - submitted)
            if await run.pause(max(0.0, min(callbacks.check_every, left))):
                return  # the run closes: it abandons what still waits
            if rec.answered is not None:
                return
            get = pb.GetContactRequest(contact_id=rec.contact_id)
            found = await run.rpc(self.api.GetContact, get)
            if found is None:
                continue
            if found.contact.state not in WAITING:
                return
            rec.last_skills = frozenset(found.contact.required_skills)
            if await self._offered_callback(rec, found):
                return
            if patience is not None and run.now() - submitted >= patience:
                await self.abandon(rec, "patience")
                return

    async def _offered_callback(self, rec: ContactRecord, found: pb.GetContactResponse) -> bool:
        """The customer hears a callback offer (the first time GetContact says one is
        offered) and decides once, with the scenario's accept share; True when they took
        it (RequestCallback acknowledged): they hang up and wait for the call."""
        run, callbacks = self.run, self.run.scenario.callbacks
        if not found.callback_offered or rec.callback_offered is not None:
            return False
        rec.callback_offered = run.now()
        rng = random.Random(f"{run.seed}:callback:{rec.key}")  # apart: same other draws
        if callbacks is None or rng.random() >= callbacks.accept:
            return False
        request = pb.RequestCallbackRequest(
            contact_id=rec.contact_id, number=f"+1555{rng.randrange(10**7):07d}"
        )
        done = await run.rpc(
            self.api.RequestCallback, request, (grpc.StatusCode.FAILED_PRECONDITION,)
        )
        if done is None:
            return False  # answered (or abandoned) meanwhile
        rec.callback_requested = run.now()
        return True

    async def abandon(self, rec: ContactRecord, reason: str) -> None:
        """The customer leaves ("patience"), or the run leaves for it ("end-of-run")."""
        request = pb.AbandonContactRequest(contact_id=rec.contact_id)
        done = await self.run.rpc(
            self.api.AbandonContact, request, (grpc.StatusCode.FAILED_PRECONDITION,)
        )
        if done is not None and done.contact.state == pb.CONTACT_STATE_ABANDONED:
            rec.abandoned, rec.abandon_reason = self.run.now(), reason
            rec.last_skills = frozenset(done.contact.required_skills)
            self.customer_free(rec, None)
