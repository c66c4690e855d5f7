"""Routing latency while the retention job anonymises a million recorded contacts.

A scratch database gets `contacts` finished contacts (COPY), queued evenly over the
`rounds` months that end six months ago, a fifth of them with a feedback comment, each
customer with about five. Then, alternating, rounds of:

- `baseline`: `contact-router serve` without retention, under load for as long as the
  previous job round lasted (`--seconds` for the first);
- `job`: the same with ROUTER_PERSONAL_DATA_MONTHS set so that its run at activation
  anonymises the next month of them (about contacts / rounds), under load until the
  run is recorded in retention_runs.

The load, from this process: SubmitContact paced at `--rate` per second (open loop: a
slow answer does not delay the next one) and `--agents` agents who accept, end and
complete each offer at once. Printed per round: SubmitContact and AcceptOffer p50/p99
(ms), and for job rounds the run's seconds, batches and contacts anonymised; then the
job rounds' median p50 and p99 against the baselines', as ratios. A fresh router per
round (both kinds), so each starts alike.

    python -m bench.retention POSTGRES_URL [--contacts 1000000] [--rounds 3]
        [--rate 100] [--agents 50] [--seconds 20] [--batch-size 5000] [--pause 0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import grpc
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc

from bench.common import (
    REPO,
    ServerProcess,
    free_port,
    load_average,
    percentile,
    scratch_database,
    wait_serving,
)
from bench.harness import git_revision
from router import logs
from router.retention import months_before
from router.store import Store

NEWEST_MONTHS = 6
"""The newest recorded contact was queued this many months ago."""


def _contacts(count: int, start: datetime, end: datetime) -> Iterator[tuple[Any, ...]]:
    span = (end - start).total_seconds()
    attributes = json.dumps({"name": "Ada Lovelace", "order": "A-17"})
    for i in range(count):
        queued = start + timedelta(seconds=span * i / count)
        answered = queued + timedelta(seconds=12)
        completed = answered + timedelta(seconds=300)
        yield (
            uuid.uuid4(),
            f"bench-{i}",
            "phone",
            f"customer-{i % (count // 5 or 1)}",
            attributes,
            "completed",
            queued,
            answered,
            answered,
            completed - timedelta(seconds=60),
            completed,
            f"agent-{i % 300}",
            1,
            "order-status",
            completed,
        )


async def prefill(db_url: str, count: int, rounds: int, now: datetime) -> float:
    """Write `count` finished contacts by COPY; the seconds it took."""
    started = time.perf_counter()
    store = await Store.open(db_url)
    try:
        await store.migrate()
    finally:
        await store.close()
    start = months_before(now, NEWEST_MONTHS + rounds)
    end = months_before(now, NEWEST_MONTHS)
    db = await asyncpg.connect(db_url)
    try:
        await db.copy_records_to_table(
            "contacts",
            records=_contacts(count, start, end),
            columns=[
                "id",
                "idempotency_key",
                "channel",
                "customer_id",
                "attributes",
                "state",
                "queued_at",
                "offered_at",
                "answered_at",
                "ended_at",
                "completed_at",
                "agent_id",
                "offer_count",
                "disposition",
                "updated_at",
            ],
        )
        await db.execute(
            "INSERT INTO contact_feedback (contact_id, rating, comment, recorded_at) "
            "SELECT id, 4, 'Ada was lovely', completed_at FROM contacts "
            "WHERE idempotency_key ~ '[05]$'"
        )
        await db.execute("VACUUM ANALYZE contacts")
        await db.execute("VACUUM ANALYZE contact_feedback")
        sizes = await db.fetchrow(
            "SELECT pg_total_relation_size('contacts') AS total, "
            "pg_relation_size('contacts') AS heap"
        )
        assert sizes is not None
        print(
            json.dumps(
                {
                    "contacts_bytes_with_indexes": sizes["total"],
                    "contacts_heap_bytes": sizes["heap"],
                }
            ),
            flush=True,
        )
    finally:
        await db.close()
    return time.perf_counter() - started


def start_router(
    db_url: str, personal_months: int | None, batch_size: int, pause: float
) -> ServerProcess:
    port = free_port()
    env = {
        **os.environ,
        "ROUTER_DATABASE_URL": db_url,
        "ROUTER_PORT": str(port),
        "ROUTER_METRICS_PORT": "off",
        "ROUTER_LOG_FORMAT": "json",
        "ROUTER_LOG_LEVEL": "warning",
        "ROUTER_PHONE_RESERVE": "0",
        "ROUTER_OFFER_TIMEOUT_SECONDS": "120",
        "ROUTER_RETENTION_BATCH_SIZE": str(batch_size),
        "ROUTER_RETENTION_PAUSE_SECONDS": str(pause),
    }
    env.pop("ROUTER_CONFIG_FILE", None)
    if personal_months is not None:
        env["ROUTER_PERSONAL_DATA_MONTHS"] = str(personal_months)
    command = [sys.executable, "-m", "router.cli", "serve"]
    process = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.DEVNULL)
    return ServerProcess(process, port)


class Load:
    """Paced submissions and agents handling every offer, timing each RPC."""

    def __init__(self, target: str, rate: float, agents: int) -> None:
        self.target = target
        self.rate = rate
        self.agents = agents
        self.submit_ms: list[float] = []
        self.accept_ms: list[float] = []
        self.errors = 0

    async def run(self, until: asyncio.Event) -> None:
        async with grpc.aio.insecure_channel(self.target) as channel:
            agents = pb_grpc.AgentServiceStub(channel)
            contacts = pb_grpc.ContactServiceStub(channel)
            tasks = [
                asyncio.create_task(self._agent(agents, f"agent-{uuid.uuid4().hex[:6]}"))
                for _ in range(self.agents)
            ]
            pending: set[asyncio.Task[None]] = set()
            loop = asyncio.get_running_loop()
            next_at = loop.time()
            while not until.is_set():
                task = asyncio.create_task(self._submit(contacts))
                pending.add(task)
                task.add_done_callback(pending.discard)
                next_at += 1 / self.rate
                await asyncio.sleep(max(0.0, next_at - loop.time()))
            await asyncio.gather(*pending, return_exceptions=True)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _submit(self, contacts: pb_grpc.ContactServiceAsyncStub) -> None:
        key = uuid.uuid4().hex
        started = time.perf_counter()
        try:
            await contacts.SubmitContact(
                pb.SubmitContactRequest(
                    idempotency_key=key, channel=pb.CHANNEL_PHONE, customer_id=f"live-{key}"
                )
            )
        except grpc.aio.AioRpcError:
            self.errors += 1
            return
        self.submit_ms.append(1000 * (time.perf_counter() - started))

    async def _agent(self, agents: pb_grpc.AgentServiceAsyncStub, agent_id: str) -> None:
        await agents.SignIn(pb.SignInRequest(agent_id=agent_id))
        async for message in agents.StreamOffers(pb.StreamOffersRequest(agent_id=agent_id)):
            if not message.HasField("offer"):
                continue
            offer = message.offer
            contact_id = offer.contact.contact_id
            started = time.perf_counter()
            await agents.AcceptOffer(
                pb.AcceptOfferRequest(agent_id=agent_id, offer_id=offer.offer_id)
            )
            self.accept_ms.append(1000 * (time.perf_counter() - started))
            await agents.EndContact(pb.EndContactRequest(agent_id=agent_id, contact_id=contact_id))
            await agents.CompleteContact(
                pb.CompleteContactRequest(
                    agent_id=agent_id, contact_id=contact_id, disposition="bench"
                )
            )


async def _runs(db_url: str) -> int:
    db = await asyncpg.connect(db_url)
    try:
        count: int = await db.fetchval("SELECT count(*) FROM retention_runs")
        return count
    finally:
        await db.close()


async def _wait_for_run(db_url: str, before: int, done: asyncio.Event) -> dict[str, Any]:
    db = await asyncpg.connect(db_url)
    try:
        while True:
            if await db.fetchval("SELECT count(*) FROM retention_runs") > before:
                row = await db.fetchrow(
                    "SELECT extract(epoch FROM finished_at - started_at) AS seconds, batches, "
                    "contacts_anonymised, comments_erased FROM retention_runs "
                    "ORDER BY id DESC LIMIT 1"
                )
                assert row is not None
                done.set()
                return {
                    "job_seconds": round(float(row["seconds"]), 2),
                    "batches": row["batches"],
                    "contacts_anonymised": row["contacts_anonymised"],
                    "comments_erased": row["comments_erased"],
                }
            await asyncio.sleep(0.25)
    finally:
        await db.close()


async def one_round(
    db_url: str, kind: str, personal_months: int | None, seconds: float, args: argparse.Namespace
) -> dict[str, Any]:
    before = await _runs(db_url)
    server = start_router(db_url, personal_months, args.batch_size, args.pause)
    try:
        await wait_serving(server, within=300)
        load = Load(server.target, args.rate, args.agents)
        done = asyncio.Event()
        started = time.perf_counter()
        if personal_months is None:
            timer = asyncio.get_running_loop().call_later(seconds, done.set)
            await load.run(done)
            timer.cancel()
            job: dict[str, Any] = {}
        else:
            waiting = asyncio.create_task(_wait_for_run(db_url, before, done))
            await load.run(done)
            job = await waiting
        elapsed = time.perf_counter() - started
    finally:
        server.stop()
    result = {
        "kind": kind,
        "seconds": round(elapsed, 1),
        "submissions": len(load.submit_ms),
        "errors": load.errors,
        "submit_p50_ms": round(percentile(load.submit_ms, 0.5), 2),
        "submit_p99_ms": round(percentile(load.submit_ms, 0.99), 2),
        "accept_p50_ms": round(percentile(load.accept_ms, 0.5), 2),
        "accept_p99_ms": round(percentile(load.accept_ms, 0.99), 2),
        "load_average": load_average(),
        **job,
    }
    print(json.dumps(result), flush=True)
    return result


async def run(args: argparse.Namespace) -> dict[str, Any]:
    now = datetime.now(UTC)
    async with scratch_database(args.url, "retention") as db_url:
        took = await prefill(db_url, args.contacts, args.rounds, now)
        print(json.dumps({"prefill_seconds": round(took, 1), "contacts": args.contacts}))
        results = []
        seconds = args.seconds
        for r in range(args.rounds):
            results.append(await one_round(db_url, "baseline", None, seconds, args))
            personal = NEWEST_MONTHS + args.rounds - 1 - r
            job = await one_round(db_url, "job", personal, seconds, args)
            results.append(job)
            seconds = job["seconds"]
    jobs = [r for r in results if r["kind"] == "job"]
    bases = [r for r in results if r["kind"] == "baseline"]
    summary = {
        "revision": git_revision(),
        "contacts": args.contacts,
        "rate": args.rate,
        "agents": args.agents,
        "batch_size": args.batch_size,
        "pause": args.pause,
        "anonymised": sum(r["contacts_anonymised"] for r in jobs),
    }
    for figure in ("submit_p50_ms", "submit_p99_ms", "accept_p50_ms", "accept_p99_ms"):
        job_median = statistics.median(r[figure] for r in jobs)
        base_median = statistics.median(r[figure] for r in bases)
        summary[figure] = {
            "job": job_median,
            "baseline": base_median,
            "ratio": round(job_median / base_median, 2),
        }
    print(json.dumps(summary), flush=True)
    return {"rounds": results, "summary": summary}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="a PostgreSQL URL whose user may create databases")
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--pause", type=float, default=0.0, help="ROUTER_RETENTION_PAUSE_SECONDS")
    parser.add_argument("--out", help="write the rounds and the summary as JSON here")
    args = parser.parse_args(argv)
    logs.configure(level="warning")  # the report is the output, not migration lines
    outcome = asyncio.run(run(args))
    if args.out:
        with open(args.out, "w", encoding="utf-8") as out:
            json.dump(outcome, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
