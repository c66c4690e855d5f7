"""The figures of queued callbacks in a simulation report, and how faithfully the run
kept its clock. Pure: records in, dataclasses out.

A callback is counted apart from inbound contacts (ContactRecord.callback): its
customer took the offer and hung up, so it is neither answered nor abandoned as a
call. Its wait runs from the contact's first moment in the queue (the router keeps
queued_at) to the customer reached. Its service level is the router's callback formula
(GetServiceLevel's callback_formula): first dialled within the callback target of its
first moment / (dialled + ended unreached before a dial). Two phone service levels are
given beside it, because turning the longest waits into callbacks takes them out of
the inbound one:

* inbound: answered within target / (answered + abandoned after the short-abandon
  limit), callbacks left out (the router's GetServiceLevel counts them apart);
* every call: the same with each callback in: within target when reached within the
  target of its first moment, a miss when reached later, unreached or still waiting
  when the run closed.
"""

from __future__ import annotations

from dataclasses import dataclass

from contact_router_tools.simulation.figures import mean, p90
from contact_router_tools.simulation.records import AgentRecord, ContactRecord


@dataclass
class CallbackFigures:
    """The callbacks of the customers who came on one channel."""

    channel: str  # where the customer came first (a callback is a phone contact)
    offered: int  # customers GetContact offered a callback while they waited
    taken: int  # RequestCallback acknowledged
    reached: int
    unreached: int  # ended UNREACHED (dials used up, or a wrong number)
    wrong_number: int  # of the unreached, ended by a wrong number
    left: int  # neither reached nor unreached when the run closed
    placed: int  # dialled at least once
    placed_within: int  # first dialled within the callback target of the first moment
    dials: int  # dial outcomes reported
    attempts_per_reached: float | None  # dials of the reached callbacks / reached
    time_to_place: float | None  # mean first moment in the queue -> first dial
    time_to_reach: float | None  # mean first moment in the queue -> reached
    p90_time_to_reach: float | None
    waited_before: float | None  # mean first moment in the queue -> callback taken
    target: float  # the callback target (the router's callback_target_seconds)
    service_level: float | None  # placed_within / (placed + unreached before a dial)

    @property
    def take_share(self) -> float | None:
        return self.taken / self.offered if self.offered else None


def callback_figures(records: list[ContactRecord], target: float) -> list[CallbackFigures]:
    """Per channel whose customers were offered or took callbacks."""
    rows = []
    for channel in sorted({r.channel for r in records}):
        mine = [r for r in records if r.channel == channel and r.submitted is not None]
        offered = [r for r in mine if r.callback_offered is not None]
        taken = [r for r in mine if r.callback]
        if not offered and not taken:
            continue
        reached = [r for r in taken if r.reached is not None]
        reach = [t for r in reached if (t := r.time_to_reach) is not None]
        placed = [(r.placed or 0.0) - (r.submitted or 0.0) for r in taken if r.placed is not None]
        before = [(r.callback_requested or 0.0) - (r.submitted or 0.0) for r in taken]
        unreached = [r for r in taken if r.unreached is not None]
        within = sum(t <= target for t in placed)
        counted = len(placed) + sum(not r.dials for r in unreached)
        rows.append(
            CallbackFigures(
                channel=channel,
                offered=len(offered),
                taken=len(taken),
                reached=len(reached),
                unreached=len(unreached),
                wrong_number=sum(r.dials[-1:] == ["wrong_number"] for r in unreached),
                left=len(taken) - len(reached) - len(unreached),
                placed=len(placed),
                placed_within=within,
                dials=sum(len(r.dials) for r in taken),
                attempts_per_reached=mean([float(len(r.dials)) for r in reached]),
                time_to_place=mean(placed),
                time_to_reach=mean(reach),
                p90_time_to_reach=p90(reach),
                waited_before=mean(before),
                target=target,
                service_level=within / counted if counted else None,
            )
        )
    return rows


