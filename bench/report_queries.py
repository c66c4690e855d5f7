"""The month report at a million contacts: generate a month into a scratch database and
print EXPLAIN ANALYZE timings of the report queries.

    ROUTER_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python -m bench.report_queries [--contacts 1000000] [--keep]

The month is March 2026: contacts arrive 07:00 to 21:00 UTC, peaking at midday; 60%
phone, 30% chat, 10% email; 500 agents; about 4% abandon; every tenth completed contact
has a rating; afternoons 14:00 to 16:00 on Wednesdays run long waits (a "bad afternoon"
for the chart); 200,000 customers call five times each, on different days, half of them
always reaching the same agent and half never; one answered contact in twenty was
declined once before its answer. Generation is set-based (generate_series), not row by
row. With --keep the database is left for `contact-router serve` / `report` to look at.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from router.reporting.intervals import Interval
from router.store.migrations import migrate
from router.store.queries import QUERIES

MONTH_START = datetime(2026, 3, 1, tzinfo=UTC)
MONTH_END = datetime(2026, 4, 1, tzinfo=UTC)
AGENTS = 500

_CONTACTS = """
INSERT INTO contacts (
    id, idempotency_key, channel, customer_id, attributes, required_skills, priority_boost,
    state, queued_at, offered_at, answered_at, ended_at, completed_at, abandoned_at,
    agent_id, disposition, offer_count, updated_at
)
SELECT
    id, 'bench-' || n, channel, 'customer-' || (n % 200000), '{}'::jsonb, skills, 1.0,
    CASE WHEN abandons THEN 'abandoned' ELSE 'completed' END,
    queued_at,
    CASE WHEN abandons THEN NULL ELSE queued_at + wait END,
    CASE WHEN abandons THEN NULL ELSE queued_at + wait END,
    CASE WHEN abandons THEN NULL ELSE queued_at + wait + talk END,
    CASE WHEN abandons THEN NULL ELSE queued_at + wait + talk + acw END,
    CASE WHEN abandons THEN queued_at + wait END,
    CASE WHEN abandons THEN NULL
         ELSE 'agent-' || lpad(((n + (n / 200000) * (n % 2)) % $3)::text, 3, '0') END,
    CASE WHEN abandons THEN NULL ELSE (ARRAY['order-status', 'return', 'exchange',
        'shipping', 'billing', 'product-question', 'account', 'other'])[1 + n % 8] END,
    CASE WHEN abandons THEN 0 WHEN n % 20 = 0 THEN 2 ELSE 1 END,
    queued_at + wait + talk + acw
FROM (
    SELECT
        n, id, channel, skills, queued_at, talk, acw,
        wait * CASE WHEN extract(isodow FROM queued_at) = 3
                     AND extract(hour FROM queued_at) BETWEEN 14 AND 15 THEN 6 ELSE 1 END
            AS wait,
        random() < CASE WHEN wait > interval '60 seconds' THEN 0.25 ELSE 0.03 END AS abandons
    FROM (
        SELECT
            n,
            gen_random_uuid() AS id,
            (ARRAY['phone', 'phone', 'phone', 'phone', 'phone', 'phone', 'chat', 'chat',
                   'chat', 'email'])[1 + n % 10] AS channel,
            CASE WHEN n % 7 = 0 THEN ARRAY['lang:es'] WHEN n % 11 = 0 THEN ARRAY['returns']
                 ELSE '{}'::text[] END AS skills,
            $1::timestamptz + make_interval(days => (n % 31)::int)
                + interval '7 hours' + interval '14 hours' * ((random() + random()) / 2)
                AS queued_at,
            make_interval(secs => CASE WHEN random() < 0.8 THEN random() * 18
                                       ELSE 18 + random() * 60 END) AS wait,
            make_interval(secs => 60 + random() * 540) AS talk,
            make_interval(secs => 5 + random() * 90) AS acw
        FROM generate_series(1, $2::integer) AS n
    ) AS drawn
) AS timed
"""

# A contact offered twice was declined first, by the next agent along, halfway through
# its wait.
_EVENTS = f"""
INSERT INTO contact_events (contact_id, kind, at, agent_id)
SELECT c.id, k.kind, k.at, k.agent_id
FROM contacts AS c
LEFT JOIN LATERAL (
    SELECT c.queued_at + (c.offered_at - c.queued_at) / 2 AS at,
           'agent-' || lpad(((substr(c.agent_id, 7)::int + 1) % {AGENTS})::text, 3, '0')
               AS agent_id
    WHERE c.offer_count = 2
) AS declined ON true
CROSS JOIN LATERAL (VALUES
    ('submitted', c.queued_at, NULL), ('offered', declined.at, declined.agent_id),
    ('declined', declined.at, declined.agent_id), ('offered', c.offered_at, c.agent_id),
    ('answered', c.answered_at, c.agent_id), ('ended', c.ended_at, c.agent_id),
    ('completed', c.completed_at, c.agent_id), ('abandoned', c.abandoned_at, NULL)
) AS k(kind, at, agent_id)
WHERE k.at IS NOT NULL
"""

_AGENTS = """
INSERT INTO agents (id, skills, first_seen_at, last_seen_at)
SELECT 'agent-' || lpad(a::text, 3, '0'), ARRAY['lang:es'], $1, $1
FROM generate_series(0, $2 - 1) AS a
"""

# A shift per agent per day: sign in, lunch, back, sign out (starts staggered by agent).
_STATUS_LOG = """
INSERT INTO agent_status_log (agent_id, kind, status, reason, connected, at)
SELECT 'agent-' || lpad(a::text, 3, '0'), s.kind, s.status, s.reason, s.kind <> 'signed_out',
       $1::timestamptz + make_interval(days => d, hours => 7 + a % 6) + s.offset_
