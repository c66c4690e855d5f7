"""The Grafana dashboard in deploy/grafana queries only metrics the router exports."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from router.domain import Channel, Router, RoutingPolicy
from router.domain.rolling import RollingServiceLevel
from router.metrics import LiveCollector, RouterMetrics, WatchCollector

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "contact-router.json"
METRIC = re.compile(r"\bcontactrouter_[a-z_]+")
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gauge": ("",),
    "info": ("_info",),  # python_info, from the platform collector
}


def exported_names() -> set[str]:
    """Every series name a router exposes: its registry plus the live gauges."""
    policy = RoutingPolicy()
    now = datetime.now(UTC)
    rolling = RollingServiceLevel(policy)
    for channel in Channel:  # the service-level gauge appears once there is an outcome
        rolling.answered(channel, now, 0.0)
    metrics = RouterMetrics(rolling)
    snapshot = Router(policy).snapshot(now)
    metrics.registry.register(LiveCollector(lambda: (snapshot, rolling, now, 0, 0)))
    metrics.registry.register(WatchCollector(lambda: (0, 0)))
    names: set[str] = set()
    for family in metrics.registry.collect():
        names.update(family.name + suffix for suffix in SUFFIXES[family.type])
    return names


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def test_exported_names_cover_the_readme_list() -> None:
    assert {
        "contactrouter_contacts_waiting",
        "contactrouter_service_level_ratio",
        "contactrouter_agents",
        "contactrouter_db_pending_writes",
        "contactrouter_offers_total",
        "contactrouter_routing_latency_seconds_bucket",
        "contactrouter_db_batch_writes_bucket",
    } <= exported_names()


def test_every_expression_uses_exported_metrics(dashboard: dict[str, Any]) -> None:
    exported = exported_names()
    expressions = [
        target["expr"] for panel in panels(dashboard) for target in panel.get("targets", [])
    ]
    assert len(expressions) >= 10
    for expr in expressions:
        used = set(METRIC.findall(expr))
        assert used, f"no contactrouter_ metric in {expr!r}"
        assert used <= exported, f"unknown metric(s) {used - exported} in {expr!r}"


def test_panels_fit_the_grid_and_have_unique_ids(dashboard: dict[str, Any]) -> None:
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids))
    for panel in panels(dashboard):
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]


def test_service_level_panel_draws_the_configured_goal_and_alarm(
    dashboard: dict[str, Any],
) -> None:
    """Each channel's goal and alarm line come from the router (as configured per
    channel), not from fixed 80% and 70% thresholds of the dashboard's own."""
    (panel,) = [
        p
        for p in panels(dashboard)
        if any("contactrouter_service_level_ratio" in t["expr"] for t in p.get("targets", []))
    ]
    expressions = " ".join(t["expr"] for t in panel["targets"])
    assert "contactrouter_service_level_goal_ratio" in expressions
    assert "contactrouter_service_level_alarm_ratio" in expressions
    defaults = panel["fieldConfig"]["defaults"]
    assert {step["value"] for step in defaults["thresholds"]["steps"]} == {None}
    assert defaults["unit"] == "percentunit"


def test_the_goal_and_alarm_gauges_are_the_configured_ones() -> None:
    """A center holding phone to 90% (alarm below 75%) exports those lines."""
    from dataclasses import replace
    from types import MappingProxyType

    channels = dict(RoutingPolicy().channels)
    channels[Channel.PHONE] = replace(
        channels[Channel.PHONE], service_level_goal=0.9, service_level_alarm=0.75
    )
    policy = RoutingPolicy(channels=MappingProxyType(channels))
    now = datetime.now(UTC)
    rolling = RollingServiceLevel(policy)
    snapshot = Router(policy).snapshot(now)
    collected = {
        (family.name, sample.labels.get("channel")): sample.value
        for family in LiveCollector(lambda: (snapshot, rolling, now, 0, 0)).collect()
        for sample in family.samples
    }
    assert collected[("contactrouter_service_level_goal_ratio", "phone")] == 0.9
    assert collected[("contactrouter_service_level_alarm_ratio", "phone")] == 0.75
    assert collected[("contactrouter_service_level_goal_ratio", "chat")] == 0.8
