"""The harness's figures as Markdown (the body of bench/RESULTS.md) and as a PNG."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from contact_router_tools.tables import render_markdown

TARGET_RATIO = 0.60
TARGET_RATE = 500.0
TARGET_P99_MS = 5.0
TARGET_CPU_RATIO = 1.5
TARGET_RPC_FLOOR_RATIO = 1.5
TARGET_RPC_P99_MS = 10.0


def _n(value: float | None, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return render_markdown((header, rows)).splitlines()


def summary(results: dict[str, Any]) -> dict[str, float]:
    """Means over the lifecycle rounds: the headline figures."""
    rounds = results.get("lifecycle", [])
    if not rounds:
        return {}

    def mean(side: str, *path: str) -> float:
        values = []
        for entry in rounds:
            value: Any = entry[side]
            for key in path:
                value = value[key]
            values.append(float(value))
        return statistics.fmean(values)

    figures = {
        "router_rate": mean("router", "lifecycles_per_second"),
        "bare_rate": mean("bare", "lifecycles_per_second"),
        "router_p50": mean("router", "latency_ms", "p50"),
        "router_p99": mean("router", "latency_ms", "p99"),
        "router_p999": mean("router", "latency_ms", "p99.9"),
        "router_offer_first": sum(
            entry["router"].get("offer_first_share", math.nan) for entry in results["lifecycle"]
        )
        / max(len(results["lifecycle"]), 1),
        "bare_p50": mean("bare", "latency_ms", "p50"),
        "bare_p99": mean("bare", "latency_ms", "p99"),
        "bare_p999": mean("bare", "latency_ms", "p99.9"),
        "router_cpu": mean("router", "server_cpu_ms_per_lifecycle"),
        "bare_cpu": mean("bare", "server_cpu_ms_per_lifecycle"),
        "postgres_cpu": mean("router", "postgres_cpu_ms_per_lifecycle"),
    }
    figures["ratio"] = figures["router_rate"] / figures["bare_rate"]
    return figures


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"Command: `{results['command']}`  ",
        f"Router revision: {results['revision']}  ",
        f"Started {results['started']}, took {results.get('seconds', '?')} s on "
        f"{results['cpus']} CPUs shared with other work.  ",
        f"Load average (1, 5, 15 min) before: {results['load_before']}, "
        f"after: {results.get('load_after')}.",
        "",
    ]
    if "lifecycle" in results:
        lines += _lifecycle(results)
    if "latency" in results:
        lines += _latency(results["latency"])
        lines += _grpc_and_commit(results["latency"])
    if "pg" in results:
        lines += _pg(results)
    if "lifecycle" in results:
        lines += _targets(results)
    if "core" in results:
        lines += _core(results["core"])
    if "scale" in results:
        lines += _scale(results["scale"])
    if "growth" in results:
        lines += _growth(results["growth"])
    return "\n".join(lines) + "\n"


def _lifecycle(results: dict[str, Any]) -> list[str]:
    shape = results["shape"]
    lines = [
        "## Full lifecycles: router against the bare gRPC baseline",
        "",
        f"{shape['agents']} agents in {shape['agent_processes']} processes, "
        f"{shape['gateway_processes']} gateway process(es) keeping {shape['window']} contacts "
        f"in flight; {shape['warmup']} s warm-up, {shape['measure']} s measured; then "
        f"{shape['latency_seconds']} s paced at half the measured rate for latency. "
        "A lifecycle is SubmitContact, the offer on the agent's stream, AcceptOffer, "
        "EndContact, CompleteContact. CPU is each process's own user+system time "
        "(/proc/PID/stat) over the measured interval, divided by lifecycles completed in it.",
        "",
    ]
    rows = []
    for number, entry in enumerate(results["lifecycle"], start=1):
        for side in ("router", "bare"):
            figures = entry[side]
            latency = figures["latency_ms"]
            rows.append(
                [
                    str(number),
                    "router" if side == "router" else "bare gRPC",
                    _n(figures["lifecycles_per_second"]),
                    _n(figures["latency_rate"]),
                    _n(latency["p50"], 2),
                    _n(latency["p99"], 2),
                    _n(latency["p99.9"], 2),
                    _n(figures["server_cpu_ms_per_lifecycle"], 2),
                    _n(figures["client_cpu_ms_per_lifecycle"], 2),
                    _n(figures["postgres_cpu_ms_per_lifecycle"], 2) if side == "router" else "-",
                    _n(figures["rss_mb"]),
                    str(sum(figures["errors"].values())),
                ]
            )
    lines += _table(
        [
            "round",
            "server",
            "lifecycles/s",
            "latency at /s",
            "p50 ms",
            "p99 ms",
            "p99.9 ms",
            "server CPU ms/lc",
            "load gen CPU ms/lc",
            "Postgres CPU ms/lc",
            "server RSS MB",
            "errors",
        ],
        rows,
    )
    figures = summary(results)
    lines += [
        "",
        f"Mean over rounds: router **{_n(figures['router_rate'])} lifecycles/s**, bare gRPC "
        f"{_n(figures['bare_rate'])}/s, ratio **{figures['ratio']:.2f}**; routing latency "
        f"p50 {_n(figures['router_p50'], 2)} ms, p99 **{_n(figures['router_p99'], 2)} ms**, "
        f"p99.9 {_n(figures['router_p999'], 2)} ms, with "
        f"{100 * figures['router_offer_first']:.0f}% of offers at the agent before the "
        "gateway had its acknowledgement, counted as 0 ms (bare gRPC: "
        f"{_n(figures['bare_p50'], 2)} / {_n(figures['bare_p99'], 2)} / "
        f"{_n(figures['bare_p999'], 2)} ms); server CPU {_n(figures['router_cpu'], 2)} ms "
        f"per lifecycle ({figures['router_cpu'] / figures['bare_cpu']:.1f}x the bare "
        f"server's {_n(figures['bare_cpu'], 2)} ms), plus {_n(figures['postgres_cpu'], 2)} ms "
        "in its PostgreSQL backends.",
        "",
        "### How far the PostgreSQL record lags",
        "",
        "Every RPC is answered after its commit, so an acknowledged step is never missing "
        "from PostgreSQL; what lags is the in-memory state not yet acknowledged. Sampled "
        "from the router's own metrics every second during the measured interval:",
        "",
    ]
    rows = []
    for number, entry in enumerate(results["lifecycle"], start=1):
        db = entry["router"]["db"]
        rows.append(
            [
                str(number),
                _n(db.get("pending_writes_mean"), 1),
                _n(db.get("pending_writes_max")),
                _n(db.get("commits_per_second")),
                _n(db.get("rows_per_commit_mean"), 1),
                _n(db.get("commit_ms_mean"), 2),
                f"{db['completed_acknowledged']:,} / {db['completed_recorded']:,}",
            ]
        )
    lines += _table(
        [
            "round",
            "pending writes, mean",
            "max",
            "commits/s",
            "rows per commit",
            "commit ms, mean",
            "completions acknowledged / with completed_at in PostgreSQL",
        ],
        rows,
    )
    return [*lines, ""]


def _pg(results: dict[str, Any]) -> list[str]:
    pg = results["pg"]
    lines = [
        "## The rows alone: bare asyncpg",
        "",
        "The rows one lifecycle records (1 contact insert, 5 events, 4 contact updates, the "
        "router's own statements) written with asyncpg and nothing else: one transaction "
        f"per lifecycle from {pg['connections']} connections, and {pg['batch']:.0f} "
        "lifecycles per transaction (executemany) from 2 connections.",
        "",
    ]
    rows = [
        [
            "one transaction per lifecycle",
            _n(pg["transaction_per_lifecycle_per_second"]),
            _n(pg["transaction_per_lifecycle_client_cpu_ms"], 2),
            _n(pg["transaction_per_lifecycle_postgres_cpu_ms"], 2),
        ],
        [
            "batched",
            _n(pg["batched_per_second"]),
            _n(pg["batched_client_cpu_ms"], 2),
            _n(pg["batched_postgres_cpu_ms"], 2),
        ],
    ]
    lines += _table(["writes", "lifecycles/s", "client CPU ms/lc", "PostgreSQL CPU ms/lc"], rows)
    lines += [
        "",
        "The floor under routing latency: an offer's rows (one event, one contact update) "
        "committed alone, one transaction after another (fsync on, synchronous_commit on): "
        f"p50 {_n(pg['offer_commit_ms_p50'], 2)} ms, p99 {_n(pg['offer_commit_ms_p99'], 2)} ms, "
        f"p99.9 {_n(pg['offer_commit_ms_p99.9'], 2)} ms.",
    ]
    if "lifecycle" in results:
        rate = summary(results)["router_rate"]
        lines += [
            "",
            f"Router as a ratio: {rate / pg['transaction_per_lifecycle_per_second']:.2f} of "
            f"one transaction per lifecycle, {rate / pg['batched_per_second']:.2f} of batched.",
        ]
    return [*lines, ""]


def latency_summary(rounds: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per method, the means over rounds of the router's p50 / p99 and the floor's."""
    figures = {}
    for method in rounds[0]["floor"]:
        seen = [r for r in rounds if method in r["router"]]
        if not seen:
            continue
        figures[method] = {
            "p50": statistics.fmean(r["router"][method]["p50"] for r in seen),
            "p99": statistics.fmean(r["router"][method]["p99"] for r in seen),
            "floor_p50": statistics.fmean(r["floor"][method]["p50"] for r in seen),
            "floor_p99": statistics.fmean(r["floor"][method]["p99"] for r in seen),
        }
    return figures