FROM generate_series(0, $2 - 1) AS a
CROSS JOIN generate_series(0, 30) AS d
CROSS JOIN (VALUES
    ('signed_in', 'ready', '', interval '0'),
    ('status_changed', 'away', 'lunch', interval '4 hours'),
    ('status_changed', 'ready', '', interval '4 hours 30 minutes'),
    ('signed_out', 'offline', '', interval '8 hours 30 minutes')
) AS s(kind, status, reason, offset_)
"""

_FEEDBACK = """
INSERT INTO contact_feedback (contact_id, rating, comment, source, recorded_at)
SELECT id, 1 + floor(random() * 5)::int, '', 'bench', completed_at + interval '1 hour'
FROM contacts WHERE completed_at IS NOT NULL AND random() < 0.1
"""


def _month_queries() -> list[tuple[str, str, tuple[object, ...]]]:
    """(label, SQL, arguments) of what a month's report runs."""
    thresholds = (["phone", "chat", "email"], [20.0, 60.0, 3600.0])
    now = MONTH_END + timedelta(days=1)
    hour = Interval.HOUR.fixed_length
    fifteen = Interval.MINUTES_15.fixed_length
    tail = (True, "UTC", False, None)  # with detail, in UTC, not by team, every team
    return [
        ("contacts per hour and channel", QUERIES["report_contacts"],
         (MONTH_START, MONTH_END, hour, None, *thresholds, 5.0, False, *tail)),
        ("contacts per 15 min, channel and skill", QUERIES["report_contacts"],
         (MONTH_START, MONTH_END, fifteen, None, *thresholds, 5.0, True, *tail)),
        ("contacts per month", QUERIES["report_contacts"],
         (MONTH_START, MONTH_END, hour, "month", *thresholds, 5.0, False, *tail)),
        ("agents: time, occupancy, handling", QUERIES["report_agents"],
         (MONTH_START, MONTH_END, now)),
        ("agents: time by status", QUERIES["report_agent_status"],
         (MONTH_START, MONTH_END, now)),
        ("agents: sessions (attendance)", QUERIES["report_agent_sessions"],
         (MONTH_START, MONTH_END)),
        ("dispositions", QUERIES["report_dispositions"], (MONTH_START, MONTH_END, False, None)),
        ("feedback by channel and agent", QUERIES["report_feedback"],
         (MONTH_START, MONTH_END, False, None)),
        ("view interval_service_level, one month", "SELECT * FROM interval_service_level "
         "WHERE interval_start >= $1 AND interval_start < $2", (MONTH_START, MONTH_END)),
        ("one day, per 15 min (a supervisor's today)", QUERIES["report_contacts"],
         (MONTH_START + timedelta(days=17), MONTH_START + timedelta(days=18), fifteen, None,
          *thresholds, 5.0, False, *tail)),
    ]  # fmt: skip


