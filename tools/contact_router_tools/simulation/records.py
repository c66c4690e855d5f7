"""What a simulation run records about its own contacts and agents, client side, in
simulated seconds (real seconds x the scenario's time scale)."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from contactrouter.v1 import contact_router_pb2 as pb

from router.domain.wait_reason import WaitReason

# Short names of the proto's WaitReason values ("agents_busy").
WAIT_REASONS: dict[int, str] = {
    value: name.removeprefix("WAIT_REASON_").lower()
    for name, value in pb.WaitReason.items()
    if value
}
UNSERVED_REASONS = frozenset(reason.value for reason in WaitReason if reason.unserved)


@dataclass
class ContactRecord:
    """One contact this run submitted, with client-side monotonic timestamps."""

    key: str
    channel: str
    required_skills: frozenset[str] = frozenset()
    preferred_skills: frozenset[str] = frozenset()
    matched: bool = False  # answered by an agent with every preferred skill
    contact_id: str = ""
    agent_id: str = ""  # who answered it
    queue_position: int = 0  # GetContact right after a submission that had to queue
    estimated_wait: float | None = None  # what that GetContact estimated
    talk_drawn: float | None = None  # the talk time drawn for it (its agent may add overhead)
    submitted: float | None = None  # SubmitContact acknowledged
    answered: float | None = None  # AcceptOffer acknowledged
    ended: float | None = None  # EndContact acknowledged
    completed: float | None = None  # CompleteContact acknowledged
    abandoned: float | None = None  # AbandonContact acknowledged
    abandon_reason: str = ""  # "patience" or "end-of-run"
    failed: bool = False  # never got a SubmitContact acknowledgement
    cut_short: bool = False  # talk or wrap-up ended early because the run was closing
    customer_id: str = ""
    previous_agent: str = ""  # who completed the customer's previous contact; "" if none
    named_agent: str = ""  # the agent its gateway named (SubmitContactRequest)
    router_preferred: str = ""  # the preferred agent the router gave it at submission
    backlog: bool = False  # waiting when the run started
    sampled_at: float | None = None  # when the GetContact after a queued submission answered
    routing_position: int = 0  # that GetContact's place in routing order among all
    wait_reason: str = ""  # that GetContact's wait reason ("agents_busy", ...)
    listed_unserved: bool = False  # GetQueueStatus listed it as unserved at least once
    last_skills: frozenset[str] | None = None  # required skills as last seen from the router
    returned_to_pool: bool = False  # its customer may come back (simulator bookkeeping)
    scheduled: float | None = None  # when its arrival was due (the submit's lag is from here)
    wrap_up_drawn: float | None = None  # the wrap-up time drawn for it
    # Queued callbacks: the customer heard the offer (GetContact's callback_offered) at
    # callback_offered, and took it (RequestCallback acknowledged) at callback_requested;
    # the contact is then no inbound call: `answered` stays None, `reached` is when an
    # agent's dial reached the customer, `unreached` when it ended UNREACHED.
    callback_offered: float | None = None
    callback_requested: float | None = None
    placed: float | None = None  # the first dial's offer accepted
    dials: list[str] = field(default_factory=list)  # each dial's outcome, in order
    reached: float | None = None
    unreached: float | None = None

    @property
    def kind(self) -> str:
        """ "named" (the gateway named an agent), "returning" (a customer whose previous
        contact was completed) or "new"."""
        if self.named_agent:
            return "named"
        return "returning" if self.previous_agent else "new"

    @property
    def rerouted(self) -> bool:
        """Its required skills changed while it waited: a fallback rule moved it."""
        return self.last_skills is not None and self.last_skills != self.required_skills

    @property
    def unserved(self) -> bool:
        """It waited with no signed-in agent able to serve it (seen at its arrival, or
        listed so by the live queue)."""
        return self.wait_reason in UNSERVED_REASONS or self.listed_unserved

    @property
    def final(self) -> bool:
        ended = (self.completed, self.abandoned, self.unreached)
        return self.failed or any(at is not None for at in ended)

    @property
    def callback(self) -> bool:
        """The customer took a callback: counted apart from inbound contacts."""
        return self.callback_requested is not None

    @property
    def time_to_reach(self) -> float | None:
        """A callback's wait: from its first moment in the queue to the customer reached."""
        if self.submitted is None or self.reached is None:
            return None
        return max(0.0, self.reached - self.submitted)

    @property
    def wait(self) -> float | None:
        if self.submitted is None or self.answered is None:
            return None
        return max(0.0, self.answered - self.submitted)


@dataclass
class AgentRecord:
    """One synthetic agent: its shift and the contacts it handled (simulated seconds)."""

    agent_id: str
    group: str
    handled: int = 0
    on_shift_from: float | None = None
    on_shift_until: float | None = None
    busy: list[tuple[float, float]] = field(default_factory=list)  # answered -> completed

    @property
    def occupancy(self) -> float | None:
        """Time holding at least one answered contact / time on shift (ready)."""
        if self.on_shift_from is None or self.on_shift_until is None:
            return None
        shift = self.on_shift_until - self.on_shift_from
        if shift <= 0:
            return None
        busy, reach = 0.0, -math.inf
        for start, end in sorted(self.busy):
            start, end = max(start, reach), min(end, self.on_shift_until)
            if end > start:
                busy += end - start
                reach = end
        return min(1.0, busy / shift)


@dataclass
class RunCounters:
    """Events of the run other than contact timings."""

    errors: Counter[str] = field(default_factory=Counter)  # "Method CODE" -> count
    refused: Counter[str] = field(default_factory=Counter)  # expected refusals, same keys
    withdrawn: Counter[str] = field(default_factory=Counter)  # reason -> count
    offers: int = 0
    declined: int = 0
    foreign: int = 0  # contacts not from this run handled by this run's agents
    retries: int = 0  # RPCs repeated after UNAVAILABLE or DEADLINE_EXCEEDED
    queue_polls: int = 0  # GetQueueStatus answers read (scenario queue_status_every)
    unserved_peak: int = 0  # the most unserved contacts one of them reported