Figures = dict[str, Any]


def _beside(
    rounds: list[Figures], key: str, methods: str
) -> Iterator[tuple[int, Figures, Figures, str, Figures, Figures, Figures]]:
    """Per latency round that ran the server `key` too (the baseline router, the bare
    gRPC server), per method both answered: the round's number, entry and `key`'s
    entry, the method, its floor, this router's figures and the other's (`methods`)."""
    for number, entry in enumerate(rounds, start=1):
        other = entry.get(key)
        if other is None:
            continue
        for method, floor in entry["floor"].items():
            mine, theirs = entry["router"].get(method), other[methods].get(method)
            if mine is not None and theirs is not None:
                yield number, entry, other, method, floor, mine, theirs


def _baseline(rounds: list[dict[str, Any]]) -> list[str]:
    """With --baseline: each round's baseline router next to this one, both against
    the round's floor."""
    rows = [
        [
            f"{number}, baseline first" if other.get("first") else str(number),
            method,
            f"{_n(other['rate'])} / {_n(entry['rate'])}",
            f"{theirs['p50']:.2f} / {mine['p50']:.2f}",
            f"{theirs['p99']:.2f} / {mine['p99']:.2f}",
            f"{theirs['p50'] / floor['p50']:.2f} / {mine['p50'] / floor['p50']:.2f}",
        ]
        for number, entry, other, method, floor, mine, theirs in _beside(
            rounds, "baseline", "router"
        )
    ]
    if not rows:
        return []
    header = ["round", "method", "at /s", "p50 ms", "p99 ms", "p50 / floor p50"]
    return [
        "The baseline router (--baseline) in the same rounds, against the same floor: "
        "baseline / this tree.",
        "",
        *_table(header, rows),
        "",
    ]