@dataclass
class CallLevels:
    """One channel's service level and abandons with callbacks apart and with them in,
    from the run's records (client side)."""

    channel: str
    inbound: int  # contacts that stayed calls (no callback taken)
    answered: int
    abandoned: int  # the customer's patience ran out
    long_abandoned: int  # abandoned (or left at the close) after the short-abandon limit
    inbound_level: float | None  # callbacks apart
    callbacks: int
    callbacks_within: int  # reached within the channel's target of their first moment
    every_call_level: float | None  # callbacks in

    @property
    def abandon_share(self) -> float | None:
        """Abandons (patience) / every contact of the channel, callbacks included."""
        everyone = self.inbound + self.callbacks
        return self.abandoned / everyone if everyone else None


def call_levels(
    records: list[ContactRecord], channel: str, threshold: float, short_abandon: float
) -> CallLevels:
    mine = [r for r in records if r.channel == channel and r.submitted is not None]
    inbound = [r for r in mine if not r.callback]
    waits = [w for r in inbound if (w := r.wait) is not None]
    long_abandons = [
        r
        for r in inbound
        if r.abandoned is not None and r.abandoned - (r.submitted or 0.0) > short_abandon
    ]
    within = sum(w <= threshold for w in waits)
    callbacks = [r for r in mine if r.callback]
    reached_within = sum((t := r.time_to_reach) is not None and t <= threshold for r in callbacks)
    counted = len(waits) + len(long_abandons)
    return CallLevels(
        channel=channel,
        inbound=len(inbound),
        answered=len(waits),
        abandoned=sum(r.abandon_reason == "patience" for r in inbound),
        long_abandoned=len(long_abandons),
        inbound_level=within / counted if counted else None,
        callbacks=len(callbacks),
        callbacks_within=reached_within,
        every_call_level=(
            (within + reached_within) / (counted + len(callbacks))
            if counted + len(callbacks)
            else None
        ),
    )


@dataclass
class Fidelity:
    """How closely the run kept its simulated clock: a time-scaled run shows the
    router's and the machine's real milliseconds multiplied by the time scale."""

    time_scale: float
    submit_lag: float | None  # mean simulated s from an arrival's due time to its ack
    p90_submit_lag: float | None
    handle_overhead: float | None  # mean simulated s an agent held a contact beyond its draws
    contacts: int  # completed inbound contacts the overhead is measured on
    # Time holding answered contacts or dialling / time on shift, between the warm-up and
    # the end of the arrivals (an empty center filling, and the drain, left out).
    occupancy: float | None

    def real_ms(self, simulated: float | None) -> float | None:
        return None if simulated is None else 1000 * simulated / self.time_scale


def fidelity(
    records: list[ContactRecord],
    agents: list[AgentRecord],
    time_scale: float,
    window: tuple[float, float],
) -> Fidelity:
    lags = [
        r.submitted - r.scheduled
        for r in records
        if r.submitted is not None and r.scheduled is not None
    ]
    overheads = [
        r.completed - r.answered - r.talk_drawn - r.wrap_up_drawn
        for r in records
        if r.completed is not None
        and r.answered is not None
        and r.talk_drawn is not None
        and r.wrap_up_drawn is not None
        and not r.cut_short
    ]
    return Fidelity(
        time_scale=time_scale,
        submit_lag=mean(lags),
        p90_submit_lag=p90(lags),
        handle_overhead=mean(overheads),
        contacts=len(overheads),
        occupancy=occupancy(agents, *window),
    )


def occupancy(agents: list[AgentRecord], start: float, end: float) -> float | None:
    """Every agent's busy time / every agent's time on shift, within [start, end]."""
    busy = shift = 0.0
    for agent in agents:
        if agent.on_shift_from is None or agent.on_shift_until is None:
            continue
        since, until = max(start, agent.on_shift_from), min(end, agent.on_shift_until)
        if until <= since:
            continue
        shift += until - since
        reach = since
        for begin, done in sorted(agent.busy):
            begin, done = max(begin, reach), min(done, until)
            if done > begin:
                busy += done - begin
                reach = done
    return busy / shift if shift else None
