"""Render docs/dashboard.png: the Grafana dashboard's main panels, without Grafana.

Starts a router in this process against an existing PostgreSQL database, drives it with
`contact-router simulate`, scrapes /metrics once a second meanwhile, and plots a 2x2
figure with matplotlib: service level per channel (80% target, 70% alarm), contacts
waiting per channel, agents by state (stacked), routing latency p50/p99 estimated from
the histogram buckets.

    ROUTER_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/<db> \\
        .venv/bin/python deploy/grafana/render_preview.py

The database must exist (the router migrates it); the script creates nothing else.
matplotlib comes with the tools (contact-router-tools, which `make run` installs), as
the simulator does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import contact_router_tools.simulate
import matplotlib
import matplotlib.pyplot as plt
from contact_router_tools.proto_values import CHANNELS
from matplotlib.axes import Axes
from prometheus_client.parser import text_string_to_metric_families

from router.domain import RoutingPolicy
from router.server import start_router

Labels = frozenset[tuple[str, str]]
Samples = dict[tuple[str, Labels], float]

ROOT = Path(__file__).resolve().parents[2]
CHANNEL_COLORS = {"phone": "tab:blue", "chat": "tab:orange", "email": "tab:purple"}
STATES = ("idle", "busy", "away", "disconnected")
STATE_COLORS = {"idle": "#73bf69", "busy": "#5794f2", "away": "#ff9830", "disconnected": "#f2495c"}
LATENCY = "contactrouter_routing_latency_seconds_bucket"
BUSY_RATES = ("phone=30", "chat=15", "email=6")
PATIENCE = ("phone=30", "chat=90")
LATENCY_WINDOW = 5  # scrapes (seconds) of bucket deltas per latency estimate


@dataclass
class Series:
    """Scrapes over time: seconds since the start and the samples of each scrape."""

    times: list[float] = field(default_factory=list)
    scrapes: list[Samples] = field(default_factory=list)

    def values(self, name: str, **labels: str) -> list[float]:
        key = (name, frozenset(labels.items()))
        return [s.get(key, math.nan) for s in self.scrapes]


async def scrape(port: int) -> Samples:
    """GET /metrics over a plain asyncio connection and parse the exposition text."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: preview\r\n\r\n")
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), 5.0)
    finally:
        writer.close()
    head, _, body = raw.decode().partition("\r\n\r\n")
    if head.split(" ")[1] != "200":
        raise RuntimeError(f"/metrics answered {head.splitlines()[0]}")
    samples: Samples = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


async def scrape_until(port: int, done: asyncio.Event, series: Series) -> None:
    """Scrape once a second until `done` is set (one last scrape after it)."""
    started = time.monotonic()
    while True:
        finished = done.is_set()
        series.times.append(time.monotonic() - started)
        series.scrapes.append(await scrape(port))
        if finished:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), 1.0)


def buckets(samples: Samples, name: str) -> dict[float, float]:
    """Cumulative bucket counts of an unlabelled histogram, by upper bound."""
    result: dict[float, float] = {}
    for (sample_name, labels), value in samples.items():
        if sample_name == name:
            result[float(dict(labels)["le"])] = value
    return result


def quantile(q: float, cumulative: dict[float, float]) -> float:
    """The same linear interpolation as PromQL's histogram_quantile."""
    bounds = sorted(cumulative)
    if not bounds or cumulative[bounds[-1]] <= 0:
        return math.nan
    rank = q * cumulative[bounds[-1]]
    lower_bound, lower_count = 0.0, 0.0
    for bound in bounds:
        count = cumulative[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower_bound  # in the +Inf bucket: the highest finite bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count
            )
        lower_bound, lower_count = bound, count
    return lower_bound


def latency_quantiles(series: Series, q: float) -> list[float]:
    """Quantile of the routing latency over the last LATENCY_WINDOW scrapes' bucket deltas."""
    result = []
    for i, samples in enumerate(series.scrapes):
        now = buckets(samples, LATENCY)
        before = buckets(series.scrapes[max(0, i - LATENCY_WINDOW)], LATENCY) if i else {}
        delta = {le: count - before.get(le, 0.0) for le, count in now.items()}
        result.append(quantile(q, delta))
    return result