def _grpc_and_commit(latency: list[dict[str, Any]]) -> list[str]:
    """The least an RPC that answers once its rows are committed can take, per round: a
    round trip through the bare gRPC server at the router's rate in the same round, plus
    the commit of its rows (the floor). The floor alone leaves out the RPC itself."""
    rows = []
    for number, _, bare, method, floor, router, grpc in _beside(latency, "bare", "rpc_ms"):
        least = grpc["p50"] + floor["p50"]
        rows.append(
            [
                str(number),
                method,
                _n(bare["rate"]),
                f"{grpc['p50']:.2f}",
                f"{floor['p50']:.2f}",
                f"{least:.2f}",
                f"{least / floor['p50']:.2f}",
                f"{router['p50']:.2f}",
                f"{router['p50'] / least:.2f}",
            ]
        )
    if not rows:
        return []
    header = ["round", "method", "at /s", "bare gRPC p50", "floor p50", "sum", "sum / floor"]
    return [
        "What the floor leaves out: the RPC's own round trip. The bare gRPC server's p50 "
        "for the same method at the router's rate in the same round, plus the floor's "
        "commit, is the least an RPC that answers once its rows are durable can take at "
        "this load; its ratio to the floor (sum / floor) is the best the p50 / floor "
        "ratio above could be.",
        "",
        *_table([*header, "router p50", "router / sum"], rows),
        "",
    ]


