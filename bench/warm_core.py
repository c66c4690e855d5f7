"""CPU seconds of the core's part of a takeover, in process: a restore from a standby's
copy of the contacts (what the takeover did before the core was kept warm) against the
warm core's takeover, and what keeping it warm costs the standby beforehand (the first
load, and each followed page of changes).

    python -m bench.warm_core 10000,100000,500000 [--offers 5000] [--rounds 3]

`queued` waiting emails, `offers` of them offered by the router that died (voided at
the takeover). CPU seconds of this process (time.process_time), with the cyclic
collector off as the router has it during a restore; medians of the rounds. No
PostgreSQL: the reads are the same either way (bench.restore_phases measures them).
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from router import logs
from router.domain import Channel, Contact, ContactState, Router, RoutingPolicy

PAGE = 500
"""Contacts per followed page (router/store/event_feed.py reads 500 events a page)."""


def _contacts(queued: int, offers: int, start: datetime) -> list[Contact]:
    contacts = [
        Contact(
            id=f"{n:032x}",
            idempotency_key=f"key-{n}",
            channel=Channel.EMAIL,
            customer_id=f"customer-{n}",
            queued_at=start + timedelta(microseconds=n * 1000),
            required_skills=frozenset({"email-desk"}),
        )
        for n in range(queued)
    ]
    for n in range(offers):
        contacts[n] = replace(
            contacts[n], state=ContactState.OFFERED, agent_id=f"agent-{n}", offer_id=f"o{n}"
        )
    return contacts


def _cpu(work: Any) -> float:
    started = time.process_time()
    work()
    return time.process_time() - started


def one_round(queued: int, offers: int) -> dict[str, float]:
    start = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)
    now = start + timedelta(hours=1)
    contacts = _contacts(queued, offers, start)
    gc.disable()
    try:
        cold = Router(RoutingPolicy())
        restore = _cpu(lambda: cold.restore(contacts, now))
        warm = Router(RoutingPolicy())
        load = _cpu(lambda: warm.warm.apply(contacts, (), start))
        # A page of changes as the standby follows them: offers made, then answered.
        page = [
            replace(c, state=ContactState.OFFERED, agent_id="agent-x", offer_id="ox")
            for c in contacts[offers : offers + PAGE]
        ]
        follow = _cpu(lambda: warm.warm.apply(page, (), start))
        back = [replace(c, state=ContactState.QUEUED, agent_id=None, offer_id=None) for c in page]
        warm.warm.apply(back, (), start)
        take_over = _cpu(lambda: warm.warm.take_over(now))
    finally:
        gc.enable()
    return {
        "cold_restore_from_copy": restore,
        "warm_takeover": take_over,
        "standby_load": load,
        "standby_page_us_per_contact": follow / PAGE * 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("queued", help="queue sizes, comma-separated")
    parser.add_argument("--offers", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    logs.configure(level="warning")  # the report is the output, not migration lines
    for queued in (int(q) for q in args.queued.split(",")):
        rounds = [one_round(queued, args.offers) for _ in range(args.rounds)]
        medians = {name: round(statistics.median(r[name] for r in rounds), 3) for name in rounds[0]}
        print(json.dumps({"queued": queued, "offers": args.offers, "cpu_seconds": medians}))


if __name__ == "__main__":
    main()