async def generate(db: asyncpg.Connection, contacts: int) -> None:
    steps = [
        ("partitions", "SELECT add_contact_event_partitions($1, 1)", (MONTH_START,)),
        ("contacts", _CONTACTS, (MONTH_START, contacts, AGENTS)),
        ("contact_events", _EVENTS, ()),
        ("agents", _AGENTS, (MONTH_START, AGENTS)),
        ("agent_status_log", _STATUS_LOG, (MONTH_START, AGENTS)),
        ("contact_feedback", _FEEDBACK, ()),
    ]
    for label, sql, args in steps:
        started = time.perf_counter()
        status = await db.execute(sql, *args)
        print(f"  {label:<18} {status:<22} {time.perf_counter() - started:7.1f} s", flush=True)
    started = time.perf_counter()
    await db.execute("VACUUM (ANALYZE)")
    print(f"  {'vacuum analyze':<18} {'':<22} {time.perf_counter() - started:7.1f} s")


async def measure(db: asyncpg.Connection, plans: bool) -> None:
    print("\nquery (one month unless said)             rows   best ms  median ms  plan")
    for label, sql, args in _month_queries():
        plan = [r[0] for r in await db.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", *args)]
        timings = []
        rows = 0
        for _ in range(3):
            started = time.perf_counter()
            rows = len(await db.fetch(sql, *args))
            timings.append((time.perf_counter() - started) * 1000)
        scans = sorted({_scan_of(line) for line in plan if _scan_of(line)})
        print(f"{label:<42} {rows:>5} {min(timings):>9.0f} {statistics.median(timings):>10.0f}"
              f"  {', '.join(scans)}")  # fmt: skip
        if plans:
            print("\n".join("    " + line for line in plan) + "\n")


def _scan_of(line: str) -> str:
    """'Index Only Scan using contacts_report_idx' and the like, from a plan line."""
    text = line.strip().removeprefix("->").strip()
    for kind in ("Index Only Scan", "Index Scan", "Bitmap Heap Scan", "Seq Scan"):
        if text.startswith(kind):
            words = text.split(" on ")[0].split(" using ")
            table = text.split(" on ")[1].split()[0] if " on " in text else ""
            return f"{kind} {words[1] if len(words) > 1 else ''} ({table})".replace("  ", " ")
    return ""


async def main(args: argparse.Namespace) -> int:
    if args.database_url:
        db = await asyncpg.connect(args.database_url)
        try:
            await db.execute("SET TIME ZONE 'UTC'; SET work_mem = '128MB'; SET jit = off")
            await db.execute("SET max_parallel_workers_per_gather = 0")
            print(f"measuring the month already in {args.database_url}")
            await measure(db, args.plans)
        finally:
            await db.close()
        return 0
    admin_url = args.server_url or os.environ.get("ROUTER_TEST_DATABASE_URL")
    if not admin_url:
        print("set ROUTER_TEST_DATABASE_URL or --server-url", file=sys.stderr)
        return 2
    name = f"bench_reports_{uuid.uuid4().hex[:8]}"
    base = admin_url.rpartition("/")[0]
    admin = await asyncpg.connect(admin_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = f"{base}/{name}"
    try:
        db = await asyncpg.connect(url)
        try:
            await db.execute("SET TIME ZONE 'UTC'")
            await migrate(db)
            print(f"generating {args.contacts:,} contacts of March 2026 into {name}")
            await generate(db, args.contacts)
            size = await db.fetchval("SELECT pg_size_pretty(pg_database_size(current_database()))")
            events = await db.fetchval("SELECT count(*) FROM contact_events")
            print(f"  database {size}, {events:,} contact events")
            # What router.store.reports runs each report query with.
            await db.execute("SET work_mem = '128MB'; SET jit = off")
            await db.execute("SET max_parallel_workers_per_gather = 0")
            print("  (work_mem 128MB and JIT off, as the router's report reads; parallel query")
            print("  off: figures for one core, a loaded machine's worst case)")
            await measure(db, args.plans)
        finally:
            await db.close()
    finally:
        if args.keep:
            print(f"\nkept: {url}")
        else:
            admin = await asyncpg.connect(admin_url)
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--server-url", help="admin URL (default ROUTER_TEST_DATABASE_URL)")
    parser.add_argument("--keep", action="store_true", help="keep the generated database")
    parser.add_argument("--plans", action="store_true", help="print every query plan")
    parser.add_argument(
        "--database-url", help="measure a database generated before with --keep (no generation)"
    )
    sys.exit(asyncio.run(main(parser.parse_args())))