def _latency(rounds: list[dict[str, Any]]) -> list[str]:
    lines = [
        "## RPC latency against the commit of its rows",
        "",
        "Each round: the router's lifecycle run, whose latency phase submits at half the "
        "measured maximum; round trips of each RPC as its caller (a load-generator "
        "process) sees them. Then the floor: the rows that RPC records, committed by "
        "bare asyncpg (a transaction, one execute per row), one commit after another on "
        "one connection of a fresh database.",
        "",
    ]
    rows = []
    for number, entry in enumerate(rounds, start=1):
        for method, floor in entry["floor"].items():
            router = entry["router"].get(method)
            if router is None:
                continue
            rows.append(
                [
                    str(number),
                    method,
                    _n(entry["rate"]),
                    _n(router["p50"], 2),
                    _n(router["p99"], 2),
                    _n(floor["p50"], 2),
                    _n(floor["p99"], 2),
                    f"{router['p50'] / floor['p50']:.2f}",
                ]
            )
    header = ["round", "method", "at /s", "p50 ms", "p99 ms", "floor p50", "floor p99"]
    lines += _table([*header, "p50 / floor p50"], rows)
    lines.append("")
    lines += _baseline(rounds)
    writers = [
        [
            f"{number}{label}",
            _n(source["writer"]["commits_per_second"]),
            _n(source["writer"]["rows_per_commit_mean"], 1),
            _n(source["writer"]["commit_ms_mean"], 2),
            f"{100 * source['writer']['busy_share']:.0f}%",
            *(
                _n(source["writer"][name], 2) if name in source["writer"] else "-"
                for name in ("queued_ms_per_caller", "wait_ms_per_caller")
            ),
            *(
                f"{100 * source['writer'][f'{name}_cpu_share']:.0f}%"
                if f"{name}_cpu_share" in source["writer"]
                else "-"
                for name in ("server", "postgres", "agents", "machine")
            ),
        ]
        for number, entry in enumerate(rounds, start=1)
        for label, source in (("", entry), (" baseline", entry.get("baseline") or {}))
        if source.get("writer")
    ]
    if writers:
        lines += [
            "The group commit in the same phase (the router's metrics): an RPC that finds "
            "a commit in flight waits for it, then for its own, so the share of the time "
            "a commit is in flight bounds how close to the floor the p50 can come. Per "
            "caller (an RPC's writes), the mean wait for the commit in flight (queued) "
            "and from handing its writes over to the end of its own commit (wait). Then "
            "the CPU each part used in the phase, in CPUs (100% is one): the router, its "
            "PostgreSQL backends, the agents' processes, and the whole machine (every "
            "process, others' too; 200% is all of it).",
            "",
        ]
        header = ["round", "commits/s", "rows per commit", "commit ms, mean", "in flight"]
        header += ["queued ms per caller", "wait ms per caller"]
        header += ["router CPU", "PostgreSQL CPU", "agents CPU", "machine busy"]
        lines += [*_table(header, writers), ""]

    def verdict(ok: bool) -> str:
        return "met" if ok else "**not met**"

    means = []
    for method, figures in latency_summary(rounds).items():
        ratio = figures["p50"] / figures["floor_p50"]
        means.append(
            [
                method,
                f"{figures['p50']:.2f} / {figures['p99']:.2f} ms",
                f"{figures['floor_p50']:.2f} / {figures['floor_p99']:.2f} ms",
                f"{ratio:.2f}",
                verdict(ratio <= TARGET_RPC_FLOOR_RATIO),
                verdict(figures["p99"] < TARGET_RPC_P99_MS),
            ]
        )
    header = ["mean over rounds", "router p50 / p99", "floor p50 / p99", "p50 / floor"]
    targets = [f"p50 <= {TARGET_RPC_FLOOR_RATIO}x floor", f"p99 < {TARGET_RPC_P99_MS:.0f} ms"]
    lines += _table([*header, *targets], means)
    return [*lines, ""]