def plot(series: Series, output: Path, agents: int, duration: float) -> None:
    matplotlib.use("Agg")  # to a file: no display needed
    t = series.times
    fig, axes = plt.subplots(2, 2, figsize=(14, 8.5), sharex=True, layout="constrained")
    fig.suptitle(
        f"contact-router: simulated center ({agents} agents, {duration:g} s of arrivals, "
        "1 s scrapes of /metrics)",
        fontsize=13,
    )
    level, waiting, states, latency = axes[0][0], axes[0][1], axes[1][0], axes[1][1]

    for channel in CHANNELS:
        ratio = series.values("contactrouter_service_level_ratio", channel=channel)
        level.plot(t, [v * 100 for v in ratio], label=channel, color=CHANNEL_COLORS[channel])
    # The lines as the router reports them (per channel, as configured), once per level.
    for metric, color, style, word in (
        ("contactrouter_service_level_goal_ratio", "tab:green", "--", "goal"),
        ("contactrouter_service_level_alarm_ratio", "tab:red", ":", "alarm"),
    ):
        lines: dict[float, list[str]] = {}
        for channel in CHANNELS:
            values = [v for v in series.values(metric, channel=channel) if not math.isnan(v)]
            if values:
                lines.setdefault(values[-1], []).append(channel)
        for value, names in sorted(lines.items()):
            which = "" if len(names) == len(CHANNELS) else f" ({', '.join(names)})"
            label = f"{word} {value:.0%}{which}"
            level.axhline(value * 100, color=color, linestyle=style, linewidth=1.2, label=label)
    level.set_ylim(0, 105)
    _style(level, "Service level (rolling 15 min)", "% answered within target", "lower left")

    for channel in CHANNELS:
        counts = series.values("contactrouter_contacts_waiting", channel=channel)
        waiting.plot(t, counts, label=channel, color=CHANNEL_COLORS[channel])
    waiting.set_ylim(bottom=0)
    _style(waiting, "Contacts waiting by channel", "contacts queued")

    stacked = [
        [0.0 if math.isnan(v) else v for v in series.values("contactrouter_agents", state=s)]
        for s in STATES
    ]
    states.stackplot(
        t, stacked, labels=STATES, colors=[STATE_COLORS[s] for s in STATES], alpha=0.85
    )
    states.set_ylim(0, max(1.0, *(sum(col) for col in zip(*stacked, strict=True))) * 1.3)
    _style(states, "Agents by state (stacked)", "agents")
    states.set_xlabel("seconds since start")

    highest = 1.0
    for q, style in ((0.5, "-"), (0.99, "--")):
        values_ms = [v * 1000 for v in latency_quantiles(series, q)]
        latency.plot(t, values_ms, style, label=f"p{round(q * 100)}", color="tab:blue")
        highest = max([highest, *(v for v in values_ms if not math.isnan(v))])
    latency.set_ylim(0, highest * 1.3)
    _style(
        latency,
        f"Routing latency (from histogram buckets, {LATENCY_WINDOW} s window)",
        "milliseconds",
    )
    latency.set_xlabel("seconds since start")

    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=100)
    plt.close(fig)


def _style(
    ax: Axes, title: str, ylabel: str, legend: Literal["upper left", "lower left"] = "upper left"
) -> None:
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend(loc=legend, fontsize="small", ncols=3)


async def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("ROUTER_DATABASE_URL"),
        help="PostgreSQL URL of an existing, scratch database, e.g. "
        "postgresql://postgres@127.0.0.1:5432/preview (default $ROUTER_DATABASE_URL)",
    )
    parser.add_argument("--duration", type=float, default=40.0, help="seconds of arrivals")
    parser.add_argument("--agents", type=int, default=6, help="synthetic agents")
    parser.add_argument("--seed", type=int, default=7, help="simulator seed")
    parser.add_argument(
        "--rate",
        action="append",
        metavar="CHANNEL=PER_MINUTE",
        help=f"simulator arrivals, repeatable (default {' '.join(BUSY_RATES)}: "
        "busier than the agents can keep up with, so the service level moves)",
    )
    parser.add_argument(
        "--patience",
        action="append",
        metavar="CHANNEL=MEAN_SECONDS",
        help=f"simulator patience, repeatable (default {' '.join(PATIENCE)})",
    )
    parser.add_argument(
        "--output", type=Path, default=ROOT / "docs" / "dashboard.png", help="PNG to write"
    )
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("give --database-url or set ROUTER_DATABASE_URL")

    running = await start_router(args.database_url, RoutingPolicy(), "127.0.0.1", 0, metrics_port=0)
    assert running.metrics_port is not None
    series = Series()
    done = asyncio.Event()
    scraper = asyncio.create_task(scrape_until(running.metrics_port, done, series))
    try:
        sim_parser = argparse.ArgumentParser()
        contact_router_tools.simulate.add_arguments(sim_parser)
        sim_args = sim_parser.parse_args(
            [
                f"--router=127.0.0.1:{running.port}",
                f"--duration={args.duration:g}",
                f"--agents={args.agents}",
                f"--seed={args.seed}",
                "--drain=10",
                "--quiet",
                *(f"--rate={r}" for r in args.rate or BUSY_RATES),
                *(f"--patience={p}" for p in args.patience or PATIENCE),
            ]
        )
        code = await contact_router_tools.simulate.run(sim_args)
        await asyncio.sleep(2.0)
        done.set()
        await scraper
    finally:
        done.set()
        scraper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await scraper
        await running.stop(grace=1.0)
    plot(series, args.output, args.agents, args.duration)
    print(f"wrote {args.output} ({len(series.scrapes)} scrapes; simulate exited {code})")
    return code


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