def _targets(results: dict[str, Any]) -> list[str]:
    figures = summary(results)

    def verdict(ok: bool) -> str:
        return "met" if ok else "**not met**"

    rows = [
        [
            f"throughput >= {TARGET_RATIO:.0%} of bare gRPC",
            f"{figures['ratio']:.2f}",
            verdict(figures["ratio"] >= TARGET_RATIO),
        ],
        [
            f">= {TARGET_RATE:.0f} lifecycles/s, every timing committed",
            _n(figures["router_rate"]),
            verdict(figures["router_rate"] >= TARGET_RATE),
        ],
        [
            f"server CPU per lifecycle <= {TARGET_CPU_RATIO}x the bare gRPC server's",
            f"{figures['router_cpu'] / figures['bare_cpu']:.2f}x",
            verdict(figures["router_cpu"] <= TARGET_CPU_RATIO * figures["bare_cpu"]),
        ],
        [
            f"routing latency p99 < {TARGET_P99_MS:.0f} ms at half the maximum",
            f"{figures['router_p99']:.2f} ms",
            verdict(figures["router_p99"] < TARGET_P99_MS),
        ],
    ]
    return ["## Targets", "", *_table(["target", "this run", ""], rows), ""]


def _core(points: list[dict[str, Any]]) -> list[str]:
    lines = [
        "## Routing core microbenchmark (router.domain, no gRPC, no PostgreSQL)",
        "",
        "A mixed center (3 languages, 3 topics, phone/chat/email). Memory from tracemalloc "
        "(Python allocations). Busy: every agent holds work and the rest waits; `complete` "
        "frees an agent and picks its next contact from the queue, `submit` queues a "
        "contact nobody is free for. Idle: every agent free, `submit` picks the "
        "longest-idle eligible agent. Microseconds per call.",
        "",
    ]
    rows = [
        [
            _n(p["agents"]),
            _n(p["queued"]),
            _n(p["bytes_per_agent"]),
            _n(p["bytes_per_queued_contact"]),
            f"{_n(p['busy_complete_us']['p50'])} / {_n(p['busy_complete_us']['p99'])}",
            f"{_n(p['busy_submit_us']['p50'])} / {_n(p['busy_submit_us']['p99'])}",
            f"{_n(p['idle_submit_us']['p50'])} / {_n(p['idle_submit_us']['p99'])}",
        ]
        for p in points
    ]
    lines += _table(
        [
            "agents",
            "queued",
            "bytes/agent",
            "bytes/queued contact",
            "busy complete p50 / p99 us",
            "busy submit p50 / p99 us",
            "idle submit p50 / p99 us",
        ],
        rows,
    )
    return [*lines, ""]


def _scale(figures: dict[str, Any]) -> list[str]:
    latency = figures["latency_ms"]
    return [
        "## Scale, end to end: one router process",
        "",
        f"{figures['queued']:,} queued contacts (written to PostgreSQL, restored by the "
        f"router on start in {figures['start_with_backlog_seconds']:.1f} s) and "
        f"{figures['agents']:,} signed-in agents with open offer streams "
        f"(signed in from several processes in {figures['sign_in_seconds']:.1f} s). "
        "Memory is the server process's RSS delta.",
        "",
        *_table(
            ["figure", "value"],
            [
                ["server RSS, empty", f"{figures['rss_empty_mb']:.0f} MB"],
                ["server RSS with the queue", f"{figures['rss_queued_mb']:.0f} MB"],
                ["server RSS with the queue and the agents", f"{figures['rss_agents_mb']:.0f} MB"],
                ["memory per queued contact", f"{_n(figures['bytes_per_queued_contact'])} B"],
                ["memory per agent (core + stream)", f"{_n(figures['bytes_per_agent'])} B"],
                [
                    f"routing latency at {figures['latency_rate']:.0f}/s, p50 / p99 / p99.9",
                    f"{_n(latency['p50'], 2)} / {_n(latency['p99'], 2)} / "
                    f"{_n(latency['p99.9'], 2)} ms ({figures['latency_samples']} contacts)",
                ],
                ["errors", str(sum(figures["errors"].values()))],
            ],
        ),
        "",
    ]


def _growth(growth: dict[str, list[dict[str, Any]]]) -> list[str]:
    def row(label: str, figures: dict[str, Any]) -> list[str]:
        latency = figures["latency_ms"]
        return [
            label,
            _n(figures["lifecycles_per_second"]),
            _n(latency["p50"], 2),
            _n(latency["p99"], 2),
            _n(latency["p99.9"], 2),
            _n(figures["server_cpu_ms_per_lifecycle"], 2),
            _n(figures["rss_mb"]),
        ]

    header = [
        "",
        "lifecycles/s",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "server CPU ms/lc",
        "server RSS MB",
    ]
    rows = [row(f"{g['agents']:,} agents", g) for g in growth["agents"]]
    rows += [row(f"{g['recorded']:,} recorded contacts", g) for g in growth["recorded"]]
    return [
        "## Growth",
        "",
        "Each row is a shorter lifecycle run (same method as above). Agents: a fresh "
        "database each. Recorded contacts: completed contacts with their five events "
        "written into the database before the router starts.",
        "",
        *_table(header, rows),
        "",
    ]


def plot(results: dict[str, Any], path: Path) -> None:
    """Throughput and routing latency against agents and recorded contacts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    growth = results["growth"]
    figure, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    for column, (key, label) in enumerate(
        (("agents", "signed-in agents"), ("recorded", "recorded contacts"))
    ):
        points = growth[key]
        x = [p[key] for p in points]
        rate_axis, latency_axis = axes[0][column], axes[1][column]
        rate_axis.plot(x, [p["lifecycles_per_second"] for p in points], "o-")
        rate_axis.set_ylabel("full lifecycles / s")
        rate_axis.set_ylim(bottom=0)
        for name in ("p50", "p99", "p99.9"):
            latency_axis.plot(x, [p["latency_ms"][name] for p in points], "o-", label=name)
        latency_axis.axhline(TARGET_P99_MS, color="grey", linestyle=":", label="p99 target")
        latency_axis.set_ylabel("routing latency, ms (at half max rate)")
        latency_axis.legend()
        for axis in (rate_axis, latency_axis):
            axis.set_xscale("log")
            axis.set_xlabel(label)
            axis.grid(True, alpha=0.3)
    if "core" in results:
        core_axis = axes[1][0].twinx()
        points = [p for p in results["core"] if p["queued"] == results["core"][0]["queued"]]
        core_axis.plot(
            [p["agents"] for p in points],
            [p["busy_complete_us"]["p50"] for p in points],
            "s--",
            color="purple",
            label="core decision p50 (us)",
        )
        # p50: the core's p99 on a shared machine mostly measures preemption.
        core_axis.set_ylabel("core routing decision p50, us", color="purple")
        core_axis.set_ylim(bottom=0)
    figure.suptitle(
        f"contact-router growth ({results['revision']}, {results['started']}, "
        f"{results['cpus']} CPUs shared)"
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
